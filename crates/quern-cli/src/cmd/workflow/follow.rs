//! `quern workflow run` and `retry`: submit (or reopen) a workflow and follow it to its end.
//!
//! Following means three things in this process, until the workflow is final:
//! - in-process workers for the queues whose tasks all have built-in kinds (`shell`,
//!   `http`, `quern.*`). They run only this workflow's jobs: anything else they claim from a
//!   shared store is snoozed back for other workers, so a local run never executes commands
//!   it was not given. Templates may read this process's environment (`${env.NAME}`), for
//!   this workflow only.
//! - the workflow monitor for this one workflow (failure policy, compensation, final state);
//! - a live view on stderr (`view.rs`).
//!
//! Exit status: 0 when the workflow succeeded, 1 when it ended otherwise, 130 on Ctrl-C (the
//! workflow is left running; its state is kept in the store).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quern::executors::{ExecutorConfig, HttpConfig, ShellConfig, kinds};
use quern::model::{Payload, WorkflowState};
use quern::workflow::{
    Advancer, EnvSource, SubmitOptions, WorkflowPlan, plan_of, status as workflow_status, submit,
};
use quern::{Backend, Context, Handler, TaskError, Worker, WorkerHandle};

use super::inspect::{counts_text, print_status};
use super::load_or_report;
use super::view::View;
use crate::cli::{FollowArgs, WorkflowRunArgs};
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult, EXIT_FAILED};
use crate::log::out;
use crate::store::Open;

/// How often the follower advances the workflow and redraws.
const TICK: Duration = Duration::from_millis(100);

pub async fn run(ctx: &Ctx, a: WorkflowRunArgs) -> CliResult<u8> {
    let plan = match load_or_report(ctx, &a.file, &a.vars.vars)? {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    let backend = ctx.open(Open::Create).await?;
    let rec = submit(&*backend, &plan, SubmitOptions::default()).await?;
    if a.follow.detach {
        ctx.out.emit(
            &serde_json::json!({"id": rec.id, "name": rec.name, "state": rec.state}),
            || out!("{}", rec.id),
        );
        return Ok(0);
    }
    follow(ctx, backend, &plan, &rec.id, &a.follow).await
}

pub async fn retry(ctx: &Ctx, id: &str, args: FollowArgs) -> CliResult<u8> {
    let backend = ctx.open(Open::Existing).await?;
    let report = quern::workflow::retry(&*backend, id)
        .await
        .map_err(super::inspect::not_now)?;
    if args.detach {
        ctx.out.emit(
            &serde_json::json!({"id": id, "state": report.record.state, "tasks": report.tasks}),
            || out!("workflow {id} running again: {}", report.tasks.join(", ")),
        );
        return Ok(0);
    }
    if !ctx.out.json {
        crate::log::say!(
            "workflow {id} running again from: {}",
            report.tasks.join(", ")
        );
    }
    let plan = plan_of(&report.record)?;
    follow(ctx, backend, &plan, id, &args).await
}

/// The built-in kinds the in-process workers can run.
const BUILTIN: [&str; 5] = [
    kinds::SHELL,
    kinds::HTTP,
    kinds::NOOP,
    kinds::SLEEP,
    kinds::FAIL,
];

/// Queues whose tasks (and compensations) all have built-in kinds, and the kinds that need a
/// worker elsewhere, by queue.
fn split_queues(plan: &WorkflowPlan) -> (Vec<String>, BTreeMap<String, BTreeSet<String>>) {
    let mut by_queue: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in plan.tasks() {
        for job in std::iter::once(&t.job).chain(t.compensate.as_ref()) {
            by_queue
                .entry(job.queue.clone())
                .or_default()
                .insert(job.kind.clone());
        }
    }
    let mut local = Vec::new();
    let mut elsewhere = BTreeMap::new();
    for (queue, kinds) in by_queue {
        let foreign: BTreeSet<String> = kinds
            .into_iter()
            .filter(|k| !BUILTIN.contains(&k.as_str()))
            .collect();
        if foreign.is_empty() {
            local.push(queue);
        } else {
            elsewhere.insert(queue, foreign);
        }
    }
    (local, elsewhere)
}

/// Runs a built-in executor only for jobs of one workflow; other jobs are snoozed back (not
/// counted as an attempt) for the workers they were meant for.
struct OwnWorkflow {
    id: String,
    inner: Arc<dyn Handler>,
}

#[quern::async_trait]
impl Handler for OwnWorkflow {
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        if ctx.job().workflow_id.as_deref() != Some(self.id.as_str()) {
            return Err(TaskError::Snooze(Duration::from_secs(1)));
        }
        self.inner.run(ctx, payload).await
    }

    fn retry_policy(&self) -> Option<quern::RetryPolicy> {
        self.inner.retry_policy()
    }

    fn timeout(&self) -> Option<Duration> {
        self.inner.timeout()
    }
}

async fn start_workers(
    ctx: &Ctx,
    backend: &Arc<dyn Backend>,
    id: &str,
    queues: Vec<String>,
    args: &FollowArgs,
) -> CliResult<WorkerHandle> {
    let s = &ctx.settings;
    let exec = ExecutorConfig {
        shell: ShellConfig {
            // The user asked to run this file; the guard keeps other jobs out.
            allow_any: true,
            allowed_programs: s.shell.allow.clone(),
            default_timeout: s.shell.timeout,
            max_output_bytes: s.max_payload_bytes,
        },
        http: HttpConfig {
            default_timeout: s.http.timeout,
            max_response_bytes: s.max_payload_bytes,
            ..HttpConfig::default()
        },
        result_codec: ctx.codec(),
    };
    let mut b = Worker::builder(backend.clone())
        .queues(queues.iter().map(|q| (q.clone(), 1)))
        .concurrency(args.concurrency.unwrap_or(s.worker.concurrency) as usize)
        .lease(s.worker.lease)
        .shutdown_grace(s.worker.shutdown_grace)
        .codec(ctx.codec())
        .poll_interval(Duration::from_millis(200))
        .workflow_env(EnvSource::ProcessFor(id.to_owned()));
    for (kind, h) in quern::executors::builtin(&exec)? {
        b = b.handler(
            kind,
            Arc::new(OwnWorkflow {
                id: id.to_owned(),
                inner: h,
            }),
        );
    }
    Ok(b.build()?.start().await?)
}

async fn follow(
    ctx: &Ctx,
    backend: Arc<dyn Backend>,
    plan: &WorkflowPlan,
    id: &str,
    args: &FollowArgs,
) -> CliResult<u8> {
    let (local, elsewhere) = split_queues(plan);
    for (queue, kinds) in &elsewhere {
        let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
        tracing::warn!(
            "queue {queue:?} has tasks of kind {} that need a worker that runs them (`quern worker` or your own); this run does not work on that queue",
            kinds.join(", ")
        );
        if !ctx.out.json {
            crate::log::say!(
                "note: tasks of kind {} (queue {queue}) need a worker that runs them: `quern worker --queues {queue}` or your own",
                kinds.join(", ")
            );
        }
    }
    let workers = if args.no_workers || local.is_empty() {
        None
    } else {
        Some(start_workers(ctx, &backend, id, local, args).await?)
    };
    let advancer = Advancer::new(backend.clone());
    let started = Instant::now();
    let mut view = View::new(plan, id, !ctx.out.json);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let outcome = loop {
        match advancer.advance_id(id).await {
            Ok(_) | Err(quern::Error::Conflict(_)) => {}
            Err(e) if e.is_transient() => tracing::warn!(error = %e, "store unavailable; retrying"),
            Err(e) => break Err(CliError::from(e)),
        }
        let st = match workflow_status(&*backend, id).await {
            Ok(st) => st,
            Err(e) if e.is_transient() => {
                tokio::time::sleep(TICK).await;
                continue;
            }
            Err(e) => break Err(e.into()),
        };
        view.update(&st);
        if st.record.state.is_final() {
            break Ok(Some(st));
        }
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = &mut interrupted => break Ok(None),
        }
    };
    view.finish();
    if let Some(w) = workers {
        // Give back what has not finished (nothing, once the workflow is final).
        if let Err(e) = w.shutdown().await {
            tracing::warn!(error = %e, "in-process worker did not stop cleanly");
        }
    }
    let Some(st) = outcome? else {
        crate::log::say!(
            "interrupted: workflow {id} keeps its state; follow it with `quern workflow status {id}`, run its tasks with `quern worker`, or stop it with `quern workflow cancel {id}`"
        );
        return Ok(130);
    };
    let took = started.elapsed();
    let ok = st.record.state == WorkflowState::Succeeded;
    ctx.out.emit(&st, || {
        print_status(&st);
        out!(
            "workflow {} {} in {:.1}s ({})",
            st.record.name,
            st.record.state,
            took.as_secs_f64(),
            counts_text(&st.counts)
        );
    });
    Ok(if ok { 0 } else { EXIT_FAILED })
}

#[cfg(test)]
mod tests {
    use quern::workflow::SourceFormat;

    use super::*;

    #[test]
    fn queues_with_only_built_in_kinds_run_here() {
        let plan = WorkflowPlan::load(
            r#"
name: mixed
tasks:
  - {id: a, kind: shell, queue: etl, params: {argv: ["true"]}}
  - {id: b, kind: resize, queue: images, depends_on: [a]}
  - {id: c, kind: quern.noop, queue: images}
  - {id: d, kind: http, compensate: {kind: send_mail}}
  - {id: e, kind: quern.sleep, queue: etl}
"#,
            SourceFormat::Yaml,
            &[],
        )
        .unwrap();
        let (local, elsewhere) = split_queues(&plan);
        assert_eq!(local, ["etl"]);
        assert_eq!(elsewhere.keys().collect::<Vec<_>>(), ["default", "images"]);
        assert!(elsewhere["images"].contains("resize"));
        assert!(elsewhere["default"].contains("send_mail"));
    }
}
