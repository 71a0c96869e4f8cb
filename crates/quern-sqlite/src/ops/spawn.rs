//! `job_fail` with `FailAction::Spawn`: a running job hands its work to child jobs and waits
//! for them (a workflow's `for_each` fan-out).
//!
//! Inside the caller's transaction, under a savepoint so a bad child rolls back this item
//! alone: the children are inserted as an atomic batch, the parent's old dependency edges
//! are replaced by edges from the children, and the parent becomes `blocked` on them with
//! trigger `all_done` and counters that already count the children that are terminal. From
//! then on the ordinary dependency bookkeeping (`deps.rs`) queues the parent when the last
//! child finishes, at O(1) per child.

use quern::backend::{BatchMode, EnqueueParams, LeaseToken};
use quern::{Error, JobId, JobState, NewJob, Payload, Trigger};
use rusqlite::OptionalExtension;

use super::{deplist, enqueue};
use crate::error::sql_err;
use crate::writer::Tx;

fn exec(tx: &Tx<'_>, sql: &str) -> quern::Result<()> {
    tx.conn
        .prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
        .map_err(sql_err)
}

/// Outer `Err` aborts the whole call (a storage failure); inner `Err` is this item's answer.
pub(crate) fn spawn(
    tx: &mut Tx<'_>,
    token: &LeaseToken,
    children: Vec<NewJob>,
    checkpoint: Option<Payload>,
) -> quern::Result<quern::Result<()>> {
    let id = token.job_id;
    let queue_id: Option<i64> = tx
        .conn
        .prepare_cached(
            "SELECT queue_id FROM jobs WHERE id = ?1 AND state = 3 AND lease_epoch = ?2",
        )
        .and_then(|mut s| {
            s.query_row(rusqlite::params![id.as_bytes(), token.epoch as i64], |r| {
                r.get(0)
            })
            .optional()
        })
        .map_err(sql_err)?;
    let Some(queue_id) = queue_id else {
        return Ok(Err(Error::LeaseLost { job_id: id }));
    };
    if let Some(c) = &checkpoint
        && c.stored_bytes().len() > tx.st.limits.max_payload_bytes
    {
        return Ok(Err(Error::PayloadTooLarge {
            size: c.stored_bytes().len(),
            limit: tx.st.limits.max_payload_bytes,
        }));
    }
    if let Some(i) = children.iter().position(|c| c.depends_on.contains(&id)) {
        return Ok(Err(Error::InvalidJob {
            index: Some(i),
            reason: format!("a child cannot depend on the job {id} that spawns it"),
        }));
    }
    let child_ids: Vec<JobId> = children.iter().map(|c| c.id).collect();
    exec(tx, "SAVEPOINT spawn")?;
    let events_before = tx.st.events.borrow().clone();
    // The children's counts go if they are rolled back.
    let counts = tx.st.counts.clone();
    let inserted = enqueue::enqueue(
        tx,
        EnqueueParams {
            jobs: children,
            mode: BatchMode::Atomic,
        },
    );
    if let Err(e) = inserted {
        tx.st.counts = counts;
        tx.st.known_queues.clear();
        tx.st.grouped.clear();
        *tx.st.events.borrow_mut() = events_before;
        exec(tx, "ROLLBACK TO spawn")?;
        exec(tx, "RELEASE spawn")?;
        return match e {
            Error::Storage(_) | Error::Unavailable(_) => Err(e),
            other => Ok(Err(other)),
        };
    }
    exec(tx, "RELEASE spawn")?;

    // The parent now waits on its children only: forget the edges from its old
    // dependencies (they are all terminal, since it ran), so nothing settles it twice.
    let old: Vec<JobId> = deplist::load(tx.conn, id)?.unwrap_or_default();
    {
        let mut del = tx
            .conn
            .prepare_cached("DELETE FROM job_deps WHERE dep_id = ?1 AND job_id = ?2")
            .map_err(sql_err)?;
        for dep in &old {
            del.execute([dep.as_bytes(), id.as_bytes()])
                .map_err(sql_err)?;
        }
        enqueue::insert_edges(tx, id, &child_ids)?;
    }
    let (done, ok) = enqueue::dep_counts(tx, &child_ids)?;
    let (inline_deps, deps_total) = deplist::store(tx.conn, id, &child_ids, false)?;
    let state = match Trigger::AllDone.resolve_counts(child_ids.len(), done, ok) {
        Some(_) => JobState::Queued,
        None => JobState::Blocked,
    };
    tx.conn
        .prepare_cached(
            "UPDATE jobs SET state = ?2, attempt = max(attempt - 1, 0), lease_worker = NULL, \
             lease_expires_at = NULL, depends_on = ?3, trigger_rule = ?4, deps_done = ?5, \
             deps_ok = ?6, deps_total = ?9, \
             checkpoint = CASE WHEN ?7 IS NULL THEN checkpoint ELSE ?7 END, \
             checkpoint_tag = coalesce(?8, checkpoint_tag) WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(rusqlite::params![
                id.as_bytes(),
                state.as_i64(),
                inline_deps,
                Trigger::AllDone.code(),
                done as i64,
                ok as i64,
                checkpoint.as_ref().map(|c| c.stored_bytes()),
                checkpoint.as_ref().map(|c| c.tag() as i64),
                deps_total,
            ])
        })
        .map_err(sql_err)?;
    tx.st.counts.moved(queue_id, JobState::Running, state, 1);
    super::events::moved(tx, id, Some(JobState::Running))?;
    if state == JobState::Queued {
        tx.st.wake = true;
    }
    Ok(Ok(()))
}
