-- Per-job logs (`job_log_append`, `job_logs`): lines written by handlers (`Context::log`) and
-- by the shell executor (the program's stderr).
--
-- A job's lines are keyed by (job id, seq), so reading after a cursor and dropping the oldest
-- are range operations on the primary key. `job_log_heads` keeps, per job that has logged,
-- the next sequence number and what the caps need (lines and bytes kept, lines dropped), so
-- an append never counts rows.
CREATE TABLE job_logs (
    job_id  BLOB    NOT NULL,
    seq     INTEGER NOT NULL,      -- 1, 2, … per job; never reused
    at      INTEGER NOT NULL,      -- ms since epoch, the writer's clock
    level   INTEGER NOT NULL,      -- LogLevel::as_i64
    attempt INTEGER NOT NULL,
    message TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

CREATE TABLE job_log_heads (
    job_id   BLOB    NOT NULL PRIMARY KEY,
    next_seq INTEGER NOT NULL,
    lines    INTEGER NOT NULL,     -- lines kept
    bytes    INTEGER NOT NULL,     -- bytes of message text kept
    dropped  INTEGER NOT NULL      -- lines dropped by the caps (the oldest)
) WITHOUT ROWID;

-- Lines go with their job, whichever path deletes it (the pruner, or any later one): two
-- primary-key seeks per deleted job.
CREATE TRIGGER job_logs_go_with_their_job AFTER DELETE ON jobs BEGIN
    DELETE FROM job_logs WHERE job_id = old.id;
    DELETE FROM job_log_heads WHERE job_id = old.id;
END;
