//! What every workflow test uses: a `step` task whose params say what to do, a running
//! worker and monitor, and waits bounded by [`WAIT`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quern::maintenance::{WorkflowMonitor, WorkflowMonitorConfig};
use quern::model::WorkflowRecord;
use quern::workflow::{
    EnvSource, SourceFormat, SubmitOptions, WorkflowPlan, WorkflowStatus, status, submit,
};
use quern::{Backend, Context, Job, JobId, Task, TaskError, WorkerHandle};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::worker::{Gauge, WAIT, open, worker};

/// What `step` jobs did, shared with the test.
#[derive(Default)]
pub struct Log {
    /// `(name, params)` of every step that ran, in start order.
    pub ran: Mutex<Vec<(String, Value)>>,
    /// Concurrency of steps.
    pub gauge: Gauge,
    /// Names of `fail_unless` switches that are on.
    pub switches: Mutex<HashSet<String>>,
    /// Steps that saw their job cancelled.
    pub cancelled: AtomicUsize,
}

impl Log {
    /// The names of the steps that ran, in order.
    pub fn names(&self) -> Vec<String> {
        self.ran
            .lock()
            .unwrap()
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// The params a step ran with (the last time it ran).
    pub fn params(&self, name: &str) -> Value {
        self.ran
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("step {name} never ran"))
    }

    /// How many times a step ran.
    pub fn count(&self, name: &str) -> usize {
        self.ran
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .count()
    }
}

/// A test task. Its params (after rendering) say what to do:
/// - `name`: recorded in the log (default: the params as JSON);
/// - `sleep_ms`: wait this long first (stops early if cancelled);
/// - `fail`: fail fatally with this message;
/// - `fail_unless`: fail unless this switch is on;
/// - `wait_cancel`: wait until the job is cancelled;
/// - `return`: the result (default: the params themselves).
pub struct Step(pub Arc<Log>);

impl Task for Step {
    const KIND: &'static str = "step";
    type Input = Value;
    type Output = Value;
    async fn run(&self, ctx: &Context, p: Value) -> Result<Value, TaskError> {
        let name = p["name"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| p.to_string());
        self.0.ran.lock().unwrap().push((name, p.clone()));
        self.0.gauge.enter();
        let out = async {
            if let Some(ms) = p["sleep_ms"].as_u64() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    _ = ctx.cancelled() => {
                        self.0.cancelled.fetch_add(1, Ordering::SeqCst);
                        return Err(TaskError::retryable("cancelled"));
                    }
                }
            }
            if p["wait_cancel"].as_bool() == Some(true) {
                ctx.cancelled().await;
                self.0.cancelled.fetch_add(1, Ordering::SeqCst);
                return Err(TaskError::retryable("cancelled"));
            }
            if let Some(msg) = p["fail"].as_str() {
                return Err(TaskError::fatal(msg));
            }
            if let Some(switch) = p["fail_unless"].as_str()
                && !self.0.switches.lock().unwrap().contains(switch)
            {
                return Err(TaskError::fatal(format!("switch {switch} is off")));
            }
            Ok(p.get("return").cloned().unwrap_or(p.clone()))
        }
        .await;
        self.0.gauge.exit();
        out
    }
}

/// A database, a worker running `step` (concurrency 8) and a workflow monitor ticking every
/// 20 ms.
pub struct Env {
    pub backend: Arc<dyn Backend>,
    pub log: Arc<Log>,
    worker: Option<WorkerHandle>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Env {
    pub async fn start() -> Env {
        Self::start_with(EnvSource::Denied).await
    }

    pub async fn start_with(env: EnvSource) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let backend = open(&dir).await;
        let log = Arc::new(Log::default());
        let handle = worker(&backend)
            .register(Step(log.clone()))
            .queues([("default", 1), ("etl", 1)])
            .concurrency(8)
            // Heartbeats every 400 ms, so a cancelled job's handler hears of it quickly.
            .lease(Duration::from_millis(1200))
            .poll_interval(Duration::from_millis(50))
            .workflow_env(env)
            .build()
            .unwrap()
            .start()
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let monitor = WorkflowMonitor::new(
            backend.clone(),
            WorkflowMonitorConfig {
                interval: Duration::from_millis(20),
                ..Default::default()
            },
        );
        tokio::spawn(monitor.run(stop.clone()));
        Env {
            backend,
            log,
            worker: Some(handle),
            stop,
            _dir: dir,
        }
    }

    /// Validates and submits a YAML workflow.
    pub async fn submit(&self, yaml: &str) -> WorkflowRecord {
        let plan =
            WorkflowPlan::load(yaml, SourceFormat::Yaml, &[]).unwrap_or_else(|e| panic!("{e}"));
        submit(&*self.backend, &plan, SubmitOptions::default())
            .await
            .unwrap()
    }

    /// Submits and waits until the workflow ends.
    pub async fn run(&self, yaml: &str) -> WorkflowStatus {
        let rec = self.submit(yaml).await;
        self.finished(&rec.id).await
    }

    /// Waits until the workflow is in a final state; returns its status.
    pub async fn finished(&self, id: &str) -> WorkflowStatus {
        let give_up = tokio::time::Instant::now() + WAIT;
        loop {
            let st = status(&*self.backend, id).await.unwrap();
            if st.record.state.is_final() {
                return st;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "workflow {id} did not finish: {:?} {:?}",
                st.record,
                st.tasks
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The job of a task.
    pub async fn job(&self, st: &WorkflowStatus, task: &str) -> Job {
        let id: JobId = st.task(task).and_then(|t| t.job_id).expect("task job");
        self.backend
            .job_get(id.into())
            .await
            .unwrap()
            .expect("job exists")
    }

    /// The decoded result of a task's job.
    pub async fn result(&self, st: &WorkflowStatus, task: &str) -> Value {
        self.job(st, task)
            .await
            .result
            .unwrap_or_else(|| panic!("task {task} has no result"))
            .to_json_value()
            .unwrap()
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(w) = self.worker.take() {
            w.shutdown().await.unwrap();
        }
    }
}
