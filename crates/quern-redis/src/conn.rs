//! Connections: one auto-reconnecting multiplexed connection (single node) or the async
//! cluster client, behind one type; plus dedicated connections for blocking reads and the
//! retry rule for transient failures.

use std::future::Future;
use std::time::Duration;

use quern::Error;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    Client, Cmd, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, ServerErrorKind,
    Value,
};

use crate::config::RedisConfig;

/// How long one command may take before the connection reports a timeout. Scripts are
/// bounded (batches, promotion limits), so anything slower means Redis is in trouble.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A shared, cheap-to-clone connection. Both variants reconnect by themselves.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Conn::Single(_) => f.write_str("Conn::Single"),
            Conn::Cluster(_) => f.write_str("Conn::Cluster"),
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Installs rustls's crypto provider once (the redis crate leaves that to the application).
/// A provider installed earlier by the application wins.
#[cfg(feature = "tls")]
fn tls_setup() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(not(feature = "tls"))]
fn tls_setup() {}

/// TCP settings of every connection: `TCP_NODELAY` on. The redis crate leaves Nagle's
/// algorithm on by default, so a small command written while another is in flight on the
/// same multiplexed connection (a claim behind an enqueue, an acknowledgement behind a
/// claim) waits for the earlier one's ACK; with many callers sharing one connection that
/// adds to the enqueue→start latency.
fn tcp() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

/// A single-node client for `url` with [`tcp`] settings.
fn single_client(url: &str) -> Result<Client, RedisError> {
    let info = url.into_connection_info()?.set_tcp_settings(tcp());
    Client::open(info)
}

/// Opens the shared connection described by `cfg`.
pub(crate) async fn connect(cfg: &RedisConfig) -> Result<Conn, Error> {
    if cfg.nodes.iter().any(|n| n.starts_with("rediss://")) {
        tls_setup();
    }
    if cfg.cluster {
        let client = redis::cluster::ClusterClient::builder(cfg.nodes.clone())
            .tcp_settings(tcp())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(6)
            .min_retry_wait(50)
            .max_retry_wait(1000)
            .build()
            .map_err(map_err)?;
        let conn = client.get_async_connection().await.map_err(map_err)?;
        Ok(Conn::Cluster(conn))
    } else {
        let client = single_client(&cfg.nodes[0]).map_err(map_err)?;
        let mcfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(6);
        let conn = client
            .get_connection_manager_with_config(mcfg)
            .await
            .map_err(map_err)?;
        Ok(Conn::Single(conn))
    }
}

/// Opens a dedicated connection for one blocking read (`XREAD BLOCK`), whose response
/// timeout is longer than the block time, so that it never stalls the shared connection.
pub(crate) async fn dedicated(cfg: &RedisConfig, block: Duration) -> Result<Conn, Error> {
    let timeout = block + Duration::from_secs(5);
    if cfg.cluster {
        let client = redis::cluster::ClusterClient::builder(cfg.nodes.clone())
            .tcp_settings(tcp())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(timeout)
            .retries(2)
            .build()
            .map_err(map_err)?;
        Ok(Conn::Cluster(
            client.get_async_connection().await.map_err(map_err)?,
        ))
    } else {
        let client = single_client(&cfg.nodes[0]).map_err(map_err)?;
        let mcfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        Ok(Conn::Single(
            client
                .get_connection_manager_with_config(mcfg)
                .await
                .map_err(map_err)?,
        ))
    }
}

/// True for failures that may go away by themselves: the connection dropped or was
/// refused (Redis restarting), Redis is loading its AOF, a failover or resharding is in
/// progress.
pub(crate) fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
            ) | ErrorKind::ClusterConnectionNotFound
        )
}

/// Maps a redis error to the core error type: transient ones are `Unavailable` (safe to
/// retry), the rest `Storage`.
pub(crate) fn map_err(e: RedisError) -> Error {
    if is_transient(&e) {
        Error::Unavailable(format!("redis: {e}"))
    } else {
        Error::Storage(format!("redis: {e}"))
    }
}

/// Runs `op` and retries it with backoff while it fails transiently, for up to `retry_for`.
///
/// Every operation the backend retries is safe to run twice: claims that were applied but
/// whose reply was lost are re-delivered by the rescuer; an enqueue resent with the same ids
/// and content is recognised as a resend; a completion or failure applied twice is refused
/// the second time by its lease token (`LeaseLost`, while the job is in the state it asked
/// for).
pub(crate) async fn retrying<T, F, Fut>(conn: &Conn, retry_for: Duration, op: F) -> Result<T, Error>
where
    F: Fn(Conn) -> Fut,
    Fut: Future<Output = Result<T, RedisError>>,
{
    let start = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(20);
    loop {
        match op(conn.clone()).await {
            Ok(v) => return Ok(v),
            Err(e) if is_transient(&e) && start.elapsed() < retry_for => {
                tracing::debug!(error = %e, "redis call failed, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(map_err(e)),
        }
    }
}
