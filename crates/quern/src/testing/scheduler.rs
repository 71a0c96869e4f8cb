//! The scheduler service on a real store, with the manual clock: racing schedulers enqueue
//! one job per tick, overlap and misfire policies, pause and removal through
//! [`Schedules`](crate::Schedules).

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::Millis;
use crate::backend::ScheduleUpsertParams;
use crate::maintenance::{Scheduler, SchedulerConfig};
use crate::model::{JobState, JobTemplate, Misfire, Overlap, RunKind, ScheduleSpec};
use crate::{Client, Schedules};

const MIN: Millis = 60_000;

fn lacks_schedules(h: &Harness) -> bool {
    h.lacks("schedules", h.caps().schedules)
}

fn scheduler(h: &Harness) -> Scheduler {
    Scheduler::new(
        h.backend.clone(),
        h.clock.clone(),
        SchedulerConfig::default(),
    )
}

fn schedules(h: &Harness) -> Schedules {
    Client::new(h.backend.clone())
        .schedules()
        .with_clock(h.clock.clone())
}

/// A minutely schedule `name` into queue `"cron"`, stored with `f` applied to it.
async fn add(h: &Harness, name: &str, f: impl FnOnce(&mut ScheduleSpec)) {
    let mut job = JobTemplate::new("tick");
    job.queue = "cron".into();
    let mut spec = ScheduleSpec::new(name, "* * * * *", job);
    f(&mut spec);
    h.backend
        .schedule_upsert(ScheduleUpsertParams { spec })
        .await
        .unwrap_or_else(|e| panic!("{}: upsert: {e}", h.case));
}

/// Moves the clock to the first minute boundary after now, plus `extra`.
fn to_next_minute(h: &Harness, extra: Millis) -> Millis {
    let tick = (h.now() / MIN + 1) * MIN;
    h.advance_to(tick + extra);
    tick
}

async fn pass(h: &Harness, s: &Scheduler) {
    s.run_once()
        .await
        .unwrap_or_else(|e| panic!("{}: scheduler pass: {e}", h.case));
}

/// (tick, kind, job state) of each run, oldest first.
async fn history(h: &Harness, name: &str) -> Vec<(Millis, RunKind, Option<JobState>)> {
    let mut out = Vec::new();
    for r in schedules(h)
        .runs(name, 1000)
        .await
        .unwrap()
        .into_iter()
        .rev()
    {
        let state = match r.job_id {
            Some(id) => Some(h.get(id).await.state),
            None => None,
        };
        out.push((r.tick, r.kind, state));
    }
    out
}

/// Three schedulers on one store, run in turns every 7 s of clock for ten minutes (one of
/// them stops halfway, like a killed process): exactly one job per minute tick, each
/// scheduled for its tick, none missing.
pub async fn racing_schedulers_enqueue_one_job_per_tick(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    add(&h, "every-minute", |_| {}).await;
    let first = (h.now() / MIN + 1) * MIN;
    let nodes = [scheduler(&h), scheduler(&h), scheduler(&h)];
    let end = h.now() + 10 * MIN;
    let mut step = 0;
    while h.now() < end {
        let alive = if h.now() < end - 5 * MIN { 3 } else { 2 };
        for i in 0..alive {
            pass(&h, &nodes[(step + i) % alive]).await;
        }
        step += 1;
        h.advance(Duration::from_secs(7));
    }
    let runs = history(&h, "every-minute").await;
    let ticks: Vec<Millis> = runs.iter().map(|r| r.0).collect();
    let unique: BTreeSet<Millis> = ticks.iter().copied().collect();
    assert_eq!(
        unique.len(),
        ticks.len(),
        "{}: a tick fired twice: {ticks:?}",
        h.case
    );
    // Every minute from the first tick on, up to what the lookahead reached.
    let want: Vec<Millis> = (0..ticks.len() as Millis)
        .map(|i| first + i * MIN)
        .collect();
    assert_eq!(ticks, want, "{}: one run per minute, none missing", h.case);
    assert!(
        ticks.len() >= 10,
        "{}: ten minutes of ticks: {}",
        h.case,
        ticks.len()
    );
    assert!(
        runs.iter().all(|r| r.1 == RunKind::Scheduled),
        "{}: {runs:?}",
        h.case
    );
    let list = h.backend.queue_list().await.unwrap();
    let jobs = list
        .iter()
        .find(|q| q.name == "cron")
        .unwrap()
        .counts
        .total();
    assert_eq!(jobs, ticks.len() as u64, "{}: one job per run", h.case);
    for r in schedules(&h).runs("every-minute", 1000).await.unwrap() {
        let job = h.get(r.job_id.unwrap()).await;
        assert_eq!(job.run_at, r.tick, "{}: the job is due at its tick", h.case);
        assert_eq!(
            job.meta["cron"]["tick"], r.tick,
            "{}: meta names the tick",
            h.case
        );
    }
}

/// An `allow` schedule's job is enqueued ahead, before its tick, and claimable at the tick.
pub async fn an_allow_tick_is_enqueued_ahead_and_claimable_at_the_tick(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    add(&h, "a", |_| {}).await;
    let tick = (h.now() / MIN + 1) * MIN;
    h.advance_to(tick - 3_000);
    pass(&h, &scheduler(&h)).await;
    let runs = history(&h, "a").await;
    assert_eq!(
        runs,
        vec![(tick, RunKind::Scheduled, Some(JobState::Scheduled))],
        "{}",
        h.case
    );
    h.claim_none("cron", "not before its tick").await;
    h.advance_to(tick);
    h.claim_one("cron").await;
}

/// `overlap = skip`: a tick while the previous run is running is recorded as skipped, and
/// the schedule fires again once it finished.
pub async fn overlap_skip_skips_while_the_previous_run_is_live(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    add(&h, "s", |s| s.overlap = Overlap::Skip).await;
    let node = scheduler(&h);
    let t1 = to_next_minute(&h, 10);
    pass(&h, &node).await;
    let running = h.claim_one("cron").await;
    let t2 = to_next_minute(&h, 10);
    pass(&h, &node).await;
    h.complete(&running.token).await;
    let t3 = to_next_minute(&h, 10);
    pass(&h, &node).await;
    assert_eq!(
        history(&h, "s").await,
        vec![
            (t1, RunKind::Scheduled, Some(JobState::Succeeded)),
            (t2, RunKind::SkippedOverlap, None),
            (t3, RunKind::Scheduled, Some(JobState::Queued)),
        ],
        "{}",
        h.case
    );
}

/// `overlap = cancel_previous`: the live previous run is cancelled (its lease revoked) and
/// the new one enqueued.
pub async fn overlap_cancel_previous_cancels_the_live_run(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    add(&h, "c", |s| s.overlap = Overlap::CancelPrevious).await;
    let node = scheduler(&h);
    let t1 = to_next_minute(&h, 10);
    pass(&h, &node).await;
    let running = h.claim_one("cron").await;
    let t2 = to_next_minute(&h, 10);
    pass(&h, &node).await;
    assert_eq!(
        history(&h, "c").await,
        vec![
            (t1, RunKind::Scheduled, Some(JobState::Cancelled)),
            (t2, RunKind::Scheduled, Some(JobState::Queued)),
        ],
        "{}",
        h.case
    );
    h.heartbeat(&running.token)
        .await
        .expect_err("the cancelled run's lease is revoked");
}

/// After an hour with no scheduler: `run_once` enqueues one job for the latest missed tick,
/// `skip` none, `run_all` (max 5) the five latest, oldest first.
pub async fn misfire_policies_after_an_outage(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    add(&h, "once", |_| {}).await;
    add(&h, "skip", |s| s.misfire = Misfire::Skip).await;
    add(&h, "all", |s| {
        s.misfire = Misfire::RunAll {
            max: 5,
            window: Duration::from_secs(86_400),
        }
    })
    .await;
    let base = (h.now() / MIN) * MIN;
    h.advance_to(base + 60 * MIN + 30_000);
    pass(&h, &scheduler(&h)).await;
    let ticks = |runs: Vec<(Millis, RunKind, Option<JobState>)>| {
        runs.into_iter().map(|r| r.0).collect::<Vec<_>>()
    };
    assert_eq!(
        ticks(history(&h, "once").await),
        vec![base + 60 * MIN],
        "{}: run_once",
        h.case
    );
    assert!(history(&h, "skip").await.is_empty(), "{}: skip", h.case);
    let want: Vec<Millis> = (56..=60).map(|m| base + m * MIN).collect();
    assert_eq!(ticks(history(&h, "all").await), want, "{}: run_all", h.case);
    // And each goes on with the next tick, enqueued ahead.
    h.advance_to(base + 61 * MIN - 2_000);
    pass(&h, &scheduler(&h)).await;
    for name in ["once", "skip", "all"] {
        let last = history(&h, name).await.pop().map(|r| r.0);
        assert_eq!(last, Some(base + 61 * MIN), "{}: {name} goes on", h.case);
    }
}

/// Pausing cancels the tick's job enqueued ahead and nothing fires while paused; after
/// resume only later ticks fire. Removing cancels the pending job too.
pub async fn pause_and_remove_cancel_the_pending_tick(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    add(&h, "p", |_| {}).await;
    let node = scheduler(&h);
    let tick = (h.now() / MIN + 1) * MIN;
    h.advance_to(tick - 2_000);
    pass(&h, &node).await;
    let pending = schedules(&h).get("p").await.unwrap().last_job.unwrap();
    schedules(&h).pause("p").await.unwrap();
    h.assert_state(
        pending,
        JobState::Cancelled,
        "pending tick cancelled by pause",
    )
    .await;
    h.advance_to(tick + 5 * MIN + 30_000);
    pass(&h, &node).await;
    assert_eq!(
        history(&h, "p").await.len(),
        1,
        "{}: nothing while paused",
        h.case
    );
    schedules(&h).resume("p").await.unwrap();
    pass(&h, &node).await;
    let next = tick + 6 * MIN;
    assert_eq!(
        history(&h, "p").await.len(),
        1,
        "{}: no catch-up of the pause",
        h.case
    );
    h.advance_to(next - 2_000);
    pass(&h, &node).await;
    let runs = history(&h, "p").await;
    assert_eq!(
        runs.last().map(|r| r.0),
        Some(next),
        "{}: goes on after resume",
        h.case
    );
    let pending = schedules(&h).get("p").await.unwrap().last_job.unwrap();
    schedules(&h).remove("p").await.unwrap();
    h.assert_state(
        pending,
        JobState::Cancelled,
        "pending tick cancelled by remove",
    )
    .await;
    expect_err!(
        h,
        schedules(&h).remove("p").await,
        crate::Error::ScheduleNotFound(_),
        "removed twice"
    );
}

/// An every-second schedule has several ticks enqueued ahead (the lookahead is 5 s);
/// pausing cancels every one of them, and nothing of it runs while paused.
pub async fn pause_cancels_every_tick_enqueued_ahead(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    add(&h, "fast", |s| s.cron = "@every 1s".into()).await;
    let node = scheduler(&h);
    to_next_minute(&h, 100);
    pass(&h, &node).await;
    let pending: Vec<_> = schedules(&h).runs("fast", 100).await.unwrap();
    let ahead = pending.iter().filter(|r| r.tick > h.now()).count();
    assert!(ahead >= 4, "{}: ticks enqueued ahead: {pending:?}", h.case);
    schedules(&h).pause("fast").await.unwrap();
    for r in &pending {
        let want = if r.tick > h.now() {
            JobState::Cancelled
        } else {
            JobState::Queued
        };
        h.assert_state(
            r.job_id.unwrap(),
            want,
            "ahead ticks cancelled, the due one kept",
        )
        .await;
    }
    h.advance(Duration::from_secs(10));
    h.claim("cron", 100).await;
    pass(&h, &node).await;
    assert_eq!(
        schedules(&h).runs("fast", 100).await.unwrap().len(),
        pending.len(),
        "{}: nothing fired while paused",
        h.case
    );
}

/// A manual trigger enqueues a job now, also while paused, and leaves the ticks alone.
pub async fn trigger_runs_now_outside_the_schedule(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    add(&h, "t", |_| {}).await;
    schedules(&h).pause("t").await.unwrap();
    let id = schedules(&h).trigger("t").await.unwrap();
    h.assert_state(id, JobState::Queued, "runs now").await;
    let s = schedules(&h).get("t").await.unwrap();
    assert_eq!(
        (s.runs, s.last_job),
        (0, None),
        "{}: ticks untouched",
        h.case
    );
    assert_eq!(
        history(&h, "t").await,
        vec![(h.now(), RunKind::Manual, Some(JobState::Queued))],
        "{}",
        h.case
    );
    expect_err!(
        h,
        schedules(&h).trigger("nope").await,
        crate::Error::ScheduleNotFound(_),
        "unknown"
    );
}
