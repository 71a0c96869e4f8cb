//! The backend value: its connection and settings, the key builders, and where each job's
//! queue is found (the token → queue cache, then the id index).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use quern::model::Limits;
use quern::{Capabilities, JobId, Result, SharedClock};

use crate::config::RedisConfig;
use crate::conn::{self, Conn};

/// The Redis / Redis Cluster backend. Cheap to clone; every clone shares the connection.
///
/// Build it with [`RedisBackend::connect`] from a `redis://`, `rediss://` or
/// `redis+cluster://` URL. Every key starts with the URL's `prefix` (default `quern`).
#[derive(Clone, Debug)]
pub struct RedisBackend {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    /// The URL as given (kept for tools that open a second connection, such as tests).
    pub(crate) url: String,
    pub(crate) cfg: RedisConfig,
    pub(crate) conn: Conn,
    pub(crate) clock: SharedClock,
    pub(crate) limits: Limits,
    /// Queue of each job this process claimed and has not finished yet, so that calls
    /// carrying only a lease token find the job's keys without a lookup. A miss falls back
    /// to the id index.
    pub(crate) queue_cache: Mutex<HashMap<JobId, String>>,
    /// Idle dedicated connections for blocking reads (`work_wait`).
    pub(crate) blockers: Mutex<Vec<Conn>>,
    /// The last `used_memory` sample (when taken, bytes), with a memory budget.
    pub(crate) memory: Mutex<Option<(std::time::Instant, u64)>>,
}

/// Every text in an `INFO` reply: one string from a node, or a map (node → string) from a
/// cluster that asked several.
fn collect_texts(v: redis::Value, out: &mut Vec<String>) {
    use redis::Value as V;
    match v {
        V::BulkString(b) => out.push(String::from_utf8_lossy(&b).into_owned()),
        V::SimpleString(s) => out.push(s),
        V::VerbatimString { text, .. } => out.push(text),
        V::Array(items) | V::Set(items) => items.into_iter().for_each(|i| collect_texts(i, out)),
        V::Map(pairs) => pairs.into_iter().for_each(|(_, i)| collect_texts(i, out)),
        _ => {}
    }
}

/// Entries above which the token → queue cache is cleared (it only saves a lookup).
const QUEUE_CACHE_MAX: usize = 200_000;

impl RedisBackend {
    /// Connects to the Redis (or Redis Cluster) named by `url`, using `clock` for every
    /// timestamp (pass [`quern::SystemClock`] outside tests).
    pub async fn connect(url: &str, clock: SharedClock) -> Result<RedisBackend> {
        Self::connect_with_limits(url, clock, Limits::default()).await
    }

    /// Like [`connect`](Self::connect), with storage limits (the largest payload, result
    /// and checkpoint accepted).
    pub async fn connect_with_limits(
        url: &str,
        clock: SharedClock,
        limits: Limits,
    ) -> Result<RedisBackend> {
        let cfg = RedisConfig::parse(url)?;
        let conn = conn::connect(&cfg).await?;
        let b = RedisBackend {
            inner: Arc::new(Inner {
                url: url.to_string(),
                cfg,
                conn,
                clock,
                limits,
                queue_cache: Mutex::new(HashMap::new()),
                blockers: Mutex::new(Vec::new()),
                memory: Mutex::new(None),
            }),
        };
        // Fail early on a wrong address or password instead of at the first job.
        b.query::<String>(redis::cmd("PING")).await?;
        Ok(b)
    }

    /// The URL this backend was opened with.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// The key prefix in use.
    pub fn prefix(&self) -> &str {
        &self.inner.cfg.prefix
    }

    /// True when connected to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.inner.cfg.cluster
    }

    /// Redis's `used_memory` in bytes (`INFO memory`), for measurements such as the memory
    /// per queued job that `quern bench` reports. `None` on Cluster, where memory is spread
    /// over the masters.
    pub async fn used_memory(&self) -> Result<Option<u64>> {
        if self.cluster() {
            return Ok(None);
        }
        let info: String = self.query(redis::cmd("INFO").arg("memory").clone()).await?;
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok()))
    }

    /// The memory budget and its use, from a sample at most `memory_sample` old; `None`
    /// without `max_memory`. One caller refreshes a stale sample while the others keep
    /// answering from the old one, so enqueue never waits on `INFO` in a crowd.
    pub(crate) async fn memory_budget(&self) -> Result<Option<quern::backend::StoreBudget>> {
        let Some(budget) = self.inner.cfg.max_memory else {
            return Ok(None);
        };
        let now = std::time::Instant::now();
        let cached = {
            let mut m = self.inner.memory.lock().unwrap();
            match *m {
                Some((at, used)) if now.duration_since(at) < self.inner.cfg.memory_sample => {
                    Some(used)
                }
                Some((_, used)) => {
                    // Stale: this caller refreshes it; others use the old value meanwhile.
                    *m = Some((now, used));
                    None
                }
                None => None,
            }
        };
        let used = match cached {
            Some(u) => u,
            None => {
                let u = self.sample_memory().await?;
                *self.inner.memory.lock().unwrap() = Some((std::time::Instant::now(), u));
                u
            }
        };
        Ok(Some(quern::backend::StoreBudget {
            used_bytes: used,
            budget_bytes: budget,
            full: used >= budget,
        }))
    }

    /// `Error::StoreFull` when the store is at or over its memory budget.
    pub(crate) async fn check_memory(&self) -> Result<()> {
        match self.memory_budget().await? {
            Some(b) if b.full => Err(quern::Error::StoreFull {
                used: b.used_bytes,
                budget: b.budget_bytes,
            }),
            _ => Ok(()),
        }
    }

    /// `used_memory` now: on a cluster, the largest of the nodes `INFO` reached.
    async fn sample_memory(&self) -> Result<u64> {
        let v: redis::Value = self.query(redis::cmd("INFO").arg("memory").clone()).await?;
        let mut texts = Vec::new();
        collect_texts(v, &mut texts);
        texts
            .iter()
            .filter_map(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("used_memory:"))
                    .and_then(|n| n.trim().parse::<u64>().ok())
            })
            .max()
            .ok_or_else(|| quern::Error::Storage("INFO memory has no used_memory".into()))
    }

    pub(crate) fn now(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    pub(crate) fn cluster(&self) -> bool {
        self.inner.cfg.cluster
    }

    /// `<prefix>:{<queue>}:<suffix>`.
    pub(crate) fn qk(&self, q: &str, suffix: &str) -> String {
        format!("{}:{{{q}}}:{suffix}", self.inner.cfg.prefix)
    }

    /// `<prefix>:{#}:<suffix>`: keys not tied to a queue.
    pub(crate) fn gk(&self, suffix: &str) -> String {
        format!("{}:{{#}}:{suffix}", self.inner.cfg.prefix)
    }

    pub(crate) fn capabilities_impl(&self) -> Capabilities {
        let mut c = Capabilities::full("redis");
        if self.cluster() {
            // Each queue is its own hash slot and a script stays in one: an atomic batch, a
            // dependency, and so a workflow (its jobs are stored atomically and depend on
            // each other) must stay in one queue. Workflows refuse jobs outside their queue.
            c.atomic_batch_across_queues = false;
            c.dependencies_across_queues = false;
        }
        c
    }

    /// Remembers which queue a claimed job is in.
    pub(crate) fn cache_queue(&self, id: JobId, q: &str) {
        let mut c = self.inner.queue_cache.lock().unwrap();
        if c.len() >= QUEUE_CACHE_MAX {
            c.clear();
        }
        c.insert(id, q.to_string());
    }

    pub(crate) fn forget_queue(&self, id: &JobId) {
        self.inner.queue_cache.lock().unwrap().remove(id);
    }

    /// The queue of each job (`None`: no such job), from the cache or the id index.
    pub(crate) async fn queues_of(&self, ids: &[JobId]) -> Result<Vec<Option<String>>> {
        let mut out: Vec<Option<String>> = {
            let c = self.inner.queue_cache.lock().unwrap();
            ids.iter().map(|id| c.get(id).cloned()).collect()
        };
        let missing: Vec<usize> = (0..ids.len()).filter(|i| out[*i].is_none()).collect();
        if !missing.is_empty() {
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(self.gk("idx"));
            for i in &missing {
                cmd.arg(ids[*i].to_string());
            }
            let found: Vec<Option<String>> = self.query(cmd).await?;
            for (i, q) in missing.into_iter().zip(found) {
                out[i] = q;
            }
        }
        Ok(out)
    }

    /// Every queue ever used, sorted.
    pub(crate) async fn all_queues(&self) -> Result<Vec<String>> {
        let mut qs: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.gk("queues")).clone())
            .await?;
        qs.sort();
        Ok(qs)
    }

    pub(crate) async fn queue_exists(&self, q: &str) -> Result<bool> {
        self.query(
            redis::cmd("SISMEMBER")
                .arg(self.gk("queues"))
                .arg(q)
                .clone(),
        )
        .await
    }

    /// Groups item indices by queue: one group on a single node (scripts may span queues
    /// there), one per queue on Cluster (a script stays in one slot).
    pub(crate) fn group_by_queue(&self, queues: &[String]) -> Vec<(String, Vec<usize>)> {
        if !self.cluster() {
            if queues.is_empty() {
                return Vec::new();
            }
            return vec![(queues[0].clone(), (0..queues.len()).collect())];
        }
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, q) in queues.iter().enumerate() {
            match groups.iter_mut().find(|(g, _)| g == q) {
                Some((_, v)) => v.push(i),
                None => groups.push((q.clone(), vec![i])),
            }
        }
        groups
    }
}
