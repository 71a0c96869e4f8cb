-- Retention by bytes (`job_prune_bytes`, `[retention] max_bytes`): the bytes of every
-- finished job, kept as jobs finish and leave, so checking the budget reads one row instead
-- of summing the finished jobs.
--
-- A job counts while `finished_at` is set (exactly while it is in a terminal state): the
-- stored length of its payload, result and checkpoint (after compression). The triggers
-- below fire only on the statements that can change that: finishing (complete, fail to dead,
-- cancel, skip), leaving a terminal state (retry, replay), a result dropped by its expiry,
-- an imported finished job, and a deletion. Claims and heartbeats of running jobs leave
-- `finished_at` NULL, so their WHEN is false.
CREATE TABLE finished_bytes (
    id    INTEGER PRIMARY KEY CHECK (id = 0),
    total INTEGER NOT NULL
);
INSERT INTO finished_bytes (id, total)
SELECT 0, coalesce(sum(length(payload) + coalesce(length(result), 0) + coalesce(length(checkpoint), 0)), 0)
FROM jobs WHERE finished_at IS NOT NULL;

-- No insert trigger: SQLite runs a row trigger's program for every inserted row even when its
-- WHEN is false, which every enqueue would pay. The two paths that insert job rows (enqueue and
-- import) count a job stored already finished themselves (ops/prune_bytes.rs
-- `count_inserted`); the update and delete triggers below keep the total from then on.
CREATE TRIGGER jobs_finished_bytes_update AFTER UPDATE OF finished_at, payload, result, checkpoint ON jobs
WHEN OLD.finished_at IS NOT NULL OR NEW.finished_at IS NOT NULL
BEGIN
    UPDATE finished_bytes
    SET total = total
        + CASE WHEN NEW.finished_at IS NULL THEN 0
               ELSE length(NEW.payload) + coalesce(length(NEW.result), 0) + coalesce(length(NEW.checkpoint), 0) END
        - CASE WHEN OLD.finished_at IS NULL THEN 0
               ELSE length(OLD.payload) + coalesce(length(OLD.result), 0) + coalesce(length(OLD.checkpoint), 0) END
    WHERE id = 0;
END;

CREATE TRIGGER jobs_finished_bytes_delete AFTER DELETE ON jobs
WHEN OLD.finished_at IS NOT NULL
BEGIN
    UPDATE finished_bytes
    SET total = total - length(OLD.payload) - coalesce(length(OLD.result), 0) - coalesce(length(OLD.checkpoint), 0)
    WHERE id = 0;
END;
