//! `quern backup`, `backup verify`, `restore`, `migrate` and `backup --sqlite` through the
//! built binary. The round trip SQLite → archive → Redis → archive → SQLite compares every
//! field of every job (jobs in every state, with dependencies, errors, results, progress,
//! checkpoints, unique keys, a workflow and a schedule with its history), written by the
//! library into the source store and read back by the library from the last one.

use std::sync::Arc;
use std::time::Duration;

use quern::backend::*;
use quern::model::{
    ErrorKind, JobTemplate, NewWorkflow, Progress, RunKind, ScheduleRun, ScheduleSpec,
    StoredSchedule, WorkflowRecord,
};
use quern::{Backend, Job, JobState, NewJob, Payload, SharedClock, SystemClock};

use crate::support::{Env, Store};

const LEASE: Duration = Duration::from_secs(300);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn open(url: &str) -> Arc<dyn Backend> {
    if url.starts_with("redis") {
        let clock: SharedClock = Arc::new(SystemClock);
        Arc::new(
            quern_redis::RedisBackend::connect(url, clock)
                .await
                .expect("redis"),
        )
    } else {
        Arc::new(
            quern_sqlite::SqliteBackend::open(url)
                .await
                .expect("sqlite"),
        )
    }
}

fn sqlite_url(env: &Env, name: &str) -> String {
    format!("sqlite://{}", env.path(name).display())
}

fn nj(kind: &str, queue: &str) -> NewJob {
    NewJob::json(kind, serde_json::json!({ "kind": kind, "n": [1, 2, 3] }))
        .unwrap()
        .queue(queue)
}

async fn claim(b: &dyn Backend, queue: &str, id: quern::JobId) -> ClaimedJob {
    let got = b
        .job_claim(ClaimParams {
            worker_id: "backup-test".into(),
            queues: vec![QueueWeight::new(queue, 1)],
            limit: 1,
            lease: LEASE,
            more_urgent_than: None,
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "claim {id}");
    assert_eq!(got[0].job.id, id, "claimed the wrong job");
    got.into_iter().next().unwrap()
}

async fn fail(b: &dyn Backend, c: &ClaimedJob, action: FailAction) {
    let r = b
        .job_fail(FailParams {
            items: vec![Failure {
                token: c.token.clone(),
                action,
                error_kind: ErrorKind::Retryable,
                message: "it broke\nbadly".into(),
                started_at: None,
            }],
        })
        .await
        .unwrap();
    r.into_iter().next().unwrap().unwrap();
}

/// Fills a store with jobs in every state and the other records an archive holds. Queues
/// are each job's own so the claims below take exactly the job meant.
async fn populate(b: &dyn Backend) {
    // A queue with limits (set before its first job).
    b.queue_update(quern::backend::QueueUpdateParams {
        queue: "limited".into(),
        concurrency: Some(Some(3)),
        rate: Some(Some("20/m".parse().unwrap())),
        ..Default::default()
    })
    .await
    .unwrap();
    let enq = async |j: NewJob| {
        b.job_enqueue(EnqueueParams {
            jobs: vec![j],
            mode: BatchMode::Atomic,
        })
        .await
        .unwrap()
        .remove(0)
        .unwrap()
        .id
    };
    // Queued, with a unique key, tags, meta, retry, timeout; and one in MessagePack.
    let mut plain = nj("plain", "q-plain")
        .unique("u-1", Some(Duration::from_secs(3600)))
        .timeout(Duration::from_secs(30))
        .retry(quern::RetryPolicy::Fixed {
            delay: Duration::from_secs(4),
        })
        .priority(quern::Priority::HIGH);
    plain.tags = vec!["a".into(), "b".into()];
    plain.meta = serde_json::json!({ "trace": "x" });
    plain.version = 3;
    let dep = enq(plain).await;
    let codec = quern::Codec {
        format: quern::model::Format::MsgPack,
        compress_above: 32,
        ..quern::Codec::default()
    };
    let mp = Payload::encode(&serde_json::json!({ "big": "y".repeat(400) }), &codec).unwrap();
    enq(NewJob::new("msgpack", mp).queue("q-plain")).await;
    // Scheduled in an hour; blocked on the queued one (another queue); all_done trigger.
    enq(nj("later", "q-sched").delay(Duration::from_secs(3600))).await;
    enq(nj("blocked", "q-blocked")
        .depends_on([dep])
        .trigger(quern::Trigger::AllDone))
    .await;
    // Succeeded with a result, progress and a checkpoint.
    let ok = enq(nj("ok", "q-ok").result_ttl(Duration::from_secs(7200))).await;
    let c = claim(b, "q-ok", ok).await;
    b.job_heartbeat(HeartbeatParams {
        items: vec![HeartbeatItem {
            token: c.token.clone(),
            progress: Some(Progress {
                percent: 60.0,
                message: Some("most".into()),
            }),
            checkpoint: Some(
                Payload::from_json_value(&serde_json::json!({"at": 6}), &Default::default())
                    .unwrap(),
            ),
        }],
        lease: LEASE,
    })
    .await
    .unwrap();
    b.job_complete(CompleteParams {
        items: vec![Completion {
            token: c.token.clone(),
            result: Some(
                Payload::from_json_value(&serde_json::json!({"rows": 9}), &Default::default())
                    .unwrap(),
            ),
            result_ttl: Some(Duration::from_secs(7200)),
            started_at: None,
        }],
    })
    .await
    .unwrap();
    // Dead after its last attempt; a retry waiting with an error; cancelled and its
    // dependent skipped; running (claimed, not finished).
    let dead = enq(nj("dead", "q-dead").max_attempts(1)).await;
    let c = claim(b, "q-dead", dead).await;
    fail(b, &c, FailAction::Dead).await;
    let retry = enq(nj("retry", "q-retry")).await;
    let c = claim(b, "q-retry", retry).await;
    fail(b, &c, FailAction::Retry { retry_at: None }).await;
    let cancelled = enq(nj("cancelled", "q-cancel")).await;
    enq(nj("skipped", "q-cancel").depends_on([cancelled])).await;
    b.job_cancel(CancelParams {
        id: cancelled,
        reason: None,
    })
    .await
    .unwrap();
    let running = enq(nj("running", "q-run")).await;
    claim(b, "q-run", running).await;
    // A workflow of two tasks.
    let t1 = nj("t1", "q-wf").workflow("wf-1");
    let t2 = nj("t2", "q-wf").workflow("wf-1").depends_on([t1.id]);
    b.workflow_create(WorkflowCreateParams {
        workflow: NewWorkflow {
            id: "wf-1".into(),
            name: "pipeline".into(),
            spec: serde_json::json!({ "name": "pipeline", "tasks": [] }),
            tasks: [("t1".to_string(), t1.id), ("t2".to_string(), t2.id)].into(),
        },
        jobs: vec![t1, t2],
    })
    .await
    .unwrap();
    // A schedule with one run, and a paused queue.
    let mut tpl = JobTemplate::new("tick");
    tpl.queue = "q-cron".into();
    let up = b
        .schedule_upsert(ScheduleUpsertParams {
            spec: ScheduleSpec::new("nightly", "0 3 * * *", tpl),
        })
        .await
        .unwrap();
    let s = up.schedule;
    let now = s.watermark;
    let job = s.spec.job.build("nightly", now + 1000, now + 1000).unwrap();
    b.schedule_fire(ScheduleFireParams {
        name: "nightly".into(),
        revision: s.revision,
        tick: now + 1000,
        kind: RunKind::Scheduled,
        job: Some(job),
    })
    .await
    .unwrap();
    b.queue_pause("q-dead".into()).await.unwrap();
    // Groups and trace context: a queued grouped job with a trace, a queued job of the
    // same queue in the "" group, and a grouped job that succeeded.
    let tc = quern::model::TraceContext {
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        tracestate: Some("vendor=x".into()),
    };
    let g_ok = enq(nj("grouped-ok", "q-group")
        .group("tenant-b")
        .trace(tc.clone()))
    .await;
    let c = claim(b, "q-group", g_ok).await;
    b.job_complete(CompleteParams {
        items: vec![Completion {
            token: c.token.clone(),
            result: None,
            result_ttl: None,
            started_at: None,
        }],
    })
    .await
    .unwrap();
    enq(nj("grouped", "q-group").group("tenant-a").trace(tc)).await;
    enq(nj("ungrouped", "q-group")).await;
}

/// Everything an archive holds, read through the library, in a fixed order.
#[derive(Debug, PartialEq)]
struct Dump {
    /// Name, paused, limits.
    queues: Vec<(String, bool, quern::model::QueueSettings)>,
    jobs: Vec<Job>,
    workflows: Vec<WorkflowRecord>,
    schedules: Vec<(StoredSchedule, Vec<ScheduleRun>)>,
}

async fn dump(b: &dyn Backend) -> Dump {
    let mut queues = Vec::new();
    for q in b.queue_list().await.unwrap() {
        let settings = b.queue_get((&q.name).into()).await.unwrap().settings;
        queues.push((q.name, q.paused, settings));
    }
    queues.sort_by(|a, b| a.0.cmp(&b.0));
    let mut jobs = b
        .job_list(ListParams {
            filter: JobFilter::default(),
            limit: 10_000,
            before: None,
        })
        .await
        .unwrap()
        .jobs;
    jobs.sort_by_key(|j| j.id);
    let workflows = b
        .workflow_list(WorkflowListParams {
            state: None,
            limit: 1000,
            before: None,
        })
        .await
        .unwrap()
        .workflows;
    let mut schedules = Vec::new();
    for s in b.schedule_list().await.unwrap() {
        let runs = b
            .schedule_runs(ScheduleRunsParams {
                name: s.spec.name.clone(),
                limit: 100,
            })
            .await
            .unwrap();
        schedules.push((s, runs));
    }
    Dump {
        queues,
        jobs,
        workflows,
        schedules,
    }
}

/// `after` holds every job of `before` field for field, except that a job running in
/// `before` is queued with its attempt counted and the lost attempt in its history.
fn assert_same_jobs(before: &[Job], after: &[Job]) {
    assert_eq!(before.len(), after.len(), "job count");
    for (b, a) in before.iter().zip(after) {
        if b.state == JobState::Running {
            let at = a
                .errors
                .last()
                .expect("a history entry for the lost attempt")
                .at;
            let want = import_image(b.clone(), at);
            assert_eq!(a, &want, "the running job {} as re-delivered", b.id);
            assert_eq!((a.state, a.attempt), (JobState::Queued, 1));
            assert_eq!(a.errors.last().unwrap().kind, ErrorKind::LeaseExpired);
        } else {
            assert_eq!(a, b, "job {} ({:?}) field for field", b.id, b.state);
        }
    }
}

#[test]
fn round_trip_sqlite_archive_redis_archive_sqlite_keeps_every_field() {
    let Some(redis) = Env::redis() else { return };
    let env = Env::new();
    let src = sqlite_url(&env, "src.db");
    let dst = sqlite_url(&env, "dst.db");
    let rt = rt();
    let before = rt.block_on(async {
        let b = open(&src).await;
        populate(b.as_ref()).await;
        dump(b.as_ref()).await
    });
    let states: std::collections::BTreeSet<String> = before
        .jobs
        .iter()
        .map(|j| format!("{:?}", j.state))
        .collect();
    assert_eq!(states.len(), 8, "every state is in the source: {states:?}");
    assert!(
        before
            .jobs
            .iter()
            .any(|j| j.result.is_some() && j.checkpoint.is_some())
    );
    assert!(before.jobs.iter().any(|j| !j.depends_on.is_empty()));
    assert!(
        before
            .jobs
            .iter()
            .any(|j| j.group.is_some() && j.trace.is_some() && j.state == JobState::Queued),
        "the source has a grouped job with trace context"
    );
    assert!(before.jobs.iter().any(|j| j.version == 3));

    let a1 = env.path("one.quern");
    let a2 = env.path("two.quern");
    let a1s = a1.to_str().unwrap();
    let a2s = a2.to_str().unwrap();
    let m = env.json(&["--store", &src, "backup", a1s]);
    assert_eq!(m["manifest"]["counts"]["jobs"], before.jobs.len());
    assert_eq!(m["manifest"]["counts"]["schedule_runs"], 1);
    env.ok(&["backup", "verify", a1s]);
    let restored = redis.json(&["restore", a1s]);
    assert_eq!(restored["jobs"], before.jobs.len());
    redis.ok(&["backup", a2s]);
    env.ok(&["backup", "verify", a2s]);
    env.json(&["--store", &dst, "restore", a2s]);

    let (on_redis, after) = rt.block_on(async {
        let r = open(&redis.store_url()).await;
        let d = open(&dst).await;
        (dump(r.as_ref()).await, dump(d.as_ref()).await)
    });
    assert_same_jobs(&before.jobs, &on_redis.jobs);
    assert_same_jobs(&before.jobs, &after.jobs);
    assert_eq!(
        on_redis.jobs, after.jobs,
        "Redis and the second SQLite agree"
    );
    assert!(
        before.queues.iter().any(|q| q.2.concurrency == Some(3)),
        "the source has a queue with limits"
    );
    assert_eq!(
        before.queues, after.queues,
        "queues, their paused flag and limits"
    );
    assert_eq!(before.queues, on_redis.queues);
    assert_eq!(before.workflows, after.workflows, "workflow records");
    assert_eq!(
        before.schedules, after.schedules,
        "schedules with their history"
    );
    assert_eq!(before.schedules, on_redis.schedules);
    // The restored stores work: the blocked job's dependency completes and it runs.
    let out = env.json(&["--store", &dst, "jobs", "list", "--state", "blocked"]);
    assert_eq!(out["jobs"].as_array().unwrap().len(), 2, "{out}");
    // Restored grouped jobs are claimable by group on both stores (the claim goes by group
    // once a queue has grouped jobs).
    for (name, url) in [("redis", redis.store_url()), ("sqlite", dst.clone())] {
        rt.block_on(async {
            let b = open(&url).await;
            let got = b
                .job_claim(ClaimParams {
                    worker_id: "backup-test".into(),
                    queues: vec![QueueWeight::new("q-group", 1)],
                    limit: 10,
                    lease: LEASE,
                    more_urgent_than: None,
                })
                .await
                .unwrap();
            let mut kinds: Vec<&str> = got.iter().map(|c| c.job.kind.as_str()).collect();
            kinds.sort();
            assert_eq!(
                kinds,
                ["grouped", "ungrouped"],
                "{name}: restored q-group claims"
            );
        });
    }
}

fn populated(env: &Env) {
    let url = env.store_url();
    let url = if env.store == Store::Sqlite {
        sqlite_url(env, "quern.db")
    } else {
        url
    };
    rt().block_on(async { populate(open(&url).await.as_ref()).await });
}

/// Backup, verify and restore into a fresh store of the same kind; a non-empty store is
/// refused, and --merge skips what is there and says so.
fn backup_verify_restore_and_merge(env: Env) {
    populated(&env);
    let file = env.path("all.quern");
    let f = file.to_str().unwrap();
    let m = env.json(&["backup", f]);
    let jobs = m["manifest"]["counts"]["jobs"].as_u64().unwrap();
    assert!(jobs >= 12, "{m}");
    assert!(!m["manifest"]["source"].as_str().unwrap().is_empty());
    let v = env.json(&["backup", "verify", f]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["manifest"]["counts"], m["manifest"]["counts"]);
    // Into the same (non-empty) store: refused, nothing changes.
    let err = env.fails(1, &["restore", f]);
    assert!(
        err.contains("not empty") && err.contains("--merge"),
        "{err}"
    );
    let again = env.json(&["restore", "--merge", f]);
    assert_eq!(again["jobs"], 0);
    assert_eq!(again["skipped"].as_array().unwrap().len() as u64, jobs + 2);
    let human = env.ok(&["restore", "--merge", f]);
    assert!(human.contains("skipped job "), "{human}");
    // Into a fresh store of the same kind.
    let fresh = if env.store == Store::Sqlite {
        Env::new()
    } else {
        Env::redis().unwrap()
    };
    let r = fresh.json(&["restore", f]);
    assert_eq!(r["jobs"].as_u64(), Some(jobs));
    assert_eq!(
        (r["workflows"].as_u64(), r["schedules"].as_u64()),
        (Some(1), Some(1))
    );
    let listed = fresh.jobs(&[]);
    assert_eq!(listed.len() as u64, jobs);
}

/// A damaged or cut-short archive fails verify (and restore) with the reason, exit 1.
fn verify_finds_damage(env: Env) {
    populated(&env);
    let file = env.path("all.quern");
    let f = file.to_str().unwrap();
    env.ok(&["backup", f]);
    let raw = zstd::decode_all(std::fs::File::open(&file).unwrap()).unwrap();
    let text = String::from_utf8(raw).unwrap();
    // One character of one job changed, recompressed: the checksum catches it.
    let tampered = text.replacen("\"kind\":\"plain\"", "\"kind\":\"plaiN\"", 1);
    assert_ne!(tampered, text);
    let bad = env.path("bad.quern");
    std::fs::write(&bad, zstd::encode_all(tampered.as_bytes(), 3).unwrap()).unwrap();
    let err = env.fails(1, &["backup", "verify", bad.to_str().unwrap()]);
    assert!(err.contains("checksum of the jobs section"), "{err}");
    // Cut short: no manifest.
    let cut: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
    std::fs::write(&bad, zstd::encode_all(cut.as_bytes(), 3).unwrap()).unwrap();
    let err = env.fails(1, &["backup", "verify", bad.to_str().unwrap()]);
    assert!(err.contains("cut short"), "{err}");
    // Truncated bytes of the compressed stream.
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    env.fails(1, &["backup", "verify", bad.to_str().unwrap()]);
    let fresh = Env::new();
    fresh.fails(1, &["restore", bad.to_str().unwrap()]);
    assert!(
        !fresh.path("quern.db").exists(),
        "a bad archive is refused before any store is touched"
    );
}

on_every_store!(backup_verify_restore_and_merge, verify_finds_damage);

/// `quern migrate` SQLite → Redis → SQLite while a job is running: it arrives queued with
/// its attempt counted; everything else is as it was.
#[test]
fn migrate_sqlite_to_redis_and_back() {
    let Some(redis) = Env::redis() else { return };
    let env = Env::new();
    let src = sqlite_url(&env, "src.db");
    let back = sqlite_url(&env, "back.db");
    let rt = rt();
    let before = rt.block_on(async {
        let b = open(&src).await;
        populate(b.as_ref()).await;
        dump(b.as_ref()).await
    });
    let to = redis.store_url();
    let out = env.json(&["migrate", "--from", &src, "--to", &to]);
    assert_eq!(out["jobs"], before.jobs.len());
    let err = env.fails(1, &["migrate", "--from", &src, "--to", &to]);
    assert!(err.contains("not empty"), "{err}");
    env.ok(&["migrate", "--from", &to, "--to", &back]);
    let after = rt.block_on(async { dump(open(&back).await.as_ref()).await });
    assert_same_jobs(&before.jobs, &after.jobs);
    assert_eq!(before.workflows, after.workflows);
    assert_eq!(before.schedules, after.schedules);
    assert_eq!(before.queues, after.queues);
}

/// `backup --sqlite` copies the file online while a worker drains, the copy passes the
/// integrity check and opens as a store; `--keep 2` keeps the newest two copies in a folder.
#[test]
fn sqlite_copy_while_a_worker_runs_and_keep() {
    let mut env = Env::new();
    let mut jobs = String::new();
    // 1000: the ids it prints fit in a pipe's buffer.
    for i in 0..1000 {
        jobs.push_str(&format!(
            "{{\"kind\":\"quern.noop\",\"payload\":{{\"i\":{i}}}}}\n"
        ));
    }
    std::fs::write(env.path("jobs.jsonl"), jobs).unwrap();
    env.ok(&["enqueue", "--batch", "jobs.jsonl"]);
    env.spawn(&["worker", "--concurrency", "4"]);
    let v = env.json(&["backup", "--sqlite", "copy.db"]);
    assert_eq!(v["integrity"], "ok");
    let n = env.json(&["--store", "sqlite://copy.db", "queues", "list"]);
    assert!(n.to_string().contains("default"), "{n}");
    std::fs::create_dir(env.path("copies")).unwrap();
    for _ in 0..3 {
        env.json(&["backup", "--sqlite", "copies", "--keep", "2"]);
    }
    std::fs::write(env.path("copies/notes.txt"), "mine").unwrap();
    let last = env.json(&["backup", "--sqlite", "copies", "--keep", "2"]);
    assert_eq!(last["kept"].as_array().unwrap().len(), 2, "{last}");
    let mut names: Vec<String> = std::fs::read_dir(env.path("copies"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        3,
        "two copies and the unrelated file: {names:?}"
    );
    assert!(names.contains(&"notes.txt".to_string()));
    let err = env.fails(2, &["backup", "--sqlite", "copy2.db", "--keep", "2"]);
    assert!(err.contains("folder"), "{err}");
}

#[test]
fn sqlite_copy_is_refused_on_redis() {
    let Some(env) = Env::redis() else { return };
    env.enqueue(&["quern.noop"]);
    let err = env.fails(2, &["backup", "--sqlite", "x.db"]);
    assert!(err.contains("SQLite"), "{err}");
}
