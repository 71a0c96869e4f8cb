-- The jobs of each queue in each state, so `queue_list` and `queue_stats` read a few rows
-- instead of counting every job (a scan of `jobs_claim`: 145-180 ms at 1,000,000 jobs).
--
-- No trigger keeps it (a row trigger costs every statement that touches a job row, whether
-- or not its WHEN holds; see 0024). Every writer path that inserts, deletes or changes the
-- state of a job row records the change in Rust and the writer adds each group's deltas here
-- with one upsert per queue just before its commit (ops/counts.rs). One row per queue and a
-- column per state (JobState::ALL order), so a job moving between two states is one row
-- written, not two.
CREATE TABLE queue_counts (
    queue_id  INTEGER PRIMARY KEY,       -- queues.id
    scheduled INTEGER NOT NULL DEFAULT 0,
    queued    INTEGER NOT NULL DEFAULT 0,
    blocked   INTEGER NOT NULL DEFAULT 0,
    running   INTEGER NOT NULL DEFAULT 0,
    succeeded INTEGER NOT NULL DEFAULT 0,
    dead      INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    skipped   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO queue_counts (queue_id, scheduled, queued, blocked, running, succeeded, dead,
                          cancelled, skipped)
SELECT queue_id, sum(state = 0), sum(state = 1), sum(state = 2), sum(state = 3),
       sum(state = 4), sum(state = 5), sum(state = 6), sum(state = 7)
FROM jobs GROUP BY queue_id;
