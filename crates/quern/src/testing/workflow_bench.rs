//! Workflow throughput, shared by the backends' benchmark examples
//! (`quern-sqlite/examples/workflow_bench.rs`, `quern-redis/examples/redis_workflow_bench.rs`):
//! tasks per second through a fan-out/fan-in of no-op tasks, static (`root → N tasks → join`)
//! and dynamic (`split → for_each over N items → join`), compared with the same number of
//! plain jobs.
//!
//! Each measurement uses a fresh store from the example's opener and one worker (default
//! concurrency 16) in the process, and runs from the submit call until the workflow's final
//! state is recorded (the bench advances the workflow itself every `POLL_MS`, default 2 ms, so
//! its polling adds at most that). Reported: the median of `ROUNDS` rounds (default 3).
//! `BENCH_ONLY=plain|static|dynamic` runs one measurement; `BENCH_DEBUG=1` prints where each
//! workflow's time went (submit, first task, last task, final state), read from the jobs'
//! timestamps. Not a test: nothing here asserts timing.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{BatchMode, EnqueueParams, JobFilter, ListParams};
use crate::model::WorkflowState;
use crate::workflow::{Advancer, SourceFormat, SubmitOptions, WorkflowPlan, submit};
use crate::{Backend, Context, NewJob, Task, TaskError, Worker};

/// A boxed future, as the opener and the cleanup hook return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Makes a fresh, empty store for one measurement.
pub type Opener = Box<dyn Fn() -> BoxFuture<BenchStore>>;

/// A store made for one measurement, and what to do with it afterwards (delete its keys,
/// drop its temporary directory).
pub struct BenchStore {
    pub backend: Arc<dyn Backend>,
    pub cleanup: BoxFuture<()>,
}

impl std::fmt::Debug for BenchStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BenchStore").finish_non_exhaustive()
    }
}

impl BenchStore {
    async fn close(self) {
        drop(self.backend);
        self.cleanup.await;
    }
}

struct Noop;

impl Task for Noop {
    const KIND: &'static str = "noop";
    type Input = serde_json::Value;
    type Output = ();
    async fn run(&self, _: &Context, _: serde_json::Value) -> Result<(), TaskError> {
        Ok(())
    }
}

async fn start_worker(backend: &Arc<dyn Backend>, concurrency: usize) -> crate::WorkerHandle {
    Worker::builder(backend.clone())
        .register(Noop)
        .concurrency(concurrency)
        .poll_interval(Duration::from_millis(20))
        // The bench advances its workflow itself, every POLL_MS.
        .workflow_monitor(None)
        .build()
        .expect("worker")
        .start()
        .await
        .expect("start")
}

/// `n` plain no-op jobs, enqueued in one batch; seconds until all succeeded.
async fn plain(open: &Opener, n: usize, concurrency: usize) -> f64 {
    let store = open().await;
    let b = store.backend.clone();
    let w = start_worker(&b, concurrency).await;
    let t = Instant::now();
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| NewJob::json(Noop::KIND, serde_json::json!({"i": i})).unwrap())
        .collect();
    b.job_enqueue(EnqueueParams {
        jobs,
        mode: BatchMode::Atomic,
    })
    .await
    .expect("enqueue");
    loop {
        let c = b.queue_stats("default".into()).await.expect("stats").counts;
        if c.succeeded as usize == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    w.shutdown().await.expect("shutdown");
    store.close().await;
    secs
}

/// Submits `yaml` and returns the seconds until the workflow succeeded.
async fn workflow(open: &Opener, yaml: &str, concurrency: usize) -> f64 {
    let store = open().await;
    let b = store.backend.clone();
    let w = start_worker(&b, concurrency).await;
    let plan = WorkflowPlan::load(yaml, SourceFormat::Yaml, &[]).expect("valid workflow");
    let advancer = Advancer::new(b.clone());
    let t = Instant::now();
    let rec = submit(&*b, &plan, SubmitOptions::default())
        .await
        .expect("submit");
    let submitted = t.elapsed();
    let poll: u64 = std::env::var("POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let done = loop {
        match advancer.advance_id(&rec.id).await {
            Ok(r) if r.state.is_final() => break r,
            // The worker's own monitor moved it first: look again.
            Ok(_) | Err(crate::Error::Conflict(_)) => {}
            Err(e) => panic!("advance: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(poll)).await;
    };
    if std::env::var("BENCH_DEBUG").is_ok() {
        breakdown(&b, &rec.id, submitted, done.finished_at.unwrap_or_default()).await;
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(done.state, WorkflowState::Succeeded, "{done:?}");
    w.shutdown().await.expect("shutdown");
    store.close().await;
    secs
}

/// Prints when the first task started, when the last one finished and when the workflow
/// was marked finished, in ms after the jobs were stored.
async fn breakdown(b: &Arc<dyn Backend>, id: &str, submitted: Duration, finished_at: i64) {
    let page = b
        .job_list(ListParams {
            filter: JobFilter {
                workflow_id: Some(id.to_owned()),
                ..Default::default()
            },
            limit: 10_000,
            before: None,
        })
        .await
        .expect("list");
    let jobs = &page.jobs;
    let created = jobs.iter().map(|j| j.created_at).min().unwrap_or_default();
    let first = jobs
        .iter()
        .filter_map(|j| j.started_at)
        .min()
        .unwrap_or_default();
    let last = jobs
        .iter()
        .filter_map(|j| j.finished_at)
        .max()
        .unwrap_or_default();
    eprintln!(
        "  submit call {submitted:?}; after storing: first task started +{} ms, last finished +{} ms, workflow finished +{} ms",
        first - created,
        last - created,
        finished_at - created
    );
}

fn static_yaml(n: usize) -> String {
    let mut y = String::from("name: static_fan\ntasks:\n  - {id: root, kind: noop}\n");
    for i in 0..n {
        y.push_str(&format!(
            "  - {{id: t{i}, kind: noop, depends_on: [root]}}\n"
        ));
    }
    let all: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
    y.push_str(&format!(
        "  - {{id: join, kind: noop, depends_on: [{}]}}\n",
        all.join(", ")
    ));
    y
}

fn dynamic_yaml(n: usize) -> String {
    let items: Vec<usize> = (0..n).collect();
    format!(
        "name: dynamic_fan\nvariables: {{items: {}}}\ntasks:\n  - {{id: split, kind: noop}}\n  \
         - {{id: each, kind: noop, depends_on: [split], for_each: \"${{workflow.variables.items}}\", params: {{i: \"${{item}}\"}}}}\n  \
         - {{id: join, kind: noop, depends_on: [each], params: {{n: \"${{each.result}}\"}}}}\n",
        serde_json::to_string(&items).unwrap()
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs the measurement on the stores `open` makes (a fresh one per measurement) and prints
/// the table. Arguments (`N CONCURRENCY ROUNDS`) and `BENCH_ONLY` / `BENCH_DEBUG` / `POLL_MS`
/// come from the command line and environment, as the module docs say.
pub async fn run(store_name: &str, open: Opener) {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric arguments: N CONCURRENCY ROUNDS"))
        .collect();
    let n = args.first().copied().unwrap_or(1000);
    let concurrency = args.get(1).copied().unwrap_or(16);
    let rounds = args.get(2).copied().unwrap_or(3).max(1);
    let total = n + 2;
    let (static_y, dynamic_y) = (static_yaml(n), dynamic_yaml(n));

    let only = std::env::var("BENCH_ONLY").ok();
    let mut results = Vec::new();
    for (name, jobs) in [
        ("plain jobs", total),
        ("static fan-out/fan-in", total),
        ("dynamic for_each fan-out/fan-in", total + 1),
    ] {
        if only.as_deref().is_some_and(|o| !name.starts_with(o)) {
            continue;
        }
        let mut secs = Vec::new();
        for _ in 0..rounds {
            secs.push(match name {
                "plain jobs" => plain(&open, total, concurrency).await,
                "static fan-out/fan-in" => workflow(&open, &static_y, concurrency).await,
                _ => workflow(&open, &dynamic_y, concurrency).await,
            });
        }
        results.push((name, jobs, median(secs)));
    }
    println!(
        "{n}-task fan-out/fan-in of no-op tasks on {store_name}, worker concurrency {concurrency}, median of {rounds}"
    );
    let Some(first) = results.first() else { return };
    let base = first.1 as f64 / first.2;
    for (name, jobs, secs) in results {
        let rate = jobs as f64 / secs;
        println!(
            "{name:<34} {jobs:>6} jobs  {:>8.1} ms  {rate:>9.0} jobs/s  ({:.2}x plain)",
            secs * 1000.0,
            rate / base
        );
    }
}
