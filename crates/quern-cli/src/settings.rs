//! Settings: `quern.toml`, then `QUERN_*` environment variables, then flags (each overrides
//! the one before).
//!
//! File keys are checked: an unknown key is an error (a typo should not be silently
//! ignored). Environment variables map to keys by lowercasing and turning `__` into a dot
//! (`QUERN_WORKER__CONCURRENCY` → `worker.concurrency`); list values are comma-separated.
//! `QUERN_*` variables that name no key (such as `QUERN_CONFIG` or test knobs) are ignored.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, CliResult};

/// The store used when nothing else is configured.
pub const DEFAULT_STORE: &str = "sqlite://quern.db";

/// Everything configurable, with its default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Store URL (`sqlite://quern.db`, `sqlite::memory:`, `redis://…`). `None` means the default, which
    /// `quern bench` replaces by a throwaway file.
    pub store: Option<String>,
    /// Machine-readable output.
    pub json: bool,
    /// Largest accepted payload in bytes.
    pub max_payload_bytes: usize,
    pub worker: WorkerSettings,
    pub retention: RetentionSettings,
    pub maintenance: MaintenanceSettings,
    pub shell: ShellSettings,
    pub http: HttpSettings,
    pub server: ServerSettings,
    pub redis: RedisSettings,
    /// `[[cron]]`: schedules every `quern worker` stores (or updates) when it starts; each
    /// table is a `quern::model::ScheduleSpec` (`name`, `cron`, `tz`, `[cron.job]`, …).
    pub cron: Vec<quern::model::ScheduleSpec>,
    /// `[queues.NAME]`: limits every `quern worker` sets on the store when it starts.
    pub queues: std::collections::BTreeMap<String, QueueConfig>,
    /// `[[routes]]`: kind pattern → queue (and priority), with the capabilities a worker
    /// needs to serve that queue; applied at enqueue by `quern enqueue` and `quern serve`
    /// (see `quern::routing`). First match wins.
    pub routes: Vec<quern::routing::Route>,
    /// `[[alerts]]`: rules `quern serve` evaluates (see docs/operations.md). Checked at load
    /// time; `secret_env` is resolved into `secret` then.
    pub alerts: Vec<quern_server::alerts::AlertRule>,
}

/// `[queues.NAME]`: a queue's limits, for every worker on the store. A key left out keeps
/// what the store has (set at run time by `quern queues set`); `rate = "none"` clears it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Most jobs of the queue running at once across all workers.
    pub concurrency: Option<u32>,
    /// `20/s`, `600/m`, `5/30s`, or `none`.
    pub rate: Option<String>,
    /// Jobs the rate limit lets through at once (default: the rate's count).
    pub burst: Option<u32>,
    /// The queue's share for workers that give it no weight of their own.
    pub weight: Option<u32>,
    /// `priority`, `fifo`, `lifo` or `weighted-random`.
    pub order: Option<String>,
    /// Priority aging: `30m` (promote after 30 minutes of waiting), or `none`.
    pub aging_after: Option<String>,
    /// Levels per promotion (default 1).
    pub aging_step: Option<u8>,
    /// Time between promotions after the first (default: `aging_after`).
    pub aging_every: Option<String>,
    /// The most urgent level aging reaches (default `critical`).
    pub aging_bound: Option<String>,
    /// `[queues.NAME.retention]`: the queue's own retention per finished state, over
    /// `[retention]`.
    pub retention: QueueRetentionConfig,
    /// The queue's default retry policy (`exponential:1s..1h`, `fixed:5s`, `none` = never
    /// retry), or `default` to clear it.
    pub retry: Option<String>,
    /// Most jobs of one group running at once across all workers.
    pub group_concurrency: Option<u32>,
    /// Each group's own rate limit (`"5/s"`), or `"none"`.
    pub group_rate: Option<String>,
    /// The group rate's burst (default: its count).
    pub group_burst: Option<u32>,
    /// `[queues.NAME.kinds."GLOB"]`: a rate limit per kind pattern within the queue.
    pub kinds: std::collections::BTreeMap<String, KindConfig>,
}

/// `[queues.NAME.kinds."generate.*"]`: `rate = "10/m"` (or `"none"` to remove the
/// pattern), `burst = N` (default: the rate's count).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindConfig {
    pub rate: Option<String>,
    pub burst: Option<u32>,
}

/// `[queues.NAME.retention]`: each a duration, `"forever"`, or `"default"` (clear the
/// queue's own; `[retention]` applies). A key left out keeps what the store has.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueRetentionConfig {
    pub succeeded: Option<String>,
    pub dead: Option<String>,
    pub cancelled: Option<String>,
    pub skipped: Option<String>,
}

impl QueueConfig {
    /// The store change this table asks for (checked by `Settings::validate`).
    pub fn update(&self, queue: &str) -> CliResult<quern::backend::QueueUpdateParams> {
        let bad = |m: String| CliError::usage("config", format!("queues.{queue}: {m}"));
        let rate = match self.rate.as_deref() {
            None => None,
            Some(text) => {
                let mut r = crate::parse::rate(text).map_err(bad)?.0;
                if let (Some(r), Some(b)) = (r.as_mut(), self.burst) {
                    r.burst = b;
                }
                Some(r)
            }
        };
        if self.burst.is_some() && !matches!(rate, Some(Some(_))) {
            return Err(bad("burst needs a rate".into()));
        }
        if self.concurrency == Some(0) {
            return Err(bad("concurrency must be at least 1".into()));
        }
        if self.group_concurrency == Some(0) {
            return Err(bad("group_concurrency must be at least 1".into()));
        }
        let order = match self.order.as_deref() {
            None => None,
            Some(o) => Some(crate::parse::order(o).map_err(bad)?),
        };
        if let Some(w) = self.weight {
            crate::parse::weight(&w.to_string()).map_err(bad)?;
        }
        let others =
            self.aging_step.is_some() || self.aging_every.is_some() || self.aging_bound.is_some();
        let aging = match self.aging_after.as_deref().map(str::trim) {
            None if others => {
                return Err(bad(
                    "aging_step, aging_every and aging_bound need aging_after".into(),
                ));
            }
            None => None,
            Some("none") if others => {
                return Err(bad("aging_after = \"none\" takes no other aging key".into()));
            }
            Some("none") => Some(None),
            Some(d) => {
                let after =
                    crate::parse::duration(d).map_err(|e| bad(format!("aging_after: {e}")))?;
                let mut a = quern::model::Aging::new(after, self.aging_step.unwrap_or(1));
                if let Some(e) = &self.aging_every {
                    a.every = Some(
                        crate::parse::duration(e).map_err(|e| bad(format!("aging_every: {e}")))?,
                    );
                }
                if let Some(b) = &self.aging_bound {
                    a.bound =
                        crate::parse::priority(b).map_err(|e| bad(format!("aging_bound: {e}")))?;
                }
                a.validate().map_err(|e| bad(e.to_string()))?;
                Some(Some(a))
            }
        };
        let r = &self.retention;
        let mut retention = std::collections::BTreeMap::new();
        for (state, text) in [
            (quern::JobState::Succeeded, &r.succeeded),
            (quern::JobState::Dead, &r.dead),
            (quern::JobState::Cancelled, &r.cancelled),
            (quern::JobState::Skipped, &r.skipped),
        ] {
            if let Some(t) = text {
                let k = crate::parse::queue_keep(t)
                    .map_err(|e| bad(format!("retention.{state}: {e}")))?;
                retention.insert(state, k.0);
            }
        }
        let retry = match self.retry.as_deref() {
            None => None,
            Some(t) => Some(
                crate::parse::queue_retry(t)
                    .map_err(|e| bad(format!("retry: {e}")))?
                    .0,
            ),
        };
        let group_rate = match self.group_rate.as_deref() {
            None if self.group_burst.is_some() => {
                return Err(bad("group_burst needs group_rate".into()));
            }
            None => None,
            Some(text) => {
                let mut r = crate::parse::rate(text)
                    .map_err(|e| bad(format!("group_rate: {e}")))?
                    .0;
                match (r.as_mut(), self.group_burst) {
                    (Some(r), Some(b)) => r.burst = b,
                    (None, Some(_)) => return Err(bad("group_burst needs a group_rate".into())),
                    _ => {}
                }
                Some(r)
            }
        };
        let mut kinds = std::collections::BTreeMap::new();
        for (pat, k) in &self.kinds {
            let field = |m: String| bad(format!("kinds.{pat:?}: {m}"));
            quern::model::validate_kind_pattern(pat).map_err(|e| field(e.to_string()))?;
            let text = k
                .rate
                .as_deref()
                .ok_or_else(|| field("rate is required".into()))?;
            let mut r = crate::parse::rate(text).map_err(field)?.0;
            match (r.as_mut(), k.burst) {
                (Some(r), Some(b)) => r.burst = b,
                (None, Some(_)) => return Err(field("burst needs a rate".into())),
                _ => {}
            }
            if let Some(r) = &r {
                r.validate().map_err(|e| field(e.to_string()))?;
            }
            kinds.insert(pat.clone(), r.map(|rate| quern::model::KindLimits { rate }));
        }
        Ok(quern::backend::QueueUpdateParams {
            queue: queue.to_string(),
            concurrency: self.concurrency.map(Some),
            rate,
            weight: self.weight.map(Some),
            order,
            aging,
            retention,
            retry,
            group_concurrency: self.group_concurrency.map(Some),
            kinds,
            group_rate,
        })
    }
}

/// `[redis]`: options for a `redis://` store (the same as the URL's query options; one
/// given in the URL wins).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// A memory budget (`512MiB`, `2GB`): beyond Redis's `used_memory` of this, enqueue is
    /// refused with `store_full` (exit 1; REST 507) instead of Redis failing writes at its
    /// `maxmemory`. Off by default.
    pub max_memory: Option<String>,
}

impl RedisSettings {
    /// The budget in bytes (checked by `Settings::validate`).
    pub fn max_memory_bytes(&self) -> Option<u64> {
        self.max_memory
            .as_deref()
            .and_then(|t| quern::model::parse_bytes(t).ok())
    }
}

/// `[worker]`: defaults of `quern worker`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Queues to work on.
    pub queues: Vec<String>,
    /// Jobs run at once.
    pub concurrency: u32,
    /// Lease length: a job whose worker stops heartbeating is re-delivered after this.
    #[serde(with = "human_duration")]
    pub lease: Duration,
    /// How long a graceful shutdown waits for running jobs before giving their leases back.
    #[serde(with = "human_duration")]
    pub shutdown_grace: Duration,
    /// Let the `shell` executor run any program.
    pub allow_shell: bool,
    /// Environment variables that workflow templates (`${env.NAME}`) may read on this
    /// worker; none by default.
    pub workflow_env: Vec<String>,
    /// How often the worker records that it is alive. A worker not seen for three of these
    /// is shown as `lost` and its jobs are re-delivered without waiting for their leases.
    #[serde(with = "human_duration")]
    pub heartbeat: Duration,
    /// What this worker offers (`gpu`, `vram_gb=24`): recorded in the registry, and used to
    /// pick the queues of the `[[routes]]` it satisfies when no queues are given.
    pub capabilities: Vec<String>,
}

/// `[retention]`: how long finished jobs (and lost workers) are kept before every
/// `quern worker` (one at a time, under a leader lease) or `quern prune` deletes them.
/// Each is a duration or `"forever"`. A job's result goes with its job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Succeeded jobs, from when they finished. Default 24h.
    #[serde(with = "keep")]
    pub succeeded: Option<Duration>,
    /// Dead jobs (the dead-letter queue). Default 7d.
    #[serde(with = "keep")]
    pub dead: Option<Duration>,
    /// Cancelled jobs. Default 7d.
    #[serde(with = "keep")]
    pub cancelled: Option<Duration>,
    /// Skipped jobs. Default 7d.
    #[serde(with = "keep")]
    pub skipped: Option<Duration>,
    /// Time between the worker's pruning passes. Default 1m.
    #[serde(with = "human_duration")]
    pub interval: Duration,
    /// Lost workers stay listed this long after they were last seen. Default 1h.
    #[serde(with = "keep")]
    pub lost_workers: Option<Duration>,
    /// A store-wide budget for finished jobs (`"1GiB"`, `"500MB"`): after the retention by
    /// age, each pass deletes the oldest finished jobs, whatever their state and queue,
    /// while their payloads, results and checkpoints take more than this. Off by default.
    pub max_bytes: Option<String>,
    /// Job events kept (in the store on SQLite, per queue on Redis); 0 keeps them all.
    /// Default 100000.
    pub events: u64,
    /// Job events older than this are dropped. Default `"forever"` (kept by count only).
    #[serde(with = "keep")]
    pub events_max_age: Option<Duration>,
}

/// `[maintenance]`: periodic upkeep of the store's file by every `quern worker` (one at a
/// time, under a leader lease), through `Backend::store_maintain`: SQLite runs `ANALYZE` and
/// passive WAL checkpoints; Redis needs none and does nothing. Each is a duration or
/// `"off"` (the default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaintenanceSettings {
    /// Time between `ANALYZE`s. Default off.
    #[serde(with = "off")]
    pub analyze_every: Option<Duration>,
    /// Time between passive WAL checkpoints. Default off (SQLite checkpoints by itself
    /// every 1,000 pages).
    #[serde(with = "off")]
    pub checkpoint_every: Option<Duration>,
}

impl MaintenanceSettings {
    /// The worker's store upkeep service config.
    pub fn store_upkeep(&self) -> quern::maintenance::StoreUpkeepConfig {
        quern::maintenance::StoreUpkeepConfig {
            analyze_every: self.analyze_every,
            checkpoint_every: self.checkpoint_every,
        }
    }
}

/// An interval that may be `"off"`.
mod off {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::human_duration::serialize(d, s),
            None => s.serialize_str("off"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::text_with_unit(
            d,
            |s: &str| match s {
                "off" => Ok(None),
                s => match quern::model::parse_duration(s) {
                    Ok(d) if d >= Duration::from_millis(10) => Ok(Some(d)),
                    Ok(_) => {
                        Err("an upkeep interval must be at least 10ms, or \"off\"".to_string())
                    }
                    Err(e) => Err(e.to_string()),
                },
            },
            |n| format!("write intervals as strings with a unit, like \"{n}h\", or \"off\""),
        )
    }
}

/// `[shell]`: the `shell` executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShellSettings {
    /// Programs (exact `argv[0]`) the `shell` executor may run without `--allow-shell`.
    pub allow: Vec<String>,
    /// Time limit of a shell job that sets none.
    #[serde(with = "human_duration")]
    pub timeout: Duration,
}

/// `[http]`: the `http` executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Time limit of a request that sets none.
    #[serde(with = "human_duration")]
    pub timeout: Duration,
}

/// `[server]`: defaults of `quern serve`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Where to listen. A non-loopback address needs at least one token.
    pub addr: String,
    /// Largest request body in bytes (a larger one gets 413).
    pub body_limit: usize,
    /// In-process workers (their concurrency) running the built-in executors; 0 for none.
    pub workers: u32,
    /// `/readyz` fails when a ready job has waited longer than this in a queue that live
    /// workers serve; `"none"` (the default) leaves the check out.
    #[serde(with = "keep")]
    pub wedged_after: Option<Duration>,
    /// Bearer tokens: `[[server.tokens]]` tables (`name`, `role`, `token`), or in
    /// `QUERN_SERVER__TOKENS` as comma-separated `name:role:secret` items.
    pub tokens: Vec<TokenSetting>,
    /// The `instance` label of this server's counters at `/metrics`; unset: `hostname:port`.
    pub instance: Option<String>,
    /// Serve `/metrics` without a token even when tokens are configured.
    pub metrics_public: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            addr: "127.0.0.1:8080".into(),
            body_limit: quern_server::ServerConfig::DEFAULT_BODY_LIMIT,
            workers: 0,
            wedged_after: None,
            tokens: Vec::new(),
            instance: None,
            metrics_public: false,
        }
    }
}

/// One bearer token. Its secret is never serialized (nor shown by `Debug`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TokenForm")]
pub struct TokenSetting {
    pub name: String,
    pub role: quern_server::Role,
    #[serde(skip_serializing)]
    pub token: String,
}

impl std::fmt::Debug for TokenSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSetting({}, {})", self.name, self.role.as_str())
    }
}

/// A token as written: a table in the file, `name:role:secret` in the environment.
#[derive(Deserialize)]
#[serde(untagged)]
enum TokenForm {
    Text(String),
    Table(TokenTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenTable {
    name: String,
    role: String,
    token: String,
}

/// Tokens shorter than this are refused: a bearer token must not be guessable.
pub const MIN_TOKEN_LEN: usize = 16;

impl TryFrom<TokenForm> for TokenSetting {
    type Error = String;
    fn try_from(f: TokenForm) -> Result<Self, String> {
        let (name, role, token) = match f {
            TokenForm::Table(t) => (t.name, t.role, t.token),
            TokenForm::Text(s) => {
                let mut it = s.splitn(3, ':');
                match (it.next(), it.next(), it.next()) {
                    (Some(n), Some(r), Some(t)) => (n.to_string(), r.to_string(), t.to_string()),
                    _ => {
                        return Err("a token in the environment is written name:role:secret".into());
                    }
                }
            }
        };
        if name.is_empty() {
            return Err("a token needs a name".into());
        }
        let role = role.parse().map_err(|e| format!("token {name:?}: {e}"))?;
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!(
                "token {name:?} is shorter than {MIN_TOKEN_LEN} characters"
            ));
        }
        Ok(TokenSetting { name, role, token })
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            store: None,
            json: false,
            max_payload_bytes: quern::Codec::DEFAULT_MAX_BYTES,
            worker: WorkerSettings::default(),
            retention: RetentionSettings::default(),
            maintenance: MaintenanceSettings::default(),
            shell: ShellSettings::default(),
            http: HttpSettings::default(),
            server: ServerSettings::default(),
            redis: RedisSettings::default(),
            cron: Vec::new(),
            queues: Default::default(),
            routes: Vec::new(),
            alerts: Vec::new(),
        }
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            queues: vec!["default".into()],
            concurrency: 16,
            lease: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            allow_shell: false,
            workflow_env: Vec::new(),
            heartbeat: Duration::from_secs(2),
            capabilities: Vec::new(),
        }
    }
}

impl Default for RetentionSettings {
    fn default() -> Self {
        // The core defaults, so a library worker and `quern worker` keep the same.
        let core = quern::maintenance::PrunerConfig::default();
        let of = |s: quern::JobState| core.retention.get(&s).copied();
        RetentionSettings {
            succeeded: of(quern::JobState::Succeeded),
            dead: of(quern::JobState::Dead),
            cancelled: of(quern::JobState::Cancelled),
            skipped: of(quern::JobState::Skipped),
            interval: core.interval,
            lost_workers: quern::maintenance::RescuerConfig::default().forget_lost_workers_after,
            max_bytes: None,
            events: core.events.unwrap_or(0),
            events_max_age: core.events_max_age,
        }
    }
}

impl RetentionSettings {
    /// The pruner's settings: the states kept for a while, at this interval.
    pub fn pruner(&self) -> quern::maintenance::PrunerConfig {
        use quern::JobState::*;
        let retention = [
            (Succeeded, self.succeeded),
            (Dead, self.dead),
            (Cancelled, self.cancelled),
            (Skipped, self.skipped),
        ]
        .into_iter()
        .filter_map(|(s, keep)| keep.map(|k| (s, k)))
        .collect();
        quern::maintenance::PrunerConfig {
            interval: self.interval,
            retention,
            max_bytes: self.max_bytes_value(),
            events: Some(self.events).filter(|n| *n > 0),
            events_max_age: self.events_max_age,
            ..Default::default()
        }
    }

    /// The byte budget in bytes (checked by `Settings::validate`).
    pub fn max_bytes_value(&self) -> Option<u64> {
        self.max_bytes
            .as_deref()
            .and_then(|t| quern::model::parse_bytes(t).ok())
    }
}

impl Default for ShellSettings {
    fn default() -> Self {
        ShellSettings {
            allow: Vec::new(),
            timeout: Duration::from_secs(300),
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(30),
        }
    }
}

/// Keys whose environment value is a comma-separated list.
const LIST_KEYS: [&str; 5] = [
    "worker.queues",
    "worker.capabilities",
    "shell.allow",
    "worker.workflow_env",
    "server.tokens",
];

impl Settings {
    /// The `[[routes]]` as a router (checked: a bad route is a config error naming it).
    pub fn router(&self) -> CliResult<quern::routing::Router> {
        quern::routing::Router::new(self.routes.clone())
            .map_err(|e| CliError::usage("config", e.to_string()))
    }

    /// The queues a worker serves: `given` (the `--queues` flag), else `[worker] queues`
    /// when set to something other than the default, else — when `[[routes]]` exist — the
    /// queues of the routes this worker's capabilities satisfy, else `default`.
    pub fn worker_queues(
        &self,
        given: Vec<String>,
        caps: &[quern::routing::Capability],
    ) -> CliResult<Vec<String>> {
        if !given.is_empty() {
            return Ok(given);
        }
        let configured = &self.worker.queues;
        if self.routes.is_empty() || *configured != WorkerSettings::default().queues {
            return Ok(configured.clone());
        }
        let routed = self.router()?.queues_for(caps);
        if routed.is_empty() {
            return Err(CliError::usage(
                "invalid_argument",
                "no route's requirements are met by this worker's capabilities; give --queues \
                 or --capabilities",
            ));
        }
        Ok(routed)
    }

    /// The effective store URL.
    pub fn store_url(&self) -> &str {
        self.store.as_deref().unwrap_or(DEFAULT_STORE)
    }

    /// Loads the file (`explicit` must exist; otherwise `./quern.toml` if present), then the
    /// `QUERN_*` variables in `env`.
    pub fn load(
        explicit: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> CliResult<Settings> {
        let file: Option<PathBuf> = match explicit {
            Some(p) if !p.is_file() => {
                return Err(CliError::usage(
                    "config",
                    format!("config file {} does not exist", p.display()),
                ));
            }
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("quern.toml")).filter(|p| p.is_file()),
        };
        let known = known_keys();
        let mut b = config::Config::builder();
        if let Some(f) = &file {
            b = b.add_source(config::File::from(f.as_path()).format(config::FileFormat::Toml));
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("QUERN_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase().replace("__", ".");
            if !known.contains(&key) {
                continue;
            }
            b = if LIST_KEYS.contains(&key.as_str()) {
                let items: Vec<String> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect();
                b.set_override(key.as_str(), items)
            } else {
                b.set_override(key.as_str(), value)
            }
            .map_err(|e| CliError::usage("config", format!("{name}: {e}")))?;
        }
        let where_ = file
            .as_ref()
            .map(|f| f.display().to_string())
            .unwrap_or_else(|| "the environment".into());
        let cfg = b
            .build()
            .map_err(|e| CliError::usage("config", format!("cannot read {where_}: {e}")))?;
        let mut settings: Settings = cfg
            .try_deserialize()
            .map_err(|e| CliError::usage("config", format!("bad setting in {where_}: {e}")))?;
        settings.validate()?;
        quern_server::alerts::resolve_rules(&mut settings.alerts, |v| std::env::var(v).ok())
            .map_err(|m| CliError::usage("config", format!("bad setting in {where_}: {m}")))?;
        Ok(settings)
    }

    fn validate(&self) -> CliResult<()> {
        let bad = |m: String| Err(CliError::usage("config", m));
        if self.worker.concurrency == 0 {
            return bad("worker.concurrency must be at least 1".into());
        }
        if self.worker.lease < Duration::from_millis(100) {
            return bad("worker.lease must be at least 100ms".into());
        }
        if self.worker.heartbeat < Duration::from_millis(10) {
            return bad("worker.heartbeat must be at least 10ms".into());
        }
        if let Some(t) = &self.redis.max_memory {
            match quern::model::parse_bytes(t) {
                Ok(n) if n > 0 => {}
                _ => {
                    return bad(format!(
                        "redis.max_memory: {t:?} is not a size above 0 (examples: 512MiB, 2GB)"
                    ));
                }
            }
        }
        if let Some(t) = &self.retention.max_bytes {
            match quern::model::parse_bytes(t) {
                Ok(n) if n > 0 => {}
                _ => {
                    return bad(format!(
                        "retention.max_bytes: {t:?} is not a size above 0 (examples: 1GiB, 500MB)"
                    ));
                }
            }
        }
        if self.retention.interval < Duration::from_millis(10) {
            return bad("retention.interval must be at least 10ms".into());
        }
        if self.max_payload_bytes == 0 {
            return bad("max_payload_bytes must be at least 1".into());
        }
        if self.server.body_limit == 0 {
            return bad("server.body_limit must be at least 1".into());
        }
        let mut names = BTreeSet::new();
        for (i, t) in self.server.tokens.iter().enumerate() {
            if !names.insert(&t.name) {
                return bad(format!(
                    "server.tokens: the name {:?} is used twice",
                    t.name
                ));
            }
            if self.server.tokens[..i].iter().any(|o| o.token == t.token) {
                return bad(format!(
                    "server.tokens: token {:?} has the same secret as another",
                    t.name
                ));
            }
        }
        for q in &self.worker.queues {
            if let Err(e) = crate::parse::queue(q) {
                return bad(format!("worker.queues: {e}"));
            }
        }
        if let Err(e) = quern::routing::parse_capabilities(&self.worker.capabilities) {
            return bad(format!("worker.capabilities: {e}"));
        }
        self.router()?;
        for (name, q) in &self.queues {
            if let Err(e) = crate::parse::queue(name) {
                return bad(format!("queues: {e}"));
            }
            q.update(name)?;
        }
        let mut names = BTreeSet::new();
        for spec in &self.cron {
            if let Err(e) = spec.validate() {
                return bad(format!("cron {:?}: {e}", spec.name));
            }
            if !names.insert(spec.name.as_str()) {
                return bad(format!("cron: the name {:?} is declared twice", spec.name));
            }
        }
        Ok(())
    }
}

/// Every dotted key that `Settings` has, taken from its serialized default so the list can
/// never drift from the struct.
fn known_keys() -> BTreeSet<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeSet<String>) {
        if let serde_json::Value::Object(m) = v {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_object() {
                    walk(&key, v, out);
                } else {
                    out.insert(key);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    let v = serde_json::to_value(Settings::default()).expect("settings serialize");
    walk("", &v, &mut out);
    out
}

/// Reads a setting written as text with a unit (a duration, a retention) with `parse`, and
/// refuses a bare TOML number with the advice `advice(n)` gives: a number would be ambiguous
/// (seconds? milliseconds?). Durations and retentions differ only in `parse` and the advice.
fn text_with_unit<'de, D, T, E>(
    d: D,
    parse: impl FnOnce(&str) -> Result<T, E>,
    advice: impl FnOnce(i64) -> String,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    E: std::fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        N(i64),
    }
    match Raw::deserialize(d)? {
        Raw::S(s) => parse(&s).map_err(serde::de::Error::custom),
        Raw::N(n) => Err(serde::de::Error::custom(advice(n))),
    }
}

/// Durations in settings are written like `"30s"` or `"1h30m"`. A bare TOML number is refused
/// because it would be ambiguous (seconds? milliseconds?).
mod human_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&quern::model::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::text_with_unit(d, quern::model::parse_duration, |n| {
            format!("write durations as strings with a unit, like \"{n}s\" or \"{n}ms\"")
        })
    }
}

/// Retentions are durations like durations elsewhere, or `"forever"` (also `"none"`) to
/// keep for good.
mod keep {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::human_duration::serialize(d, s),
            None => s.serialize_str("forever"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::text_with_unit(d, crate::parse::retention, |n| {
            format!("write retentions as strings with a unit, like \"{n}h\", or \"forever\"")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("quern.toml");
        std::fs::write(
            &f,
            "store = \"sqlite://a.db\"\n[worker]\nconcurrency = 4\nlease = \"5s\"\nqueues = [\"a\"]\n[shell]\nallow = [\"echo\"]\n",
        )
        .unwrap();
        let s = Settings::load(Some(&f), env(&[])).unwrap();
        assert_eq!(s.store_url(), "sqlite://a.db");
        assert_eq!(s.worker.concurrency, 4);
        assert_eq!(s.worker.lease, Duration::from_secs(5));
        assert_eq!(s.shell.allow, vec!["echo".to_string()]);

        let s = Settings::load(
            Some(&f),
            env(&[
                ("QUERN_STORE", "sqlite://b.db"),
                ("QUERN_WORKER__CONCURRENCY", "9"),
                ("QUERN_WORKER__QUEUES", "x, y"),
                ("QUERN_WORKER__ALLOW_SHELL", "true"),
                ("QUERN_CONFIG", "ignored"),
                ("QUERN_TEST_REDIS_URL", "ignored"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(s.store_url(), "sqlite://b.db");
        assert_eq!(s.worker.concurrency, 9);
        assert_eq!(s.worker.queues, vec!["x".to_string(), "y".to_string()]);
        assert!(s.worker.allow_shell);
        assert_eq!(s.worker.lease, Duration::from_secs(5));
    }

    #[test]
    fn kind_and_group_rates_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("quern.toml");
        std::fs::write(
            &f,
            "[queues.media]\ngroup_rate = \"5/s\"\ngroup_burst = 20\n\
             [queues.media.kinds.\"generate.*\"]\nrate = \"10/m\"\n\
             [queues.media.kinds.\"thumbnail.*\"]\nrate = \"100/m\"\nburst = 10\n\
             [queues.media.kinds.\"old.*\"]\nrate = \"none\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&f), env(&[])).unwrap();
        let u = s.queues["media"].update("media").unwrap();
        let g = u.group_rate.unwrap().unwrap();
        assert_eq!((g.count, g.burst), (5, 20));
        assert_eq!(u.kinds["generate.*"].unwrap().rate.count, 10);
        assert_eq!(u.kinds["thumbnail.*"].unwrap().rate.burst, 10);
        assert_eq!(u.kinds["old.*"], None, "none removes the pattern");
        let mut bad = s.queues["media"].clone();
        bad.kinds.get_mut("generate.*").unwrap().rate = Some("fast".into());
        let e = bad.update("media").unwrap_err().to_string();
        assert!(e.contains("generate.*"), "{e}");
    }

    #[test]
    fn bad_files_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("quern.toml");
        std::fs::write(&f, "[worker]\nconcurency = 4\n").unwrap();
        let e = Settings::load(Some(&f), env(&[])).unwrap_err();
        assert!(e.message.contains("concurency"), "{}", e.message);
        std::fs::write(&f, "[worker]\nlease = 30\n").unwrap();
        let e = Settings::load(Some(&f), env(&[])).unwrap_err();
        assert!(e.message.contains("\"30s\""), "{}", e.message);
        let e = Settings::load(Some(&dir.path().join("nope.toml")), env(&[])).unwrap_err();
        assert!(e.message.contains("does not exist"));
        let e = Settings::load(None, env(&[("QUERN_WORKER__CONCURRENCY", "0")])).unwrap_err();
        assert!(e.message.contains("at least 1"), "{}", e.message);
    }

    #[test]
    fn maintenance_intervals_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("quern.toml");
        assert!(!Settings::default().maintenance.store_upkeep().is_on());
        std::fs::write(
            &f,
            "[maintenance]\nanalyze_every = \"24h\"\ncheckpoint_every = \"off\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&f), env(&[])).unwrap();
        assert_eq!(
            s.maintenance.analyze_every,
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(s.maintenance.checkpoint_every, None);
        for bad in [
            "[maintenance]\nanalyze = \"1h\"\n",
            "[maintenance]\ncheckpoint_every = 60\n",
            "[maintenance]\ncheckpoint_every = \"1ms\"\n",
        ] {
            std::fs::write(&f, bad).unwrap();
            assert!(Settings::load(Some(&f), env(&[])).is_err(), "{bad}");
        }
    }

    #[test]
    fn retention_from_file_and_env() {
        let s = Settings::load(None, env(&[])).unwrap();
        assert_eq!(s.retention.succeeded, Some(Duration::from_secs(86_400)));
        assert_eq!(s.retention.dead, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(
            s.retention.pruner().retention,
            quern::maintenance::PrunerConfig::default().retention,
            "the CLI keeps what the library keeps"
        );
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("quern.toml");
        std::fs::write(
            &f,
            "[retention]\nsucceeded = \"1h\"\ndead = \"forever\"\ncancelled = \"none\"\ninterval = \"200ms\"\n",
        )
        .unwrap();
        let s = Settings::load(Some(&f), env(&[("QUERN_RETENTION__SKIPPED", "2d")])).unwrap();
        assert_eq!(s.retention.succeeded, Some(Duration::from_secs(3600)));
        assert_eq!((s.retention.dead, s.retention.cancelled), (None, None));
        assert_eq!(s.retention.skipped, Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(s.retention.interval, Duration::from_millis(200));
        let kept: Vec<_> = s.retention.pruner().retention.into_keys().collect();
        assert_eq!(kept, [quern::JobState::Succeeded, quern::JobState::Skipped]);
        std::fs::write(&f, "[retention]\nsucceded = \"1h\"\n").unwrap();
        let e = Settings::load(Some(&f), env(&[])).unwrap_err();
        assert!(e.message.contains("succeded"), "{}", e.message);
        std::fs::write(&f, "[retention]\ndead = \"soon\"\n").unwrap();
        let e = Settings::load(Some(&f), env(&[])).unwrap_err();
        assert!(e.message.contains("forever"), "{}", e.message);
    }

    #[test]
    fn known_keys_follow_the_struct() {
        let k = known_keys();
        assert!(k.contains("store") && k.contains("worker.lease") && k.contains("shell.allow"));
    }
}
