//! Worker drain throughput: enqueue N no-op jobs, then time a `quern::Worker` draining them.
//! The whole path is measured: claims, run slots, batched acknowledgements, heartbeats.
//! Then enqueue→start latency of single jobs enqueued at 100/s into the idle worker.
//!
//! `cargo run --release -p quern-sqlite --example worker_drain -- [jobs] [concurrency] [max prefetch]`
//!
//! A guide, not a test: `quern bench` is the measuring tool of record.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use quern::backend::*;
use quern::model::{StateCounts, WorkflowRecord};
use quern::{Backend, Context, Job, JobId, NewJob, Payload, Task, TaskError, Worker};
use quern_sqlite::SqliteBackend;

/// Counts the calls on the worker's hot path, to show how well they batch.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn Backend>,
    claims: AtomicUsize,
    claimed: AtomicUsize,
    completes: AtomicUsize,
    completed: AtomicUsize,
    waits: AtomicUsize,
}

#[quern::async_trait]
impl Backend for Counting {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn job_enqueue(&self, p: EnqueueParams) -> quern::Result<EnqueueResults> {
        self.inner.job_enqueue(p).await
    }
    async fn job_claim(&self, p: ClaimParams) -> quern::Result<Vec<ClaimedJob>> {
        let r = self.inner.job_claim(p).await?;
        self.claims.fetch_add(1, Relaxed);
        self.claimed.fetch_add(r.len(), Relaxed);
        Ok(r)
    }
    async fn job_heartbeat(&self, p: HeartbeatParams) -> quern::Result<Vec<quern::Result<i64>>> {
        self.inner.job_heartbeat(p).await
    }
    async fn job_complete(&self, p: CompleteParams) -> quern::Result<Vec<quern::Result<()>>> {
        let n = p.items.len();
        let r = self.inner.job_complete(p).await?;
        self.completes.fetch_add(1, Relaxed);
        self.completed.fetch_add(n, Relaxed);
        Ok(r)
    }
    async fn job_fail(&self, p: FailParams) -> quern::Result<Vec<quern::Result<()>>> {
        self.inner.job_fail(p).await
    }
    async fn job_release(&self, p: ReleaseParams) -> quern::Result<Vec<quern::Result<()>>> {
        self.inner.job_release(p).await
    }
    async fn job_cancel(&self, p: CancelParams) -> quern::Result<Job> {
        self.inner.job_cancel(p).await
    }
    async fn job_reprioritize(&self, p: JobReprioritizeParams) -> quern::Result<Job> {
        self.inner.job_reprioritize(p).await
    }
    async fn job_get(&self, params: JobGetParams) -> quern::Result<Option<Job>> {
        let id = params.id;
        self.inner.job_get(id.into()).await
    }
    async fn job_get_many(&self, params: JobGetManyParams) -> quern::Result<Vec<Option<Job>>> {
        let ids = params.ids.as_slice();
        self.inner.job_get_many(ids.into()).await
    }
    async fn workflow_create(&self, p: WorkflowCreateParams) -> quern::Result<WorkflowRecord> {
        self.inner.workflow_create(p).await
    }
    async fn workflow_get(&self, params: WorkflowParams) -> quern::Result<Option<WorkflowRecord>> {
        let id = params.id.as_str();
        self.inner.workflow_get(id.into()).await
    }
    async fn workflow_list(&self, p: WorkflowListParams) -> quern::Result<WorkflowPage> {
        self.inner.workflow_list(p).await
    }
    async fn workflow_update(&self, p: WorkflowUpdateParams) -> quern::Result<WorkflowRecord> {
        self.inner.workflow_update(p).await
    }
    async fn workflow_counts(&self, params: WorkflowParams) -> quern::Result<StateCounts> {
        let id = params.id.as_str();
        self.inner.workflow_counts(id.into()).await
    }
    async fn job_list(&self, p: ListParams) -> quern::Result<JobPage> {
        self.inner.job_list(p).await
    }
    async fn job_retry(&self, p: RetryParams) -> quern::Result<Vec<JobId>> {
        self.inner.job_retry(p).await
    }
    async fn job_prune(&self, p: PruneParams) -> quern::Result<PruneReport> {
        self.inner.job_prune(p).await
    }
    async fn lease_rescue(&self, p: RescueParams) -> quern::Result<RescueReport> {
        self.inner.lease_rescue(p).await
    }
    async fn work_wait(&self, p: WaitParams) -> quern::Result<()> {
        self.waits.fetch_add(1, Relaxed);
        self.inner.work_wait(p).await
    }
    async fn queue_list(&self) -> quern::Result<Vec<QueueInfo>> {
        self.inner.queue_list().await
    }
    async fn queue_stats(&self, params: QueueParams) -> quern::Result<QueueInfo> {
        let q = params.queue.as_str();
        self.inner.queue_stats(q.into()).await
    }
    async fn queue_pause(&self, params: QueueParams) -> quern::Result<()> {
        let q = params.queue.as_str();
        self.inner.queue_pause(q.into()).await
    }
    async fn queue_resume(&self, params: QueueParams) -> quern::Result<()> {
        let q = params.queue.as_str();
        self.inner.queue_resume(q.into()).await
    }
    async fn worker_register(&self, i: WorkerInfo) -> quern::Result<()> {
        self.inner.worker_register(i).await
    }
    async fn worker_heartbeat(&self, p: WorkerHeartbeatParams) -> quern::Result<()> {
        self.inner.worker_heartbeat(p).await
    }
    async fn worker_deregister(&self, params: WorkerDeregisterParams) -> quern::Result<()> {
        let id = params.id.as_str();
        self.inner.worker_deregister(id.into()).await
    }
    async fn worker_list(&self) -> quern::Result<Vec<WorkerInfo>> {
        self.inner.worker_list().await
    }
    async fn leader_acquire(&self, p: LeaderParams) -> quern::Result<bool> {
        self.inner.leader_acquire(p).await
    }
    async fn leader_renew(&self, p: LeaderParams) -> quern::Result<bool> {
        self.inner.leader_renew(p).await
    }
    async fn leader_release(&self, p: LeaderParams) -> quern::Result<()> {
        self.inner.leader_release(p).await
    }
    async fn leader_get(&self, params: LeaderGetParams) -> quern::Result<Option<LeaderInfo>> {
        let n = params.name.as_str();
        self.inner.leader_get(n.into()).await
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

#[tokio::main]
async fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let (n, concurrency) = (arg(1, 100_000), arg(2, 16));
    // Default: the worker's own (adaptive, up to `concurrency`).
    let prefetch = arg(3, concurrency);
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("drain.db").display());
    let b: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&url).await.unwrap());
    let payload = Payload::from_json_str(
        r#"{"user_id":100123,"email":"user123@example.com","action":"send_welcome_email"}"#,
        &Default::default(),
    )
    .unwrap();
    for _ in 0..n.div_ceil(1000) {
        let jobs = (0..1000)
            .map(|_| NewJob::new(Noop::KIND, payload.clone()))
            .collect();
        b.job_enqueue(EnqueueParams {
            jobs,
            mode: BatchMode::Atomic,
        })
        .await
        .unwrap();
    }
    let total = n.div_ceil(1000) * 1000;

    let counting = Arc::new(Counting {
        inner: b.clone(),
        claims: AtomicUsize::new(0),
        claimed: AtomicUsize::new(0),
        completes: AtomicUsize::new(0),
        completed: AtomicUsize::new(0),
        waits: AtomicUsize::new(0),
    });
    let t = Instant::now();
    let worker = Worker::builder(counting.clone())
        .register(Noop)
        .concurrency(concurrency)
        .prefetch(prefetch)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    // Watch the acknowledged count (a counter, so the measurement adds no store load).
    while counting.completed.load(Relaxed) < total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    worker.shutdown().await.unwrap();
    let stats = b.queue_stats("default".into()).await.unwrap();
    assert_eq!(
        stats.counts.succeeded as usize, total,
        "every job succeeded once"
    );
    println!(
        "drain: {total} jobs, concurrency {concurrency}, prefetch {prefetch}: {:.0} jobs/s ({secs:.2} s)",
        total as f64 / secs
    );
    latency(&b).await;
    let per =
        |a: &AtomicUsize, b: &AtomicUsize| b.load(Relaxed) as f64 / a.load(Relaxed).max(1) as f64;
    println!(
        "  {} claims ({:.1} jobs each), {} complete calls ({:.1} jobs each), {} waits",
        counting.claims.load(Relaxed),
        per(&counting.claims, &counting.claimed),
        counting.completes.load(Relaxed),
        per(&counting.completes, &counting.completed),
        counting.waits.load(Relaxed),
    );
}

/// Enqueue→start latency (from the stored `created_at` and `started_at`, in ms) of 300 jobs
/// enqueued one at a time, 10 ms apart, into an idle worker.
async fn latency(b: &Arc<dyn Backend>) {
    let client = quern::Client::new(b.clone());
    let worker = Worker::builder(b.clone())
        .register(Noop)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..300 {
        ids.push(
            client
                .enqueue::<Noop>(&serde_json::json!({}))
                .queue("default")
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut lat = Vec::new();
    for id in ids {
        let j = client.wait(id, Duration::from_secs(30)).await.unwrap();
        lat.push(j.started_at.unwrap() - j.created_at);
    }
    worker.shutdown().await.unwrap();
    lat.sort();
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize];
    println!(
        "latency: enqueue->start p50 {} ms, p99 {} ms, max {} ms",
        q(0.5),
        q(0.99),
        lat[lat.len() - 1]
    );
}
