-- Outcomes per queue and minute (Backend::stats_minutes, the dashboard's charts), counted
-- by job_complete, job_fail and lease_rescue in the same transaction as the transition: one
-- upsert per call and queue-minute, never one per job. Keyed by minute first, so the
-- charts' window `minute >= ?` is one range; rows older than eight days are deleted by the
-- writer once a day (ops/rollup.rs).
CREATE TABLE rollups (
    minute    INTEGER NOT NULL,           -- the minute's start, ms since epoch
    queue_id  INTEGER NOT NULL,           -- queues.id
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0, -- attempts that ended in an error (retried or dead)
    dead      INTEGER NOT NULL DEFAULT 0, -- of those, the ones after which the job was dead
    PRIMARY KEY (minute, queue_id)
) WITHOUT ROWID;
