-- Per-kind and per-group rate limits (QueueSettings::kinds, ::group_rate) and the admission
-- holds of a handler's `RateLimited` outcome (FailAction::RateLimited).
--
-- The settings are columns of `queues`, read with the rest by the claim: `kind_rates` is the
-- JSON of QueueSettings::kinds (NULL = none), `group_rate_*` the per-group limit.
-- `holds_until` is the latest hold of any group or kind of the queue, so a claim looks
-- for holds only while one may be in force.
ALTER TABLE queues ADD COLUMN kind_rates TEXT;
ALTER TABLE queues ADD COLUMN group_rate_count INTEGER;
ALTER TABLE queues ADD COLUMN group_rate_per_ms INTEGER;
ALTER TABLE queues ADD COLUMN group_rate_burst INTEGER;
ALTER TABLE queues ADD COLUMN holds_until INTEGER NOT NULL DEFAULT 0;

-- The state of one bucket of a queue (ops/gate.rs): `scope` 0 a kind pattern of
-- `kind_rates` (name = the pattern), 1 a group (name = the group), 2 an exact kind held by
-- `RateLimited` (name = the kind). `tat` is the GCRA state (0 = a full bucket), `hold_until`
-- the time before which nothing of it is admitted.
CREATE TABLE queue_buckets (
    queue_id   INTEGER NOT NULL,
    scope      INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    tat        REAL    NOT NULL DEFAULT 0,
    hold_until INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue_id, scope, name)
) WITHOUT ROWID;
