//! The library API end to end on a real SQLite file: `Client` enqueues, `Worker` runs, and
//! each handler outcome ends in the right stored state. Real time, so delays are short
//! (tens of milliseconds) and every wait is bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use quern::model::ErrorKind;
use quern::{
    Backend, Client, Context, Job, JobId, JobState, NewJob, RetryPolicy, Task, TaskError, Worker,
    WorkerBuilder,
};
use quern_sqlite::SqliteBackend;
use serde::{Deserialize, Serialize};

/// Long enough for any single test step on a loaded 2-core CI machine.
pub const WAIT: Duration = Duration::from_secs(20);

/// A fresh database file in `dir`.
pub async fn open(dir: &tempfile::TempDir) -> Arc<dyn Backend> {
    let url = format!("sqlite://{}", dir.path().join("q.db").display());
    Arc::new(SqliteBackend::open(&url).await.unwrap())
}

/// A worker builder with settings that keep tests fast.
pub fn worker(backend: &Arc<dyn Backend>) -> WorkerBuilder {
    Worker::builder(backend.clone())
        .shutdown_grace(Duration::from_secs(5))
        .cancel_grace(Duration::from_millis(200))
}

/// Polls until `pred` holds for the job (bounded by [`WAIT`]).
pub async fn until(client: &Client, id: JobId, pred: impl Fn(&Job) -> bool) -> Job {
    let give_up = tokio::time::Instant::now() + WAIT;
    loop {
        let job = client.get(id).await.unwrap().expect("job exists");
        if pred(&job) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "job {id} never reached the expected condition: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Counts concurrent entries and remembers the maximum.
#[derive(Default)]
pub struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

impl Gauge {
    pub fn enter(&self) {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
    }
    pub fn exit(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy::Fixed {
        delay: Duration::from_millis(20),
    }
}

#[derive(Serialize, Deserialize)]
struct Pair {
    a: i64,
    b: i64,
}

struct Add;
impl Task for Add {
    const KIND: &'static str = "add";
    type Input = Pair;
    type Output = i64;
    async fn run(&self, _: &Context, p: Pair) -> Result<i64, TaskError> {
        Ok(p.a + p.b)
    }
}

/// Fails (retryably) until its `succeed_on`th call.
struct Flaky {
    calls: Arc<AtomicU32>,
    succeed_on: u32,
}
impl Task for Flaky {
    const KIND: &'static str = "flaky";
    type Input = ();
    type Output = String;
    async fn run(&self, _: &Context, _: ()) -> Result<String, TaskError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n < self.succeed_on {
            return Err(TaskError::retryable(format!("transient failure {n}")));
        }
        Ok(format!("ok after {n}"))
    }
    fn retry_policy() -> RetryPolicy {
        fast_retry()
    }
}

/// Behaves as the input says.
#[derive(Serialize, Deserialize)]
enum Act {
    Fatal,
    Snooze { times: u32 },
    RateLimited { times: u32 },
    Sleep { ms: u64 },
    Panic,
    Fine,
}

struct Actor {
    runs: Arc<AtomicU32>,
}
impl Task for Actor {
    const KIND: &'static str = "actor";
    type Input = Act;
    type Output = ();
    async fn run(&self, _: &Context, act: Act) -> Result<(), TaskError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        match act {
            Act::Fatal => Err(TaskError::fatal("input can never work")),
            Act::Snooze { times } if run <= times => {
                Err(TaskError::snooze(Duration::from_millis(30)))
            }
            Act::RateLimited { times } if run <= times => {
                Err(TaskError::rate_limited(Duration::from_millis(150)))
            }
            Act::Sleep { ms } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(())
            }
            Act::Panic => panic!("actor panicked on purpose"),
            Act::Snooze { .. } | Act::RateLimited { .. } | Act::Fine => Ok(()),
        }
    }
    fn retry_policy() -> RetryPolicy {
        fast_retry()
    }
}

fn actor() -> (Actor, Arc<AtomicU32>) {
    let runs = Arc::new(AtomicU32::new(0));
    (Actor { runs: runs.clone() }, runs)
}

#[tokio::test]
async fn typed_round_trip_returns_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let w = worker(&b)
        .register(Add)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let id = client.enqueue::<Add>(&Pair { a: 40, b: 2 }).await.unwrap();
    let job = client.wait(id, WAIT).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Succeeded, 1));
    assert_eq!(job.result.unwrap().decode::<i64>().unwrap(), 42);
    assert!(job.started_at.unwrap() <= job.finished_at.unwrap());
    assert!(job.lease.is_none());
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn retryable_failures_retry_then_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let calls = Arc::new(AtomicU32::new(0));
    let task = Flaky {
        calls: calls.clone(),
        succeed_on: 3,
    };
    let w = worker(&b)
        .register(task)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let id = client.enqueue::<Flaky>(&()).await.unwrap();
    let job = client.wait(id, WAIT).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Succeeded, 3));
    assert_eq!(
        job.result.unwrap().decode::<String>().unwrap(),
        "ok after 3"
    );
    let errors: Vec<_> = job
        .errors
        .iter()
        .map(|e| (e.attempt, e.kind, e.message.as_str()))
        .collect();
    assert_eq!(
        errors,
        [
            (1, ErrorKind::Retryable, "transient failure 1"),
            (2, ErrorKind::Retryable, "transient failure 2"),
        ]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn retries_stop_at_max_attempts_and_fatal_errors_go_straight_to_the_dlq() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let (task, runs) = actor();
    let calls = Arc::new(AtomicU32::new(0));
    let never = Flaky {
        calls,
        succeed_on: u32::MAX,
    };
    let w = worker(&b)
        .register(task)
        .register(never)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let fatal = client.enqueue::<Actor>(&Act::Fatal).await.unwrap();
    let exhausted = client.enqueue::<Flaky>(&()).max_attempts(3).await.unwrap();

    let job = client.wait(fatal, WAIT).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Dead, 1));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "a fatal error is not retried"
    );
    assert_eq!(job.errors[0].kind, ErrorKind::Fatal);
    assert_eq!(job.errors[0].message, "input can never work");

    let job = client.wait(exhausted, WAIT).await.unwrap();
    assert_eq!(
        (job.state, job.attempt, job.errors.len()),
        (JobState::Dead, 3, 3)
    );

    let dlq = client
        .list(quern::backend::ListParams {
            filter: quern::backend::JobFilter {
                state: Some(JobState::Dead),
                ..Default::default()
            },
            limit: 10,
            before: None,
        })
        .await
        .unwrap();
    let mut dead: Vec<JobId> = dlq.jobs.iter().map(|j| j.id).collect();
    dead.sort();
    let mut expected = vec![fatal, exhausted];
    expected.sort();
    assert_eq!(dead, expected);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn snoozes_reschedule_without_counting_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let (task, runs) = actor();
    let w = worker(&b)
        .register(task)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let id = client
        .enqueue::<Actor>(&Act::Snooze { times: 2 })
        .await
        .unwrap();
    let job = client.wait(id, WAIT).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Succeeded, 1));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(
        job.errors.is_empty(),
        "snoozes are not errors: {:?}",
        job.errors
    );
    assert!(
        job.finished_at.unwrap() - job.created_at >= 60,
        "two 30 ms snoozes"
    );
    w.shutdown().await.unwrap();
}

/// A handler's `RateLimited` through the real worker: snoozed without counting the
/// attempt or recording an error, and a job of the same kind enqueued during the hold waits
/// for it to end.
#[tokio::test]
async fn rate_limited_snoozes_and_holds_the_kind() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let (task, runs) = actor();
    let w = worker(&b)
        .register(task)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let id = client
        .enqueue::<Actor>(&Act::RateLimited { times: 1 })
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    while runs.load(Ordering::SeqCst) == 0
        || client.get(id).await.unwrap().unwrap().state != JobState::Scheduled
    {
        assert!(t0.elapsed() < WAIT, "the first run rate-limits the job");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let held_at = std::time::Instant::now();
    let other = client.enqueue::<Actor>(&Act::Fine).await.unwrap();
    let o = client.wait(other, WAIT).await.unwrap();
    assert_eq!(o.state, JobState::Succeeded);
    assert!(
        held_at.elapsed() >= Duration::from_millis(100),
        "the kind is held for the 150 ms: {:?}",
        held_at.elapsed()
    );
    let job = client.wait(id, WAIT).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Succeeded, 1));
    assert!(job.errors.is_empty(), "{:?}", job.errors);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn timeouts_fail_the_attempt_as_retryable() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let (task, runs) = actor();
    let w = worker(&b)
        .register(task)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let id = client
        .enqueue::<Actor>(&Act::Sleep { ms: 60_000 })
        .timeout(Duration::from_millis(200))
        .max_attempts(2)
        .await
        .unwrap();
    let job = client.wait(id, WAIT).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Dead, 2));
    let kinds: Vec<_> = job.errors.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [ErrorKind::Timeout, ErrorKind::Timeout]);
    assert_eq!(job.errors[0].message, "timed out after 200ms");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the sleeping handler was dropped"
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn panics_become_failed_attempts_and_the_worker_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let (task, _) = actor();
    let w = worker(&b)
        .register(task)
        .concurrency(2)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let bad = client
        .enqueue::<Actor>(&Act::Panic)
        .max_attempts(2)
        .await
        .unwrap();
    let job = client.wait(bad, WAIT).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Dead, 2));
    assert!(job.errors.iter().all(|e| e.kind == ErrorKind::Panic));
    assert_eq!(job.errors[0].message, "panicked: actor panicked on purpose");
    let good = client.enqueue::<Actor>(&Act::Fine).await.unwrap();
    assert_eq!(
        client.wait(good, WAIT).await.unwrap().state,
        JobState::Succeeded
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn progress_and_checkpoints_are_stored_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let gate = Arc::new(tokio::sync::Notify::new());

    struct Resumable {
        gate: Arc<tokio::sync::Notify>,
    }
    impl Task for Resumable {
        const KIND: &'static str = "resumable";
        type Input = u32;
        type Output = u32;
        async fn run(&self, ctx: &Context, total: u32) -> Result<u32, TaskError> {
            let done: u32 = ctx.last_checkpoint()?.unwrap_or(0);
            if done == 0 {
                ctx.progress(50.0, Some(format!("{} of {total}", total / 2)))
                    .await?;
                ctx.checkpoint(&(total / 2)).await?;
                // Hold here so the test can see progress while the job runs.
                self.gate.notified().await;
                return Err(TaskError::retryable("interrupted half way"));
            }
            ctx.progress(100.0, None).await?;
            Ok(done)
        }
        fn retry_policy() -> RetryPolicy {
            fast_retry()
        }
    }

    let w = worker(&b)
        .register(Resumable { gate: gate.clone() })
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let id = client.enqueue::<Resumable>(&10).await.unwrap();
    // Progress and the checkpoint arrive in two calls; wait for the later one.
    let running = until(&client, id, |j| j.checkpoint.is_some()).await;
    assert_eq!(running.state, JobState::Running);
    let p = running.progress.unwrap();
    assert_eq!((p.percent, p.message.as_deref()), (50.0, Some("5 of 10")));
    assert_eq!(running.checkpoint.unwrap().decode::<u32>().unwrap(), 5);
    gate.notify_one();

    let job = client.wait(id, WAIT).await.unwrap();
    assert_eq!((job.state, job.attempt), (JobState::Succeeded, 2));
    assert_eq!(
        job.result.unwrap().decode::<u32>().unwrap(),
        5,
        "the second attempt resumed from the checkpoint"
    );
    assert_eq!(job.progress.unwrap().percent, 100.0);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn unique_keys_deduplicate_enqueues() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let first = client
        .enqueue::<Add>(&Pair { a: 1, b: 1 })
        .unique("sum:1+1")
        .await
        .unwrap();
    let again = client
        .enqueue::<Add>(&Pair { a: 1, b: 1 })
        .unique("sum:1+1")
        .outcome()
        .await
        .unwrap();
    assert_eq!((again.id, again.duplicate), (first, true));
    let other = client
        .enqueue::<Add>(&Pair { a: 1, b: 1 })
        .unique("sum:1+1")
        .queue("elsewhere")
        .await
        .unwrap();
    assert_ne!(other, first, "unique keys are per queue");
    // A raw job with a bad queue name is refused and stores nothing new.
    let err = client
        .enqueue_job(
            NewJob::json("add", serde_json::json!({}))
                .unwrap()
                .queue("bad queue"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("queue name"), "{err}");
    let all = client
        .list(quern::backend::ListParams {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.jobs.len(), 2);
}

/// Writes `n` log lines, then succeeds.
struct Chatty;
impl Task for Chatty {
    const KIND: &'static str = "chatty";
    type Input = u32;
    type Output = ();
    async fn run(&self, ctx: &Context, n: u32) -> Result<(), TaskError> {
        for i in 0..n {
            ctx.log(quern::backend::LogLevel::Warn, format!("line {i}"));
        }
        Ok(())
    }
}

/// `Context::log` lines reach the store through the worker's log writer (more lines than
/// one of its batches), the worker's caps drop the oldest, and every line is stored before
/// the outcome: a read right after the job is seen finished has the last one.
#[tokio::test]
async fn handler_log_lines_are_stored_before_the_outcome_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let b = open(&dir).await;
    let client = Client::new(b.clone());
    let w = worker(&b)
        .register(Chatty)
        .log_limits(quern::backend::LogLimits {
            max_lines: 2500,
            max_bytes: 1 << 20,
        })
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let id = client.enqueue::<Chatty>(&3000).await.unwrap();
    let quiet = client.enqueue::<Chatty>(&0).await.unwrap();
    assert_eq!(
        client.wait(id, WAIT).await.unwrap().state,
        JobState::Succeeded
    );
    let page = b
        .job_logs(quern::backend::JobLogsParams {
            id,
            after: 0,
            limit: 10_000,
        })
        .await
        .unwrap();
    assert_eq!((page.lines.len(), page.dropped), (2500, 500));
    let last = page.lines.last().unwrap();
    assert_eq!((last.seq, last.message.as_str()), (3000, "line 2999"));
    assert_eq!(
        (last.level, last.attempt),
        (quern::backend::LogLevel::Warn, 1)
    );
    assert_eq!(page.lines[0].message, "line 500");
    client.wait(quiet, WAIT).await.unwrap();
    let none = b
        .job_logs(quern::backend::JobLogsParams {
            id: quiet,
            after: 0,
            limit: 10,
        })
        .await
        .unwrap();
    assert!(none.lines.is_empty());
    w.shutdown().await.unwrap();
}
