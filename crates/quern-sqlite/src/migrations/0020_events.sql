-- Job events (quern::model::JobEvent), written per operation rather than per job row.
--
-- A job's timeline lives with the job: `jobs.events`, text lines `at,from,to,attempt,actor`
-- (states are the integers of `state`, empty for none), appended by the same statement
-- that changes the state (or written by the INSERT), so reading it is one row read and it
-- goes with the job when the job is pruned or deleted.
--
-- The stream (SSE, cursors, filters): one `job_events` row per operation and queue, packing
-- the jobs that operation moved (`recs`, `n` records; see src/events.rs for the layout), so
-- a batch enqueue of 1,000 jobs or a claim of 16 is one row. `seq` is the cursor and is
-- never reused (retention keeps the newest row).
ALTER TABLE jobs ADD COLUMN events TEXT;
CREATE TABLE job_events (
    seq      INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    queue_id INTEGER NOT NULL,
    actor    TEXT,
    n        INTEGER NOT NULL,
    recs     BLOB    NOT NULL
);
