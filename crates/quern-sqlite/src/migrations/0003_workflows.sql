-- Workflow records. A workflow's tasks are ordinary rows of `jobs` carrying its id; this
-- table holds what they do not: the definition, the task -> job map, the workflow's own
-- state and phase, and the revision that compare-and-set updates check.
CREATE TABLE workflows (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    state         INTEGER NOT NULL,          -- WorkflowState::as_i64
    phase         INTEGER NOT NULL DEFAULT 0, -- WorkflowPhase::as_i64
    revision      INTEGER NOT NULL,
    spec          TEXT    NOT NULL,          -- the WorkflowSpec as JSON
    tasks         TEXT    NOT NULL,          -- JSON object: task id -> job id
    compensations TEXT,                      -- JSON array of job ids, in run order
    error         TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    finished_at   INTEGER
) WITHOUT ROWID;

-- The monitor lists running workflows; listings filter by state, newest first.
CREATE INDEX workflows_state ON workflows (state, id);

-- Per-workflow counts by state (the monitor's tick, `quern workflow status`) and
-- "cancel what has not started" read a workflow's jobs by state. Partial, so plain jobs pay
-- nothing for it.
DROP INDEX jobs_workflow;
CREATE INDEX jobs_workflow ON jobs (workflow_id, state) WHERE workflow_id IS NOT NULL;

-- Long dependency lists (a join over thousands of tasks, a fan-out parent waiting on its
-- instances) live outside the job's row: every dependency that finishes rewrites the waiting
-- job's row to bump its counters, and a row carrying a 160 KB list would make each of those
-- 10,000 updates copy and compare the whole list. `deps_total` is set exactly when the list
-- is kept here (the row's `depends_on` is then NULL).
ALTER TABLE jobs ADD COLUMN deps_total INTEGER;
CREATE TABLE job_dep_lists (
    job_id BLOB NOT NULL PRIMARY KEY,
    ids    BLOB NOT NULL                     -- concatenated 16-byte ids, in order
);
