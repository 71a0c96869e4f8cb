-- The jobs of each queue in each state, so `queue_list` and `queue_stats` read a few rows
-- instead of counting every job (a scan of `jobs_claim`: 145-175 ms at 1,000,000 jobs).
--
-- No trigger keeps it (a row trigger costs every statement that touches a job row, whether
-- or not its WHEN holds; see 0024). Every writer path that inserts, deletes or changes the
-- state of a job row records the change in Rust and the writer adds each group's deltas here
-- just before its commit (ops/counts.rs). A (queue, state) with no jobs may hold a row with
-- n = 0.
CREATE TABLE queue_counts (
    queue_id INTEGER NOT NULL,
    state    INTEGER NOT NULL,
    n        INTEGER NOT NULL,
    PRIMARY KEY (queue_id, state)
) WITHOUT ROWID;
INSERT INTO queue_counts (queue_id, state, n)
SELECT queue_id, state, count(*) FROM jobs GROUP BY queue_id, state;
