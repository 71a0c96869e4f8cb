//! Schedules as Redis stores them: a schedule lives in its template queue's slot, so a
//! change of that queue moves it (runs, watermark, `last_*` and history with it), and a move
//! that stopped half-way (a crash after its first step) is finished by the next read. The
//! shared conformance suite checks what every backend does; these check what only this
//! layout has. `queue_change_moves_the_schedule` also runs on the test cluster
//! (`cluster.rs`), where the two queues are in different slots.

use std::process::Command;
use std::time::Duration;

use quern::backend::{FireOutcome, ScheduleFireParams, ScheduleRunsParams, ScheduleUpsertParams};
use quern::model::{JobTemplate, RunKind, ScheduleSpec, StoredSchedule};
use quern::{Backend, Clock, JobState, ManualClock, Millis};
use quern_redis::RedisBackend;

use crate::common;

fn spec(queue: &str) -> ScheduleSpec {
    let mut job = JobTemplate::new("tick");
    job.queue = queue.into();
    ScheduleSpec::new("nightly", "* * * * *", job)
}

async fn fire(b: &RedisBackend, s: &StoredSchedule, tick: Millis) -> FireOutcome {
    let job = s.spec.job.build(&s.spec.name, tick, tick).unwrap();
    b.schedule_fire(ScheduleFireParams {
        name: s.spec.name.clone(),
        revision: s.revision,
        tick,
        kind: RunKind::Scheduled,
        job: Some(job),
    })
    .await
    .unwrap()
}

fn fired(out: FireOutcome) -> quern::JobId {
    match out {
        FireOutcome::Fired { job_id, .. } => job_id,
        other => panic!("expected Fired, got {other:?}"),
    }
}

/// Upserting the template into another queue keeps the schedule's run state and history and
/// bumps its revision; a fire computed before the change is `Stale` (not a refusal of its
/// job, which is in the old queue); the next tick fires into the new queue; deleting leaves
/// nothing under either queue.
pub async fn queue_change_moves_the_schedule(b: &RedisBackend, clock: &ManualClock) {
    let first = b
        .schedule_upsert(ScheduleUpsertParams {
            spec: spec("cron-a"),
        })
        .await
        .unwrap()
        .schedule;
    let t = (clock.now_ms() / 60_000 + 1) * 60_000;
    let id = fired(fire(b, &first, t).await);
    clock.advance(Duration::from_secs(120));
    let up = b
        .schedule_upsert(ScheduleUpsertParams {
            spec: spec("cron-b"),
        })
        .await
        .unwrap();
    assert!(!up.created && up.changed, "{up:?}");
    let moved = up.schedule;
    assert_eq!(moved.spec.job.queue, "cron-b");
    assert_eq!(moved.revision, 2);
    assert_eq!(
        (moved.runs, moved.last_tick, moved.last_job, moved.watermark),
        (1, Some(t), Some(id), clock.now_ms()),
        "run state moved"
    );
    assert_eq!(moved.created_at, first.created_at);
    assert_eq!(
        b.schedule_get("nightly".into()).await.unwrap(),
        Some(moved.clone())
    );
    let runs = b
        .schedule_runs(ScheduleRunsParams {
            name: "nightly".into(),
            limit: 10,
        })
        .await
        .unwrap();
    assert_eq!(
        runs.iter().map(|r| (r.tick, r.job_id)).collect::<Vec<_>>(),
        vec![(t, Some(id))],
        "history moved"
    );
    assert_eq!(fire(b, &first, t + 180_000).await, FireOutcome::Stale);
    let next = (clock.now_ms() / 60_000 + 1) * 60_000;
    let id2 = fired(fire(b, &moved, next).await);
    let job = b.job_get(id2.into()).await.unwrap().unwrap();
    assert_eq!(
        (job.queue.as_str(), job.state),
        ("cron-b", JobState::Scheduled)
    );
    // Upserting the same spec again is no change, and there is one schedule.
    let again = b
        .schedule_upsert(ScheduleUpsertParams {
            spec: spec("cron-b"),
        })
        .await
        .unwrap();
    assert!(!again.changed, "{again:?}");
    assert_eq!(b.schedule_list().await.unwrap().len(), 1);
    // And back: the old slot's keys are gone, so it starts from the moved state.
    let back = b
        .schedule_upsert(ScheduleUpsertParams {
            spec: spec("cron-a"),
        })
        .await
        .unwrap()
        .schedule;
    assert_eq!((back.revision, back.runs), (3, 2));
    let gone = b.schedule_delete("nightly".into()).await.unwrap().unwrap();
    assert_eq!(gone.spec.job.queue, "cron-a");
    assert_eq!(b.schedule_get("nightly".into()).await.unwrap(), None);
    assert!(b.schedule_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_queue_change_moves_the_schedule() {
    let clock = ManualClock::new(1_795_000_000_000);
    let Some(b) = common::connect(clock.clone()).await else {
        return;
    };
    let _cleanup = common::Cleanup(b.clone());
    queue_change_moves_the_schedule(&b, &clock).await;
    // Nothing is left under either queue's tag but the jobs.
    let left = cli(&["--scan", "--pattern", &format!("{}:*}}:cron*", b.prefix())]);
    assert_eq!(
        left.iter().filter(|k| !k.ends_with(":{#}:cronqs")).count(),
        0,
        "{left:?}"
    );
}

/// Runs `redis-cli` against the test Redis and returns its output lines.
fn cli(args: &[&str]) -> Vec<String> {
    let out = Command::new("redis-cli")
        .arg("-u")
        .arg(common::redis_url())
        .args(args)
        .output()
        .expect("redis-cli runs");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A move that stopped after its first step (the old copy marked as moving, the index still
/// naming the old queue) refuses fires as `Stale`, and the next read finishes it: the
/// schedule is found in the new queue with its runs, and the old copy is gone.
#[tokio::test]
async fn a_move_cut_short_is_finished_by_the_next_read() {
    let clock = ManualClock::new(1_795_000_000_000);
    let Some(b) = common::connect(clock.clone()).await else {
        return;
    };
    let _cleanup = common::Cleanup(b.clone());
    let s = b
        .schedule_upsert(ScheduleUpsertParams {
            spec: spec("cron-a"),
        })
        .await
        .unwrap()
        .schedule;
    let t = (clock.now_ms() / 60_000 + 1) * 60_000;
    let id = fired(fire(&b, &s, t).await);
    // What `cron_fence.lua` leaves: the mark on the old copy, nothing else.
    let old = format!("{}:{{cron-a}}:cron:nightly", b.prefix());
    let new_spec = serde_json::to_string(&spec("cron-b")).unwrap();
    cli(&["HSET", &old, "mv", "cron-b", "mvs", &new_spec, "mk", "t0"]);
    assert_eq!(fire(&b, &s, t + 60_000).await, FireOutcome::Stale);
    let got = b.schedule_get("nightly".into()).await.unwrap().unwrap();
    assert_eq!(got.spec.job.queue, "cron-b");
    assert_eq!((got.revision, got.runs, got.last_job), (2, 1, Some(id)));
    assert_eq!(cli(&["EXISTS", &old]), vec!["0"], "old copy deleted");
    let idx = format!("{}:{{#}}:cron", b.prefix());
    assert_eq!(cli(&["HGET", &idx, "nightly"]), vec!["cron-b"]);
    fired(fire(&b, &got, t + 60_000).await);
}
