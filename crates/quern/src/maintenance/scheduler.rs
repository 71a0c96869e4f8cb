//! The scheduler: enqueues one job per tick of every stored schedule.
//!
//! Every node runs one (the [`Worker`](crate::Worker) does by default, and so do
//! `quern worker` and `quern serve`); there is no leader. Exactly-once comes from the store:
//! `Backend::schedule_fire` refuses a tick at or before the schedule's watermark in the same
//! step that enqueues the job and moves the watermark, so racing schedulers store one job per
//! tick, and when one dies the others carry on without losing or doubling a tick.
//!
//! **On time.** A schedule whose overlap policy is `allow` has each tick's job enqueued
//! ahead, up to [`SchedulerConfig::lookahead`] before the tick, as a scheduled job due at
//! the tick (plus its jitter): workers wake for a scheduled job at its due time, so the job
//! starts on time however late the scheduler's own timer is. Schedules with the `skip` or
//! `cancel_previous` policy must look at the previous run when the tick comes, so their job
//! is enqueued at the tick.
//!
//! **Misfires.** A tick that passed more than [`SchedulerConfig::misfire_grace`] ago without
//! firing (no scheduler ran) is a misfire, handled by the schedule's [`Misfire`] policy: one
//! job for the latest due tick (`run_once`), none (`skip`), or one per due tick within the
//! window (`run_all`). A tick's job that was enqueued ahead before every process stopped
//! stays enqueued and runs when a worker comes back.
//!
//! **Overlap.** With `skip`, a tick while the previous run's job is still waiting or running
//! is recorded as skipped; with `cancel_previous`, that job is cancelled first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::backend::{Backend, CancelParams, FireOutcome, ScheduleFireParams};
use crate::clock::{Millis, SharedClock};
use crate::cron::Schedule;
use crate::model::{Misfire, Overlap, RunKind, StoredSchedule};

/// Scheduler settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// How often the list of schedules is read again (new, changed, paused or removed
    /// schedules are seen within this). Default 1 s.
    pub refresh: Duration,
    /// How far ahead of its tick the job of an `allow` schedule is enqueued. A change of
    /// the schedule applies from the tick after the one already enqueued. Default 5 s.
    pub lookahead: Duration,
    /// A tick fired at most this late is on time; an older unfired tick is a misfire.
    /// Default 1 s.
    pub misfire_grace: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            refresh: Duration::from_secs(1),
            lookahead: Duration::from_secs(5),
            misfire_grace: Duration::from_secs(1),
        }
    }
}

/// What one scheduler pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchedulerTickReport {
    /// (schedule, tick) of each job enqueued (or found, for a held unique key).
    pub fired: Vec<(String, Millis)>,
    /// (schedule, tick) recorded as skipped because the previous run was still live.
    pub skipped: Vec<(String, Millis)>,
    /// Fires another scheduler (or an earlier pass) had already made.
    pub already_fired: usize,
    /// When the next pass has something to do (the earliest fire time), if any.
    pub next_at: Option<Millis>,
}

/// The ticks of one schedule a pass fires, and when it next has one to fire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirePlan {
    /// Ticks to fire now, oldest first.
    pub ticks: Vec<Millis>,
    /// When the first tick after those becomes fireable, if the schedule has one.
    pub next_at: Option<Millis>,
}

/// Decides which ticks of `s` fire at `now`: a pure function of the stored schedule, its
/// parsed expression and the settings, so every node decides the same.
pub fn fire_plan(
    s: &StoredSchedule,
    schedule: &Schedule,
    now: Millis,
    cfg: &SchedulerConfig,
) -> FirePlan {
    let spec = &s.spec;
    if s.paused {
        return FirePlan::default();
    }
    let left = match spec.limit {
        Some(l) if s.runs >= l => return FirePlan::default(),
        Some(l) => l - s.runs,
        None => u64::MAX,
    };
    // Fireable from (tick − lead): ahead for `allow`, at the tick otherwise.
    let lead = match spec.overlap {
        Overlap::Allow => cfg.lookahead.as_millis() as Millis,
        _ => 0,
    };
    let in_range = |t: Millis| spec.end_at.is_none_or(|e| t <= e);
    // Ticks come after the watermark and not before `start_at`.
    let from = match spec.start_at {
        Some(st) => s.watermark.max(st - 1),
        None => s.watermark,
    };
    // On time: ticks from `late_before` up to now + lead, each its own run.
    let late_before = now - cfg.misfire_grace.as_millis() as Millis;
    let mut on_time = Vec::new();
    let mut cursor = from.max(late_before - 1);
    let mut next_at = None;
    while let Some(t) = schedule.next_after(cursor) {
        if !in_range(t) {
            break;
        }
        if t - lead > now {
            next_at = Some(t - lead);
            break;
        }
        on_time.push(t);
        cursor = t;
    }
    // Late ticks (a misfire), found without walking every missed tick of a long outage.
    let late = match spec.misfire {
        Misfire::Skip => Vec::new(),
        // One run for all missed ticks; an on-time run that is already due covers them.
        Misfire::RunOnce if on_time.first().is_some_and(|t| *t <= now) => Vec::new(),
        Misfire::RunOnce => latest_before(schedule, from, late_before, 1),
        Misfire::RunAll { max, window } => {
            let start = from.max(late_before - window.as_millis() as Millis - 1);
            latest_before(schedule, start, late_before, max as usize)
        }
    };
    let mut ticks: Vec<Millis> = late.into_iter().filter(|t| in_range(*t)).collect();
    ticks.extend(on_time);
    let fits = usize::try_from(left).unwrap_or(usize::MAX);
    if ticks.len() >= fits {
        ticks.truncate(fits);
        return FirePlan {
            ticks,
            next_at: None,
        };
    }
    FirePlan { ticks, next_at }
}

/// Up to `n` latest ticks in `(after, before)`, oldest first, searching back from `before`
/// in growing windows, so a long outage of a frequent schedule costs a few windows rather
/// than a walk over every missed tick.
fn latest_before(schedule: &Schedule, after: Millis, before: Millis, n: usize) -> Vec<Millis> {
    if n == 0 || before <= after + 1 {
        return Vec::new();
    }
    let mut span: Millis = 60_000;
    loop {
        let start = (before - span).max(after);
        let mut ticks: Vec<Millis> = schedule
            .ticks_after(start)
            .take_while(|t| *t < before)
            .collect();
        if ticks.len() >= n || start == after {
            let skip = ticks.len().saturating_sub(n);
            ticks.drain(..skip);
            return ticks;
        }
        span = span.saturating_mul(8);
    }
}

/// The scheduler service. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    backend: Arc<dyn Backend>,
    clock: SharedClock,
    cfg: SchedulerConfig,
    /// Parsed expressions by (name, revision).
    parsed: Arc<std::sync::Mutex<HashMap<String, (u64, Schedule)>>>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").field("cfg", &self.cfg).finish()
    }
}

impl Scheduler {
    pub fn new(backend: Arc<dyn Backend>, clock: SharedClock, cfg: SchedulerConfig) -> Self {
        Scheduler {
            backend,
            clock,
            cfg,
            parsed: Default::default(),
        }
    }

    /// Starts the scheduler on the current tokio runtime until `stop` is cancelled: the one
    /// call a library user needs (a [`Worker`](crate::Worker) starts one itself).
    pub fn spawn(self, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.run(stop))
    }

    fn parsed(&self, s: &StoredSchedule) -> Option<Schedule> {
        let mut cache = self.parsed.lock().unwrap();
        if let Some((rev, sched)) = cache.get(&s.spec.name)
            && *rev == s.revision
        {
            return Some(sched.clone());
        }
        match s.spec.validate() {
            Ok(sched) => {
                cache.insert(s.spec.name.clone(), (s.revision, sched.clone()));
                Some(sched)
            }
            Err(e) => {
                tracing::error!(schedule = %s.spec.name, error = %e, "stored schedule is invalid; not firing it");
                None
            }
        }
    }

    /// One pass over every schedule: fires what is due. Returns what it did.
    pub async fn run_once(&self) -> Result<SchedulerTickReport> {
        let mut report = SchedulerTickReport::default();
        let schedules = self.backend.schedule_list().await?;
        {
            let mut cache = self.parsed.lock().unwrap();
            cache.retain(|name, _| schedules.iter().any(|s| &s.spec.name == name));
        }
        for s in schedules {
            let Some(sched) = self.parsed(&s) else {
                continue;
            };
            let now = self.clock.now_ms();
            let plan = fire_plan(&s, &sched, now, &self.cfg);
            let mut stopped = false;
            for tick in plan.ticks {
                match self.fire(&s, tick).await {
                    Ok(FireOutcome::Fired { .. }) => report.fired.push((s.spec.name.clone(), tick)),
                    Ok(FireOutcome::Skipped) => report.skipped.push((s.spec.name.clone(), tick)),
                    Ok(FireOutcome::AlreadyFired) => report.already_fired += 1,
                    // Changed, paused, ended or removed since the list was read: the next
                    // pass reads it again.
                    Ok(FireOutcome::Stale | FireOutcome::Paused | FireOutcome::Ended)
                    | Err(crate::Error::ScheduleNotFound(_)) => {
                        stopped = true;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(schedule = %s.spec.name, tick, error = %e, "cannot fire a tick; will retry");
                        stopped = true;
                        break;
                    }
                }
            }
            if !stopped {
                report.next_at = match (report.next_at, plan.next_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        Ok(report)
    }

    /// Fires one tick of `s`, applying its overlap policy first.
    async fn fire(&self, s: &StoredSchedule, tick: Millis) -> Result<FireOutcome> {
        let spec = &s.spec;
        let mut kind = RunKind::Scheduled;
        if spec.overlap != Overlap::Allow
            && let Some(prev) = s.last_job
        {
            // The stored `last_job` may be older than a fire this pass made; read it fresh.
            let last = self
                .backend
                .schedule_get(spec.name.as_str().into())
                .await?
                .and_then(|fresh| fresh.last_job)
                .unwrap_or(prev);
            let live = self
                .backend
                .job_get(last.into())
                .await?
                .is_some_and(|j| j.state.is_waiting() || j.state == crate::JobState::Running);
            if live {
                match spec.overlap {
                    Overlap::Skip => kind = RunKind::SkippedOverlap,
                    _ => {
                        let cancel = CancelParams {
                            id: last,
                            reason: Some(format!(
                                "cancelled by schedule {}: a new run started",
                                spec.name
                            )),
                        };
                        match self.backend.job_cancel(cancel).await {
                            Ok(_)
                            | Err(crate::Error::InvalidTransition { .. })
                            | Err(crate::Error::JobNotFound(_)) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        let job = match kind {
            RunKind::SkippedOverlap => None,
            _ => Some(
                spec.job
                    .build(&spec.name, tick, tick + spec.jitter_ms(tick))?,
            ),
        };
        self.backend
            .schedule_fire(ScheduleFireParams {
                name: spec.name.clone(),
                revision: s.revision,
                tick,
                kind,
                job,
            })
            .await
    }

    /// Runs passes until `stop` is cancelled, sleeping until the next tick to fire or the
    /// next refresh, whichever comes first.
    pub async fn run(self, stop: CancellationToken) {
        let refresh = self.cfg.refresh;
        loop {
            let wait = match self.run_once().await {
                Ok(report) => {
                    if !report.fired.is_empty() || !report.skipped.is_empty() {
                        tracing::debug!(
                            fired = report.fired.len(),
                            skipped = report.skipped.len(),
                            "scheduler pass"
                        );
                    }
                    let now = self.clock.now_ms();
                    report
                        .next_at
                        .map(|at| Duration::from_millis((at - now).max(0) as u64))
                        .map_or(refresh, |d| d.min(refresh))
                }
                Err(crate::Error::Unsupported(_)) => {
                    tracing::debug!("the store has no schedules; the scheduler stops");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler pass failed; retrying");
                    refresh
                }
            };
            if !super::pause(wait, &stop).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobTemplate, ScheduleSpec};

    const MIN: Millis = 60_000;
    /// 2026-01-05 00:00 UTC, a minute boundary.
    const T0: Millis = 1_767_571_200_000;

    fn stored(cron: &str, watermark: Millis) -> StoredSchedule {
        StoredSchedule {
            spec: ScheduleSpec::new("s", cron, JobTemplate::new("k")),
            paused: false,
            revision: 1,
            created_at: watermark,
            updated_at: watermark,
            watermark,
            runs: 0,
            last_tick: None,
            last_job: None,
        }
    }

    fn plan_at(s: &StoredSchedule, now: Millis) -> FirePlan {
        let sched = s.spec.validate().unwrap();
        fire_plan(s, &sched, now, &SchedulerConfig::default())
    }

    #[test]
    fn an_allow_schedule_fires_its_next_tick_ahead() {
        let s = stored("* * * * *", T0);
        // 10 s before the tick: not yet; fireable 5 s before it.
        let p = plan_at(&s, T0 + MIN - 10_000);
        assert_eq!(
            p,
            FirePlan {
                ticks: vec![],
                next_at: Some(T0 + MIN - 5_000)
            }
        );
        let p = plan_at(&s, T0 + MIN - 4_000);
        assert_eq!(p.ticks, vec![T0 + MIN]);
        assert_eq!(p.next_at, Some(T0 + 2 * MIN - 5_000));
    }

    #[test]
    fn a_skip_or_cancel_schedule_fires_at_the_tick() {
        for overlap in [Overlap::Skip, Overlap::CancelPrevious] {
            let mut s = stored("* * * * *", T0);
            s.spec.overlap = overlap;
            let p = plan_at(&s, T0 + MIN - 1);
            assert_eq!(
                p,
                FirePlan {
                    ticks: vec![],
                    next_at: Some(T0 + MIN)
                }
            );
            assert_eq!(plan_at(&s, T0 + MIN).ticks, vec![T0 + MIN]);
        }
    }

    #[test]
    fn a_tick_within_the_grace_is_on_time_for_every_policy() {
        for misfire in [
            Misfire::Skip,
            Misfire::RunOnce,
            Misfire::parse("run-all").unwrap(),
        ] {
            let mut s = stored("* * * * *", T0);
            s.spec.misfire = misfire;
            s.spec.overlap = Overlap::Skip;
            assert_eq!(
                plan_at(&s, T0 + MIN + 900).ticks,
                vec![T0 + MIN],
                "{misfire:?}"
            );
        }
    }

    #[test]
    fn run_once_fires_the_latest_missed_tick_once() {
        // Down for an hour, back 30 s after a tick.
        let s = stored("* * * * *", T0);
        let now = T0 + 60 * MIN + 30_000;
        let p = plan_at(&s, now);
        assert_eq!(p.ticks, vec![T0 + 60 * MIN]);
        assert_eq!(p.next_at, Some(T0 + 61 * MIN - 5_000));
    }

    #[test]
    fn run_once_adds_nothing_when_an_on_time_tick_is_due() {
        let mut s = stored("* * * * *", T0);
        s.spec.overlap = Overlap::Skip;
        let p = plan_at(&s, T0 + 60 * MIN + 200);
        assert_eq!(p.ticks, vec![T0 + 60 * MIN]);
    }

    #[test]
    fn skip_drops_the_missed_ticks() {
        let mut s = stored("* * * * *", T0);
        s.spec.misfire = Misfire::Skip;
        let p = plan_at(&s, T0 + 60 * MIN + 30_000);
        assert_eq!(
            p,
            FirePlan {
                ticks: vec![],
                next_at: Some(T0 + 61 * MIN - 5_000)
            }
        );
    }

    #[test]
    fn run_all_fires_the_latest_missed_ticks_within_its_window_and_max() {
        let mut s = stored("* * * * *", T0);
        s.spec.misfire = Misfire::RunAll {
            max: 3,
            window: Duration::from_secs(600),
        };
        let now = T0 + 60 * MIN + 30_000;
        assert_eq!(
            plan_at(&s, now).ticks,
            vec![T0 + 58 * MIN, T0 + 59 * MIN, T0 + 60 * MIN]
        );
        s.spec.misfire = Misfire::RunAll {
            max: 100,
            window: Duration::from_secs(300),
        };
        let want: Vec<Millis> = (56..=60).map(|m| T0 + m * MIN).collect();
        assert_eq!(plan_at(&s, now).ticks, want, "only the window");
        s.spec.misfire = Misfire::RunAll {
            max: 100,
            window: Duration::from_secs(86_400),
        };
        let want: Vec<Millis> = (1..=60).map(|m| T0 + m * MIN).collect();
        assert_eq!(
            plan_at(&s, now).ticks,
            want,
            "every missed tick, oldest first"
        );
    }

    #[test]
    fn a_long_outage_of_a_frequent_schedule_is_cheap_and_right() {
        // Every second, down for 30 days: one tick, found by the backward search.
        let s = stored("@every 1s", T0);
        let now = T0 + 30 * 86_400_000 + 500;
        let p = plan_at(&s, now);
        assert_eq!(
            p.ticks.len(),
            6,
            "the on-time tick and the lookahead: {p:?}"
        );
        assert_eq!(p.ticks[0], now - 500);
    }

    #[test]
    fn the_run_limit_and_end_stop_the_plan() {
        let mut s = stored("* * * * *", T0);
        s.spec.limit = Some(10);
        s.runs = 9;
        s.spec.misfire = Misfire::RunAll {
            max: 100,
            window: Duration::from_secs(86_400),
        };
        let p = plan_at(&s, T0 + 5 * MIN + 1_000);
        assert_eq!(
            p,
            FirePlan {
                ticks: vec![T0 + MIN],
                next_at: None
            }
        );
        s.runs = 10;
        assert_eq!(plan_at(&s, T0 + 5 * MIN), FirePlan::default());

        let mut s = stored("* * * * *", T0 + MIN);
        s.spec.end_at = Some(T0 + 2 * MIN);
        assert_eq!(plan_at(&s, T0 + 2 * MIN - 1_000).ticks, vec![T0 + 2 * MIN]);
        let mut after = s.clone();
        after.watermark = T0 + 2 * MIN;
        assert_eq!(plan_at(&after, T0 + 2 * MIN), FirePlan::default(), "ended");
    }

    #[test]
    fn nothing_fires_before_start_or_while_paused() {
        let mut s = stored("* * * * *", T0);
        s.spec.start_at = Some(T0 + 10 * MIN);
        let p = plan_at(&s, T0 + 30_000);
        assert_eq!(
            p,
            FirePlan {
                ticks: vec![],
                next_at: Some(T0 + 10 * MIN - 5_000)
            }
        );
        let mut paused = stored("* * * * *", T0);
        paused.paused = true;
        assert_eq!(plan_at(&paused, T0 + 10 * MIN), FirePlan::default());
    }

    #[test]
    fn jitter_does_not_move_the_tick() {
        let mut s = stored("* * * * *", T0);
        s.spec.jitter = Some(Duration::from_secs(30));
        assert_eq!(plan_at(&s, T0 + MIN - 4_000).ticks, vec![T0 + MIN]);
    }
}
