//! Workflow records: create (with all task jobs), get, list, compare-and-set update (with
//! the job changes that go with it), and per-workflow counts by state.
//!
//! None of this touches the plain-job hot path: the only index added over `jobs` is partial
//! (`workflow_id IS NOT NULL`), so jobs outside workflows never pay for it.

use quern::backend::{
    BatchMode, CancelScope, EnqueueParams, RetryParams, RetryTarget, WorkflowCreateParams,
    WorkflowListParams, WorkflowPage, WorkflowUpdateParams, check_workflow_membership,
};
use quern::model::{StateCounts, WorkflowPhase, WorkflowRecord, WorkflowState};
use quern::{Error, JobId, JobState};
use rusqlite::{Connection, OptionalExtension, Row};

use super::{admin, enqueue};
use crate::error::sql_err;
use crate::writer::Tx;

const WF_COLS: &str = "id, name, state, phase, revision, spec, tasks, compensations, error, \
                       created_at, updated_at, finished_at";

fn conv<E: std::fmt::Display>(col: usize, e: E) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Text,
        e.to_string().into(),
    )
}

fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    match row.get_ref(i)?.as_str_or_null()? {
        None => Ok(None),
        Some(s) => serde_json::from_str(s).map(Some).map_err(|e| conv(i, e)),
    }
}

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<WorkflowRecord> {
    let state: i64 = row.get(2)?;
    let phase: i64 = row.get(3)?;
    Ok(WorkflowRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        state: WorkflowState::from_i64(state)
            .ok_or_else(|| conv(2, format!("unknown workflow state {state}")))?,
        phase: WorkflowPhase::from_i64(phase)
            .ok_or_else(|| conv(3, format!("unknown workflow phase {phase}")))?,
        revision: row.get::<_, i64>(4)? as u64,
        spec: json(row, 5)?.unwrap_or(serde_json::Value::Null),
        tasks: json(row, 6)?.unwrap_or_default(),
        compensations: json(row, 7)?.unwrap_or_default(),
        error: row.get(8)?,
        created_at: row.get(9)?,
        updated_at: row.get(10)?,
        finished_at: row.get(11)?,
    })
}

fn codec(e: serde_json::Error) -> Error {
    Error::Codec(e.to_string())
}

pub(crate) fn get(conn: &Connection, id: &str) -> quern::Result<Option<WorkflowRecord>> {
    conn.prepare_cached(&format!("SELECT {WF_COLS} FROM workflows WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], record_from_row).optional())
        .map_err(sql_err)
}

pub(crate) fn list(conn: &Connection, p: WorkflowListParams) -> quern::Result<WorkflowPage> {
    let limit = p.limit.clamp(1, 10_000);
    let sql = format!(
        "SELECT {WF_COLS} FROM workflows WHERE (?1 IS NULL OR state = ?1) \
         AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
    );
    let mut rows: Vec<WorkflowRecord> = conn
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(
                rusqlite::params![
                    p.state.map(WorkflowState::as_i64),
                    p.before,
                    (limit + 1) as i64
                ],
                record_from_row,
            )
            .and_then(|r| r.collect())
        })
        .map_err(sql_err)?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|w| w.id.clone())
    } else {
        None
    };
    Ok(WorkflowPage {
        workflows: rows,
        next,
    })
}

pub(crate) fn counts(conn: &Connection, id: &str) -> quern::Result<StateCounts> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM workflows WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |_| Ok(())).optional())
        .map_err(sql_err)?;
    if exists.is_none() {
        return Err(Error::WorkflowNotFound(id.to_string()));
    }
    let rows: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT state, count(*) FROM jobs WHERE workflow_id = ?1 GROUP BY state")
        .and_then(|mut s| {
            s.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|r| r.collect())
        })
        .map_err(sql_err)?;
    let mut out = StateCounts::default();
    for (state, n) in rows {
        if let Some(s) = JobState::from_i64(state) {
            *out.get_mut(s) = n as u64;
        }
    }
    Ok(out)
}

pub(crate) fn create(tx: &mut Tx<'_>, p: WorkflowCreateParams) -> quern::Result<WorkflowRecord> {
    p.check()?;
    let w = p.workflow;
    let exists = tx
        .conn
        .prepare_cached("SELECT 1 FROM workflows WHERE id = ?1")
        .and_then(|mut s| s.query_row([&w.id], |_| Ok(())).optional())
        .map_err(sql_err)?;
    if exists.is_some() {
        return Err(Error::InvalidArgument(format!(
            "a workflow with id {} already exists",
            w.id
        )));
    }
    let rec = WorkflowRecord::from_new(w, tx.now);
    tx.conn
        .prepare_cached(&format!(
            "INSERT INTO workflows ({WF_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, ?8, ?8, NULL)"
        ))
        .and_then(|mut s| {
            s.execute(rusqlite::params![
                rec.id,
                rec.name,
                rec.state.as_i64(),
                rec.phase.as_i64(),
                rec.revision as i64,
                rec.spec.to_string(),
                serde_json::to_string(&rec.tasks).unwrap_or_else(|_| "{}".into()),
                rec.created_at,
            ])
        })
        .map_err(sql_err)?;
    enqueue::enqueue(
        tx,
        EnqueueParams {
            jobs: p.jobs,
            mode: BatchMode::Atomic,
        },
    )?;
    Ok(rec)
}

/// Ids of the workflow's jobs in any of `states` (through the partial `jobs_workflow` index).
fn jobs_in(tx: &Tx<'_>, id: &str, states: &[JobState]) -> quern::Result<Vec<JobId>> {
    let mut stmt = tx
        .conn
        .prepare_cached(
            "SELECT id FROM jobs WHERE workflow_id = ?1 AND state = ?2 ORDER BY id DESC",
        )
        .map_err(sql_err)?;
    let mut out = Vec::new();
    for s in states {
        let ids: Vec<[u8; 16]> = stmt
            .query_map(rusqlite::params![id, s.as_i64()], |r| r.get(0))
            .and_then(|r| r.collect())
            .map_err(sql_err)?;
        out.extend(ids.into_iter().map(JobId::from_bytes));
    }
    Ok(out)
}

pub(crate) fn update(tx: &mut Tx<'_>, p: WorkflowUpdateParams) -> quern::Result<WorkflowRecord> {
    let mut rec = get(tx.conn, &p.id)?.ok_or_else(|| Error::WorkflowNotFound(p.id.clone()))?;
    if rec.revision != p.revision {
        return Err(Error::Conflict(format!(
            "workflow {} is at revision {}, not {} (it changed since it was read)",
            p.id, rec.revision, p.revision
        )));
    }
    if let Some(scope) = p.cancel {
        // Blocked jobs first, newest first: dependents come after their dependencies in a
        // workflow, so each is cancelled before a dependency's cancel could skip it.
        let states: &[JobState] = match scope {
            CancelScope::NotStarted => &[JobState::Blocked, JobState::Scheduled, JobState::Queued],
            CancelScope::All => &[
                JobState::Blocked,
                JobState::Scheduled,
                JobState::Queued,
                JobState::Running,
            ],
        };
        let reason = match scope {
            CancelScope::NotStarted => {
                format!("workflow {} failed; cancelled before it started", p.id)
            }
            CancelScope::All => format!("workflow {} was cancelled", p.id),
        };
        for job in jobs_in(tx, &p.id, states)? {
            // An earlier cancel in this loop may have skipped it through its dependencies.
            if let Some(state) = super::state_of(tx.conn, job)?
                && !state.is_terminal()
            {
                admin::cancel_one(tx, job, state, &reason)?;
            }
        }
    }
    if !p.retry.is_empty() {
        for job in &p.retry {
            let wf: Option<Option<String>> = tx
                .conn
                .prepare_cached("SELECT workflow_id FROM jobs WHERE id = ?1")
                .and_then(|mut s| s.query_row([job.as_bytes()], |r| r.get(0)).optional())
                .map_err(sql_err)?;
            match wf {
                None => return Err(Error::JobNotFound(*job)),
                Some(w) if w.as_deref() != Some(p.id.as_str()) => {
                    return Err(Error::InvalidArgument(format!(
                        "job {job} is not a job of workflow {}",
                        p.id
                    )));
                }
                Some(_) => {}
            }
        }
        let limit = p.retry.len();
        admin::retry(
            tx,
            RetryParams {
                target: RetryTarget::Ids(p.retry),
                limit,
            },
        )?;
    }
    if !p.compensations.is_empty() {
        check_workflow_membership(&p.id, &p.compensations)?;
        rec.compensations
            .extend(p.compensations.iter().map(|j| j.id));
        enqueue::enqueue(
            tx,
            EnqueueParams {
                jobs: p.compensations,
                mode: BatchMode::Atomic,
            },
        )?;
    }
    if let Some(state) = p.state {
        rec.state = state;
        rec.finished_at = state.is_final().then_some(tx.now);
    }
    if let Some(phase) = p.phase {
        rec.phase = phase;
    }
    if let Some(error) = p.error {
        rec.error = error;
    }
    rec.revision += 1;
    rec.updated_at = tx.now;
    let compensations = serde_json::to_string(&rec.compensations).map_err(codec)?;
    tx.conn
        .prepare_cached(
            "UPDATE workflows SET state = ?2, phase = ?3, revision = ?4, compensations = ?5, \
             error = ?6, updated_at = ?7, finished_at = ?8 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(rusqlite::params![
                rec.id,
                rec.state.as_i64(),
                rec.phase.as_i64(),
                rec.revision as i64,
                compensations,
                rec.error,
                rec.updated_at,
                rec.finished_at,
            ])
        })
        .map_err(sql_err)?;
    Ok(rec)
}
