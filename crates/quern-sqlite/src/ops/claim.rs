//! `job_claim`: the one place where admission is decided.
//!
//! In one transaction: promote due scheduled jobs, drop paused queues, split the requested
//! number of jobs across the listed queues by the core's rule (`quern::backend::ClaimSplit`:
//! a weighted draw among those that still have ready jobs), and lease the first jobs of each
//! queue in (priority, run_at, id) order, no more than the queue's limits admit
//! (`limits::admit`: its concurrency cap and rate limit, the same function `work_wait`
//! asks); any admission rule added later belongs there, inside the same step (STYLE.md §17).

use quern::backend::{ClaimOutcome, ClaimParams, ClaimSplit, ClaimedJob};
use quern::{Job, JobState};

use super::limits::{self, QueueRow};
use crate::error::sql_err;
use crate::rows::{JOB_COLS, QUEUE_NAME_COL, job_from_row};
use crate::writer::Tx;

/// The admission bound on priority: jobs with `priority < bound` may be claimed (every job
/// when the claim sets no bound, since priorities are 0-9). The claim and `work_wait` use it
/// alike.
pub(crate) fn priority_bound(more_urgent_than: Option<quern::Priority>) -> i64 {
    more_urgent_than.map_or(10, |p| i64::from(p.get()))
}

/// Most scheduled jobs promoted per claim (the rest on the next one).
const PROMOTE_BATCH: i64 = 10_000;

pub(crate) fn claim(tx: &mut Tx<'_>, p: ClaimParams) -> quern::Result<ClaimOutcome> {
    if p.limit == 0 || p.queues.is_empty() {
        return Ok(ClaimOutcome::default());
    }
    promote_due(tx)?;
    // The split's queues (listed once, positive weight) that exist and are not paused, with
    // their limits and (when capped) running jobs.
    let split = ClaimSplit::new(&p.queues);
    let mut rows: Vec<Option<(QueueRow, u64)>> = vec![None; split.queues().len()];
    let mut open = Vec::with_capacity(rows.len());
    for (i, q) in split.queues().iter().enumerate() {
        // Unknown (nothing ever enqueued) and paused queues stay closed.
        if let Some(row) = limits::load(tx.conn, &q.queue)?
            && !row.paused
        {
            let running = match row.settings.concurrency {
                Some(_) => limits::running(tx.conn, row.id)?,
                None => 0,
            };
            rows[i] = Some((row, running));
            open.push(i);
        }
    }
    let terms = Terms {
        worker: &p.worker_id,
        expires: tx.now + p.lease.as_millis() as i64,
        below: priority_bound(p.more_urgent_than),
    };
    let mut out = Vec::with_capacity(p.limit);
    let mut remaining = p.limit;
    // Queues whose share the rate limit cut, with when it admits one more.
    let mut throttled: Vec<(usize, quern::Millis)> = Vec::new();
    while remaining > 0 && !open.is_empty() {
        let alloc = split.draw(&open, remaining, fastrand::f64);
        for (i, n) in alloc.into_iter().enumerate() {
            if n == 0 {
                continue;
            }
            let Some((row, running)) = rows[i].as_mut() else {
                continue;
            };
            let a = limits::admit(row, *running, n, tx.now);
            let take = a.take;
            if let Some(t) = a.next_at {
                throttled.push((i, t));
            }
            let queue = &split.queues()[i].queue;
            // Kind and group rates and holds (ops/gate.rs), when the queue has any.
            let mut gate = super::gate::Gate::new(row, tx.now);
            let got = match take {
                0 => 0,
                take => lease_from_queue(tx, queue, row, take, &terms, gate.as_mut(), &mut out)?,
            };
            if let Some(g) = &gate {
                g.store(tx)?;
                if got < take
                    && let Some(t) = g.next_at
                {
                    throttled.push((i, t));
                }
            }
            if got > 0 {
                tx.st
                    .counts
                    .moved(row.id, JobState::Queued, JobState::Running, got as i64);
                row.tat = limits::took(tx, row, got)?;
                *running += got as u64;
            }
            remaining -= got;
            if got < n {
                open.retain(|o| *o != i);
            }
        }
    }
    // A throttled queue that still has a ready job is not empty: say when it admits again.
    let mut next_admission = None;
    for (i, t) in throttled {
        if let Some((row, _)) = &rows[i]
            && has_ready(tx, row, terms.below)?
        {
            next_admission = Some(next_admission.map_or(t, |n: quern::Millis| n.min(t)));
        }
    }
    Ok(ClaimOutcome {
        jobs: out,
        next_admission,
    })
}

/// Whether the queue has a ready job its order would admit under the priority bound.
pub(crate) fn has_ready(tx: &Tx<'_>, row: &QueueRow, below: i64) -> quern::Result<bool> {
    super::read::has_ready(tx.conn, row, below, tx.now)
}

/// Moves scheduled jobs whose `run_at` has passed to `queued`, counting them per queue. The
/// timeline derives the promotion from the due time at read time; only the stream records it.
///
/// Most claims find nothing due. One seek (the first entry of the partial index
/// `jobs_scheduled`) says so, which is cheaper than the `UPDATE … WHERE id IN (…)` finding no
/// row (it builds its `IN` table first); the `RETURNING` that tells the counts each promoted
/// job's queue then only runs when there is work for it.
pub(crate) fn promote_due(tx: &mut Tx<'_>) -> quern::Result<usize> {
    if super::read::next_due(tx.conn)?.is_none_or(|at| at > tx.now) {
        return Ok(0);
    }
    let mut stmt = tx
        .conn
        .prepare_cached(
            "UPDATE jobs SET state = 1 WHERE id IN \
             (SELECT id FROM jobs WHERE state = 0 AND run_at <= ?1 ORDER BY run_at LIMIT ?2) \
             RETURNING id, queue_id, kind, attempt",
        )
        .map_err(sql_err)?;
    let mut rows = stmt
        .query(rusqlite::params![tx.now, PROMOTE_BATCH])
        .map_err(sql_err)?;
    let mut n = 0;
    while let Some(r) = rows.next().map_err(sql_err)? {
        let id: [u8; 16] = r.get(0).map_err(sql_err)?;
        let queue_id: i64 = r.get(1).map_err(sql_err)?;
        let kind: String = r.get(2).map_err(sql_err)?;
        tx.st
            .counts
            .moved(queue_id, JobState::Scheduled, JobState::Queued, 1);
        tx.event(
            queue_id,
            quern::JobId::from_bytes(id),
            &kind,
            Some(quern::JobState::Scheduled),
            Some(quern::JobState::Queued),
            r.get::<_, i64>(3).map_err(sql_err)? as u32,
        );
        n += 1;
    }
    Ok(n)
}

/// What every job of one claim is leased under.
struct Terms<'a> {
    worker: &'a str,
    /// The lease deadline.
    expires: i64,
    /// Only jobs with `priority < below` ([`priority_bound`]).
    below: i64,
}

fn lease_from_queue(
    tx: &Tx<'_>,
    queue: &str,
    row: &QueueRow,
    n: usize,
    terms: &Terms<'_>,
    gate: Option<&mut super::gate::Gate>,
    out: &mut Vec<ClaimedJob>,
) -> quern::Result<usize> {
    if row.grouped {
        // Round-robin over the queue's groups, under the group cap (ops/groups.rs).
        let mut lease = Leaser::new(tx, terms, row.id)?;
        return super::groups::lease_round_robin(tx, queue, row, n, terms.below, gate, |job| {
            lease.lease(job, queue, out)
        });
    }
    let queue_id = row.id;
    // Read the rows in claim order, then lease each by primary key. (Cheaper than one
    // `UPDATE … WHERE id IN (…) RETURNING`, which builds two ephemeral tables per call.)
    let jobs: Vec<Job> = if gate.is_none() && super::order::is_default(&row.settings) {
        tx.conn
            .prepare_cached(&format!(
                "SELECT {} FROM jobs WHERE queue_id = ?1 AND state = 1 AND priority < ?4 \
             ORDER BY priority, run_at, id LIMIT ?2",
                // The queue's name is known here; bind it rather than look it up per row.
                JOB_COLS.replacen(QUEUE_NAME_COL, "?3", 1)
            ))
            .and_then(|mut s| {
                s.query_map(
                    rusqlite::params![queue_id, n as i64, queue, terms.below],
                    job_from_row,
                )
                .and_then(|rows| rows.collect())
            })
            .map_err(sql_err)?
    } else {
        // Another order, or aging: the head of each level, merged (ops/order.rs); with kind
        // or group rates, the candidates the gate admits (ops/gate.rs).
        let ids = match gate {
            Some(g) => super::gate::pick(tx.conn, row, g, n, terms.below, tx.now)?,
            None => {
                super::order::pick_ids(tx.conn, queue_id, &row.settings, n, terms.below, tx.now)?
            }
        };
        let mut by_id = tx
            .conn
            .prepare_cached(&format!(
                "SELECT {} FROM jobs WHERE id = ?1",
                JOB_COLS.replacen(QUEUE_NAME_COL, "?2", 1)
            ))
            .map_err(sql_err)?;
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            jobs.push(
                by_id
                    .query_row(rusqlite::params![id, queue], job_from_row)
                    .map_err(sql_err)?,
            );
        }
        jobs
    };
    let mut lease = Leaser::new(tx, terms, row.id)?;
    let got = jobs.len();
    for job in jobs {
        lease.lease(job, queue, out)?;
    }
    Ok(got)
}

/// Leases ready jobs one by one under a claim's terms.
struct Leaser<'s, 't> {
    stmt: rusqlite::CachedStatement<'s>,
    terms: &'t Terms<'t>,
    now: i64,
    queue_id: i64,
    events: &'s std::cell::RefCell<crate::events::EventBuf>,
    actor: Option<&'s str>,
}

impl<'s, 't> Leaser<'s, 't> {
    fn new(tx: &'s Tx<'_>, terms: &'t Terms<'t>, queue_id: i64) -> quern::Result<Self> {
        // The claim is derived from `claimed_at` (and the error records) at read time: the
        // timeline gets a line only when an actor asked for the claim.
        let stmt = tx
            .conn
            .prepare_cached(if tx.st.actor.is_none() {
                "UPDATE jobs SET state = 3, attempt = attempt + 1, lease_epoch = lease_epoch + 1, \
                 lease_worker = ?2, lease_expires_at = ?3, claimed_at = ?4, started_at = NULL \
                 WHERE id = ?1"
            } else {
                "UPDATE jobs SET state = 3, attempt = attempt + 1, lease_epoch = lease_epoch + 1, \
                 lease_worker = ?2, lease_expires_at = ?3, claimed_at = ?4, started_at = NULL, \
                 events = coalesce(events, '') || ?5 \
                 WHERE id = ?1"
            })
            .map_err(sql_err)?;
        Ok(Leaser {
            stmt,
            terms,
            now: tx.now,
            queue_id,
            events: &tx.st.events,
            actor: tx.st.actor.as_deref(),
        })
    }

    fn lease(&mut self, job: Job, queue: &str, out: &mut Vec<ClaimedJob>) -> quern::Result<()> {
        let attempt = job.attempt + 1;
        match self.actor {
            None => self.stmt.execute(rusqlite::params![
                job.id.as_bytes(),
                self.terms.worker,
                self.terms.expires,
                self.now,
            ]),
            Some(actor) => self.stmt.execute(rusqlite::params![
                job.id.as_bytes(),
                self.terms.worker,
                self.terms.expires,
                self.now,
                crate::events::timeline_line(
                    self.now,
                    Some(quern::JobState::Queued),
                    Some(quern::JobState::Running),
                    attempt,
                    Some(actor),
                ),
            ]),
        }
        .map_err(sql_err)?;
        self.events.borrow_mut().push(
            self.queue_id,
            job.id,
            &job.kind,
            Some(quern::JobState::Queued),
            Some(quern::JobState::Running),
            attempt,
        );
        // The UPDATE above, mirrored in the returned copy by the core's one rule.
        debug_assert_eq!(job.queue, queue);
        out.push(ClaimedJob::from_ready(
            job,
            self.terms.worker,
            self.terms.expires,
            self.now,
        ));
        Ok(())
    }
}
