//! What a server is started with: limits, tokens, the worker protocol's defaults.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The four roles a token can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `GET` requests only (jobs, queues, the DLQ, workflows, workers, the OpenAPI document).
    Read,
    /// Everything `read` may, plus changes to jobs, queues, the DLQ and workflows.
    Operate,
    /// The HTTP worker protocol only (register, lease, heartbeat, complete, fail, release).
    Work,
    /// Everything.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Operate => "operate",
            Role::Work => "work",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may make a request of `class`.
    pub fn allows(self, class: Access) -> bool {
        matches!(
            (self, class),
            (Role::Admin, _)
                | (Role::Read | Role::Operate, Access::Read)
                | (Role::Operate, Access::Operate)
                | (Role::Work, Access::Work)
        )
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Role::Read),
            "operate" => Ok(Role::Operate),
            "work" => Ok(Role::Work),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?} (expected read, operate, work or admin)"
            )),
        }
    }
}

/// What a request needs, by route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A `GET` of the REST API.
    Read,
    /// A change made through the REST API.
    Operate,
    /// A call of the worker protocol.
    Work,
}

/// A bearer token. The secret is never logged or shown (its `Debug` hides it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who holds it, for the log.
    pub name: String,
    pub role: Role,
    /// The secret sent as `Authorization: Bearer <token>`.
    pub token: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The server's settings.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body in bytes; a larger one gets 413. Default 16 MiB.
    pub body_limit: usize,
    /// The accepted tokens. Empty: no authentication at all (the CLI allows that only on a
    /// loopback address).
    pub tokens: Vec<Token>,
    /// How payloads and results are encoded, with the largest accepted payload.
    pub codec: quern::Codec,
    /// Lease length of the worker protocol when a call gives none.
    pub default_lease: Duration,
    /// The heartbeat interval a registering HTTP worker promises when it names none: a
    /// worker not heard from for three of these is lost and its leases are rescued.
    pub default_worker_heartbeat: Duration,
    /// The longest a `POST /v1/lease` long poll waits.
    pub max_lease_wait: Duration,
    /// Environment variables that workflow templates (`${env.NAME}`) may read for jobs
    /// leased over HTTP.
    pub workflow_env: Vec<String>,
    /// How long `/readyz` waits for the store.
    pub ready_timeout: Duration,
    /// `/readyz` also fails when a queue has had a ready job waiting longer than this while
    /// a live worker serves the queue (work is there, workers are there, nothing claims it).
    /// `None` (the default) leaves that check out.
    pub wedged_after: Option<Duration>,
    /// Routes applied to jobs enqueued over REST (`POST /v1/jobs` and batches) that did not
    /// choose their queue or priority (see `quern::routing`).
    pub router: quern::routing::Router,
    /// `[[alerts]]` rules (checked, secrets resolved: see [`crate::alerts::resolve_rules`]).
    /// Every server shows them at `GET /v1/alerts`; the one holding the `quern.alerts`
    /// lease evaluates them.
    pub alerts: Vec<crate::alerts::AlertRule>,
    /// How often the rules are evaluated (by the leader). Default 250 ms, so a condition is
    /// reported within a second.
    pub alert_interval: Duration,
    /// The `instance` label of this server's counters (`[server] instance`); `None`: the
    /// host name and the port it listens on.
    pub instance: Option<String>,
    /// Serve `/metrics` without a token even when tokens are configured
    /// (`[server] metrics_public`). Default `false`: it needs a `read` token then.
    pub metrics_public: bool,
    /// The counters `/metrics` reports. Set it when the backend given to `serve` is already
    /// a [`MeteredBackend`](crate::metrics::MeteredBackend) counting into these (so that
    /// in-process workers and maintenance sharing that backend are counted too); `None`:
    /// `serve` wraps the backend itself.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl ServerConfig {
    pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: Self::DEFAULT_BODY_LIMIT,
            tokens: Vec::new(),
            codec: quern::Codec::default(),
            default_lease: Duration::from_secs(30),
            default_worker_heartbeat: Duration::from_secs(15),
            max_lease_wait: Duration::from_secs(30),
            workflow_env: Vec::new(),
            ready_timeout: Duration::from_secs(1),
            alerts: Vec::new(),
            alert_interval: Duration::from_millis(250),
            wedged_after: None,
            router: quern::routing::Router::default(),
            instance: None,
            metrics_public: false,
            metrics: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_docs_say() {
        use Access::*;
        let table = [
            (Role::Read, [true, false, false]),
            (Role::Operate, [true, true, false]),
            (Role::Work, [false, false, true]),
            (Role::Admin, [true, true, true]),
        ];
        for (role, allowed) in table {
            for (class, ok) in [Read, Operate, Work].into_iter().zip(allowed) {
                assert_eq!(role.allows(class), ok, "{role:?} {class:?}");
            }
        }
    }

    #[test]
    fn a_token_debug_hides_the_secret() {
        let t = Token {
            name: "ci".into(),
            role: Role::Read,
            token: "s3cret-value".into(),
        };
        assert!(!format!("{t:?}").contains("s3cret"));
    }
}
