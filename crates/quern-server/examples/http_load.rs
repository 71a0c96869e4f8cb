//! A load client for the HTTP worker protocol of a running `quern serve` (the figures in
//! docs/benchmarks.md, "HTTP"). Two modes:
//!
//! - `drain`: enqueues `--jobs` jobs in batches of 1,000 (not timed), then `--workers`
//!   HTTP workers lease with `max = --batch` and acknowledge with one
//!   `POST /v1/batch/complete` per lease, until every job is done; prints jobs/s.
//! - `latency`: `--workers` long polls wait on an empty queue; one producer enqueues
//!   `--jobs` single jobs at `--rate` jobs/s, each carrying its send time; each leased job's
//!   enqueue→lease time is recorded; prints p50/p99/p99.9 (nearest rank, as `quern bench`).
//!
//! ```text
//! cargo build --release -p quern-server --example http_load
//! target/release/examples/http_load drain   --addr 127.0.0.1:8080 --jobs 50000 --workers 16 --batch 100
//! target/release/examples/http_load latency --addr 127.0.0.1:8080 --jobs 5000 --rate 1000 --workers 4
//! ```
//!
//! Only loopback or private test addresses: it sends as fast as the server answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

struct Args {
    mode: String,
    addr: String,
    jobs: u64,
    workers: usize,
    batch: usize,
    rate: u64,
    token: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        mode: String::new(),
        addr: "127.0.0.1:8080".into(),
        jobs: 50_000,
        workers: 16,
        batch: 100,
        rate: 1000,
        token: std::env::var("QUERN_TOKEN").ok(),
    };
    let mut it = std::env::args().skip(1);
    a.mode = it.next().unwrap_or_default();
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--addr" => a.addr = v,
            "--jobs" => a.jobs = v.parse().expect("--jobs N"),
            "--workers" => a.workers = v.parse().expect("--workers N"),
            "--batch" => a.batch = v.parse().expect("--batch N"),
            "--rate" => a.rate = v.parse().expect("--rate N"),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Api {
    async fn post(&self, path: &str, body: &Value) -> Value {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap());
        if let Some(t) = &self.token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        let resp = r.send().await.expect("request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        assert!(
            status.is_success(),
            "{path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).expect("json")
    }

    async fn register(&self, queue: &str, concurrency: usize) -> String {
        let r = self
            .post(
                "/v1/workers",
                &json!({"queues": [queue], "concurrency": concurrency, "hostname": "http_load"}),
            )
            .await;
        r["worker_id"].as_str().unwrap().to_string()
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[tokio::main]
async fn main() {
    let a = args();
    // reqwest is built without a default crypto provider (see `alerts::webhook`).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api = Api {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .expect("client"),
        base: format!("http://{}", a.addr),
        token: a.token.clone(),
    };
    let queue = format!("http-load-{}", now_us());
    match a.mode.as_str() {
        "drain" => drain(&api, &a, &queue).await,
        "latency" => latency(&api, &a, &queue).await,
        _ => panic!(
            "usage: http_load drain|latency [--addr A] [--jobs N] [--workers N] [--batch N] [--rate R]"
        ),
    }
}

async fn drain(api: &Api, a: &Args, queue: &str) {
    let mut left = a.jobs;
    while left > 0 {
        let n = left.min(1000);
        let jobs: Vec<Value> = (0..n)
            .map(|i| json!({"kind": "bench", "queue": queue, "payload": {"i": i}}))
            .collect();
        api.post("/v1/jobs/batch", &json!({"jobs": jobs, "mode": "atomic"}))
            .await;
        left -= n;
    }
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.workers {
        let (api, done, queue) = (api.clone(), Arc::clone(&done), queue.to_string());
        let (total, batch) = (a.jobs, a.batch);
        tasks.push(tokio::spawn(async move {
            let w = api.register(&queue, batch).await;
            while done.load(Ordering::Relaxed) < total {
                let r = api
                    .post(
                        "/v1/lease",
                        &json!({"worker_id": w, "queues": [queue], "max": batch, "wait_ms": 200}),
                    )
                    .await;
                let jobs = r["jobs"].as_array().unwrap();
                if jobs.is_empty() {
                    continue;
                }
                let items: Vec<Value> = jobs
                    .iter()
                    .map(|j| json!({"token": j["token"], "result": null}))
                    .collect();
                let r = api
                    .post("/v1/batch/complete", &json!({"items": items}))
                    .await;
                let ok = r["results"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|x| x["ok"] == true)
                    .count();
                done.fetch_add(ok as u64, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "drain: {n} jobs in {took:.2} s = {:.0} jobs/s ({} workers, lease max {})",
        n as f64 / took,
        a.workers,
        a.batch
    );
}

async fn latency(api: &Api, a: &Args, queue: &str) {
    let samples = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let seen = Arc::new(AtomicU64::new(0));
    let mut pollers = Vec::new();
    for _ in 0..a.workers {
        let (api, samples, seen, queue) = (
            api.clone(),
            Arc::clone(&samples),
            Arc::clone(&seen),
            queue.to_string(),
        );
        let total = a.jobs;
        pollers.push(tokio::spawn(async move {
            let w = api.register(&queue, 64).await;
            while seen.load(Ordering::Relaxed) < total {
                let r = api
                    .post(
                        "/v1/lease",
                        &json!({"worker_id": w, "queues": [queue], "max": 64, "wait_ms": 1000}),
                    )
                    .await;
                let at = now_us();
                let jobs = r["jobs"].as_array().unwrap();
                if jobs.is_empty() {
                    continue;
                }
                let mut s = Vec::with_capacity(jobs.len());
                let mut items = Vec::with_capacity(jobs.len());
                for j in jobs {
                    s.push(at.saturating_sub(j["payload"]["ts"].as_u64().unwrap()));
                    items.push(json!({"token": j["token"]}));
                }
                seen.fetch_add(jobs.len() as u64, Ordering::Relaxed);
                samples.lock().unwrap().extend(s);
                api.post("/v1/batch/complete", &json!({"items": items}))
                    .await;
            }
        }));
    }
    // Let every poll reach its wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / a.rate as f64);
    for i in 0..a.jobs {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        api.post(
            "/v1/jobs",
            &json!({"kind": "bench", "queue": queue, "payload": {"ts": now_us()}}),
        )
        .await;
    }
    let achieved = a.jobs as f64 / start.elapsed().as_secs_f64();
    for p in pollers {
        p.await.unwrap();
    }
    let mut s = samples.lock().unwrap().clone();
    s.sort_unstable();
    let q = |q: f64| {
        let i = ((q * s.len() as f64) as usize).min(s.len() - 1);
        s[i] as f64 / 1000.0
    };
    println!(
        "latency: {} jobs at {achieved:.0} jobs/s offered; enqueue→lease p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} long polls)",
        s.len(),
        q(0.5),
        q(0.99),
        q(0.999),
        *s.last().unwrap() as f64 / 1000.0,
        a.workers
    );
}
