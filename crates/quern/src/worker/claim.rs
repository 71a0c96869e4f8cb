//! The claim loop: lease jobs while there is room, otherwise wait.
//!
//! Room is `concurrency + prefetch` minus the jobs already claimed and not finished, where
//! prefetch adapts to job length (`prefetch.rs`), so the worker never holds more leases
//! than it can start soon (the "don't hoard" rule: a job held here cannot be taken by an
//! idle worker elsewhere). Per-queue caps shrink the room
//! for their queue. When there is no room the loop sleeps until a job finishes; when there
//! is room but no work it sleeps in `Backend::work_wait`, which an enqueue wakes at once,
//! so enqueue→start latency is one wake-up plus one claim, not a polling interval.

use std::sync::Arc;

use std::time::Duration;
use tracing::Instrument;

use super::prefetch;
use super::run_queue::key_of;
use super::shared::Shared;
use crate::backend::{
    ClaimParams, ClaimSplit, ClaimedJob, QueueWeight, WaitParams, weighted_order,
};
use crate::model::Priority;

/// One claim call: these queues, at most `limit` jobs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Claim {
    queues: Vec<QueueWeight>,
    limit: usize,
}

/// What to claim now.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Plan {
    /// Total jobs that may be claimed now (free slots plus prefetch room).
    room: usize,
    /// The claims to make, in order; each is also bounded by what is left of `room`.
    claims: Vec<Claim>,
    /// Some queue was left out because it is at its cap: a finishing job may make it
    /// claimable again, so the idle wait must also wake on a freed slot.
    capped_out: bool,
}

/// Works out the claims. Queues without a cap, and capped queues whose remaining room is at
/// least the total room, share one claim (the backend splits it by weight). A capped queue
/// with less remaining room than that gets its own claim limited to its room, so a tight cap
/// never shrinks the batch of the other queues. Several claims are ordered by a weighted
/// random draw so no queue always goes first.
fn plan(
    queues: &[QueueWeight],
    caps: &[Option<usize>],
    occupying_per_queue: &[usize],
    room: usize,
    mut unit: impl FnMut() -> f64,
) -> Plan {
    let mut shared = Vec::new();
    let mut own = Vec::new();
    let mut capped_out = false;
    for ((q, cap), held) in queues.iter().zip(caps).zip(occupying_per_queue) {
        match cap {
            Some(cap) if held >= cap => capped_out = true,
            Some(cap) if cap - held < room => own.push(Claim {
                queues: vec![q.clone()],
                limit: cap - held,
            }),
            _ => shared.push(q.clone()),
        }
    }
    let mut claims = own;
    if !shared.is_empty() {
        claims.push(Claim {
            queues: shared,
            limit: room,
        });
    }
    if room == 0 {
        claims.clear();
    }
    Plan {
        room,
        claims: weighted_order(claims, |c| c.queues.as_slice(), &mut unit),
        capped_out,
    }
}

/// Whether to hold off claiming until more room frees: while claimed jobs still wait
/// locally for a run slot the worker is not short of work, so it refills once at least half
/// of its room (`room_max`, slots plus prefetch) is free, in one bigger claim, instead of
/// one small claim per finished job. With nothing waiting locally it claims at once, so a
/// free slot never waits for this.
fn hold_for_refill(room: usize, room_max: usize, waiting: usize) -> bool {
    waiting > 0 && room < room_max.div_ceil(2)
}

/// Exponential backoff for store errors: 50 ms doubling to 5 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(5);

    fn new() -> Self {
        Backoff { next: Self::FIRST }
    }
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
    fn step(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }
}

/// How long the claim loop waits for a freed slot before it also watches the store for a job
/// more urgent than its local backlog (see [`wait_for_room`]).
const URGENT_GRACE: Duration = Duration::from_millis(20);

/// The queues an urgent claim may take from (those below their cap), and how many jobs it
/// may take.
fn urgent_room(
    queues: &[QueueWeight],
    caps: &[Option<usize>],
    held: &[usize],
    want: usize,
) -> (Vec<QueueWeight>, usize) {
    let mut limit = want;
    let mut open = Vec::new();
    for ((q, cap), held) in queues.iter().zip(caps).zip(held) {
        match cap {
            Some(cap) if held >= cap => {}
            Some(cap) => {
                limit = limit.min(cap - held);
                open.push(q.clone());
            }
            None => open.push(q.clone()),
        }
    }
    (open, limit)
}

/// Waits until a job finishes (there may be room to claim again), while claimed jobs wait
/// locally for a run slot. Meanwhile a job more urgent than the least urgent of those may
/// arrive in the store: the backend's wait, bounded to such jobs, notices it, and the worker
/// claims it (bounded the same way) and gives back as many of its least urgent waiting jobs.
/// So a critical job enqueued while the slots are busy with a prefetched backlog takes the
/// next free slot, and the worker still holds no more leases than its room. The store is
/// watched only after [`URGENT_GRACE`] without a freed slot; when slots free faster, the
/// backlog is short (the prefetch holds only what starts within `prefetch_wait`) and the
/// next refill claims in priority order anyway. Returns false when the worker stops
/// claiming.
async fn wait_for_room(
    s: &Arc<Shared>,
    queues: &[QueueWeight],
    caps: &[Option<usize>],
    held: &[usize],
    backoff: &mut Backoff,
) -> bool {
    let cfg = &s.cfg;
    // Nothing is more urgent than priority 0.
    let swap = s
        .run_queue
        .least_urgent_waiting()
        .filter(|(p, _)| *p > 0)
        .and_then(|(p, n)| Some((Priority::new(p)?, n)))
        .map(|(p, n)| (p, urgent_room(queues, caps, held, n)))
        .filter(|(_, (queues, limit))| !queues.is_empty() && *limit > 0);
    let urgent_wait = async {
        match &swap {
            Some((p, (queues, _))) => {
                // Only once no slot has freed for a moment: in a steady drain slots free
                // every few ms and the normal refill already claims in priority order, and a
                // store round trip per finished job would cost the drain (measured: drain at
                // concurrency 1 on SQLite lost about a third).
                tokio::time::sleep(URGENT_GRACE).await;
                s.backend
                    .work_wait(WaitParams {
                        queues: queues.iter().map(|q| q.queue.clone()).collect(),
                        timeout: cfg.poll_interval,
                        more_urgent_than: Some(*p),
                    })
                    .await
            }
            None => std::future::pending().await,
        }
    };
    let woke = tokio::select! {
        _ = s.slot_freed.notified() => return true,
        _ = s.stop_claiming.cancelled() => return false,
        r = urgent_wait => r,
    };
    let Some((p, (queues, limit))) = swap else {
        return true;
    };
    if let Err(e) = woke {
        tracing::warn!(error = %e, "waiting for urgent work failed; backing off");
        tokio::select! {
            _ = tokio::time::sleep(backoff.step()) => {}
            _ = s.stop_claiming.cancelled() => return false,
        }
        return true;
    }
    // Not abandoned half-way (see the claim below in `run`).
    let span = claim_span(limit);
    let res = s
        .backend
        .job_claim(ClaimParams {
            worker_id: cfg.id.clone(),
            queues,
            limit,
            lease: cfg.lease,
            more_urgent_than: Some(p),
        })
        .instrument(span.clone())
        .await;
    if let Ok(jobs) = &res {
        record_claim(&span, jobs);
    }
    drop(span);
    match res {
        Ok(jobs) if !jobs.is_empty() => {
            backoff.reset();
            let n = jobs.len();
            for job in jobs {
                spawn_job(s, job);
            }
            let back = s.run_queue.evict(n, p.get());
            tracing::debug!(
                n,
                back,
                below = p.get(),
                "claimed more urgent jobs ahead of the local backlog"
            );
        }
        Ok(_) => backoff.reset(),
        Err(e) => {
            tracing::warn!(error = %e, "claiming urgent jobs failed; backing off");
            tokio::select! {
                _ = tokio::time::sleep(backoff.step()) => {}
                _ = s.stop_claiming.cancelled() => return false,
            }
        }
    }
    true
}

/// How often a worker reads the stored weight of the queues it gave no weight.
const WEIGHT_REFRESH: Duration = Duration::from_secs(5);

/// Sets the weight of each queue listed in `cfg.stored_weight` to the weight stored with the
/// queue (`QueueSettings::weight`, 1 when none). A store without queue settings, an unknown
/// queue or a failed read keeps the weight it has.
async fn stored_weights(s: &Arc<Shared>, queues: &mut [QueueWeight]) {
    if !s.backend.capabilities().queue_limits {
        return;
    }
    for q in queues.iter_mut() {
        if !s.cfg.stored_weight.contains(&q.queue) {
            continue;
        }
        match s.backend.queue_get(q.queue.as_str().into()).await {
            Ok(u) => q.weight = u.settings.weight.unwrap_or(1),
            Err(crate::Error::QueueNotFound(_)) => {}
            Err(e) => {
                tracing::debug!(queue = %q.queue, error = %e, "reading the queue weight failed")
            }
        }
    }
}

/// Records a claimed job, queues it for a run slot (here, in claim order, so the jobs of
/// one claim never race for a slot) and starts its task.
/// The `quern.claim` span of one claim call (see [`crate::telemetry`]).
fn claim_span(limit: usize) -> tracing::Span {
    tracing::debug_span!(
        "quern.claim",
        limit,
        claimed = tracing::field::Empty,
        job_id = tracing::field::Empty,
        kind = tracing::field::Empty,
        queue = tracing::field::Empty,
        attempt = tracing::field::Empty,
    )
}

/// Records what a claim took: the count, and the job's fields when it took one.
fn record_claim(span: &tracing::Span, jobs: &[ClaimedJob]) {
    span.record("claimed", jobs.len());
    if let [one] = jobs {
        span.record("job_id", tracing::field::display(one.job.id));
        span.record("kind", one.job.kind.as_str());
        span.record("queue", one.job.queue.as_str());
        span.record("attempt", one.token.attempt);
    }
}

fn spawn_job(s: &Arc<Shared>, claimed: ClaimedJob) {
    let cancel = s.force_stop.child_token();
    s.leases
        .insert(claimed.token.clone(), &claimed.job.queue, cancel.clone());
    let ticket = s.run_queue.enqueue(key_of(&claimed.job));
    // Boxed: the job's future is large (handler call, heartbeats, outcome), and spawning
    // it by value copied it several times per job (a memcpy that was 7 % of a draining
    // worker's CPU in a profile); a box is moved as a pointer.
    s.jobs.spawn(Box::pin(super::run::run_job(
        Arc::clone(s),
        claimed,
        ticket,
        cancel,
    )));
}

pub(super) async fn run(s: Arc<Shared>) {
    let cfg = &s.cfg;
    // The queues claims may take from, by the core's rule (listed once, weight above 0);
    // a queue the worker gave no weight takes the weight stored with the queue (read now
    // and every `WEIGHT_REFRESH`).
    let mut weights_read = None;
    let mut queues = ClaimSplit::new(&cfg.queues).queues().to_vec();
    let caps: Vec<Option<usize>> = queues.iter().map(|q| cfg.cap(&q.queue)).collect();
    let names: Vec<String> = queues.iter().map(|q| q.queue.clone()).collect();
    let mut backoff = Backoff::new();
    loop {
        if s.stop_claiming.is_cancelled() {
            break;
        }
        let prefetch = prefetch::allowed(
            cfg.prefetch_max(),
            cfg.concurrency,
            cfg.prefetch_wait,
            s.run_times.average(),
        );
        let occupying = s.leases.occupying();
        let room = (cfg.concurrency + prefetch).saturating_sub(occupying);
        let running = s.run_queue.running();
        let held = s.leases.occupying_in(names.iter().map(String::as_str));
        if hold_for_refill(
            room,
            cfg.concurrency + prefetch,
            occupying.saturating_sub(running),
        ) {
            if wait_for_room(&s, &queues, &caps, &held, &mut backoff).await {
                continue;
            }
            break;
        }
        if !cfg.stored_weight.is_empty()
            && weights_read.is_none_or(|t: std::time::Instant| t.elapsed() >= WEIGHT_REFRESH)
        {
            weights_read = Some(std::time::Instant::now());
            stored_weights(&s, &mut queues).await;
        }
        let p = plan(&queues, &caps, &held, room, fastrand::f64);
        if p.claims.is_empty() {
            // Full (or every queue at its cap): wait for a job to finish.
            if wait_for_room(&s, &queues, &caps, &held, &mut backoff).await {
                continue;
            }
            break;
        }

        let mut left = p.room;
        let mut drained = true;
        let mut failed = false;
        // The earliest next admission of a throttled queue the claims reported.
        let mut next_admission: Option<crate::Millis> = None;
        for c in p.claims {
            let limit = c.limit.min(left);
            if limit == 0 {
                drained = false;
                break;
            }
            // Never abandon a claim call half-way: the backend may already have leased the
            // jobs, and dropping the answer would strand them until their leases expire.
            let span = claim_span(limit);
            let res = s
                .backend
                .job_claim_outcome(ClaimParams {
                    worker_id: cfg.id.clone(),
                    queues: c.queues,
                    limit,
                    lease: cfg.lease,
                    more_urgent_than: None,
                })
                .instrument(span.clone())
                .await;
            if let Ok(o) = &res {
                record_claim(&span, &o.jobs);
            }
            drop(span);
            match res {
                Ok(outcome) => {
                    if let Some(t) = outcome.next_admission {
                        next_admission = Some(next_admission.map_or(t, |n| n.min(t)));
                    }
                    let jobs = outcome.jobs;
                    backoff.reset();
                    if jobs.len() >= limit {
                        drained = false;
                    }
                    left = left.saturating_sub(jobs.len());
                    if !jobs.is_empty() {
                        tracing::trace!(n = jobs.len(), limit, "claimed jobs");
                    }
                    for job in jobs {
                        spawn_job(&s, job);
                    }
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(error = %e, "claiming jobs failed; backing off");
                }
            }
        }

        if failed {
            tokio::select! {
                _ = tokio::time::sleep(backoff.step()) => {}
                _ = s.stop_claiming.cancelled() => break,
            }
        } else if drained {
            // Every claim came back short: no ready work right now. Sleep until the backend
            // says work may have arrived (or a capped queue got room again), and no longer
            // than until a throttled queue's next admission.
            let timeout = match next_admission {
                Some(t) => {
                    let until = (t - s.clock.now_ms()).max(1) as u64;
                    cfg.poll_interval.min(Duration::from_millis(until))
                }
                None => cfg.poll_interval,
            };
            let wait = s.backend.work_wait(WaitParams {
                queues: names.clone(),
                timeout,
                more_urgent_than: None,
            });
            tokio::select! {
                r = wait => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "waiting for work failed; backing off");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff.step()) => {}
                            _ = s.stop_claiming.cancelled() => break,
                        }
                    }
                }
                _ = s.slot_freed.notified(), if p.capped_out => {}
                _ = s.stop_claiming.cancelled() => break,
            }
        }
    }
    tracing::debug!("claim loop stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qw(q: &str, w: u32) -> QueueWeight {
        QueueWeight::new(q, w)
    }

    #[test]
    fn uncapped_queues_share_one_claim() {
        let qs = [qw("a", 3), qw("b", 1)];
        let p = plan(&qs, &[None, None], &[5, 0], 8, || 0.5);
        assert_eq!(
            p.claims,
            vec![Claim {
                queues: qs.to_vec(),
                limit: 8
            }]
        );
        assert!(!p.capped_out);
    }

    #[test]
    fn tight_caps_get_their_own_claim_and_full_caps_are_left_out() {
        let qs = [qw("a", 1), qw("b", 1), qw("c", 1), qw("d", 1)];
        // a: cap 2, 1 held → own claim of 1. b: cap 100 → shared. c: at cap → out. d: free.
        let p = plan(
            &qs,
            &[Some(2), Some(100), Some(3), None],
            &[1, 0, 3, 0],
            10,
            || 0.99,
        );
        assert!(p.capped_out);
        assert_eq!(p.claims.len(), 2);
        let own = p.claims.iter().find(|c| c.queues.len() == 1).unwrap();
        assert_eq!(own.queues[0].queue, "a");
        assert_eq!(own.limit, 1);
        let shared = p.claims.iter().find(|c| c.queues.len() == 2).unwrap();
        let names: Vec<_> = shared.queues.iter().map(|q| q.queue.as_str()).collect();
        assert_eq!(names, ["b", "d"]);
        assert_eq!(shared.limit, 10);
    }

    #[test]
    fn order_follows_the_weighted_draw() {
        let qs = [qw("small", 1), qw("big", 9)];
        let first = |u: f64| {
            plan(&qs, &[Some(1), Some(1)], &[0, 0], 5, move || u).claims[0].queues[0]
                .queue
                .clone()
        };
        assert_eq!(first(0.05), "small");
        assert_eq!(first(0.5), "big");
    }

    #[test]
    fn no_room_means_no_claims() {
        let qs = [qw("a", 1)];
        assert!(plan(&qs, &[None], &[0], 0, || 0.0).claims.is_empty());
    }

    #[test]
    fn refills_wait_for_half_the_room_only_while_jobs_wait_locally() {
        // 16 slots + 64 prefetch: with jobs waiting locally, claim once 40 are free.
        assert!(hold_for_refill(39, 80, 5));
        assert!(!hold_for_refill(40, 80, 5));
        // Nothing waiting locally: claim whatever room there is, even one.
        assert!(!hold_for_refill(1, 80, 0));
        // No prefetch (long jobs): room is the free slots, and nothing waits locally.
        assert!(!hold_for_refill(1, 16, 0));
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::new();
        let steps: Vec<_> = (0..9).map(|_| b.step().as_millis()).collect();
        assert_eq!(steps, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.step(), Duration::from_millis(50));
    }
}
