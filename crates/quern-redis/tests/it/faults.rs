//! Fault tests with real processes: Redis restarted mid-drain (AOF on), a worker killed
//! with SIGKILL mid-drain, and a primary killed after `durability=replicated` enqueues.
//! Real time and short leases (~1 s); every wait is bounded.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quern::backend::*;
use quern::{Backend, JobId, JobState, NewJob, SharedClock, SystemClock};
use quern_redis::RedisBackend;

use crate::common::{self, random_prefix, with_prefix};
use crate::procs::{RedisProc, redis_server_available};

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

fn jobs(queue: &str, n: usize, from: usize) -> Vec<NewJob> {
    (from..from + n)
        .map(|i| {
            NewJob::json("fault", serde_json::json!({ "n": i }))
                .unwrap()
                .queue(queue)
        })
        .collect()
}

async fn enqueue_all(b: &RedisBackend, queue: &str, total: usize) {
    for start in (0..total).step_by(1000) {
        let r = b
            .job_enqueue(EnqueueParams {
                jobs: jobs(queue, 1000.min(total - start), start),
                mode: BatchMode::Atomic,
            })
            .await
            .expect("enqueue");
        assert!(r.iter().all(|o| o.is_ok()));
    }
}

/// A worker loop over the backend: claims batches, completes them, waits when idle, and
/// keeps going through errors (Redis restarting) until `stop` is set. Counts completions.
async fn drain_loop(
    b: Arc<RedisBackend>,
    queue: String,
    name: String,
    lease: Duration,
    done: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let weights = vec![QueueWeight::new(queue.clone(), 1)];
    while !stop.load(Ordering::Relaxed) {
        let claimed = match b
            .job_claim(ClaimParams {
                worker_id: name.clone(),
                queues: weights.clone(),
                limit: 32,
                lease,
                more_urgent_than: None,
            })
            .await
        {
            Ok(c) => c,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if claimed.is_empty() {
            let _ = b
                .work_wait(WaitParams {
                    queues: vec![queue.clone()],
                    timeout: Duration::from_millis(200),
                    more_urgent_than: None,
                })
                .await;
            continue;
        }
        let items = claimed
            .into_iter()
            .map(|c| Completion {
                token: c.token,
                result: None,
                result_ttl: None,
                started_at: None,
            })
            .collect();
        if let Ok(r) = b.job_complete(CompleteParams { items }).await {
            done.fetch_add(
                r.iter().filter(|x| x.is_ok()).count() as u64,
                Ordering::Relaxed,
            );
        }
    }
}

/// Rescues expired leases every 200 ms until `stop`; counts rescued jobs.
async fn rescue_loop(b: Arc<RedisBackend>, rescued: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(r) = b
            .lease_rescue(RescueParams {
                limit: 1000,
                ..Default::default()
            })
            .await
        {
            rescued.fetch_add(r.requeued.len() as u64, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls until every job of `queue` succeeded (or panics after `within`).
async fn wait_all_succeeded(b: &RedisBackend, queue: &str, total: u64, within: Duration) {
    let start = Instant::now();
    loop {
        if let Ok(s) = b.queue_stats(queue.into()).await {
            assert_eq!(
                s.counts.dead + s.counts.cancelled + s.counts.skipped,
                0,
                "no job may fail: {:?}",
                s.counts
            );
            if s.counts.succeeded == total {
                assert_eq!(
                    s.counts.total(),
                    total,
                    "no job lost or added: {:?}",
                    s.counts
                );
                return;
            }
            assert!(
                start.elapsed() < within,
                "drain did not finish in {within:?}: {:?}",
                s.counts
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The no-op task the Worker runs in the restart test.
struct Noop;

impl quern::Task for Noop {
    const KIND: &'static str = "fault";
    type Input = serde_json::Value;
    type Output = ();
    async fn run(
        &self,
        _ctx: &quern::Context,
        _input: serde_json::Value,
    ) -> Result<(), quern::TaskError> {
        Ok(())
    }
}

/// A private Redis with AOF is killed (SIGKILL) and restarted in the middle of a drain of
/// 20,000 jobs by a real `quern::Worker` (16 slots, 1 s leases, its own rescuer): the worker
/// reconnects by itself and every job ends succeeded, none lost.
#[test]
fn redis_restart_mid_drain_loses_nothing() {
    if !redis_server_available() {
        return;
    }
    let mut redis = RedisProc::start(&["--appendonly", "yes", "--appendfsync", "everysec"]);
    let url = with_prefix(&redis.url(), &random_prefix());
    let total = 20_000u64;
    let queue = "restart";
    let rt = runtime();
    let b = Arc::new(rt.block_on(RedisBackend::connect(&url, clock())).unwrap());
    rt.block_on(enqueue_all(&b, queue, total as usize));
    // Let the AOF catch up (everysec) so the backlog itself survives the kill.
    std::thread::sleep(Duration::from_millis(1500));
    let backend: Arc<dyn Backend> = b.clone();
    let worker = quern::Worker::builder(backend)
        .register(Noop)
        .queues([(queue, 1)])
        .concurrency(16)
        .lease(Duration::from_secs(1))
        .shutdown_grace(Duration::from_secs(2))
        .build()
        .expect("worker");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = rt.spawn(worker.run_until(async move {
        let _ = stop_rx.await;
    }));
    let start = Instant::now();
    let succeeded = |b: &RedisBackend| {
        rt.block_on(b.queue_stats(queue.into()))
            .map(|s| s.counts.succeeded)
            .unwrap_or(0)
    };
    while succeeded(&b) < total / 3 {
        assert!(start.elapsed() < Duration::from_secs(120), "drain too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = succeeded(&b);
    redis.restart();
    eprintln!("restarted redis after {before} jobs succeeded");
    rt.block_on(wait_all_succeeded(
        &b,
        queue,
        total,
        Duration::from_secs(180),
    ));
    let _ = stop_tx.send(());
    rt.block_on(run)
        .unwrap()
        .expect("worker ran until shutdown");
}

/// The child side of `worker_sigkill_jobs_are_rescued`: runs only when the parent sets
/// QUERN_FAULT_CHILD_URL. Claims with a 1 s lease and completes slowly until killed.
#[test]
#[ignore = "run by worker_sigkill_jobs_are_rescued as a child process"]
fn child_worker() {
    let Ok(url) = std::env::var("QUERN_FAULT_CHILD_URL") else {
        return;
    };
    let queue = std::env::var("QUERN_FAULT_CHILD_QUEUE").unwrap();
    let rt = runtime();
    rt.block_on(async move {
        let b = RedisBackend::connect(&url, clock()).await.unwrap();
        loop {
            let c = b
                .job_claim(ClaimParams {
                    worker_id: "child".into(),
                    queues: vec![QueueWeight::new(queue.clone(), 1)],
                    limit: 50,
                    lease: Duration::from_secs(1),
                    more_urgent_than: None,
                })
                .await
                .unwrap();
            // Slow work: the parent kills us while we hold leases.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let items = c
                .into_iter()
                .map(|c| Completion {
                    token: c.token,
                    result: None,
                    result_ttl: None,
                    started_at: None,
                })
                .collect();
            b.job_complete(CompleteParams { items }).await.unwrap();
        }
    });
}

/// A worker process killed with SIGKILL mid-drain: its jobs are rescued after the lease and
/// complete elsewhere; no job is lost.
#[test]
fn worker_sigkill_jobs_are_rescued() {
    let rt = runtime();
    let Some(b) = rt.block_on(common::connect(clock())) else {
        return;
    };
    let _cleanup = common::Cleanup(b.clone());
    let b = Arc::new(b);
    let queue = "sigkill";
    let total = 2_000u64;
    rt.block_on(enqueue_all(&b, queue, total as usize));
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "faults::child_worker",
            "--exact",
            "--include-ignored",
            "--nocapture",
        ])
        .env("QUERN_FAULT_CHILD_URL", b.url())
        .env("QUERN_FAULT_CHILD_QUEUE", queue)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child worker");
    // Kill it while it holds leases, after it finished some jobs.
    let start = Instant::now();
    loop {
        let s = rt.block_on(b.queue_stats(queue.into())).unwrap();
        if s.counts.succeeded >= 100 && s.counts.running > 0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child worker made no progress: {:?}",
            s.counts
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
    let held = rt
        .block_on(b.queue_stats(queue.into()))
        .unwrap()
        .counts
        .running;
    assert!(held > 0, "the killed worker held leases");
    let done = Arc::new(AtomicU64::new(0));
    let rescued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = vec![
        rt.spawn(drain_loop(
            b.clone(),
            queue.into(),
            "survivor".into(),
            Duration::from_secs(5),
            done.clone(),
            stop.clone(),
        )),
        rt.spawn(rescue_loop(b.clone(), rescued.clone(), stop.clone())),
    ];
    rt.block_on(wait_all_succeeded(
        &b,
        queue,
        total,
        Duration::from_secs(60),
    ));
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = rt.block_on(t);
    }
    assert!(
        rescued.load(Ordering::Relaxed) >= held,
        "the {held} jobs the killed worker held were rescued (rescued {})",
        rescued.load(Ordering::Relaxed)
    );
}

/// `durability=replicated`: every acknowledged enqueue survives SIGKILL of the primary and
/// promotion of its replica (the primary has no AOF, so only replication can save them).
#[test]
fn replicated_enqueues_survive_primary_kill() {
    if !redis_server_available() {
        return;
    }
    let mut primary = RedisProc::start(&["--appendonly", "no"]);
    let replica_of = format!("127.0.0.1 {}", primary.port);
    let replica = RedisProc::start(&["--appendonly", "no", "--replicaof", &replica_of]);
    let start = Instant::now();
    while !replica
        .cli(&["info", "replication"])
        .contains("master_link_status:up")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "replica never synced"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let prefix = random_prefix();
    let url = format!(
        "{}?prefix={prefix}&durability=replicated&wait_timeout_ms=2000&retry_ms=500",
        primary.url()
    );
    let rt = runtime();
    let b = Arc::new(rt.block_on(RedisBackend::connect(&url, clock())).unwrap());
    let queue = "replicated";
    let acked = Arc::new(std::sync::Mutex::new(Vec::<JobId>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..2 {
        let (b, acked, stop) = (b.clone(), acked.clone(), stop.clone());
        tasks.push(rt.spawn(async move {
            let mut n = t * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                let batch = jobs(queue, 20, n);
                n += 20;
                let ids: Vec<JobId> = batch.iter().map(|j| j.id).collect();
                if let Ok(r) = b
                    .job_enqueue(EnqueueParams {
                        jobs: batch,
                        mode: BatchMode::Atomic,
                    })
                    .await
                    && r.iter().all(|o| o.is_ok())
                {
                    acked.lock().unwrap().extend(ids);
                }
            }
        }));
    }
    let start = Instant::now();
    while acked.lock().unwrap().len() < 2_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "enqueues too slow"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    primary.kill9();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = rt.block_on(t);
    }
    let acked: Vec<JobId> = acked.lock().unwrap().clone();
    assert_eq!(replica.cli(&["replicaof", "no", "one"]).trim(), "OK");
    let promoted = format!("{}?prefix={prefix}", replica.url());
    let b2 = rt
        .block_on(RedisBackend::connect(&promoted, clock()))
        .unwrap();
    let mut missing = 0;
    let unique: HashSet<JobId> = acked.iter().copied().collect();
    for id in &unique {
        match rt.block_on(b2.job_get((*id).into())).unwrap() {
            Some(j) => assert_eq!(j.state, JobState::Queued),
            None => missing += 1,
        }
    }
    assert_eq!(
        missing,
        0,
        "{missing} of {} acknowledged jobs were lost in the failover",
        unique.len()
    );
    eprintln!(
        "{} acknowledged jobs all present after failover",
        unique.len()
    );
}
