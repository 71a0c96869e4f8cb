//! `quern serve`: the REST API (`/v1`, described by an OpenAPI 3.1 document at
//! `/v1/openapi.json`) and the HTTP worker protocol, over any [`Backend`].
//!
//! The server holds no job state: every request reads from and writes to the store, so
//! several servers on one Redis serve the same jobs, and a job leased through one server can
//! be completed through another.
//!
//! - `dto/`: the API's own request and response types (the `Backend` params stay an internal
//!   seam); requests refuse unknown fields.
//! - `error.rs`: the one error type and its mapping to statuses, `{"error":{"code","message"}}`.
//! - `extract.rs`: JSON body and query extractors whose refusals are those errors.
//! - `auth.rs`, `config.rs`: bearer tokens and roles.
//! - `metrics/`: `/metrics` — a `MeteredBackend` counting what passes through the store, and
//!   the store's gauges read at scrape time.
//! - `routes/`: one file per area, and the router with the OpenAPI document (`mod.rs`).
//!
//! ```no_run
//! # async fn demo(backend: std::sync::Arc<dyn quern::Backend>) -> std::io::Result<()> {
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! quern_server::serve(listener, backend, quern_server::ServerConfig::default(), shutdown).await
//! # }
//! ```
//!
//! [`Backend`]: quern::Backend

pub mod alerts;
mod auth;
mod config;
mod dashboard;
pub mod dto;
mod error;
mod extract;
pub mod metrics;
mod routes;
mod state;

use std::sync::Arc;

pub use config::{Access, Role, ServerConfig, Token};
pub use error::{ApiError, ErrorBody, ErrorDetail};
use quern::Backend;
pub use routes::app;
pub use state::AppState;
use tokio_util::sync::CancellationToken;

/// The OpenAPI document of the API (what `/v1/openapi.json` serves).
pub fn openapi(backend: Arc<dyn Backend>) -> utoipa::openapi::OpenApi {
    let state = AppState::new(backend, ServerConfig::default(), CancellationToken::new());
    routes::api(state).1
}

/// Serves the API on `listener` until `shutdown` is cancelled, then stops accepting
/// connections, lets long polls return at once and waits for requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    backend: Arc<dyn Backend>,
    mut config: ServerConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let backend = match &config.metrics {
        Some(_) => backend,
        None => {
            let instance = match &config.instance {
                Some(i) => i.clone(),
                None => metrics::default_instance(listener.local_addr()?.port()),
            };
            let m = Arc::new(metrics::Metrics::new(instance));
            config.metrics = Some(Arc::clone(&m));
            Arc::new(metrics::MeteredBackend::new(
                backend,
                m,
                Arc::new(quern::SystemClock),
            )) as Arc<dyn Backend>
        }
    };
    let alerts = (!config.alerts.is_empty()).then(|| {
        alerts::AlertService::start(
            Arc::clone(&backend),
            config.alerts.clone(),
            config.alert_interval,
            shutdown.clone(),
        )
    });
    let state = AppState::new(backend, config, shutdown.clone());
    let app = routes::app(state);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
    .await;
    // However serving ended, the alert service stops with it (and releases its lease).
    shutdown.cancel();
    if let Some(a) = alerts {
        a.stopped().await;
    }
    served
}
