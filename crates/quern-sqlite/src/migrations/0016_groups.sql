-- Job groups (quern::NewJob::group) and the per-group concurrency cap
-- (QueueSettings::group_concurrency).
--
-- `grp` is NULL for a job without a group in a queue that has never had a grouped job, so
-- such queues pay nothing: `jobs_group` is partial, and the triggers below test `grp` first.
-- Once a queue has a grouped job (`queues.grouped` = 1) every live job of it carries a group:
-- jobs without one get '' (the "" group), by `jobs_group_default` for new rows and by the
-- enqueue that flips the flag for the rows already there (ops/groups.rs).
ALTER TABLE jobs ADD COLUMN grp TEXT;
CREATE INDEX jobs_group ON jobs (queue_id, grp, state, priority, run_at) WHERE grp IS NOT NULL;
ALTER TABLE queues ADD COLUMN grouped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues ADD COLUMN group_concurrency INTEGER;
-- The rotation counter: each group a claim serves gets the next value as `served`.
ALTER TABLE queues ADD COLUMN group_seq INTEGER NOT NULL DEFAULT 0;

-- One row per (queue, group) ever seen: its ready jobs (kept by the triggers, so every path
-- that changes a job's state counts) and when the claim last served it. The claim walks
-- `queue_groups_rotation` (groups with ready jobs, least recently served first), one job per
-- group per round: round-robin without reading any job of a group it does not serve.
CREATE TABLE queue_groups (
    queue_id INTEGER NOT NULL,
    name     TEXT    NOT NULL,
    ready    INTEGER NOT NULL DEFAULT 0,
    served   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (queue_id, name)
) WITHOUT ROWID;
CREATE INDEX queue_groups_rotation ON queue_groups (queue_id, served, name) WHERE ready > 0;

CREATE TRIGGER jobs_group_insert AFTER INSERT ON jobs
WHEN NEW.grp IS NOT NULL AND NEW.state = 1
BEGIN
    INSERT INTO queue_groups (queue_id, name, ready) VALUES (NEW.queue_id, NEW.grp, 1)
    ON CONFLICT (queue_id, name) DO UPDATE SET ready = ready + 1;
END;

CREATE TRIGGER jobs_group_update AFTER UPDATE OF state, grp ON jobs
WHEN (OLD.grp IS NOT NULL AND OLD.state = 1) OR (NEW.grp IS NOT NULL AND NEW.state = 1)
BEGIN
    UPDATE queue_groups SET ready = ready - 1
    WHERE OLD.grp IS NOT NULL AND OLD.state = 1 AND queue_id = OLD.queue_id AND name = OLD.grp;
    INSERT INTO queue_groups (queue_id, name, ready)
    SELECT NEW.queue_id, NEW.grp, 1 WHERE NEW.grp IS NOT NULL AND NEW.state = 1
    ON CONFLICT (queue_id, name) DO UPDATE SET ready = ready + 1;
END;

CREATE TRIGGER jobs_group_delete AFTER DELETE ON jobs
WHEN OLD.grp IS NOT NULL AND OLD.state = 1
BEGIN
    UPDATE queue_groups SET ready = ready - 1 WHERE queue_id = OLD.queue_id AND name = OLD.grp;
END;

-- A live job without a group, stored in a grouped queue by any path: the "" group.
CREATE TRIGGER jobs_group_default AFTER INSERT ON jobs
WHEN NEW.grp IS NULL AND NEW.state < 4
    AND (SELECT grouped FROM queues WHERE id = NEW.queue_id) = 1
BEGIN
    UPDATE jobs SET grp = '' WHERE id = NEW.id;
END;
