//! `job_enqueue`.

use quern::backend::{BatchMode, EnqueueOutcome, EnqueueParams, EnqueueResults};
use quern::{Error, JobId, JobState, NewJob};

use super::state_of;
use crate::error::sql_err;
use crate::writer::Tx;

pub(crate) fn enqueue(tx: &mut Tx<'_>, params: EnqueueParams) -> quern::Result<EnqueueResults> {
    let mut out = Vec::with_capacity(params.jobs.len());
    let batch = params.jobs.len() > 1;
    match params.mode {
        BatchMode::Atomic => {
            // Any error returns Err: the writer rolls the whole operation back.
            for (i, job) in params.jobs.into_iter().enumerate() {
                let r = insert_one(tx, job).map_err(|e| with_index(e, i, batch))?;
                out.push(Ok(r));
            }
        }
        BatchMode::BestEffort => {
            for (i, job) in params.jobs.into_iter().enumerate() {
                exec(tx, "SAVEPOINT item")?;
                match insert_one(tx, job) {
                    Ok(r) => {
                        exec(tx, "RELEASE item")?;
                        out.push(Ok(r));
                    }
                    Err(e) => {
                        tx.st.known_queues.clear();
                        tx.st.grouped.clear();
                        exec(tx, "ROLLBACK TO item")?;
                        exec(tx, "RELEASE item")?;
                        out.push(Err(with_index(e, i, batch)));
                    }
                }
            }
        }
    }
    Ok(out)
}

fn exec(tx: &Tx<'_>, sql: &str) -> quern::Result<()> {
    tx.conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(sql_err)
}

fn with_index(e: Error, i: usize, batch: bool) -> Error {
    match e {
        Error::InvalidJob { reason, .. } if batch => Error::InvalidJob {
            index: Some(i),
            reason,
        },
        other => other,
    }
}

fn invalid(reason: String) -> Error {
    Error::InvalidJob {
        index: None,
        reason,
    }
}

fn insert_one(tx: &mut Tx<'_>, job: NewJob) -> quern::Result<EnqueueOutcome> {
    job.validate(&tx.st.limits)?;
    let now = tx.now;
    if let Some(key) = &job.unique_key
        && let Some((id, state)) = find_live_unique(tx, &job.queue, key)?
    {
        return Ok(EnqueueOutcome {
            id,
            state,
            duplicate: true,
        });
    }
    let run_at = job.due_at(now);
    let due = if run_at > now {
        JobState::Scheduled
    } else {
        JobState::Queued
    };
    let (state, done, ok) = if job.depends_on.is_empty() {
        (due, 0, 0)
    } else {
        let (done, ok) = dep_counts(tx, &job.depends_on)?;
        match job.trigger.resolve_counts(job.depends_on.len(), done, ok) {
            Some(JobState::Queued) => (due, done, ok),
            Some(other) => (other, done, ok),
            None => (JobState::Blocked, done, ok),
        }
    };
    let queue_id = ensure_queue(tx, &job.queue)?;
    let group = super::groups::group_for_insert(tx, queue_id, job.group.as_deref(), state)?
        .map(str::to_owned);
    let retry = job
        .retry
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::Codec(e.to_string()))?;
    let tags = (!job.tags.is_empty())
        .then(|| serde_json::to_string(&job.tags))
        .transpose()
        .map_err(|e| Error::Codec(e.to_string()))?;
    let meta = (!job.meta.is_null()).then(|| job.meta.to_string());
    let finished_at = state.is_terminal().then_some(now);
    let (inline_deps, deps_total) = if job.depends_on.is_empty() {
        (None, None)
    } else {
        super::deplist::store(tx.conn, job.id, &job.depends_on, true)?
    };
    let mut stmt = tx
        .conn
        .prepare_cached(
            "INSERT INTO jobs (id, queue_id, state, priority, run_at, kind, payload, payload_tag, \
             max_attempts, created_at, finished_at, retry, timeout_ms, unique_key, unique_for_ms, \
             depends_on, trigger_rule, deps_done, deps_ok, workflow_id, tags, meta, version, \
             deps_total, result_ttl_ms, traceparent, tracestate, grp, events) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
        )
        .map_err(sql_err)?;
    // The creation is derived from `created_at` and `run_at` at read time; a line is
    // stored only when an actor asked for it or the job has dependencies (its first state
    // then depends on theirs).
    let line = (tx.st.actor.is_some() || !job.depends_on.is_empty())
        .then(|| crate::events::timeline_line(now, None, Some(state), 0, tx.st.actor.as_deref()));
    let res = stmt.execute(rusqlite::params![
        job.id.as_bytes(),
        queue_id,
        state.as_i64(),
        job.priority.get() as i64,
        run_at,
        job.kind,
        job.payload.stored_bytes(),
        job.payload.tag() as i64,
        job.max_attempts as i64,
        now,
        finished_at,
        retry,
        job.timeout.map(|d| d.as_millis() as i64),
        job.unique_key,
        job.unique_for.map(|d| d.as_millis() as i64),
        inline_deps,
        job.trigger.code(),
        done as i64,
        ok as i64,
        job.workflow_id,
        tags,
        meta,
        job.version as i64,
        deps_total,
        job.result_ttl.map(|d| d.as_millis() as i64),
        job.trace.as_ref().map(|t| t.traceparent.as_str()),
        job.trace.as_ref().and_then(|t| t.tracestate.as_deref()),
        group.as_deref(),
        line,
    ]);
    match res {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(invalid(format!("a job with id {} already exists", job.id)));
        }
        Err(e) => return Err(sql_err(e)),
    }
    super::groups::count_inserted(tx, queue_id, group.as_deref(), state)?;
    if finished_at.is_some() {
        super::prune_bytes::count_inserted(tx.conn, job.id.as_bytes())?;
    }
    insert_edges(tx, job.id, &job.depends_on)?;
    tx.event(queue_id, job.id, &job.kind, None, Some(state), 0);
    if matches!(state, JobState::Queued | JobState::Scheduled) {
        tx.st.wake = true;
    }
    // Last, once nothing of this job can fail: a best-effort batch rolls a failed item back
    // to its savepoint, and its count must go with it.
    tx.st.counts.add(queue_id, state, 1);
    Ok(EnqueueOutcome {
        id: job.id,
        state,
        duplicate: false,
    })
}

/// Counts, over a new job's dependencies, how many are terminal and how many succeeded.
/// An unknown dependency is an error (dependencies must exist or come earlier in the batch).
/// A dependency listed twice counts twice, matching `depends_on.len()`.
pub(crate) fn dep_counts(tx: &Tx<'_>, deps: &[JobId]) -> quern::Result<(usize, usize)> {
    let (mut done, mut ok) = (0, 0);
    for dep in deps {
        match state_of(tx.conn, *dep)? {
            None => return Err(invalid(format!("unknown dependency {dep}"))),
            Some(s) => {
                if s.is_terminal() {
                    done += 1;
                }
                if s == JobState::Succeeded {
                    ok += 1;
                }
            }
        }
    }
    Ok((done, ok))
}

/// The live job holding `key` in `queue`, if any (see `NewJob::unique_key`).
fn find_live_unique(
    tx: &Tx<'_>,
    queue: &str,
    key: &str,
) -> quern::Result<Option<(JobId, JobState)>> {
    let mut stmt = tx
        .conn
        .prepare_cached(
            "SELECT id, state, created_at, unique_for_ms FROM jobs \
             WHERE queue_id = (SELECT id FROM queues WHERE name = ?1) AND unique_key = ?2 ORDER BY id DESC",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query(rusqlite::params![queue, key]).map_err(sql_err)?;
    while let Some(r) = rows.next().map_err(sql_err)? {
        let id: [u8; 16] = r.get(0).map_err(sql_err)?;
        let state = JobState::from_i64(r.get(1).map_err(sql_err)?).unwrap_or(JobState::Dead);
        let created_at: i64 = r.get(2).map_err(sql_err)?;
        let window: Option<i64> = r.get(3).map_err(sql_err)?;
        let live = !state.is_terminal()
            || (state == JobState::Succeeded && window.is_some_and(|w| created_at + w > tx.now));
        if live {
            return Ok(Some((JobId::from_bytes(id), state)));
        }
    }
    Ok(None)
}

/// Records a queue on first use; returns its id.
/// The reverse dependency edges of a stored job (`job_deps`: who waits on each dependency);
/// an edge already there is kept.
pub(crate) fn insert_edges(tx: &Tx<'_>, job: JobId, deps: &[JobId]) -> quern::Result<()> {
    if deps.is_empty() {
        return Ok(());
    }
    let mut edge = tx
        .conn
        .prepare_cached("INSERT OR IGNORE INTO job_deps (dep_id, job_id) VALUES (?1, ?2)")
        .map_err(sql_err)?;
    for dep in deps {
        edge.execute([dep.as_bytes(), job.as_bytes()])
            .map_err(sql_err)?;
    }
    Ok(())
}

pub(crate) fn ensure_queue(tx: &mut Tx<'_>, queue: &str) -> quern::Result<i64> {
    if let Some(id) = tx.st.known_queues.get(queue) {
        return Ok(*id);
    }
    tx.conn
        .prepare_cached(
            "INSERT OR IGNORE INTO queues (name, paused, created_at) VALUES (?1, 0, ?2)",
        )
        .and_then(|mut s| s.execute(rusqlite::params![queue, tx.now]))
        .map_err(sql_err)?;
    let id: i64 = tx
        .conn
        .prepare_cached("SELECT id FROM queues WHERE name = ?1")
        .and_then(|mut s| s.query_row([queue], |r| r.get(0)))
        .map_err(sql_err)?;
    tx.st.known_queues.insert(queue.to_string(), id);
    Ok(id)
}
