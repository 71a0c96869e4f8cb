//! `quern serve`: the REST API and the HTTP worker protocol (`quern-server`), the maintenance
//! services, and with `--workers N` in-process workers with the built-in executors.
//!
//! Safe defaults: the address is loopback unless given; a non-loopback address with no
//! token configured is refused (exit 2) rather than served open. SIGINT or SIGTERM stops
//! gracefully: no new connections, long polls return, requests in flight finish, the
//! in-process workers finish or give back their jobs, the maintenance services stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quern::maintenance::{
    Maintenance, MaintenanceConfig, RescuerConfig, SchedulerConfig, WorkflowMonitorConfig,
};
use tokio_util::sync::CancellationToken;

use crate::cli::ServeArgs;
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::say;
use crate::runner::{PoolConfig, run_pool};
use crate::store::Open;

pub async fn run(ctx: &Ctx, args: ServeArgs) -> CliResult<u8> {
    let s = &ctx.settings;
    let addr_text = args.addr.unwrap_or_else(|| s.server.addr.clone());
    let addr: SocketAddr = addr_text.parse().map_err(|_| {
        CliError::usage(
            "invalid_argument",
            format!("--addr {addr_text:?} is not an address like 127.0.0.1:8080"),
        )
    })?;
    let tokens: Vec<quern_server::Token> = s
        .server
        .tokens
        .iter()
        .map(|t| quern_server::Token {
            name: t.name.clone(),
            role: t.role,
            token: t.token.clone(),
        })
        .collect();
    if tokens.is_empty() && !addr.ip().is_loopback() {
        return Err(CliError::usage(
            "no_tokens",
            format!(
                "refusing to serve {addr} without authentication: configure a token \
                 ([[server.tokens]] in quern.toml or QUERN_SERVER__TOKENS=name:role:secret) \
                 or listen on a loopback address such as 127.0.0.1"
            ),
        ));
    }
    let workers = args.workers.unwrap_or(s.server.workers) as usize;
    let caps = quern::routing::parse_capabilities(&s.worker.capabilities)
        .map_err(|e| CliError::usage("config", format!("worker.capabilities: {e}")))?;
    let queues = s.worker_queues(args.queues, &caps)?;
    let handlers = if workers > 0 {
        let exec = super::worker::executor_config(ctx, args.allow_shell);
        super::worker::builtin_handlers(&exec)?
    } else {
        Vec::new()
    };
    let backend = ctx.open(Open::Create).await?;
    super::worker::apply_queue_settings(&backend, &s.queues).await?;
    super::worker::apply_schedules(&backend, &s.cron).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| CliError::failed("bind", format!("cannot listen on {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| CliError::failed("bind", format!("cannot listen on {addr}: {e}")))?;
    // One metered store for everything in this process (REST, the worker protocol, the
    // in-process workers, the maintenance services), so `/metrics` counts all of them.
    let metrics = Arc::new(quern_server::metrics::Metrics::new(
        s.server
            .instance
            .clone()
            .unwrap_or_else(|| quern_server::metrics::default_instance(local.port())),
    ));
    let backend: Arc<dyn quern::Backend> = Arc::new(quern_server::metrics::MeteredBackend::new(
        backend,
        Arc::clone(&metrics),
        Arc::new(quern::SystemClock),
    ));

    let shutdown = CancellationToken::new();
    tokio::spawn(super::worker::on_signals(shutdown.clone()));

    let retention = &s.retention;
    let holder = format!(
        "serve-{}-{}",
        std::process::id(),
        quern::JobId::new().to_string().get(..8).unwrap_or("0")
    );
    let maintenance = Maintenance::start(
        Arc::clone(&backend),
        Arc::new(quern::SystemClock),
        &holder,
        MaintenanceConfig {
            rescuer: Some(RescuerConfig {
                forget_lost_workers_after: retention.lost_workers,
                ..RescuerConfig::with_interval(Duration::from_secs(1))
            }),
            scheduler: Some(SchedulerConfig::default()),
            pruner: Some(retention.pruner()),
            workflow_monitor: Some(WorkflowMonitorConfig::default()),
            store_upkeep: Some(s.maintenance.store_upkeep()),
        },
    );
    let pool = (workers > 0).then(|| {
        let config = PoolConfig {
            queues: queues.clone(),
            concurrency: workers,
            lease: s.worker.lease,
            heartbeat: s.worker.heartbeat,
            // The server's maintenance prunes; the pool's own rescuer is harmless (both are
            // idempotent) and keeps the pool the same as `quern worker`'s.
            pruner: None,
            // The server's maintenance does the upkeep.
            store_upkeep: None,
            forget_lost_workers_after: retention.lost_workers,
            shutdown_grace: s.worker.shutdown_grace,
            handlers,
            codec: ctx.codec(),
            workflow_env: s.worker.workflow_env.clone(),
            capabilities: s.worker.capabilities.clone(),
        };
        tokio::spawn(run_pool(Arc::clone(&backend), config, shutdown.clone()))
    });

    let config = quern_server::ServerConfig {
        body_limit: s.server.body_limit,
        tokens,
        codec: ctx.codec(),
        workflow_env: s.worker.workflow_env.clone(),
        wedged_after: s.server.wedged_after,
        router: s.router()?,
        alerts: s.alerts.clone(),
        instance: s.server.instance.clone(),
        metrics_public: s.server.metrics_public,
        metrics: Some(metrics),
        ..quern_server::ServerConfig::default()
    };
    tracing::info!(
        store = %crate::store::redact(s.store_url()),
        addr = %local,
        tokens = config.tokens.len(),
        workers,
        "server starting"
    );
    // The one line a script (or a test that asked for port 0) reads to find the server.
    say!("quern serve: listening on http://{local}");
    let served =
        quern_server::serve(listener, Arc::clone(&backend), config, shutdown.clone()).await;
    // However the server ended, the workers and services stop with it.
    shutdown.cancel();
    if let Some(pool) = pool {
        match pool.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("in-process workers failed: {e}"),
            Err(e) => tracing::error!("in-process workers ended abnormally: {e}"),
        }
    }
    maintenance.stop().await;
    served.map_err(|e| CliError::failed("serve", format!("the server failed: {e}")))?;
    tracing::info!("server stopped");
    Ok(0)
}
