//! A stand-alone benchmark of the Redis backend, timed the way `../shared/bench/peers/`
//! times BullMQ and apalis (see peers/RESULTS.md "Method"), for comparing layouts and
//! batching inside this crate. The project-level numbers come from `quern bench`.
//!
//! Run (release, against a private Redis without persistence):
//! `cargo run --release -p quern-redis --example redis_bench -- redis://127.0.0.1:6391 all`
//! Metrics: enqueue_single enqueue_bulk drain_c1 drain_c16 worker_c16 (the real
//! `quern::Worker`) latency memory (or `all`).
//! Prints `peer=quern-redis metric=… jobs_per_s=…` lines like the peer scripts;
//! `enqueue_bulk` and `worker_c16` add Redis CPU, script calls and client CPU per job.
//! `PREFETCH=N` sets the worker's prefetch cap for `worker_c16` (default 16).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quern::backend::*;
use quern::{Backend, NewJob, SystemClock};
use quern_redis::RedisBackend;
use tokio::sync::mpsc;

fn payload(i: usize) -> serde_json::Value {
    serde_json::json!({"user_id": 100_000 + i, "email": format!("user{i}@example.com"),
        "action": "send_welcome_email", "ts": 0})
}

fn job(q: &str, i: usize) -> NewJob {
    NewJob::json("noop", payload(i)).unwrap().queue(q)
}

async fn connect(url: &str, prefix: &str) -> Arc<RedisBackend> {
    let sep = if url.contains('?') { '&' } else { '?' };
    Arc::new(
        RedisBackend::connect(&format!("{url}{sep}prefix={prefix}"), Arc::new(SystemClock))
            .await
            .expect("connect"),
    )
}

async fn prefill(b: &RedisBackend, q: &str, n: usize) {
    for s in (0..n).step_by(1000) {
        let jobs = (s..(s + 1000).min(n)).map(|i| job(q, i)).collect();
        b.job_enqueue(EnqueueParams {
            jobs,
            mode: BatchMode::Atomic,
        })
        .await
        .expect("enqueue");
    }
}

/// A worker shaped like `quern::Worker`: a fetcher claims up to the free slots, handlers
/// run as tasks, an acker completes finished jobs in batches.
async fn drain(b: Arc<RedisBackend>, q: &str, n: u64, concurrency: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let (tx, mut rx) = mpsc::unbounded_channel::<LeaseToken>();
    let acker = {
        let (b, done) = (b.clone(), done.clone());
        tokio::spawn(async move {
            while let Some(t) = rx.recv().await {
                let mut items = vec![Completion {
                    token: t,
                    result: None,
                    result_ttl: None,
                    started_at: None,
                }];
                while items.len() < 256 {
                    match rx.try_recv() {
                        Ok(t) => items.push(Completion {
                            token: t,
                            result: None,
                            result_ttl: None,
                            started_at: None,
                        }),
                        Err(_) => break,
                    }
                }
                let k = items.len() as u64;
                b.job_complete(CompleteParams { items })
                    .await
                    .expect("complete");
                done.fetch_add(k, Ordering::Relaxed);
            }
        })
    };
    let t0 = Instant::now();
    let weights = vec![QueueWeight::new(q, 1)];
    while done.load(Ordering::Relaxed) < n {
        let free = sem.available_permits().max(1);
        let permits = sem.clone().acquire_many_owned(free as u32).await.unwrap();
        let claimed = b
            .job_claim(ClaimParams {
                worker_id: "bench".into(),
                queues: weights.clone(),
                limit: free,
                lease: Duration::from_secs(30),
                more_urgent_than: None,
            })
            .await
            .expect("claim");
        if claimed.is_empty() {
            drop(permits);
            if done.load(Ordering::Relaxed) >= n {
                break;
            }
            b.work_wait(WaitParams {
                queues: vec![q.to_string()],
                timeout: Duration::from_millis(50),
                more_urgent_than: None,
            })
            .await
            .ok();
            continue;
        }
        let mut permits = permits;
        for c in claimed {
            let p = permits.split(1).unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                // The no-op handler.
                let _ = tx.send(c.token);
                drop(p);
            });
        }
    }
    let el = t0.elapsed().as_secs_f64();
    drop(tx);
    acker.abort();
    n as f64 / el
}

async fn latency(url: &str, prefix: &str, q: &str, n: usize, rate: u64) -> (f64, f64, f64) {
    let producer = connect(url, prefix).await;
    let worker = connect(url, prefix).await;
    let lat = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
    let starts = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let w = {
        let (lat, starts, q) = (lat.clone(), starts.clone(), q.to_string());
        tokio::spawn(async move {
            let mut got = 0;
            while got < n {
                let c = worker
                    .job_claim(ClaimParams {
                        worker_id: "lat".into(),
                        queues: vec![QueueWeight::new(q.clone(), 1)],
                        limit: 16,
                        lease: Duration::from_secs(30),
                        more_urgent_than: None,
                    })
                    .await
                    .unwrap();
                if c.is_empty() {
                    worker
                        .work_wait(WaitParams {
                            queues: vec![q.clone()],
                            timeout: Duration::from_millis(500),
                            more_urgent_than: None,
                        })
                        .await
                        .unwrap();
                    continue;
                }
                let now = Instant::now();
                for j in &c {
                    // Wait until the producer recorded the start (it may still be in flight).
                    loop {
                        if let Some(t0) = starts.lock().unwrap().get(&j.job.id) {
                            lat.lock()
                                .unwrap()
                                .push(now.duration_since(*t0).as_secs_f64() * 1000.0);
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                }
                got += c.len();
                let items = c
                    .into_iter()
                    .map(|c| Completion {
                        token: c.token,
                        result: None,
                        result_ttl: None,
                        started_at: None,
                    })
                    .collect();
                worker.job_complete(CompleteParams { items }).await.unwrap();
            }
        })
    };
    let period = Duration::from_micros(1_000_000 / rate);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..n {
        tick.tick().await;
        let j = job(q, i);
        starts.lock().unwrap().insert(j.id, Instant::now());
        producer
            .job_enqueue(EnqueueParams {
                jobs: vec![j],
                mode: BatchMode::Atomic,
            })
            .await
            .unwrap();
    }
    w.await.unwrap();
    let mut v = lat.lock().unwrap().clone();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |x: f64| v[((v.len() as f64 * x) as usize).min(v.len() - 1)];
    (p(0.5), p(0.99), p(0.999))
}

/// The no-op task for the `worker_c16` metric.
struct Noop;

impl quern::Task for Noop {
    const KIND: &'static str = "noop";
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

/// Drains with the real `quern::Worker` (16 slots, default prefetch and batched acks),
/// timed until the queue reports every job succeeded.
async fn worker_drain(b: Arc<RedisBackend>, q: &str, n: u64) -> f64 {
    let backend: Arc<dyn Backend> = b.clone();
    let worker = quern::Worker::builder(backend)
        .register(Noop)
        .queues([(q, 1)])
        .concurrency(16)
        .prefetch(
            std::env::var("PREFETCH")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(16),
        )
        .build()
        .expect("worker");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let t0 = Instant::now();
    let run = tokio::spawn(worker.run_until(async move {
        let _ = rx.await;
    }));
    loop {
        let s = b.queue_stats(q.into()).await.expect("stats");
        if s.counts.succeeded >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let el = t0.elapsed().as_secs_f64();
    let _ = tx.send(());
    let _ = run.await;
    n as f64 / el
}

/// Redis-side and client-side cost of a measurement: Redis CPU seconds (`INFO cpu`), script
/// calls (`INFO commandstats`, evalsha) and this process's CPU seconds, read before and after.
#[derive(Clone, Copy, Debug, Default)]
struct Cost {
    redis_cpu: f64,
    evalsha_calls: f64,
    evalsha_usec: f64,
    client_cpu: f64,
}

async fn cost(url: &str) -> Cost {
    let mut c = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("all")
        .query_async(&mut c)
        .await
        .unwrap();
    let field = |name: &str| -> f64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let stat = |key: &str| -> f64 {
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_evalsha:"))
            .and_then(|l| l.split(',').find_map(|kv| kv.strip_prefix(key)))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // utime + stime of this process, in clock ticks (100 per second on Linux).
    let proc_stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = &proc_stat[proc_stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_name.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    Cost {
        redis_cpu: field("used_cpu_sys:") + field("used_cpu_user:"),
        evalsha_calls: stat("calls="),
        evalsha_usec: stat("usec="),
        client_cpu: ticks / 100.0,
    }
}

/// `redis_us_per_job=… script_calls_per_job=… script_us_per_call=… client_us_per_job=…`
fn cost_line(a: Cost, b: Cost, n: usize) -> String {
    let n = n as f64;
    let calls = b.evalsha_calls - a.evalsha_calls;
    format!(
        "redis_us_per_job={:.1} script_calls_per_job={:.3} script_us_per_call={:.1} client_us_per_job={:.1}",
        (b.redis_cpu - a.redis_cpu) * 1e6 / n,
        calls / n,
        (b.evalsha_usec - a.evalsha_usec) / calls.max(1.0),
        (b.client_cpu - a.client_cpu) * 1e6 / n,
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or("redis://127.0.0.1:6391".into());
    let which = args.get(2).cloned().unwrap_or("all".into());
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let prefix = format!("bench{:08x}", fastrand::u32(..));
    let b = connect(&url, &prefix).await;
    let all = which == "all";
    let out = |m: &str, f: String| println!("peer=quern-redis metric={m} {f}");
    if all || which == "enqueue_single" {
        let t0 = Instant::now();
        for i in 0..n {
            b.job_enqueue(EnqueueParams {
                jobs: vec![job("single", i)],
                mode: BatchMode::Atomic,
            })
            .await
            .unwrap();
        }
        out(
            "enqueue_single",
            format!("jobs_per_s={:.1}", n as f64 / t0.elapsed().as_secs_f64()),
        );
    }
    if all || which == "enqueue_bulk" {
        let c0 = cost(&url).await;
        let t0 = Instant::now();
        prefill(&b, "bulk", n).await;
        let el = t0.elapsed().as_secs_f64();
        let c1 = cost(&url).await;
        out(
            "enqueue_bulk",
            format!("jobs_per_s={:.1} {}", n as f64 / el, cost_line(c0, c1, n)),
        );
    }
    if all || which == "memory" {
        let mut c = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let mem = async |c: &mut redis::aio::MultiplexedConnection| -> i64 {
            let info: String = redis::cmd("INFO")
                .arg("memory")
                .query_async(c)
                .await
                .unwrap();
            info.lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap()
        };
        let m0 = mem(&mut c).await;
        prefill(&b, "memory", n).await;
        let m1 = mem(&mut c).await;
        out(
            "memory",
            format!("bytes_per_queued_job={:.0}", (m1 - m0) as f64 / n as f64),
        );
    }
    for (m, conc) in [("drain_c1", 1usize), ("drain_c16", 16)] {
        if all || which == m {
            let q = format!("drain{conc}");
            prefill(&b, &q, n).await;
            let r = drain(b.clone(), &q, n as u64, conc).await;
            out(m, format!("jobs_per_s={r:.1}"));
        }
    }
    if all || which == "worker_c16" {
        prefill(&b, "worker16", n).await;
        let c0 = cost(&url).await;
        let r = worker_drain(b.clone(), "worker16", n as u64).await;
        let c1 = cost(&url).await;
        out(
            "worker_c16",
            format!("jobs_per_s={r:.1} {}", cost_line(c0, c1, n)),
        );
    }
    if all || which == "latency" {
        let (p50, p99, p999) = latency(&url, &prefix, "latency", 2000, 1000).await;
        out(
            "latency",
            format!("rate=1000 p50_ms={p50:.2} p99_ms={p99:.2} p999_ms={p999:.2}"),
        );
    }
    b.destroy_all_keys().await.unwrap();
}
