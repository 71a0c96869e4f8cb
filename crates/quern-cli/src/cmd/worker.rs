//! `quern worker`: a worker process with the built-in executors.

use std::sync::Arc;
use std::time::Duration;

use quern::executors::{ExecutorConfig, HttpConfig, ShellConfig};
use quern::{Backend, Handler};
use tokio_util::sync::CancellationToken;

use crate::cli::WorkerArgs;
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::runner::{PoolConfig, run_pool};
use crate::store::Open;

pub async fn run(ctx: &Ctx, args: WorkerArgs) -> CliResult<u8> {
    let s = &ctx.settings;
    let capabilities = if args.capabilities.is_empty() {
        s.worker.capabilities.clone()
    } else {
        args.capabilities
    };
    let caps = quern::routing::parse_capabilities(&capabilities)
        .map_err(|e| CliError::usage("invalid_argument", format!("--capabilities: {e}")))?;
    let queues = s.worker_queues(args.queues, &caps)?;
    let concurrency = args.concurrency.unwrap_or(s.worker.concurrency) as usize;
    let lease = args.lease.unwrap_or(s.worker.lease);
    if lease < Duration::from_millis(100) {
        return Err(CliError::usage(
            "invalid_argument",
            "--lease must be at least 100ms",
        ));
    }
    let heartbeat = args.heartbeat.unwrap_or(s.worker.heartbeat);
    if heartbeat < Duration::from_millis(10) {
        return Err(CliError::usage(
            "invalid_argument",
            "--heartbeat must be at least 10ms",
        ));
    }
    let mut retention = super::prune::retention(&s.retention, &args.retention);
    if let Some(i) = args.prune_interval {
        if i < Duration::from_millis(10) {
            return Err(CliError::usage(
                "invalid_argument",
                "--prune-interval must be at least 10ms",
            ));
        }
        retention.interval = i;
    }
    if let Some(k) = args.retain_lost_workers {
        retention.lost_workers = k.0;
    }
    let exec = executor_config(ctx, args.allow_shell);
    let handlers = builtin_handlers(&exec)?;
    let backend = ctx.open(Open::Create).await?;
    apply_queue_settings(&backend, &s.queues).await?;
    apply_schedules(&backend, &s.cron).await?;

    let shutdown = CancellationToken::new();
    tokio::spawn(on_signals(shutdown.clone()));
    if args.exit_when_idle {
        tokio::spawn(exit_when_idle(
            backend.clone(),
            queues
                .iter()
                .map(|q| q.split_once('=').map_or(q.as_str(), |(n, _)| n).to_string())
                .collect(),
            shutdown.clone(),
        ));
    }
    tracing::info!(
        store = %crate::store::redact(s.store_url()),
        queues = %queues.join(","),
        capabilities = %capabilities.join(","),
        concurrency,
        lease = %quern::model::format_duration(lease),
        shell = if exec.shell.allow_any { "any program" } else if exec.shell.allowed_programs.is_empty() { "off" } else { "allow-listed programs" },
        "worker starting"
    );
    run_pool(
        backend,
        PoolConfig {
            queues,
            concurrency,
            lease,
            heartbeat,
            pruner: Some(retention.pruner()),
            forget_lost_workers_after: retention.lost_workers,
            shutdown_grace: s.worker.shutdown_grace,
            handlers,
            codec: ctx.codec(),
            workflow_env: s.worker.workflow_env.clone(),
            store_upkeep: Some(s.maintenance.store_upkeep()),
            capabilities,
        },
        shutdown,
    )
    .await?;
    tracing::info!("worker stopped");
    Ok(0)
}

/// Sets the `[queues.NAME]` limits of `quern.toml` on the store.
pub async fn apply_queue_settings(
    backend: &Arc<dyn quern::Backend>,
    queues: &std::collections::BTreeMap<String, crate::settings::QueueConfig>,
) -> CliResult<()> {
    for (name, q) in queues {
        let s = backend.queue_update(q.update(name)?).await?;
        tracing::info!(queue = %name, concurrency = ?s.concurrency, rate = ?s.rate.map(|r| r.to_string()), "queue limits from the config set");
    }
    Ok(())
}

/// Stores the `[[cron]]` schedules of `quern.toml` (an unchanged one is left as it is, so
/// every worker may do this on start).
pub async fn apply_schedules(
    backend: &Arc<dyn quern::Backend>,
    specs: &[quern::model::ScheduleSpec],
) -> CliResult<()> {
    let schedules = quern::Client::new(Arc::clone(backend)).schedules();
    for spec in specs {
        let up = schedules.upsert(spec.clone()).await?;
        if up.changed {
            tracing::info!(
                schedule = %spec.name,
                created = up.created,
                revision = up.schedule.revision,
                "schedule from the config stored"
            );
        }
    }
    Ok(())
}

/// The built-in executors' settings: `[shell]`, `[http]`, the payload limit; `allow_shell`
/// (the flag) or `[worker] allow_shell` lets the shell executor run any program.
pub fn executor_config(ctx: &Ctx, allow_shell: bool) -> ExecutorConfig {
    let s = &ctx.settings;
    ExecutorConfig {
        shell: ShellConfig {
            allow_any: allow_shell || s.worker.allow_shell,
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
    }
}

/// The built-in executors by kind.
pub fn builtin_handlers(exec: &ExecutorConfig) -> CliResult<Vec<(String, Arc<dyn Handler>)>> {
    Ok(quern::executors::builtin(exec)?
        .into_iter()
        .map(|(k, h)| (k.to_string(), h))
        .collect())
}

/// A signal this soon after the first is taken as the same request, not as a second one.
const SAME_REQUEST: Duration = Duration::from_millis(250);

/// First SIGINT or SIGTERM: graceful shutdown. A second one (at least [`SAME_REQUEST`]
/// later): exit at once (leases then expire and the jobs are re-delivered, so nothing is
/// lost either way).
///
/// Each step acts before it logs: a log line may be lost (stderr closed or full, see
/// `crate::log`) or, on a pipe nobody reads, block; the shutdown must happen anyway.
pub async fn on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    shutdown.cancel();
    let first = tokio::time::Instant::now();
    tracing::info!("shutting down: finishing running jobs (signal again to stop at once)");
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        // `timeout` and a terminal's Ctrl-C signal the process and its process group, so one
        // request can arrive twice within microseconds; only a later one means "stop now".
        if first.elapsed() >= SAME_REQUEST {
            break;
        }
    }
    // The warning is written from a thread of its own, given a moment, and abandoned if
    // stderr blocks: the exit does not wait on it.
    let (done, written) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        tracing::warn!(
            "stopping at once; unfinished jobs are re-delivered when their lease expires"
        );
        let _ = done.send(());
    });
    let _ = written.recv_timeout(Duration::from_millis(200));
    std::process::exit(130);
}

/// Stops the worker once none of its queues has a job that is queued, scheduled, blocked or
/// running (a job waiting to be retried keeps it alive) and no workflow waits for its final
/// step (compensations or its final state).
async fn exit_when_idle(
    backend: Arc<dyn Backend>,
    queues: Vec<String>,
    shutdown: CancellationToken,
) {
    loop {
        let idle = match pending(&backend, &queues).await {
            Ok(0) => settling_workflows(&backend).await.map(|n| n as u64),
            other => other,
        };
        match idle {
            Ok(0) => {
                tracing::info!("queues are idle; stopping (--exit-when-idle)");
                shutdown.cancel();
                return;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot read queue counts: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Running workflows with no job left to run: they wait for the workflow monitor (which this
/// worker runs under a leader lease) to compensate or finish them, so the worker is not idle.
async fn settling_workflows(backend: &Arc<dyn Backend>) -> quern::Result<usize> {
    if !backend.capabilities().workflows {
        return Ok(0);
    }
    let running = backend
        .workflow_list(quern::backend::WorkflowListParams {
            state: Some(quern::model::WorkflowState::Running),
            limit: 100,
            before: None,
        })
        .await?;
    let mut n = 0;
    for w in running.workflows {
        let c = backend.workflow_counts((&w.id).into()).await?;
        if c.queued + c.scheduled + c.blocked + c.running == 0 {
            n += 1;
        }
    }
    Ok(n)
}

/// Jobs in `queues` that are not finished.
pub async fn pending(backend: &Arc<dyn Backend>, queues: &[String]) -> quern::Result<u64> {
    let mut n = 0;
    for q in queues {
        match backend.queue_stats(q.into()).await {
            Ok(info) => {
                let c = info.counts;
                n += c.queued + c.scheduled + c.blocked + c.running;
            }
            Err(quern::Error::QueueNotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
