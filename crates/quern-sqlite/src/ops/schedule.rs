//! Recurring schedules: the `schedules` and `schedule_runs` tables (migration 0006).
//!
//! Every write runs on the writer inside one transaction, so `fire`'s checks (revision,
//! paused, run limit, watermark) and its writes (the job, the run, the moved watermark) are
//! one step: two schedulers racing for a tick serialize on the writer and the second finds
//! the watermark moved.

use quern::backend::{
    BatchMode, EnqueueParams, FireOutcome, ScheduleFireParams, ScheduleRunsParams, ScheduleUpserted,
};
use quern::model::{RunKind, ScheduleRun, ScheduleSpec, StoredSchedule};
use quern::{Error, JobId, Millis};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::sql_err;
use crate::writer::Tx;

const COLUMNS: &str =
    "spec, paused, revision, created_at, updated_at, watermark, runs, last_tick, last_job";

fn json_err(e: serde_json::Error) -> Error {
    Error::Storage(format!("stored schedule spec is unreadable: {e}"))
}

fn id_from(blob: Option<Vec<u8>>) -> rusqlite::Result<Option<JobId>> {
    blob.map(|b| {
        <[u8; 16]>::try_from(b.as_slice())
            .map(JobId::from_bytes)
            .map_err(|_| {
                rusqlite::Error::InvalidColumnType(0, "job id".into(), rusqlite::types::Type::Blob)
            })
    })
    .transpose()
}

/// A `schedules` row (selected with [`COLUMNS`]) with its spec still as text.
struct RawRow {
    spec: String,
    rest: StoredSchedule,
}

fn raw(r: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        spec: r.get(0)?,
        rest: StoredSchedule {
            spec: ScheduleSpec::new("", "", quern::model::JobTemplate::new("")),
            paused: r.get::<_, i64>(1)? != 0,
            revision: r.get::<_, i64>(2)? as u64,
            created_at: r.get(3)?,
            updated_at: r.get(4)?,
            watermark: r.get(5)?,
            runs: r.get::<_, i64>(6)? as u64,
            last_tick: r.get(7)?,
            last_job: id_from(r.get(8)?)?,
        },
    })
}

impl RawRow {
    fn parse(self) -> quern::Result<StoredSchedule> {
        let mut s = self.rest;
        s.spec = serde_json::from_str(&self.spec).map_err(json_err)?;
        Ok(s)
    }
}

fn load(conn: &Connection, name: &str) -> quern::Result<Option<StoredSchedule>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM schedules WHERE name = ?1"))
        .and_then(|mut s| s.query_row([name], raw).optional())
        .map_err(sql_err)?
        .map(RawRow::parse)
        .transpose()
}

fn load_known(conn: &Connection, name: &str) -> quern::Result<StoredSchedule> {
    load(conn, name)?.ok_or_else(|| Error::ScheduleNotFound(name.to_string()))
}

/// Writes every column but the name and `created_at` of an existing row.
fn save(tx: &Tx<'_>, s: &StoredSchedule) -> quern::Result<()> {
    let spec = serde_json::to_string(&s.spec).map_err(json_err)?;
    tx.conn
        .prepare_cached(
            "UPDATE schedules SET spec = ?2, paused = ?3, revision = ?4, updated_at = ?5, \
             watermark = ?6, runs = ?7, last_tick = ?8, last_job = ?9 WHERE name = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                s.spec.name,
                spec,
                s.paused as i64,
                s.revision as i64,
                s.updated_at,
                s.watermark,
                s.runs as i64,
                s.last_tick,
                s.last_job.as_ref().map(|id| id.as_bytes().to_vec()),
            ])
        })
        .map(|_| ())
        .map_err(sql_err)
}

pub(crate) fn upsert(tx: &mut Tx<'_>, spec: ScheduleSpec) -> quern::Result<ScheduleUpserted> {
    spec.validate()?;
    let now = tx.now;
    if let Some(mut s) = load(tx.conn, &spec.name)? {
        if s.spec == spec {
            return Ok(ScheduleUpserted {
                schedule: s,
                created: false,
                changed: false,
            });
        }
        s.spec = spec;
        s.revision += 1;
        s.updated_at = now;
        s.watermark = s.watermark.max(now);
        save(tx, &s)?;
        return Ok(ScheduleUpserted {
            schedule: s,
            created: false,
            changed: true,
        });
    }
    let text = serde_json::to_string(&spec).map_err(json_err)?;
    tx.conn
        .prepare_cached(
            "INSERT INTO schedules (name, spec, paused, revision, created_at, updated_at, \
             watermark, runs) VALUES (?1, ?2, 0, 1, ?3, ?3, ?3, 0)",
        )
        .and_then(|mut st| st.execute(params![spec.name, text, now]))
        .map_err(sql_err)?;
    Ok(ScheduleUpserted {
        schedule: StoredSchedule {
            spec,
            paused: false,
            revision: 1,
            created_at: now,
            updated_at: now,
            watermark: now,
            runs: 0,
            last_tick: None,
            last_job: None,
        },
        created: true,
        changed: true,
    })
}

pub(crate) fn get(conn: &Connection, name: &str) -> quern::Result<Option<StoredSchedule>> {
    load(conn, name)
}

pub(crate) fn list(conn: &Connection) -> quern::Result<Vec<StoredSchedule>> {
    let mut st = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM schedules ORDER BY name"))
        .map_err(sql_err)?;
    let rows = st
        .query_map([], raw)
        .map_err(sql_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_err)?;
    rows.into_iter().map(RawRow::parse).collect()
}

pub(crate) fn delete(tx: &mut Tx<'_>, name: &str) -> quern::Result<Option<StoredSchedule>> {
    let Some(s) = load(tx.conn, name)? else {
        return Ok(None);
    };
    for sql in [
        "DELETE FROM schedule_runs WHERE schedule = ?1",
        "DELETE FROM schedules WHERE name = ?1",
    ] {
        tx.conn
            .prepare_cached(sql)
            .and_then(|mut st| st.execute([name]))
            .map_err(sql_err)?;
    }
    Ok(Some(s))
}

/// Pause (`paused = true`) or resume; a call that changes nothing bumps nothing.
pub(crate) fn set_paused(
    tx: &mut Tx<'_>,
    name: &str,
    paused: bool,
) -> quern::Result<StoredSchedule> {
    let mut s = load_known(tx.conn, name)?;
    if s.paused == paused {
        return Ok(s);
    }
    s.paused = paused;
    s.revision += 1;
    s.updated_at = tx.now;
    if !paused {
        s.watermark = s.watermark.max(tx.now);
    }
    save(tx, &s)?;
    Ok(s)
}

pub(crate) fn fire(tx: &mut Tx<'_>, p: ScheduleFireParams) -> quern::Result<FireOutcome> {
    p.check()?;
    let mut s = load_known(tx.conn, &p.name)?;
    if let Some(job) = &p.job {
        s.spec.check_tick_job(job)?;
    }
    let manual = p.kind == RunKind::Manual;
    if !manual {
        if p.revision != s.revision {
            return Ok(FireOutcome::Stale);
        }
        if s.paused {
            return Ok(FireOutcome::Paused);
        }
        if s.spec.limit.is_some_and(|l| s.runs >= l) {
            return Ok(FireOutcome::Ended);
        }
        if p.tick <= s.watermark {
            return Ok(FireOutcome::AlreadyFired);
        }
    }
    let (outcome, kind, job_id) = match p.job {
        Some(job) => {
            let mut r = super::enqueue::enqueue(
                tx,
                EnqueueParams {
                    jobs: vec![job],
                    mode: BatchMode::Atomic,
                },
            )?;
            let o = r.remove(0)?;
            let kind = if o.duplicate && !manual {
                RunKind::Duplicate
            } else {
                p.kind
            };
            (
                FireOutcome::Fired {
                    job_id: o.id,
                    duplicate: o.duplicate,
                },
                kind,
                Some(o.id),
            )
        }
        None => (FireOutcome::Skipped, RunKind::SkippedOverlap, None),
    };
    record_run(tx, &p.name, p.tick, kind, job_id)?;
    if !manual {
        s.watermark = p.tick;
        s.runs += 1;
        s.last_tick = Some(p.tick);
        if job_id.is_some() {
            s.last_job = job_id;
        }
        save(tx, &s)?;
    }
    Ok(outcome)
}

/// Appends a run and drops the oldest beyond [`ScheduleRun::HISTORY`].
fn record_run(
    tx: &Tx<'_>,
    name: &str,
    tick: Millis,
    kind: RunKind,
    job: Option<JobId>,
) -> quern::Result<()> {
    tx.conn
        .prepare_cached(
            "INSERT INTO schedule_runs (schedule, seq, tick, fired_at, kind, job_id) \
             SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3, ?4, ?5 FROM schedule_runs \
             WHERE schedule = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                name,
                tick,
                tx.now,
                kind.code(),
                job.as_ref().map(|id| id.as_bytes().to_vec())
            ])
        })
        .map_err(sql_err)?;
    tx.conn
        .prepare_cached(
            "DELETE FROM schedule_runs WHERE schedule = ?1 AND seq NOT IN (SELECT seq FROM \
             schedule_runs WHERE schedule = ?1 ORDER BY tick DESC, seq DESC LIMIT ?2)",
        )
        .and_then(|mut st| st.execute(params![name, ScheduleRun::HISTORY as i64]))
        .map(|_| ())
        .map_err(sql_err)
}

pub(crate) fn runs(conn: &Connection, p: ScheduleRunsParams) -> quern::Result<Vec<ScheduleRun>> {
    load_known(conn, &p.name)?;
    let mut st = conn
        .prepare_cached(
            "SELECT tick, fired_at, kind, job_id FROM schedule_runs WHERE schedule = ?1 \
             ORDER BY tick DESC, seq DESC LIMIT ?2",
        )
        .map_err(sql_err)?;
    let rows = st
        .query_map(
            params![p.name, p.limit.min(i64::MAX as usize) as i64],
            |r| {
                Ok((
                    r.get::<_, Millis>(0)?,
                    r.get::<_, Millis>(1)?,
                    r.get::<_, i64>(2)?,
                    id_from(r.get(3)?)?,
                ))
            },
        )
        .map_err(sql_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(sql_err)?;
    rows.into_iter()
        .map(|(tick, fired_at, kind, job_id)| {
            Ok(ScheduleRun {
                tick,
                fired_at,
                kind: RunKind::from_code(kind)?,
                job_id,
            })
        })
        .collect()
}
