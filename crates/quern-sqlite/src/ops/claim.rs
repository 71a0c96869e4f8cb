//! `job_claim`: the one place where admission is decided.
//!
//! In one transaction: promote due scheduled jobs, drop paused queues, split the requested
//! number of jobs across the listed queues by weighted lottery among those that still have
//! ready jobs, and lease the first jobs of each queue in (priority, run_at, id) order. There
//! are no rate limits or global concurrency caps today; any admission rule added later
//! belongs here, inside the same step (STYLE.md §17).

use quern::backend::{ClaimParams, ClaimedJob, LeaseToken};
use quern::model::Lease;
use quern::{Job, JobState};
use rusqlite::OptionalExtension;

use crate::error::sql_err;
use crate::rows::{JOB_COLS, QUEUE_NAME_COL, job_from_row};
use crate::writer::Tx;

/// Most scheduled jobs promoted per claim (the rest on the next one).
const PROMOTE_BATCH: i64 = 10_000;

pub(crate) fn claim(tx: &mut Tx<'_>, p: ClaimParams) -> quern::Result<Vec<ClaimedJob>> {
    if p.limit == 0 || p.queues.is_empty() {
        return Ok(Vec::new());
    }
    promote_due(tx)?;
    // Candidate queues: listed, positive weight, not paused.
    let mut cands: Vec<(String, i64, u32)> = Vec::with_capacity(p.queues.len());
    for q in &p.queues {
        if q.weight == 0 || cands.iter().any(|(n, _, _)| *n == q.queue) {
            continue;
        }
        match queue_state(tx, &q.queue)? {
            Some((id, false)) => cands.push((q.queue.clone(), id, q.weight)),
            _ => continue, // unknown (nothing ever enqueued) or paused
        }
    }
    let expires = tx.now + p.lease.as_millis() as i64;
    let mut out = Vec::with_capacity(p.limit);
    let mut remaining = p.limit;
    while remaining > 0 && !cands.is_empty() {
        // Lottery: each of the remaining slots goes to a queue in proportion to its weight.
        let total: u64 = cands.iter().map(|(_, _, w)| *w as u64).sum();
        let mut alloc = vec![0usize; cands.len()];
        for _ in 0..remaining {
            let mut ticket = fastrand::u64(0..total);
            for (i, (_, _, w)) in cands.iter().enumerate() {
                if ticket < *w as u64 {
                    alloc[i] += 1;
                    break;
                }
                ticket -= *w as u64;
            }
        }
        let mut exhausted = Vec::new();
        for (i, n) in alloc.into_iter().enumerate() {
            if n == 0 {
                continue;
            }
            let got = lease_from_queue(
                tx,
                &cands[i].0,
                cands[i].1,
                n,
                &p.worker_id,
                expires,
                &mut out,
            )?;
            remaining -= got;
            if got < n {
                exhausted.push(i);
            }
        }
        for i in exhausted.into_iter().rev() {
            cands.remove(i);
        }
    }
    Ok(out)
}

/// Moves scheduled jobs whose `run_at` has passed to `queued`.
pub(crate) fn promote_due(tx: &mut Tx<'_>) -> quern::Result<usize> {
    let n = tx
        .conn
        .prepare_cached(
            "UPDATE jobs SET state = 1 WHERE id IN \
             (SELECT id FROM jobs WHERE state = 0 AND run_at <= ?1 ORDER BY run_at LIMIT ?2)",
        )
        .and_then(|mut s| s.execute(rusqlite::params![tx.now, PROMOTE_BATCH]))
        .map_err(sql_err)?;
    Ok(n)
}

/// A queue's id and whether it is paused; `None` if it was never used.
fn queue_state(tx: &Tx<'_>, queue: &str) -> quern::Result<Option<(i64, bool)>> {
    tx.conn
        .prepare_cached("SELECT id, paused FROM queues WHERE name = ?1")
        .and_then(|mut s| {
            s.query_row([queue], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0)))
                .optional()
        })
        .map_err(sql_err)
}

fn lease_from_queue(
    tx: &Tx<'_>,
    queue: &str,
    queue_id: i64,
    n: usize,
    worker: &str,
    expires: i64,
    out: &mut Vec<ClaimedJob>,
) -> quern::Result<usize> {
    // Read the rows in claim order, then lease each by primary key. (Cheaper than one
    // `UPDATE … WHERE id IN (…) RETURNING`, which builds two ephemeral tables per call.)
    let jobs: Vec<Job> = tx
        .conn
        .prepare_cached(&format!(
            "SELECT {} FROM jobs WHERE queue_id = ?1 AND state = 1 \
             ORDER BY priority, run_at, id LIMIT ?2",
            // The queue's name is known here; bind it rather than look it up per row.
            JOB_COLS.replacen(QUEUE_NAME_COL, "?3", 1)
        ))
        .and_then(|mut s| {
            s.query_map(rusqlite::params![queue_id, n as i64, queue], job_from_row)
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_err)?;
    let mut lease = tx
        .conn
        .prepare_cached(
            "UPDATE jobs SET state = 3, attempt = attempt + 1, lease_epoch = lease_epoch + 1, \
             lease_worker = ?2, lease_expires_at = ?3, started_at = ?4 WHERE id = ?1",
        )
        .map_err(sql_err)?;
    let got = jobs.len();
    for mut job in jobs {
        lease
            .execute(rusqlite::params![
                job.id.as_bytes(),
                worker,
                expires,
                tx.now
            ])
            .map_err(sql_err)?;
        // Mirror the UPDATE above in the returned copy.
        debug_assert_eq!(job.queue, queue);
        job.state = JobState::Running;
        job.attempt += 1;
        job.lease_epoch += 1;
        job.lease = Some(Lease {
            worker_id: worker.to_string(),
            expires_at: expires,
        });
        job.started_at = Some(tx.now);
        let token = LeaseToken {
            job_id: job.id,
            epoch: job.lease_epoch,
            attempt: job.attempt,
        };
        out.push(ClaimedJob { job, token });
    }
    Ok(got)
}
