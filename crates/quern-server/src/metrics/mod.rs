//! `/metrics`: what one server counted, and what the store holds, as OpenMetrics text
//! (`prometheus-client`).
//!
//! Two kinds of figures, from two places:
//! - **Counters and histograms** (`series.rs`) are per process: a [`MeteredBackend`]
//!   (`metered.rs`) wraps the store that this process's REST handlers, worker protocol,
//!   in-process workers and maintenance services all use, and counts what passes through
//!   it. They carry an `instance` label so that the series of several servers on one store
//!   stay apart; sum them over `instance` for the whole.
//! - **Gauges** (`store.rs`) are read from the store at scrape time (queue counts, the
//!   worker registry, each queue's limiter), so every server reports the same values. They
//!   carry no `instance` label.
//!
//! Why a wrapper rather than hooks in the handlers: every path that changes a job — REST
//! enqueue, the worker protocol, the Rust worker's acker, the rescuer, the scheduler, the
//! workflow engine — already goes through one `Arc<dyn Backend>`, so wrapping it once counts
//! them all and a new handler cannot forget to count. The cost on the hot path is one
//! read-locked map lookup per (queue, kind) and batch, atomic increments, and one short
//! mutex section per claim or outcome batch for the in-flight table (`inflight.rs`), which
//! remembers each claimed job's labels so that a completion — which carries only a lease
//! token — needs no extra store read. Only an outcome for a job claimed through another
//! process costs one batched `job_get_many`.

mod inflight;
mod metered;
mod series;
mod store;

use std::borrow::Cow;

pub use metered::MeteredBackend;
use prometheus_client::registry::Registry;
use quern::Backend;
pub use series::Series;

use series::Families;

/// The content type of the exposition (OpenMetrics 1.0 text).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The default `instance` label: `hostname:port` (the host name from `HOSTNAME`, else the
/// kernel's, else `localhost`).
pub fn default_instance(port: u16) -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{port}")
}

/// One process's counters and histograms, and how to render a scrape.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    families: Families,
    inflight: inflight::InFlight,
    instance: String,
}

impl Metrics {
    /// Counters labelled `instance = <instance>` (the `[server] instance` setting, by
    /// default `hostname:port`).
    pub fn new(instance: impl Into<String>) -> Metrics {
        let instance = instance.into();
        let mut registry = Registry::with_prefix_and_labels(
            "quern",
            [(Cow::Borrowed("instance"), Cow::Owned(instance.clone()))].into_iter(),
        );
        let families = Families::register(&mut registry);
        Metrics {
            registry,
            families,
            inflight: inflight::InFlight::default(),
            instance,
        }
    }

    /// The `instance` label of this process's series.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The series of one (queue, kind), created on first use.
    pub fn series(&self, queue: &str, kind: &str) -> std::sync::Arc<Series> {
        self.families.series(queue, kind)
    }

    /// The whole exposition: this process's counters, then the store's gauges, then `# EOF`.
    pub async fn render(&self, backend: &dyn Backend, now: quern::Millis) -> quern::Result<String> {
        self.inflight.sweep(now);
        let gauges = store::read(backend, now).await?;
        let mut out = String::with_capacity(16 * 1024);
        let encoded = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry)
            .and_then(|()| prometheus_client::encoding::text::encode_registry(&mut out, &gauges))
            .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut out));
        encoded.map_err(|e| quern::Error::Storage(format!("encoding the metrics failed: {e}")))?;
        Ok(out)
    }
}
