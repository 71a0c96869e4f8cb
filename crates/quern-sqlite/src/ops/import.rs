//! `store_import`: rows written back verbatim (restore, migrate), in one writer operation,
//! so a refused call (an id already stored in `Refuse` mode, a bad job, an unknown
//! dependency) rolls back whole.
//!
//! An imported job gets what an enqueued one gets besides its row: its queue, its reverse
//! dependency edges (`job_deps`, so its dependencies settle it), its dependency counters
//! counted from the stored states of its dependencies, and a long list kept in
//! `job_dep_lists`. The claim, the promotion of scheduled jobs and the unique-key lookup read
//! only the row and its indexes, so nothing else is needed for it to behave as native.

use quern::backend::{
    ImportItem, ImportMode, ImportParams, ImportReport, ImportSkip, ScheduleImport, check_import,
    import_image, import_taken,
};
use quern::model::{ScheduleRun, WorkflowRecord};
use quern::{Error, Job, JobState};
use rusqlite::{OptionalExtension, params};

use super::enqueue::{dep_counts, ensure_queue};
use super::state_of;
use crate::error::sql_err;
use crate::writer::Tx;

fn codec(e: serde_json::Error) -> Error {
    Error::Codec(e.to_string())
}

pub(crate) fn import(tx: &mut Tx<'_>, p: ImportParams) -> quern::Result<ImportReport> {
    let mut report = ImportReport::default();
    for q in &p.queues {
        quern::model::validate_queue_name(&q.name)?;
        let known: Option<i64> = tx
            .conn
            .prepare_cached("SELECT id FROM queues WHERE name = ?1")
            .and_then(|mut s| s.query_row([&q.name], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        if known.is_none() {
            ensure_queue(tx, &q.name)?;
            if q.paused {
                super::admin::set_paused(tx, &q.name, true)?;
            }
            report.queues += 1;
        }
    }
    for (i, job) in p.jobs.into_iter().enumerate() {
        check_import(&job, &tx.st.limits).map_err(|e| match e {
            Error::InvalidJob { reason, .. } => Error::InvalidJob {
                index: Some(i),
                reason,
            },
            other => other,
        })?;
        if state_of(tx.conn, job.id)?.is_some() {
            match p.mode {
                ImportMode::Refuse => {
                    return Err(import_taken(ImportItem::Job, &job.id.to_string()));
                }
                ImportMode::SkipExisting => {
                    report.skipped.push(ImportSkip {
                        item: ImportItem::Job,
                        id: job.id.to_string(),
                    });
                    continue;
                }
            }
        }
        let now = tx.now;
        insert_job(tx, import_image(job, now)).map_err(|e| match e {
            Error::InvalidJob { reason, .. } => Error::InvalidJob {
                index: Some(i),
                reason,
            },
            other => other,
        })?;
        report.jobs += 1;
    }
    for rec in p.workflows {
        if insert_workflow(tx, &rec, p.mode)? {
            report.workflows += 1;
        } else {
            report.skipped.push(ImportSkip {
                item: ImportItem::Workflow,
                id: rec.id,
            });
        }
    }
    for s in p.schedules {
        let name = s.schedule.spec.name.clone();
        if insert_schedule(tx, s, p.mode)? {
            report.schedules += 1;
        } else {
            report.skipped.push(ImportSkip {
                item: ImportItem::Schedule,
                id: name,
            });
        }
    }
    Ok(report)
}

/// Stores one job row as given, with its edges and counters. A blocked job whose trigger its
/// dependencies already settle is settled here, as an enqueue would.
fn insert_job(tx: &mut Tx<'_>, job: Job) -> quern::Result<()> {
    let (mut state, mut finished_at) = (job.state, job.finished_at);
    // Only a blocked job needs its dependencies; a settled one may name dependencies that
    // were pruned before the copy, and keeps the list as it was.
    let (done, ok) = if job.depends_on.is_empty() {
        (0, 0)
    } else if state == JobState::Blocked {
        dep_counts(tx, &job.depends_on)?
    } else {
        known_dep_counts(tx, &job.depends_on)?
    };
    if state == JobState::Blocked {
        match job.trigger.resolve_counts(job.depends_on.len(), done, ok) {
            Some(JobState::Queued) if job.run_at > tx.now => state = JobState::Scheduled,
            Some(JobState::Queued) => state = JobState::Queued,
            Some(other) => {
                state = other;
                finished_at = Some(tx.now);
            }
            None => {}
        }
    }
    let queue_id = ensure_queue(tx, &job.queue)?;
    let group = super::groups::group_for_insert(tx, queue_id, job.group.as_deref(), state)?
        .map(str::to_owned);
    let retry = job
        .retry
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(codec)?;
    let tags = (!job.tags.is_empty())
        .then(|| serde_json::to_string(&job.tags))
        .transpose()
        .map_err(codec)?;
    let meta = (!job.meta.is_null()).then(|| job.meta.to_string());
    let errors = (!job.errors.is_empty())
        .then(|| serde_json::to_string(&job.errors))
        .transpose()
        .map_err(codec)?;
    let progress = job
        .progress
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(codec)?;
    let (inline_deps, deps_total) = if job.depends_on.is_empty() {
        (None, None)
    } else {
        super::deplist::store(tx.conn, job.id, &job.depends_on, true)?
    };
    let (lease_worker, lease_expires_at) = match &job.lease {
        Some(l) => (Some(l.worker_id.clone()), Some(l.expires_at)),
        None => (None, None),
    };
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis() as i64);
    tx.conn
        .prepare_cached(
            "INSERT INTO jobs (id, queue_id, state, priority, run_at, kind, payload, payload_tag, \
             attempt, max_attempts, lease_epoch, created_at, started_at, finished_at, lease_worker, \
             lease_expires_at, retry, timeout_ms, unique_key, unique_for_ms, depends_on, \
             trigger_rule, deps_done, deps_ok, workflow_id, tags, meta, version, result, \
             result_tag, result_expires_at, errors, progress, checkpoint, checkpoint_tag, \
             deps_total, claimed_at, result_ttl_ms, traceparent, tracestate, grp) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, \
             ?34, ?35, ?36, ?37, ?38, ?39, ?40, ?41)",
        )
        .and_then(|mut s| {
            s.execute(params![
                job.id.as_bytes(),
                queue_id,
                state.as_i64(),
                job.priority.get() as i64,
                job.run_at,
                job.kind,
                job.payload.stored_bytes(),
                job.payload.tag() as i64,
                job.attempt as i64,
                job.max_attempts as i64,
                job.lease_epoch as i64,
                job.created_at,
                job.started_at,
                finished_at,
                lease_worker,
                lease_expires_at,
                retry,
                ms(job.timeout),
                job.unique_key,
                ms(job.unique_for),
                inline_deps,
                job.trigger.code(),
                done as i64,
                ok as i64,
                job.workflow_id,
                tags,
                meta,
                job.version as i64,
                job.result.as_ref().map(|r| r.stored_bytes().to_vec()),
                job.result.as_ref().map(|r| r.tag() as i64),
                job.result.as_ref().and(job.result_expires_at),
                errors,
                progress,
                job.checkpoint.as_ref().map(|c| c.stored_bytes().to_vec()),
                job.checkpoint.as_ref().map(|c| c.tag() as i64),
                deps_total,
                job.claimed_at,
                ms(job.result_ttl),
                job.trace.as_ref().map(|t| t.traceparent.as_str()),
                job.trace.as_ref().and_then(|t| t.tracestate.as_deref()),
                group.as_deref(),
            ])
        })
        .map_err(sql_err)?;
    super::groups::count_inserted(tx, queue_id, group.as_deref(), state)?;
    if finished_at.is_some() {
        super::prune_bytes::count_inserted(tx.conn, job.id.as_bytes())?;
    }
    // Its timeline starts here (a store's copy carries none): stored in its state.
    super::events::moved(tx, job.id, None)?;
    super::enqueue::insert_edges(tx, job.id, &job.depends_on)?;
    if matches!(state, JobState::Queued | JobState::Scheduled) {
        tx.st.wake = true;
    }
    tx.st.counts.add(queue_id, state, 1);
    Ok(())
}

/// [`dep_counts`] over the dependencies that are stored, ignoring the others.
fn known_dep_counts(tx: &Tx<'_>, deps: &[quern::JobId]) -> quern::Result<(usize, usize)> {
    let (mut done, mut ok) = (0, 0);
    for dep in deps {
        if let Some(s) = state_of(tx.conn, *dep)? {
            done += usize::from(s.is_terminal());
            ok += usize::from(s == JobState::Succeeded);
        }
    }
    Ok((done, ok))
}

/// Stores a workflow record as given; `false` when its id is taken (`SkipExisting`).
fn insert_workflow(tx: &mut Tx<'_>, rec: &WorkflowRecord, mode: ImportMode) -> quern::Result<bool> {
    quern::model::validate_workflow_id(&rec.id)?;
    let taken: Option<i64> = tx
        .conn
        .prepare_cached("SELECT 1 FROM workflows WHERE id = ?1")
        .and_then(|mut s| s.query_row([&rec.id], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    if taken.is_some() {
        return match mode {
            ImportMode::Refuse => Err(import_taken(ImportItem::Workflow, &rec.id)),
            ImportMode::SkipExisting => Ok(false),
        };
    }
    let tasks = serde_json::to_string(&rec.tasks).map_err(codec)?;
    let comp = (!rec.compensations.is_empty())
        .then(|| serde_json::to_string(&rec.compensations))
        .transpose()
        .map_err(codec)?;
    tx.conn
        .prepare_cached(
            "INSERT INTO workflows (id, name, state, phase, revision, spec, tasks, compensations, \
             error, created_at, updated_at, finished_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .and_then(|mut s| {
            s.execute(params![
                rec.id,
                rec.name,
                rec.state.as_i64(),
                rec.phase.as_i64(),
                rec.revision as i64,
                rec.spec.to_string(),
                tasks,
                comp,
                rec.error,
                rec.created_at,
                rec.updated_at,
                rec.finished_at,
            ])
        })
        .map_err(sql_err)?;
    Ok(true)
}

/// Stores a schedule and its history as given; `false` when the name is taken.
fn insert_schedule(tx: &mut Tx<'_>, s: ScheduleImport, mode: ImportMode) -> quern::Result<bool> {
    let sc = s.schedule;
    sc.spec.validate()?; // the spec must parse here too
    let name = sc.spec.name.clone();
    let taken: Option<i64> = tx
        .conn
        .prepare_cached("SELECT 1 FROM schedules WHERE name = ?1")
        .and_then(|mut st| st.query_row([&name], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    if taken.is_some() {
        return match mode {
            ImportMode::Refuse => Err(import_taken(ImportItem::Schedule, &name)),
            ImportMode::SkipExisting => Ok(false),
        };
    }
    let spec = serde_json::to_string(&sc.spec).map_err(codec)?;
    tx.conn
        .prepare_cached(
            "INSERT INTO schedules (name, spec, paused, revision, created_at, updated_at, \
             watermark, runs, last_tick, last_job) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .and_then(|mut st| {
            st.execute(params![
                name,
                spec,
                sc.paused as i64,
                sc.revision as i64,
                sc.created_at,
                sc.updated_at,
                sc.watermark,
                sc.runs as i64,
                sc.last_tick,
                sc.last_job.map(|j| j.as_bytes().to_vec()),
            ])
        })
        .map_err(sql_err)?;
    // Newest first in, oldest first stored: `seq` is the record order.
    let runs: Vec<&ScheduleRun> = s.runs.iter().take(ScheduleRun::HISTORY).rev().collect();
    let mut ins = tx
        .conn
        .prepare_cached(
            "INSERT INTO schedule_runs (schedule, seq, tick, fired_at, kind, job_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(sql_err)?;
    for (seq, r) in runs.into_iter().enumerate() {
        ins.execute(params![
            name,
            seq as i64 + 1,
            r.tick,
            r.fired_at,
            r.kind.code(),
            r.job_id.map(|j| j.as_bytes().to_vec()),
        ])
        .map_err(sql_err)?;
    }
    Ok(true)
}
