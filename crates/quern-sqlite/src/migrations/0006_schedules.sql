-- Recurring schedules (quern::model::StoredSchedule) and their run history. The spec is the
-- ScheduleSpec as JSON: only the scheduler reads its fields, and the store compares it
-- whole (an upsert of the same spec changes nothing). `watermark` is what makes a tick fire
-- once: schedule_fire refuses a tick at or before it, in the same transaction that moves it.
CREATE TABLE schedules (
    name       TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,
    paused     INTEGER NOT NULL DEFAULT 0,
    revision   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    watermark  INTEGER NOT NULL,
    runs       INTEGER NOT NULL DEFAULT 0,
    last_tick  INTEGER,
    last_job   BLOB
) WITHOUT ROWID;

-- The latest runs per schedule (quern::model::ScheduleRun::HISTORY); `seq` is the record
-- order within a schedule. `kind` is RunKind::code.
CREATE TABLE schedule_runs (
    schedule TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    tick     INTEGER NOT NULL,
    fired_at INTEGER NOT NULL,
    kind     INTEGER NOT NULL,
    job_id   BLOB,
    PRIMARY KEY (schedule, seq)
) WITHOUT ROWID;
CREATE INDEX schedule_runs_by_tick ON schedule_runs (schedule, tick DESC, seq DESC);
