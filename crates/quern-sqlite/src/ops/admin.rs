//! Operator and maintenance writes: cancel, reprioritize, retry/replay, rescue, prune,
//! pause/resume.

use quern::backend::{
    CancelParams, JobReprioritizeParams, PruneParams, PruneReport, RescueParams, RescueReport,
    RetryParams, RetryTarget,
};
use quern::model::{ErrorKind, ErrorRecord};
use quern::{Error, Job, JobId, JobState};
use rusqlite::OptionalExtension;

use super::rollup::Tally;
use super::{deplist, deps, enqueue, state_of};
use crate::error::sql_err;
use crate::rows::{JOB_COLS, job_from_row};
use crate::writer::Tx;

pub(crate) fn get(conn: &rusqlite::Connection, id: JobId) -> quern::Result<Option<Job>> {
    conn.prepare_cached(&format!("SELECT {JOB_COLS} FROM jobs WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id.as_bytes()], job_from_row).optional())
        .map_err(sql_err)
}

pub(crate) fn cancel(tx: &mut Tx<'_>, p: CancelParams) -> quern::Result<Job> {
    let state = state_of(tx.conn, p.id)?.ok_or(Error::JobNotFound(p.id))?;
    if state.is_terminal() {
        return Err(Error::InvalidTransition {
            id: p.id,
            from: state,
            action: "cancel",
        });
    }
    let reason = p.reason.unwrap_or_else(|| "cancelled by request".into());
    cancel_one(tx, p.id, state, &reason)?;
    get(tx.conn, p.id)?.ok_or(Error::JobNotFound(p.id))
}

/// Cancels a job the caller found non-terminal (in state `from`), and settles its
/// dependents.
pub(crate) fn cancel_one(
    tx: &mut Tx<'_>,
    id: JobId,
    from: JobState,
    reason: &str,
) -> quern::Result<()> {
    let record = ErrorRecord {
        attempt: 0,
        at: tx.now,
        kind: ErrorKind::Cancelled,
        message: reason.to_string(),
        claimed_at: None,
        due_at: None,
        retry_at: None,
    };
    let record = serde_json::to_string(&record).map_err(|e| Error::Codec(e.to_string()))?;
    // Clearing the lease and leaving `running` makes the worker's token stale: its next
    // heartbeat gets LeaseLost and its outcome is refused.
    let queue_id: i64 = tx
        .conn
        .prepare_cached(
            "UPDATE jobs SET state = 6, finished_at = ?2, lease_worker = NULL, lease_expires_at = NULL, \
             errors = json_insert(coalesce(errors, '[]'), '$[#]', \
                 json_set(json(?3), '$.claimed_at', CASE WHEN state = 3 THEN claimed_at END)) \
             WHERE id = ?1 RETURNING queue_id",
        )
        .and_then(|mut s| {
            s.query_row(rusqlite::params![id.as_bytes(), tx.now, record], |r| {
                r.get(0)
            })
        })
        .map_err(sql_err)?;
    tx.st.counts.moved(queue_id, from, JobState::Cancelled, 1);
    super::events::moved(tx, id, Some(from))?;
    deps::on_terminal(tx, id, JobState::Cancelled)
}

/// Gives a waiting job a new priority. The claim orders by the `priority` column (the
/// `jobs_claim` index), so a queued job takes its new place at once and a scheduled or
/// blocked one keeps it for when it becomes ready. Raising a queued job may let a worker that
/// waits only for more urgent work claim it, so waiters are woken.
pub(crate) fn reprioritize(tx: &mut Tx<'_>, p: JobReprioritizeParams) -> quern::Result<Job> {
    let state = state_of(tx.conn, p.id)?.ok_or(Error::JobNotFound(p.id))?;
    if !state.is_waiting() {
        return Err(Error::InvalidTransition {
            id: p.id,
            from: state,
            action: "reprioritize",
        });
    }
    tx.conn
        .prepare_cached("UPDATE jobs SET priority = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(rusqlite::params![p.id.as_bytes(), p.priority.get()]))
        .map_err(sql_err)?;
    if state == JobState::Queued {
        tx.st.wake = true;
    }
    // Audited when an actor asked: a timeline line and a stream record with `from` = `to`
    // (the aging service's bumps, actorless, record nothing).
    if tx.st.actor.is_some() {
        super::events::moved(tx, p.id, Some(state))?;
    }
    get(tx.conn, p.id)?.ok_or(Error::JobNotFound(p.id))
}

pub(crate) fn retry(tx: &mut Tx<'_>, p: RetryParams) -> quern::Result<Vec<JobId>> {
    let ids: Vec<JobId> = match p.target {
        RetryTarget::Ids(ids) => {
            // All or nothing: check every id before moving any.
            for id in &ids {
                let state = state_of(tx.conn, *id)?.ok_or(Error::JobNotFound(*id))?;
                if !state.is_failed_terminal() {
                    return Err(Error::InvalidTransition {
                        id: *id,
                        from: state,
                        action: "retry",
                    });
                }
            }
            ids
        }
        RetryTarget::Dead { queue, kind } => {
            let mut stmt = tx
                .conn
                .prepare_cached(
                    "SELECT id FROM jobs WHERE state = 5 AND (?1 IS NULL OR queue_id = (SELECT id FROM queues WHERE name = ?1)) \
                     AND (?2 IS NULL OR kind = ?2) ORDER BY id LIMIT ?3",
                )
                .map_err(sql_err)?;
            stmt.query_map(rusqlite::params![queue, kind, p.limit.max(1) as i64], |r| {
                r.get::<_, [u8; 16]>(0)
            })
            .and_then(|rows| rows.map(|r| r.map(JobId::from_bytes)).collect())
            .map_err(sql_err)?
        }
    };
    let mut moved = Vec::with_capacity(ids.len());
    for id in ids {
        reopen(tx, id)?;
        moved.push(id);
    }
    if !moved.is_empty() {
        tx.st.wake = true;
    }
    Ok(moved)
}

/// Moves one dead/cancelled/skipped job back to queued (or blocked while dependencies are
/// pending), attempts reset, history kept.
fn reopen(tx: &mut Tx<'_>, id: JobId) -> quern::Result<()> {
    let (old, trigger, queue_id): (i64, i64, i64) = tx
        .conn
        .prepare_cached("SELECT state, trigger_rule, queue_id FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .map_err(sql_err)?;
    let old = JobState::from_i64(old).unwrap_or(JobState::Dead);
    let deps = deplist::load(tx.conn, id)?.unwrap_or_default();
    let (state, done, ok) = if deps.is_empty() {
        (JobState::Queued, 0, 0)
    } else {
        let (done, ok) = enqueue::dep_counts(tx, &deps)?;
        match quern::Trigger::from_code(trigger)?.resolve_counts(deps.len(), done, ok) {
            Some(JobState::Queued) => (JobState::Queued, done, ok),
            None => (JobState::Blocked, done, ok),
            Some(_) => {
                return Err(Error::InvalidArgument(format!(
                    "job {id} cannot run again: its dependencies ended without success; retry them first"
                )));
            }
        }
    };
    tx.conn
        .prepare_cached(
            "UPDATE jobs SET state = ?2, attempt = 0, run_at = ?3, finished_at = NULL, \
             started_at = NULL, claimed_at = NULL, lease_worker = NULL, lease_expires_at = NULL, result = NULL, \
             result_tag = NULL, result_expires_at = NULL, progress = NULL, deps_done = ?4, deps_ok = ?5 \
             WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(rusqlite::params![id.as_bytes(), state.as_i64(), tx.now, done as i64, ok as i64])
        })
        .map_err(sql_err)?;
    tx.st.counts.moved(queue_id, old, state, 1);
    super::events::moved(tx, id, Some(old))?;
    deps::on_reopened(tx, id, old)?;
    Ok(())
}

/// Every queue id (the rescuer and pruner walk queues so they can use `jobs_claim`).
fn queue_ids(tx: &Tx<'_>) -> quern::Result<Vec<i64>> {
    tx.conn
        .prepare_cached("SELECT id FROM queues ORDER BY id")
        .and_then(|mut s| {
            s.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_err)
}

/// Every queue's id and name, by id (the pruner picks the queues a call covers).
fn queue_names(tx: &Tx<'_>) -> quern::Result<Vec<(i64, String)>> {
    tx.conn
        .prepare_cached("SELECT id, name FROM queues ORDER BY id")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_err)
}

/// Drops (or, dry, counts) up to `limit` results whose expiry passed, of one queue or all.
fn expire_results(
    tx: &Tx<'_>,
    queue: Option<i64>,
    limit: usize,
    dry_run: bool,
) -> quern::Result<usize> {
    let filter = if queue.is_some() {
        " AND queue_id = ?3"
    } else {
        " AND ?3 IS NULL"
    };
    let args = rusqlite::params![tx.now, limit.max(1) as i64, queue];
    if dry_run {
        tx.conn
            .prepare_cached(&format!(
                "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE result_expires_at <= ?1{filter} LIMIT ?2)"
            ))
            .and_then(|mut s| s.query_row(args, |r| r.get::<_, i64>(0)))
            .map(|n| n as usize)
            .map_err(sql_err)
    } else {
        tx.conn
            .prepare_cached(&format!(
                "UPDATE jobs SET result = NULL, result_tag = NULL, result_expires_at = NULL WHERE id IN \
                 (SELECT id FROM jobs WHERE result_expires_at <= ?1{filter} LIMIT ?2)"
            ))
            .and_then(|mut s| s.execute(args))
            .map_err(sql_err)
    }
}

/// A running job the rescuer re-delivers.
struct Stale {
    id: [u8; 16],
    attempt: i64,
    max_attempts: i64,
    worker: Option<String>,
    /// Its lease ran out (otherwise its worker was found lost).
    lease_expired: bool,
    queue_id: i64,
}

impl Stale {
    /// From `SELECT id, attempt, max_attempts, lease_worker, <lease expired 0/1>`.
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Stale> {
        Ok(Stale {
            id: r.get(0)?,
            attempt: r.get(1)?,
            max_attempts: r.get(2)?,
            worker: r.get(3)?,
            lease_expired: r.get(4)?,
            queue_id: 0,
        })
    }
}

/// Appends to `out`, queue by queue (each query stays in one `jobs_claim` range), the rows of
/// `sql` until `out` holds `limit`. `sql` selects a [`Stale`] row and takes `?1` the queue,
/// `?2` now, `?3` how many more rows fit, then `extra` from `?4` on. The rescuer's two kinds
/// of stale lease (expired, held by a lost worker) differ only in the query.
fn stale_per_queue(
    tx: &Tx<'_>,
    sql: &str,
    extra: &[&dyn rusqlite::ToSql],
    limit: usize,
    out: &mut Vec<Stale>,
) -> quern::Result<()> {
    for queue in queue_ids(tx)? {
        if out.len() >= limit {
            break;
        }
        let room = (limit - out.len()) as i64;
        let mut params: Vec<&dyn rusqlite::ToSql> = vec![&queue, &tx.now, &room];
        params.extend_from_slice(extra);
        let rows: Vec<Stale> = tx
            .conn
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_map(params.as_slice(), Stale::from_row)
                    .and_then(|rows| rows.collect())
            })
            .map_err(sql_err)?;
        out.extend(rows.into_iter().map(|s| Stale {
            queue_id: queue,
            ..s
        }));
    }
    Ok(())
}

pub(crate) fn rescue(tx: &mut Tx<'_>, p: RescueParams) -> quern::Result<RescueReport> {
    let limit = p.limit.max(1);
    let mut expired: Vec<Stale> = Vec::new();
    stale_per_queue(
        tx,
        "SELECT id, attempt, max_attempts, lease_worker, 1 FROM jobs \
         WHERE queue_id = ?1 AND state = 3 AND lease_expires_at < ?2 LIMIT ?3",
        &[],
        limit,
        &mut expired,
    )?;
    if !p.lost_workers.is_empty() {
        // Leases held by lost workers count as expired now. The running jobs of each queue
        // (a `jobs_claim` range) are few; this runs only while some worker is lost.
        let lost =
            serde_json::to_string(&p.lost_workers).map_err(|e| Error::Codec(e.to_string()))?;
        stale_per_queue(
            tx,
            "SELECT id, attempt, max_attempts, lease_worker, 0 FROM jobs \
             WHERE queue_id = ?1 AND state = 3 AND lease_expires_at >= ?2 \
             AND lease_worker IN (SELECT value FROM json_each(?4)) LIMIT ?3",
            &[&lost],
            limit,
            &mut expired,
        )?;
    }
    let mut report = RescueReport::default();
    let mut tally = Tally::default();
    for Stale {
        id,
        attempt,
        max_attempts,
        worker,
        lease_expired,
        queue_id,
    } in expired
    {
        let id = JobId::from_bytes(id);
        let worker = worker.as_deref().unwrap_or("?");
        let record = if lease_expired {
            ErrorRecord {
                attempt: attempt as u32,
                at: tx.now,
                kind: ErrorKind::LeaseExpired,
                message: format!("lease expired: worker {worker} stopped heartbeating"),
                claimed_at: None,
                due_at: None,
                retry_at: None,
            }
        } else {
            ErrorRecord {
                attempt: attempt as u32,
                at: tx.now,
                kind: ErrorKind::WorkerLost,
                message: format!("worker {worker} was lost (missed three heartbeats)"),
                claimed_at: None,
                due_at: None,
                retry_at: None,
            }
        };
        let record = serde_json::to_string(&record).map_err(|e| Error::Codec(e.to_string()))?;
        let dead = attempt >= max_attempts;
        tally.failed(queue_id, dead);
        let state = if dead {
            JobState::Dead
        } else {
            JobState::Queued
        };
        tx.conn
            .prepare_cached(
                "UPDATE jobs SET state = ?2, finished_at = ?3, lease_worker = NULL, lease_expires_at = NULL, \
                 errors = json_insert(coalesce(errors, '[]'), '$[#]', \
                     json_set(json(?4), '$.claimed_at', claimed_at, '$.due_at', run_at)) \
                 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(rusqlite::params![id.as_bytes(), state.as_i64(), dead.then_some(tx.now), record])
            })
            .map_err(sql_err)?;
        tx.st.counts.moved(queue_id, JobState::Running, state, 1);
        super::events::moved(tx, id, Some(JobState::Running))?;
        if dead {
            deps::on_terminal(tx, id, JobState::Dead)?;
            report.dead.push(id);
        } else {
            tx.st.wake = true;
            report.requeued.push(id);
        }
    }
    tally.flush(tx)?;
    Ok(report)
}

pub(crate) fn prune(tx: &mut Tx<'_>, p: PruneParams) -> quern::Result<PruneReport> {
    let all = queue_names(tx)?;
    let covered: Option<Vec<i64>> = (!p.queues.is_empty()).then(|| {
        all.iter()
            .filter(|(_, n)| p.covers(n))
            .map(|(id, _)| *id)
            .collect()
    });
    let expired = match &covered {
        None => expire_results(tx, None, p.limit, p.dry_run)?,
        Some(ids) => {
            let mut n = 0;
            for id in ids {
                n += expire_results(tx, Some(*id), p.limit.saturating_sub(n).max(1), p.dry_run)?;
                if n >= p.limit.max(1) {
                    break;
                }
            }
            n
        }
    };
    let limit = p.limit.max(1);
    let mut victims: Vec<[u8; 16]> = Vec::new();
    // A finished job that a still-waiting job depends on is kept: its state is needed to
    // settle that dependent. `run_at < before` is implied by `finished_at < before` and lets
    // the scan use jobs_claim.
    let states: Vec<JobState> = p
        .states
        .iter()
        .copied()
        .filter(|s| s.is_terminal())
        .collect();
    let scanned: Vec<i64> = all
        .iter()
        .filter(|(_, n)| p.deletes_from(n))
        .map(|(id, _)| *id)
        .collect();
    'scan: for queue in scanned {
        for state in &states {
            for priority in 0..=9i64 {
                let left = limit - victims.len();
                if left == 0 {
                    break 'scan;
                }
                let rows: Vec<[u8; 16]> = tx
                    .conn
                    .prepare_cached(
                        "SELECT id FROM jobs j WHERE queue_id = ?1 AND state = ?2 AND priority = ?3 \
                         AND run_at < ?4 AND finished_at < ?4 \
                         AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs w ON w.id = d.job_id \
                                         WHERE d.dep_id = j.id AND w.state IN (0, 1, 2, 3)) \
                         LIMIT ?5",
                    )
                    .and_then(|mut s| {
                        s.query_map(
                            rusqlite::params![queue, state.as_i64(), priority, p.finished_before, left as i64],
                            |r| r.get(0),
                        )
                        .and_then(|rows| rows.collect())
                    })
                    .map_err(sql_err)?;
                victims.extend(rows);
            }
        }
    }
    if p.dry_run {
        return Ok(PruneReport {
            jobs_deleted: victims.len() as u64,
            results_expired: expired as u64,
        });
    }
    Ok(PruneReport {
        jobs_deleted: delete_finished(tx, &victims)?,
        results_expired: expired as u64,
    })
}

/// Deletes finished jobs the pruner picked, with their dependency edges (their logs go by
/// trigger). Returns how many were deleted.
pub(crate) fn delete_finished(tx: &mut Tx<'_>, victims: &[[u8; 16]]) -> quern::Result<u64> {
    let mut deleted = 0u64;
    let mut del = tx
        .conn
        .prepare_cached("DELETE FROM jobs WHERE id = ?1 RETURNING queue_id, state")
        .map_err(sql_err)?;
    let mut del_edges = tx
        .conn
        .prepare_cached("DELETE FROM job_deps WHERE dep_id = ?1")
        .map_err(sql_err)?;
    for id in victims {
        super::events::deleting(tx, id)?;
        let gone: Option<(i64, JobState)> = del
            .query_row([id], |r| {
                Ok((r.get(0)?, crate::rows::state_from_i64(r.get(1)?)?))
            })
            .optional()
            .map_err(sql_err)?;
        if let Some((queue_id, state)) = gone {
            deleted += 1;
            tx.st.counts.add(queue_id, state, -1);
        }
        del_edges.execute([id]).map_err(sql_err)?;
        deplist::forget(tx.conn, id)?;
    }
    Ok(deleted)
}

pub(crate) fn set_paused(tx: &mut Tx<'_>, queue: &str, paused: bool) -> quern::Result<()> {
    let n = tx
        .conn
        .prepare_cached("UPDATE queues SET paused = ?2 WHERE name = ?1")
        .and_then(|mut s| s.execute(rusqlite::params![queue, paused as i64]))
        .map_err(sql_err)?;
    if n == 0 {
        return Err(Error::QueueNotFound(queue.to_string()));
    }
    if !paused {
        tx.st.wake = true;
    }
    Ok(())
}
