//! Checkpoints of a long workflow task survive a crash: a worker *process* running the task
//! saves a checkpoint after each step and is killed with SIGKILL half way; once its 1 s lease
//! expires another worker's rescuer re-delivers the task, whose next attempt starts from the
//! last checkpoint instead of from the beginning. The workflow then succeeds.
//!
//! The child is this same test binary, re-invoked to run only the ignored
//! `checkpoint_child` test with an environment variable naming the database.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use quern::maintenance::RescuerConfig;
use quern::model::{ErrorKind, WorkflowState};
use quern::workflow::{Advancer, SourceFormat, SubmitOptions, WorkflowPlan, status, submit};
use quern::{Backend, Context, JobState, Task, TaskError, Worker};
use quern_sqlite::SqliteBackend;
use serde::{Deserialize, Serialize};

use crate::worker::WAIT;

const CHILD_DB: &str = "QUERN_WORKFLOW_CHECKPOINT_CHILD_DB";
const LEASE: Duration = Duration::from_secs(1);
/// The child hangs after saving this many steps.
const CRASH_AFTER: u32 = 5;

#[derive(Serialize, Deserialize)]
struct Count {
    to: u32,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Counted {
    /// The step this attempt started from (the last checkpoint).
    resumed_from: u32,
    /// Steps this attempt did.
    steps: u32,
    attempt: u32,
}

/// Counts to `to`, one checkpointed step at a time. In the child it hangs after
/// [`CRASH_AFTER`] steps, so the kill lands mid-task.
struct Counter {
    crash: bool,
}

impl Task for Counter {
    const KIND: &'static str = "count";
    type Input = Count;
    type Output = Counted;
    async fn run(&self, ctx: &Context, input: Count) -> Result<Counted, TaskError> {
        let start: u32 = ctx.last_checkpoint()?.unwrap_or(0);
        for i in start..input.to {
            tokio::time::sleep(Duration::from_millis(5)).await;
            ctx.checkpoint(&(i + 1)).await?;
            if self.crash && i + 1 == CRASH_AFTER {
                println!("CHECKPOINTED {}", i + 1);
                std::future::pending::<()>().await;
            }
        }
        Ok(Counted {
            resumed_from: start,
            steps: input.to - start,
            attempt: ctx.attempt(),
        })
    }
}

const WORKFLOW: &str = r#"
name: long
tasks:
  - {id: prepare, kind: count, params: {to: 1}}
  - id: count
    kind: count
    depends_on: [prepare]
    retry: 1
    params: {to: "${workflow.variables.to}"}
variables: {to: 12}
"#;

async fn open(path: &str) -> Arc<dyn Backend> {
    Arc::new(
        SqliteBackend::open(&format!("sqlite://{path}"))
            .await
            .unwrap(),
    )
}

/// The child: a worker that runs the task until it hangs, then waits to be killed.
#[tokio::test]
#[ignore = "child process of a_killed_worker_s_task_resumes_from_its_checkpoint"]
async fn checkpoint_child() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let _worker = Worker::builder(open(&path).await)
        .register(Counter { crash: true })
        .id("doomed")
        .lease(LEASE)
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    std::future::pending::<()>().await;
}

#[tokio::test]
async fn a_killed_worker_s_task_resumes_from_its_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wf.db").display().to_string();
    let b = open(&db).await;
    let plan = WorkflowPlan::load(WORKFLOW, SourceFormat::Yaml, &[]).unwrap();
    let rec = submit(&*b, &plan, SubmitOptions::default()).await.unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "workflow::checkpoint::checkpoint_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("CHECKPOINTED ") {
                let _ = tx.send(());
            }
        }
    });
    if let Err(e) = rx.recv_timeout(WAIT) {
        let _ = child.kill();
        panic!("the child never reached its checkpoint ({e})");
    }
    let count_job = rec.tasks["count"];
    let mid = b.job_get(count_job.into()).await.unwrap().unwrap();
    assert_eq!(mid.state, JobState::Running);
    assert_eq!(
        mid.checkpoint.unwrap().decode::<u32>().unwrap(),
        CRASH_AFTER
    );

    // SIGKILL: no graceful shutdown, no lease give-back.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    assert_eq!(rc, 0);
    child.wait().unwrap();

    let survivor = Worker::builder(b.clone())
        .register(Counter { crash: false })
        .id("survivor")
        .lease(LEASE)
        .rescuer(Some(RescuerConfig::with_interval(Duration::from_millis(
            100,
        ))))
        .build()
        .unwrap()
        .start()
        .await
        .unwrap();
    let advancer = Advancer::new(b.clone());
    let give_up = tokio::time::Instant::now() + WAIT;
    let done = loop {
        match advancer.advance_id(&rec.id).await {
            Ok(r) if r.state.is_final() => break r,
            // The survivor's own monitor moved it first: look again.
            Ok(_) | Err(quern::Error::Conflict(_)) => {}
            Err(e) => panic!("advance: {e}"),
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "workflow never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    survivor.shutdown().await.unwrap();
    assert_eq!(done.state, WorkflowState::Succeeded, "{done:?}");

    let job = b.job_get(count_job.into()).await.unwrap().unwrap();
    let out: Counted = job.result.unwrap().decode().unwrap();
    assert_eq!(
        out,
        Counted {
            resumed_from: CRASH_AFTER,
            steps: 12 - CRASH_AFTER,
            attempt: 2
        },
        "the second attempt started from the checkpoint, not from 0"
    );
    let kinds: Vec<_> = job.errors.iter().map(|e| (e.attempt, e.kind)).collect();
    assert_eq!(kinds, [(1, ErrorKind::LeaseExpired)]);
    let st = status(&*b, &rec.id).await.unwrap();
    assert_eq!(st.counts.succeeded, 2);
}
