//! Preparing a claimed workflow job before its handler runs: the step that makes "templates
//! are rendered when a task becomes ready" true without imposing anything on task code.
//!
//! The [`Worker`](crate::Worker) calls [`Preparer::prepare`] for every claimed job that
//! belongs to a workflow. It reads the workflow (cached: the definition never changes) and
//! the upstream results the task's templates name, then decides:
//! - a task whose `when` is false is **skipped** (`FailAction::Skip`);
//! - a task's `params` are **rendered** and the handler runs with them; a missing path or a
//!   type error fails the task at once (fatal), with the reference and the reason;
//! - a `for_each` task **spawns** one instance per item (each rendered with `${item}` and
//!   `${index}`) and waits for them; claimed again once they all finished, it **completes**
//!   with their results as a list in item order, or fails if one of them failed;
//! - with `max_parallel` (or `execution_mode: sequential`), a job over the limit is
//!   **snoozed** briefly (not counted as an attempt).
//!
//! The worker calls it for every workflow task it claims, before the handler runs; it is the
//! only path that hands a task to a handler, so every handler sees a rendered payload.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::OnceCell;

use super::meta::{Expanded, TaskMeta, TaskRole};
use super::plan::PlannedTask;
use super::reference::RefTarget;
use super::render::{EnvSource, Item, RenderContext};
use super::spec::ExecutionMode;
use super::stored::{StoredWorkflow, output_of};
use super::submit::job_for;
use crate::backend::Backend;
use crate::model::{Codec, Job, JobState, NewJob, Payload, TaskError};
use crate::{Error, Result};

/// Workflows kept in the cache before it is cleared (each entry is one parsed definition).
const CACHE_CAP: usize = 256;

/// What to do with a claimed workflow job.
#[derive(Debug)]
pub enum Prepared {
    /// Run the handler with this payload (the rendered `params`).
    Run(Payload),
    /// Finish without running a handler (a `for_each` task collecting its instances).
    Complete(Option<Payload>),
    /// End the attempt as this error says (fatal for bad templates, a snooze to wait for a
    /// free slot under `max_parallel` or for the store to come back).
    Fail(TaskError),
    /// Skip the job: its condition was false (the reason).
    Skip(String),
    /// Hand the work to these instances and wait for them (`FailAction::Spawn`).
    Spawn {
        children: Vec<NewJob>,
        checkpoint: Payload,
    },
}

/// Prepares claimed workflow jobs. Cheap to share (`Arc`); one per worker.
pub struct Preparer {
    backend: Arc<dyn Backend>,
    env: EnvSource,
    cache: Mutex<HashMap<String, Arc<OnceCell<Arc<StoredWorkflow>>>>>,
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparer").field("env", &self.env).finish()
    }
}

fn fatal(msg: impl std::fmt::Display) -> Prepared {
    Prepared::Fail(TaskError::Fatal(msg.to_string()))
}

fn json_payload(v: &Value) -> std::result::Result<Payload, Prepared> {
    Payload::from_json_value(v, &Codec::default()).map_err(fatal)
}

impl Preparer {
    /// A preparer reading from `backend`; `${env.NAME}` reads from `env`.
    pub fn new(backend: Arc<dyn Backend>, env: EnvSource) -> Self {
        Preparer {
            backend,
            env,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// True when `job` is a workflow job this preparer must see before its handler runs.
    pub fn wants(job: &Job) -> bool {
        job.workflow_id.is_some() && TaskMeta::from_meta(&job.meta).is_some()
    }

    /// Decides what to do with a claimed job (see the module docs). Jobs that are not
    /// workflow tasks run as they are.
    pub async fn prepare(&self, job: &Job) -> Prepared {
        let (Some(wf_id), Some(meta)) = (&job.workflow_id, TaskMeta::from_meta(&job.meta)) else {
            return Prepared::Run(job.payload.clone());
        };
        match self.prepare_inner(wf_id, job, &meta).await {
            Ok(p) => p,
            // The store is unreachable: try again soon without counting an attempt.
            Err(e) if e.is_transient() => Prepared::Fail(TaskError::Snooze(Duration::from_secs(1))),
            Err(e) => fatal(format!("cannot prepare workflow task `{}`: {e}", meta.task)),
        }
    }

    /// The workflow, read and planned once per worker: jobs of one workflow claimed together
    /// wait for the first one's read instead of each parsing the definition.
    async fn load(&self, id: &str) -> Result<Arc<StoredWorkflow>> {
        let cell = {
            let mut cache = self.cache.lock().expect("cache lock");
            if cache.len() >= CACHE_CAP && !cache.contains_key(id) {
                cache.clear();
            }
            Arc::clone(cache.entry(id.to_owned()).or_default())
        };
        let loaded = cell
            .get_or_try_init(|| async {
                let rec = self
                    .backend
                    .workflow_get(id.into())
                    .await?
                    .ok_or_else(|| Error::WorkflowNotFound(id.to_owned()))?;
                Ok::<_, Error>(Arc::new(StoredWorkflow::from_record(&rec)?))
            })
            .await?;
        Ok(Arc::clone(loaded))
    }

    async fn prepare_inner(&self, wf_id: &str, job: &Job, meta: &TaskMeta) -> Result<Prepared> {
        let wf = self.load(wf_id).await?;
        let Some(task) = wf.plan.task(&meta.task) else {
            return Ok(fatal(format!(
                "workflow {wf_id} has no task `{}`",
                meta.task
            )));
        };
        match meta.role {
            TaskRole::Task if task.for_each.is_some() => {
                let expanded = job
                    .checkpoint
                    .as_ref()
                    .and_then(|c| c.decode::<Expanded>().ok());
                if expanded.is_some() {
                    self.fan_in(job).await
                } else {
                    self.expand(&wf, task).await
                }
            }
            TaskRole::Task => {
                if let Some(wait) = self.gate(&wf).await? {
                    return Ok(wait);
                }
                let refs = task.references();
                let ctx = wf.context(&*self.backend, &refs, &self.env).await?;
                if let Some(cond) = &task.condition {
                    match cond.evaluate(&ctx, None) {
                        Ok(true) => {}
                        Ok(false) => {
                            return Ok(Prepared::Skip(format!(
                                "condition `{}` was false",
                                cond.source()
                            )));
                        }
                        Err(e) => {
                            return Ok(fatal(format!("when `{}`: {e}", cond.source())));
                        }
                    }
                }
                Ok(match task.job.render_params(&ctx, None) {
                    Ok(v) => json_payload(&v).map_or_else(|p| p, Prepared::Run),
                    Err(e) => fatal(format!("params: {e}")),
                })
            }
            TaskRole::Instance => {
                if let Some(reason) = &meta.skip {
                    return Ok(Prepared::Skip(reason.clone()));
                }
                if let Some(wait) = self.gate(&wf).await? {
                    return Ok(wait);
                }
                Ok(Prepared::Run(job.payload.clone()))
            }
            TaskRole::Compensation => self.compensation(&wf, task, meta).await,
        }
    }

    /// `max_parallel` (or sequential mode): snoozes the job while as many other jobs of the
    /// workflow are running as the limit allows. Counting *other* running jobs never lets
    /// more than the limit run: of two jobs claimed at once, the later claim sees both.
    async fn gate(&self, wf: &StoredWorkflow) -> Result<Option<Prepared>> {
        let limit = match wf.plan.execution_mode() {
            ExecutionMode::Sequential => Some(1),
            ExecutionMode::Parallel => wf.plan.max_parallel(),
        };
        let Some(limit) = limit else { return Ok(None) };
        let running = self.backend.workflow_counts((&wf.id).into()).await?.running;
        let others = running.saturating_sub(1);
        if others < u64::from(limit) {
            return Ok(None);
        }
        // Spread the retries so a crowd of waiting jobs does not come back at once.
        let over = (others + 1 - u64::from(limit)).min(20);
        let base = 50 * over;
        let ms = base + fastrand::u64(0..=base * 2);
        Ok(Some(Prepared::Fail(TaskError::Snooze(
            Duration::from_millis(ms.min(2000)),
        ))))
    }

    /// A `for_each` task's first run: evaluates its condition and list, renders one
    /// instance per item and spawns them.
    async fn expand(&self, wf: &StoredWorkflow, task: &PlannedTask) -> Result<Prepared> {
        let refs = task.references();
        let ctx = wf.context(&*self.backend, &refs, &self.env).await?;
        let per_item = task.condition.as_ref().filter(|c| {
            c.references()
                .iter()
                .any(|r| matches!(r.target, RefTarget::Item { .. } | RefTarget::Index))
        });
        if let Some(cond) = &task.condition
            && per_item.is_none()
        {
            match cond.evaluate(&ctx, None) {
                Ok(true) => {}
                Ok(false) => {
                    return Ok(Prepared::Skip(format!(
                        "condition `{}` was false",
                        cond.source()
                    )));
                }
                Err(e) => return Ok(fatal(format!("when `{}`: {e}", cond.source()))),
            }
        }
        let Some(for_each) = &task.for_each else {
            return Ok(fatal("not a for_each task"));
        };
        let items = match for_each.items(&ctx) {
            Ok(items) => items,
            Err(e) => return Ok(fatal(format!("for_each: {e}"))),
        };
        if items.is_empty() {
            return Ok(match json_payload(&Value::Array(Vec::new())) {
                Ok(p) => Prepared::Complete(Some(p)),
                Err(p) => p,
            });
        }
        let keep_item = task.compensate.is_some();
        let mut children = Vec::with_capacity(items.len());
        for (index, value) in items.iter().enumerate() {
            match instance(wf, task, &ctx, per_item, index, value, keep_item) {
                Ok(job) => children.push(job),
                Err(p) => return Ok(p),
            }
        }
        let checkpoint = Payload::encode(
            &Expanded {
                spawned: children.len(),
            },
            &Codec::default(),
        )?;
        Ok(Prepared::Spawn {
            children,
            checkpoint,
        })
    }

    /// A `for_each` task claimed again after its instances finished: their results as a
    /// list in item order (`null` for a skipped instance), or a failure naming the first
    /// instance that failed.
    async fn fan_in(&self, job: &Job) -> Result<Prepared> {
        let children = self.backend.job_get_many((&job.depends_on).into()).await?;
        let total = children.len();
        let mut results = Vec::with_capacity(total);
        let mut failed: Vec<(usize, String)> = Vec::new();
        for (i, child) in children.into_iter().enumerate() {
            let Some(child) = child else {
                failed.push((i, "its job no longer exists (pruned?)".into()));
                continue;
            };
            match child.state {
                JobState::Succeeded => {
                    results.push(output_of(&child).result.unwrap_or(Value::Null))
                }
                JobState::Skipped => results.push(Value::Null),
                JobState::Dead | JobState::Cancelled => {
                    let why = child
                        .errors
                        .last()
                        .map(|e| e.message.clone())
                        .unwrap_or_else(|| child.state.to_string());
                    failed.push((i, format!("{}: {why}", child.state)));
                }
                // Re-queued early (an operator retried a child): wait for it.
                _ => return Ok(Prepared::Fail(TaskError::Snooze(Duration::from_secs(1)))),
            }
        }
        if let Some((i, why)) = failed.first() {
            return Ok(fatal(format!(
                "{} of {total} instances failed; the first is instance {i} ({why})",
                failed.len()
            )));
        }
        Ok(match json_payload(&Value::Array(results)) {
            Ok(p) => Prepared::Complete(Some(p)),
            Err(_) => fatal(format!(
                "the results of the {total} instances do not fit in one result (over the payload limit)"
            )),
        })
    }

    /// A compensation: renders the task's `compensate.params`. `${TASK.result}` of the task
    /// being undone is its own result (for an instance, the instance's).
    async fn compensation(
        &self,
        wf: &StoredWorkflow,
        task: &PlannedTask,
        meta: &TaskMeta,
    ) -> Result<Prepared> {
        let Some(comp) = &task.compensate else {
            return Ok(fatal(format!("task `{}` has no compensate step", task.id)));
        };
        let refs: Vec<_> = comp
            .params
            .references()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        let mut ctx = wf.context(&*self.backend, &refs, &self.env).await?;
        if let Some(source) = meta.undoes
            && let Some(inst) = self.backend.job_get(source.into()).await?
        {
            ctx.tasks.insert(task.id.clone(), output_of(&inst));
        }
        let item = match (&meta.item, meta.index) {
            (Some(value), Some(index)) => Some(Item { value, index }),
            _ => None,
        };
        Ok(match comp.render_params(&ctx, item) {
            Ok(v) => json_payload(&v).map_or_else(|p| p, Prepared::Run),
            Err(e) => fatal(format!("compensate.params: {e}")),
        })
    }
}

/// Renders one `for_each` instance.
fn instance(
    wf: &StoredWorkflow,
    task: &PlannedTask,
    ctx: &RenderContext,
    per_item: Option<&super::condition::Condition>,
    index: usize,
    value: &Value,
    keep_item: bool,
) -> std::result::Result<NewJob, Prepared> {
    let item = Some(Item { value, index });
    let skip = match per_item {
        None => None,
        Some(cond) => match cond.evaluate(ctx, item) {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "condition `{}` was false for item {index}",
                cond.source()
            )),
            Err(e) => {
                return Err(fatal(format!(
                    "for_each item {index}: when `{}`: {e}",
                    cond.source()
                )));
            }
        },
    };
    let meta = TaskMeta {
        task: task.id.clone(),
        role: TaskRole::Instance,
        level: task.level,
        index: Some(index),
        item: keep_item.then(|| value.clone()),
        skip: skip.clone(),
        undoes: None,
    };
    let mut job = job_for(&task.job, &wf.id, &meta).map_err(fatal)?;
    if skip.is_none() {
        let params = task
            .job
            .render_params(ctx, item)
            .map_err(|e| fatal(format!("for_each item {index}: params: {e}")))?;
        job.payload = json_payload(&params)?;
    }
    Ok(job)
}
