//! Backend-only throughput check (no worker): batch enqueue and claim+complete loops.
//! `cargo run --release -p quern-sqlite --example raw_bench -- [jobs] [concurrency]`
use std::sync::Arc;
use std::time::{Duration, Instant};

use quern::backend::*;
use quern::{Backend, NewJob, Payload};
use quern_sqlite::SqliteBackend;

/// CPU seconds used so far by the thread named `name` (from /proc), to measure the writer's
/// own cost independently of other load on the machine.
fn thread_cpu(name: &str) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = after.split(' ').collect();
            total += (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tick;
        }
    }
    total
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let conc: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let dir = tempfile::tempdir().unwrap();
    let b: Arc<dyn Backend> = Arc::new(
        SqliteBackend::open(&format!("sqlite://{}", dir.path().join("b.db").display()))
            .await
            .unwrap(),
    );
    let payload = Payload::from_json_str(
        r#"{"user_id":100123,"email":"user123@example.com","action":"send_welcome_email","ts":0}"#,
        &Default::default(),
    )
    .unwrap();
    let c0 = thread_cpu("quern-sqlite-wr");
    let t = Instant::now();
    for chunk in 0..n / 1000 {
        let jobs = (0..1000)
            .map(|_| NewJob::new("noop", payload.clone()))
            .collect();
        b.job_enqueue(EnqueueParams {
            jobs,
            mode: BatchMode::Atomic,
        })
        .await
        .unwrap();
        let _ = chunk;
    }
    let el = t.elapsed().as_secs_f64();
    let c1 = thread_cpu("quern-sqlite-wr");
    println!(
        "batch enqueue: {:.0} jobs/s wall; writer thread cpu {:.2}s => {:.0} jobs per writer-cpu-second",
        n as f64 / el,
        c1 - c0,
        n as f64 / (c1 - c0)
    );

    let c0 = thread_cpu("quern-sqlite-wr");
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let got = b
                    .job_claim(ClaimParams {
                        worker_id: format!("w{w}"),
                        queues: vec![QueueWeight::new("default", 1)],
                        limit: 8,
                        lease: Duration::from_secs(30),
                        more_urgent_than: None,
                    })
                    .await
                    .unwrap();
                if got.is_empty() {
                    return done;
                }
                done += got.len();
                let items = got
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
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let el = t.elapsed().as_secs_f64();
    let c1 = thread_cpu("quern-sqlite-wr");
    println!(
        "drain c{conc} (claim 8, complete batch): {total} in {el:.2}s = {:.0} jobs/s wall; writer cpu {:.2}s => {:.0} jobs per writer-cpu-second",
        total as f64 / el,
        c1 - c0,
        total as f64 / (c1 - c0)
    );
}
