-- Jobs, their dependencies, and queues.
--
-- `jobs` is a WITHOUT ROWID table keyed by the UUIDv7 id (16 bytes, big-endian, so inserts
-- append at the right edge of the b-tree). Every plain enqueue touches two b-trees: the table
-- and `jobs_claim`.
CREATE TABLE jobs (
    id                BLOB    NOT NULL PRIMARY KEY,
    queue_id          INTEGER NOT NULL,      -- queues.id (integers compare faster than names in every index seek)
    state             INTEGER NOT NULL,      -- JobState::as_i64
    priority          INTEGER NOT NULL,      -- 0 (most urgent) .. 9
    run_at            INTEGER NOT NULL,      -- ms since epoch: when due
    kind              TEXT    NOT NULL,
    payload           BLOB    NOT NULL,
    payload_tag       INTEGER NOT NULL,      -- Payload::tag (format + compression)
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    lease_epoch       INTEGER NOT NULL DEFAULT 0, -- fencing: +1 per claim
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    lease_worker      TEXT,
    lease_expires_at  INTEGER,
    retry             TEXT,                  -- RetryPolicy as JSON
    timeout_ms        INTEGER,
    unique_key        TEXT,
    unique_for_ms     INTEGER,
    depends_on        BLOB,                  -- concatenated 16-byte ids, in order
    trigger_rule      INTEGER NOT NULL DEFAULT 0,
    deps_done         INTEGER NOT NULL DEFAULT 0, -- while blocked: dependencies now terminal
    deps_ok           INTEGER NOT NULL DEFAULT 0, -- while blocked: dependencies succeeded
    workflow_id       TEXT,
    tags              TEXT,                  -- JSON array
    meta              TEXT,                  -- JSON
    version           INTEGER NOT NULL DEFAULT 0,
    result            BLOB,
    result_tag        INTEGER,
    result_expires_at INTEGER,
    errors            TEXT,                  -- JSON array of ErrorRecord
    progress          TEXT,                  -- JSON Progress
    checkpoint        BLOB,
    checkpoint_tag    INTEGER
) WITHOUT ROWID;

-- The claim path: queued jobs of a queue in priority, due-time, id order. Also serves
-- per-queue counts by state, listing by queue and state, the rescuer (running jobs of a
-- queue) and the pruner (finished jobs of a queue by priority and run_at).
CREATE INDEX jobs_claim ON jobs (queue_id, state, priority, run_at);
-- Promotion of due scheduled jobs.
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE state = 0;
-- Unique keys are scoped to a queue.
CREATE INDEX jobs_unique ON jobs (queue_id, unique_key) WHERE unique_key IS NOT NULL;
CREATE INDEX jobs_workflow ON jobs (workflow_id) WHERE workflow_id IS NOT NULL;
-- Result expiry. (Rescue and pruning need no index of their own: running jobs are found per
-- queue through jobs_claim, and finished jobs by run_at per priority, since finished_at is
-- never before run_at. Each extra index costs every claim and completion a b-tree write.)
CREATE INDEX jobs_result_expiry ON jobs (result_expires_at) WHERE result_expires_at IS NOT NULL;

-- Reverse dependency edges: who waits on `dep_id`.
CREATE TABLE job_deps (
    dep_id BLOB NOT NULL,
    job_id BLOB NOT NULL,
    PRIMARY KEY (dep_id, job_id)
) WITHOUT ROWID;

CREATE TABLE queues (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    paused     INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
