//! What every handler shares. The server keeps no job state of its own: everything is read
//! from and written to the store, so any number of servers can serve one store.

use std::sync::Arc;

use quern::pipeline::Pipeline;
use quern::{Backend, Client};
use tokio_util::sync::CancellationToken;

use crate::config::ServerConfig;

/// The shared state of one server.
#[derive(Debug)]
pub struct AppState {
    pub backend: Arc<dyn Backend>,
    pub client: Client,
    pub config: ServerConfig,
    /// The post-claim pipeline for jobs leased over HTTP (the same one the Rust worker runs).
    pub pipeline: Pipeline,
    /// Cancelled when the server shuts down: long polls return at once.
    pub shutdown: CancellationToken,
    /// Signs and checks the dashboard's session cookies (a key drawn at start).
    pub sessions: crate::dashboard::session::Sessions,
    /// This process's counters, rendered with the store's gauges by `GET /metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl AppState {
    pub fn new(
        backend: Arc<dyn Backend>,
        config: ServerConfig,
        shutdown: CancellationToken,
    ) -> Arc<AppState> {
        let pipeline = Pipeline::new(
            Arc::clone(&backend),
            quern::workflow::EnvSource::Process {
                allow: config.workflow_env.iter().cloned().collect(),
            },
            quern::RetryPolicy::default(),
            None,
        );
        let metrics = config
            .metrics
            .clone()
            .unwrap_or_else(|| Arc::new(crate::metrics::Metrics::new("")));
        Arc::new(AppState {
            metrics,
            client: Client::new(Arc::clone(&backend))
                .with_codec(config.codec)
                .with_router(config.router.clone()),
            backend,
            config,
            pipeline,
            shutdown,
            sessions: crate::dashboard::session::Sessions::new(None),
        })
    }

    pub fn limits(&self) -> quern::model::Limits {
        quern::model::Limits {
            max_payload_bytes: self.config.codec.max_bytes,
        }
    }
}
