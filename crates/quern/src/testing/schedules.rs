//! Recurring schedules in the store: upsert (idempotent for the same spec), get, list,
//! delete, pause and resume, and `schedule_fire`, the one atomic decision that makes a tick
//! enqueue exactly one job however many schedulers race, with its run history.

use std::time::Duration;

use super::*;
use crate::backend::{
    FireOutcome, ScheduleFireParams, ScheduleRunsParams, ScheduleUpsertParams, ScheduleUpserted,
};
use crate::model::{
    JobId, JobState, JobTemplate, NewJob, RunKind, ScheduleRun, ScheduleSpec, StoredSchedule,
};
use crate::{Error, Millis};

/// `true` (after a SKIP line) when the backend has no schedules.
fn lacks_schedules(h: &Harness) -> bool {
    h.lacks("schedules", h.caps().schedules)
}

/// A minutely schedule named `name` enqueueing `tick` jobs into `"cron"`.
fn spec(name: &str) -> ScheduleSpec {
    let mut job = JobTemplate::new("tick");
    job.queue = "cron".into();
    job.payload = serde_json::json!({ "report": name });
    ScheduleSpec::new(name, "* * * * *", job)
}

async fn upsert(h: &Harness, spec: ScheduleSpec) -> ScheduleUpserted {
    h.backend
        .schedule_upsert(ScheduleUpsertParams { spec })
        .await
        .unwrap_or_else(|e| panic!("{}: schedule_upsert: {e}", h.case))
}

async fn get(h: &Harness, name: &str) -> StoredSchedule {
    h.backend
        .schedule_get(name.into())
        .await
        .unwrap_or_else(|e| panic!("{}: schedule_get: {e}", h.case))
        .unwrap_or_else(|| panic!("{}: schedule {name} is missing", h.case))
}

async fn runs(h: &Harness, name: &str) -> Vec<ScheduleRun> {
    h.backend
        .schedule_runs(ScheduleRunsParams {
            name: name.into(),
            limit: 1000,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: schedule_runs: {e}", h.case))
}

/// The job of `tick` as the scheduler builds it.
fn tick_job(s: &StoredSchedule, tick: Millis) -> NewJob {
    s.spec
        .job
        .build(&s.spec.name, tick, tick + s.spec.jitter_ms(tick))
        .unwrap()
}

/// Fires a scheduled tick of `s` (at the revision `s` was read at) with its job.
async fn fire(h: &Harness, s: &StoredSchedule, tick: Millis) -> FireOutcome {
    try_fire(h, s, tick, RunKind::Scheduled, Some(tick_job(s, tick)))
        .await
        .unwrap_or_else(|e| panic!("{}: schedule_fire at {tick}: {e}", h.case))
}

async fn try_fire(
    h: &Harness,
    s: &StoredSchedule,
    tick: Millis,
    kind: RunKind,
    job: Option<NewJob>,
) -> crate::Result<FireOutcome> {
    h.backend
        .schedule_fire(ScheduleFireParams {
            name: s.spec.name.clone(),
            revision: s.revision,
            tick,
            kind,
            job,
        })
        .await
}

fn fired_id(h: &Harness, outcome: &FireOutcome) -> JobId {
    match outcome {
        FireOutcome::Fired { job_id, .. } => *job_id,
        other => panic!("{}: expected Fired, got {other:?}", h.case),
    }
}

/// How many jobs the `"cron"` queue holds (0 if it was never used).
async fn cron_jobs(h: &Harness) -> u64 {
    let queues = h.backend.queue_list().await.unwrap();
    queues
        .iter()
        .find(|q| q.name == "cron")
        .map_or(0, |q| q.counts.total())
}

/// The first minute boundary after now.
fn next_minute(h: &Harness) -> Millis {
    (h.now() / 60_000 + 1) * 60_000
}

/// A new schedule is stored at revision 1, unpaused, with its watermark at the store's now
/// and no runs; it reads back as returned.
pub async fn upsert_stores_and_get_reads_back(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let up = upsert(&h, spec("a")).await;
    assert!(up.created && up.changed, "{}: created: {up:?}", h.case);
    let s = up.schedule;
    assert_eq!(s.spec, spec("a"), "{}: spec", h.case);
    assert_eq!(
        (s.paused, s.revision, s.runs, s.last_tick, s.last_job),
        (false, 1, 0, None, None),
        "{}: fresh state",
        h.case
    );
    assert_eq!(
        (s.watermark, s.created_at, s.updated_at),
        (h.now(), h.now(), h.now()),
        "{}: times",
        h.case
    );
    assert_eq!(
        get(&h, "a").await,
        s,
        "{}: get returns the stored one",
        h.case
    );
    assert_eq!(
        h.backend.schedule_get("nope".into()).await.unwrap(),
        None,
        "{}: unknown name",
        h.case
    );
}

/// Upserting the spec already stored changes nothing, not even the revision or
/// `updated_at` (every process applies its `quern.toml` on start).
pub async fn upsert_of_the_same_spec_changes_nothing(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let first = upsert(&h, spec("a")).await.schedule;
    h.advance(Duration::from_secs(90));
    let again = upsert(&h, spec("a")).await;
    assert!(!again.created && !again.changed, "{}: {again:?}", h.case);
    assert_eq!(again.schedule, first, "{}: unchanged", h.case);
    assert_eq!(get(&h, "a").await, first, "{}: stored unchanged", h.case);
}

/// A changed spec replaces the stored one: revision + 1, watermark moved to now (ticks of
/// the old spec never fire late under the new one), runs and history kept.
pub async fn upsert_of_a_changed_spec_bumps_the_revision(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let s = upsert(&h, spec("a")).await.schedule;
    let tick = next_minute(&h);
    let id = fired_id(&h, &fire(&h, &s, tick).await);
    h.advance_to(tick + 5 * 60_000);
    let mut changed = spec("a");
    changed.cron = "*/5 * * * *".into();
    changed.tz = "Europe/Berlin".into();
    let up = upsert(&h, changed.clone()).await;
    assert!(!up.created && up.changed, "{}: {up:?}", h.case);
    let s2 = up.schedule;
    assert_eq!(s2.spec, changed, "{}: new spec", h.case);
    assert_eq!(s2.revision, 2, "{}: revision", h.case);
    assert_eq!(s2.watermark, h.now(), "{}: watermark moved to now", h.case);
    assert_eq!(s2.updated_at, h.now(), "{}: updated_at", h.case);
    assert_eq!(s2.created_at, s.created_at, "{}: created_at kept", h.case);
    assert_eq!(
        (s2.runs, s2.last_tick, s2.last_job),
        (1, Some(tick), Some(id)),
        "{}: run state kept",
        h.case
    );
    assert_eq!(runs(&h, "a").await.len(), 1, "{}: history kept", h.case);
}

/// An invalid spec (bad expression, unknown zone, bad queue, bad name) is refused naming the
/// field, and stores nothing: no new schedule, and an existing one is left as it was.
pub async fn invalid_spec_is_refused_and_stores_nothing(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let stored = upsert(&h, spec("a")).await.schedule;
    let mut bad_cron = spec("a");
    bad_cron.cron = "61 * * * *".into();
    let mut bad_tz = spec("b");
    bad_tz.tz = "Mars/Olympus".into();
    let mut bad_queue = spec("c");
    bad_queue.job.queue = "{no}".into();
    let mut bad_name = spec("d");
    bad_name.name = "no spaces".into();
    for (bad, field) in [
        (bad_cron, "cron"),
        (bad_tz, "tz"),
        (bad_queue, "job.queue"),
        (bad_name, "name"),
    ] {
        let res = h
            .backend
            .schedule_upsert(ScheduleUpsertParams { spec: bad })
            .await;
        expect_err!(h, res, Error::InvalidArgument(ref m) if m.starts_with(field), field);
    }
    assert_eq!(
        get(&h, "a").await,
        stored,
        "{}: existing one unchanged",
        h.case
    );
    let names: Vec<String> = h
        .backend
        .schedule_list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.spec.name)
        .collect();
    assert_eq!(
        names,
        vec!["a".to_string()],
        "{}: nothing else stored",
        h.case
    );
}

/// `schedule_list` returns every schedule, ordered by name.
pub async fn list_is_ordered_by_name(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    for name in ["m", "b", "z", "a"] {
        let mut s = spec(name);
        s.job.queue = format!("q-{name}");
        upsert(&h, s).await;
    }
    let names: Vec<String> = h
        .backend
        .schedule_list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.spec.name)
        .collect();
    assert_eq!(names, ["a", "b", "m", "z"], "{}", h.case);
}

/// Delete returns the schedule as it was and removes it and its history; its jobs stay.
/// Deleting again (or an unknown name) returns `None`.
pub async fn delete_removes_the_schedule_and_its_history(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let s = upsert(&h, spec("a")).await.schedule;
    let tick = next_minute(&h);
    let id = fired_id(&h, &fire(&h, &s, tick).await);
    let gone = h.backend.schedule_delete("a".into()).await.unwrap();
    assert_eq!(
        gone.map(|g| g.last_job),
        Some(Some(id)),
        "{}: returns it as it was",
        h.case
    );
    assert_eq!(h.backend.schedule_get("a".into()).await.unwrap(), None);
    expect_err!(
        h,
        h.backend
            .schedule_runs(ScheduleRunsParams {
                name: "a".into(),
                limit: 10
            })
            .await,
        Error::ScheduleNotFound(_),
        "history of a deleted schedule"
    );
    assert_eq!(
        h.backend.schedule_delete("a".into()).await.unwrap(),
        None,
        "{}: second delete",
        h.case
    );
    h.assert_state(id, JobState::Scheduled, "the tick's job stays")
        .await;
    // The name is free again: a new schedule starts from scratch.
    let again = upsert(&h, spec("a")).await;
    assert!(again.created, "{}: recreated", h.case);
    assert_eq!(again.schedule.runs, 0, "{}: fresh runs", h.case);
    assert!(runs(&h, "a").await.is_empty(), "{}: fresh history", h.case);
}

/// A tick after the watermark fires: its job is stored (scheduled for the tick) and the
/// schedule records it. The same tick again, or an earlier one, is `AlreadyFired` and stores
/// no second job.
pub async fn a_tick_fires_once(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let s = upsert(&h, spec("a")).await.schedule;
    let tick = next_minute(&h);
    let id = fired_id(&h, &fire(&h, &s, tick).await);
    let job = h.get(id).await;
    assert_eq!(
        (job.state, job.run_at, job.queue.as_str(), job.kind.as_str()),
        (JobState::Scheduled, tick, "cron", "tick"),
        "{}: the tick's job",
        h.case
    );
    assert_eq!(job.meta["cron"]["schedule"], "a", "{}: meta", h.case);
    let after = get(&h, "a").await;
    assert_eq!(
        (after.watermark, after.runs, after.last_tick, after.last_job),
        (tick, 1, Some(tick), Some(id)),
        "{}: recorded",
        h.case
    );
    assert_eq!(
        after.revision, s.revision,
        "{}: a fire is not a change",
        h.case
    );
    for again in [tick, tick - 60_000] {
        let out = fire(&h, &s, again).await;
        assert_eq!(
            out,
            FireOutcome::AlreadyFired,
            "{}: tick {again} again",
            h.case
        );
    }
    assert_eq!(cron_jobs(&h).await, 1, "{}: one job", h.case);
    let history = runs(&h, "a").await;
    assert_eq!(
        history,
        vec![ScheduleRun {
            tick,
            fired_at: h.now(),
            kind: RunKind::Scheduled,
            job_id: Some(id),
        }],
        "{}: history",
        h.case
    );
}

/// Sixteen schedulers firing the same tick at once store exactly one job.
pub async fn concurrent_fires_of_one_tick_store_one_job(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let s = upsert(&h, spec("a")).await.schedule;
    let tick = next_minute(&h);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (h, s) = (h.clone(), s.clone());
        tasks.push(tokio::spawn(async move { fire(&h, &s, tick).await }));
    }
    let mut fired = 0;
    for t in tasks {
        match t.await.unwrap() {
            FireOutcome::Fired { .. } => fired += 1,
            FireOutcome::AlreadyFired => {}
            other => panic!("{}: unexpected {other:?}", h.case),
        }
    }
    assert_eq!(fired, 1, "{}: one fire wins", h.case);
    assert_eq!(cron_jobs(&h).await, 1, "{}: one job", h.case);
    assert_eq!(runs(&h, "a").await.len(), 1, "{}: one run", h.case);
}

/// A fire computed from an old revision is `Stale` and stores nothing.
pub async fn fire_of_an_old_revision_is_stale(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let old = upsert(&h, spec("a")).await.schedule;
    let mut changed = spec("a");
    changed.cron = "0 * * * *".into();
    upsert(&h, changed).await;
    let out = fire(&h, &old, next_minute(&h)).await;
    assert_eq!(out, FireOutcome::Stale, "{}", h.case);
    assert!(runs(&h, "a").await.is_empty(), "{}: no run", h.case);
    h.claim_none("cron", "no job").await;
    assert_eq!(cron_jobs(&h).await, 0, "{}: no job", h.case);
}

/// A paused schedule does not fire; resuming moves the watermark to now, so ticks that
/// passed while it was paused never fire. Pausing twice is one change; unknown names are
/// `ScheduleNotFound`.
pub async fn pause_stops_fires_and_resume_skips_the_paused_ticks(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    upsert(&h, spec("a")).await;
    let paused = h.backend.schedule_pause("a".into()).await.unwrap();
    assert!(paused.paused, "{}: paused", h.case);
    assert_eq!(paused.revision, 2, "{}: a change", h.case);
    let twice = h.backend.schedule_pause("a".into()).await.unwrap();
    assert_eq!(twice.revision, 2, "{}: pausing again is no change", h.case);
    let tick = next_minute(&h);
    assert_eq!(
        fire(&h, &paused, tick).await,
        FireOutcome::Paused,
        "{}",
        h.case
    );
    h.advance_to(tick + 10 * 60_000);
    let resumed = h.backend.schedule_resume("a".into()).await.unwrap();
    assert!(!resumed.paused, "{}: resumed", h.case);
    assert_eq!(resumed.revision, 3, "{}: a change", h.case);
    assert_eq!(resumed.watermark, h.now(), "{}: watermark is now", h.case);
    assert_eq!(
        fire(&h, &resumed, tick + 60_000).await,
        FireOutcome::AlreadyFired,
        "{}: a tick from the pause",
        h.case
    );
    let next = next_minute(&h);
    fired_id(&h, &fire(&h, &resumed, next).await);
    for res in [
        h.backend.schedule_pause("nope".into()).await,
        h.backend.schedule_resume("nope".into()).await,
    ] {
        expect_err!(h, res, Error::ScheduleNotFound(ref n) if n == "nope", "unknown name");
    }
}

/// With `limit = 2`, the third tick is `Ended`.
pub async fn the_run_limit_ends_the_schedule(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let mut sp = spec("a");
    sp.limit = Some(2);
    let s = upsert(&h, sp).await.schedule;
    let t = next_minute(&h);
    fired_id(&h, &fire(&h, &s, t).await);
    fired_id(&h, &fire(&h, &s, t + 60_000).await);
    assert_eq!(
        fire(&h, &s, t + 120_000).await,
        FireOutcome::Ended,
        "{}",
        h.case
    );
    assert_eq!(get(&h, "a").await.runs, 2, "{}: two runs", h.case);
    assert_eq!(cron_jobs(&h).await, 2, "{}: two jobs", h.case);
}

/// A tick skipped for overlap is recorded without a job: the watermark and `runs` move,
/// `last_job` still names the previous run's job.
pub async fn a_skipped_tick_is_recorded_without_a_job(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let s = upsert(&h, spec("a")).await.schedule;
    let t = next_minute(&h);
    let id = fired_id(&h, &fire(&h, &s, t).await);
    let out = try_fire(&h, &s, t + 60_000, RunKind::SkippedOverlap, None)
        .await
        .unwrap();
    assert_eq!(out, FireOutcome::Skipped, "{}", h.case);
    let after = get(&h, "a").await;
    assert_eq!(
        (after.watermark, after.runs, after.last_tick, after.last_job),
        (t + 60_000, 2, Some(t + 60_000), Some(id)),
        "{}: recorded",
        h.case
    );
    let kinds: Vec<(Millis, RunKind, Option<JobId>)> = runs(&h, "a")
        .await
        .into_iter()
        .map(|r| (r.tick, r.kind, r.job_id))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (t + 60_000, RunKind::SkippedOverlap, None),
            (t, RunKind::Scheduled, Some(id))
        ],
        "{}: history, newest first",
        h.case
    );
    assert_eq!(cron_jobs(&h).await, 1, "{}: one job", h.case);
}

/// A manual run enqueues a job even while paused and at an old revision, and moves neither
/// the watermark, `runs` nor `last_*`; the history shows it as manual.
pub async fn a_manual_run_moves_nothing(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let old = upsert(&h, spec("a")).await.schedule;
    let paused = h.backend.schedule_pause("a".into()).await.unwrap();
    let now = h.now();
    let mut job = tick_job(&old, now);
    job.run_at = None;
    let id = fired_id(
        &h,
        &try_fire(&h, &old, now, RunKind::Manual, Some(job))
            .await
            .unwrap(),
    );
    h.assert_state(id, JobState::Queued, "manual job runs now")
        .await;
    assert_eq!(get(&h, "a").await, paused, "{}: nothing moved", h.case);
    let history = runs(&h, "a").await;
    assert_eq!(
        history
            .iter()
            .map(|r| (r.kind, r.job_id))
            .collect::<Vec<_>>(),
        vec![(RunKind::Manual, Some(id))],
        "{}",
        h.case
    );
}

/// With a unique key in the template, a tick while the previous tick's job is still live
/// records that job as a duplicate instead of storing another.
pub async fn a_held_unique_key_records_a_duplicate(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let mut sp = spec("a");
    sp.job.unique_key = Some("only-one".into());
    let s = upsert(&h, sp).await.schedule;
    let t = next_minute(&h);
    let first = fired_id(&h, &fire(&h, &s, t).await);
    let out = fire(&h, &s, t + 60_000).await;
    assert_eq!(
        out,
        FireOutcome::Fired {
            job_id: first,
            duplicate: true
        },
        "{}",
        h.case
    );
    let newest = runs(&h, "a").await.remove(0);
    assert_eq!(
        (newest.kind, newest.job_id),
        (RunKind::Duplicate, Some(first)),
        "{}",
        h.case
    );
    assert_eq!(cron_jobs(&h).await, 1, "{}: one job", h.case);
}

/// The history keeps the latest `ScheduleRun::HISTORY` runs, newest first, and honours the
/// limit asked for.
pub async fn history_is_newest_first_and_capped(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let s = upsert(&h, spec("a")).await.schedule;
    let t0 = next_minute(&h);
    let n = ScheduleRun::HISTORY + 5;
    for i in 0..n {
        fired_id(&h, &fire(&h, &s, t0 + i as Millis * 60_000).await);
    }
    let all = runs(&h, "a").await;
    assert_eq!(all.len(), ScheduleRun::HISTORY, "{}: capped", h.case);
    let ticks: Vec<Millis> = all.iter().map(|r| r.tick).collect();
    let want: Vec<Millis> = (5..n).rev().map(|i| t0 + i as Millis * 60_000).collect();
    assert_eq!(ticks, want, "{}: newest first", h.case);
    let three = h
        .backend
        .schedule_runs(ScheduleRunsParams {
            name: "a".into(),
            limit: 3,
        })
        .await
        .unwrap();
    assert_eq!(three, all[..3].to_vec(), "{}: limit", h.case);
    assert_eq!(
        get(&h, "a").await.runs,
        n as u64,
        "{}: runs count all",
        h.case
    );
}

/// Firing or reading the history of an unknown schedule is `ScheduleNotFound`; a job that
/// is invalid, or not in the template's queue, is refused and records nothing.
pub async fn bad_fires_are_refused_and_record_nothing(h: Harness) {
    if lacks_schedules(&h) {
        return;
    }
    let s = upsert(&h, spec("a")).await.schedule;
    let t = next_minute(&h);
    let mut ghost = s.clone();
    ghost.spec.name = "ghost".into();
    expect_err!(
        h,
        try_fire(&h, &ghost, t, RunKind::Scheduled, Some(tick_job(&s, t))).await,
        Error::ScheduleNotFound(ref n) if n == "ghost",
        "unknown schedule"
    );
    let mut invalid = tick_job(&s, t);
    invalid.max_attempts = 0;
    let res = try_fire(&h, &s, t, RunKind::Scheduled, Some(invalid)).await;
    expect_err!(h, res, Error::InvalidJob { .. }, "invalid job");
    let mut elsewhere = tick_job(&s, t);
    elsewhere.queue = "other".into();
    let res = try_fire(&h, &s, t, RunKind::Scheduled, Some(elsewhere)).await;
    expect_err!(
        h,
        res,
        Error::InvalidArgument(_),
        "job outside the template's queue"
    );
    let res = try_fire(&h, &s, t, RunKind::Scheduled, None).await;
    expect_err!(
        h,
        res,
        Error::InvalidArgument(_),
        "a scheduled run without a job"
    );
    assert_eq!(get(&h, "a").await, s, "{}: nothing moved", h.case);
    assert!(runs(&h, "a").await.is_empty(), "{}: no run", h.case);
    // The tick still fires afterwards.
    fired_id(&h, &fire(&h, &s, t).await);
}
