//! The backend value, its keys, and the one way scripts are called.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use quern::model::Limits;
use quern::{Capabilities, Error, JobId, Result, SharedClock};
use redis::{ErrorKind, RedisError, Script, ServerErrorKind, Value};

use crate::config::{Durability, RedisConfig};
use crate::conn::{self, Conn, retrying};

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
}

/// Per-queue keys that are not per job.
const QUEUE_KEYS: [&str; 13] = [
    "ids",
    "ready",
    "sched",
    "lease",
    "blocked",
    "succeeded",
    "dead",
    "cancelled",
    "skipped",
    "uniq",
    "rexp",
    "meta",
    "wake",
];

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

    /// Deletes every key under this backend's prefix (for tests and `quern` admin tools).
    /// Uses SCAN, so it is safe on a live server but not atomic.
    pub async fn destroy_all_keys(&self) -> Result<u64> {
        let pattern = format!("{}:*", self.prefix());
        let mut deleted = 0;
        match &self.inner.conn {
            Conn::Single(c) => {
                let mut c = c.clone();
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut c)
                        .await
                        .map_err(conn::map_err)?;
                    if !keys.is_empty() {
                        let n: u64 = redis::cmd("UNLINK")
                            .arg(&keys)
                            .query_async(&mut c)
                            .await
                            .map_err(conn::map_err)?;
                        deleted += n;
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            Conn::Cluster(_) => {
                // SCAN does not span a cluster; walk what the registries name instead.
                for q in self.all_queues().await? {
                    let ids: Vec<String> = self
                        .query(
                            redis::cmd("ZRANGE")
                                .arg(self.qk(&q, "ids"))
                                .arg(0)
                                .arg(-1)
                                .clone(),
                        )
                        .await?;
                    for chunk in ids.chunks(500) {
                        let mut cmd = redis::cmd("UNLINK");
                        for id in chunk {
                            cmd.arg(self.qk(&q, &format!("j:{id}")))
                                .arg(self.qk(&q, &format!("dn:{id}")));
                        }
                        deleted += self.query::<u64>(cmd).await?;
                    }
                    let mut cmd = redis::cmd("UNLINK");
                    for suffix in QUEUE_KEYS {
                        cmd.arg(self.qk(&q, suffix));
                    }
                    deleted += self.query::<u64>(cmd).await?;
                }
                deleted += self.destroy_workflow_keys().await?;
                let workers: Vec<String> = self
                    .query(
                        redis::cmd("ZRANGE")
                            .arg(self.gk("workers"))
                            .arg(0)
                            .arg(-1)
                            .clone(),
                    )
                    .await?;
                let leaders: Vec<String> = self
                    .query(redis::cmd("SMEMBERS").arg(self.gk("leaders")).clone())
                    .await?;
                let mut cmd = redis::cmd("UNLINK");
                for w in workers {
                    cmd.arg(self.gk(&format!("w:{w}")));
                }
                for l in leaders {
                    cmd.arg(self.gk(&format!("leader:{l}")));
                }
                for suffix in ["idx", "queues", "workers", "leaders"] {
                    cmd.arg(self.gk(suffix));
                }
                deleted += self.query::<u64>(cmd).await?;
            }
        }
        Ok(deleted)
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

    /// Runs one command, retrying transient failures.
    pub(crate) async fn query<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T> {
        retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            cmd.query_async::<T>(&mut c).await
        })
        .await
    }

    /// Calls a script. `queue` names the queue whose slot the script runs in (`None`: the
    /// global slot). With `durability = replicated` and `wait` set, the call also waits for
    /// the configured replicas to have the write.
    pub(crate) async fn eval(
        &self,
        script: &Script,
        queue: Option<&str>,
        now: i64,
        args: &Args,
        wait: bool,
    ) -> Result<Value> {
        let slot_key = match queue {
            Some(q) => self.qk(q, "ids"),
            None => self.gk("queues"),
        };
        // Sized up front: a batch enqueue's command is hundreds of KiB, and growing it by
        // doubling copied it several times (a tenth of the client's time in a profile).
        let data: usize = args.0.iter().map(Vec::len).sum::<usize>() + slot_key.len() + 128;
        let mut cmd = redis::Cmd::with_capacity(args.0.len() + 7, data);
        cmd.arg("EVALSHA")
            .arg(script.get_hash())
            .arg(1)
            .arg(&slot_key)
            .arg(&self.inner.cfg.prefix)
            .arg(if self.cluster() { "1" } else { "0" })
            .arg(now);
        for a in &args.0 {
            cmd.arg(a.as_slice());
        }
        let wait = wait && self.inner.cfg.durability == Durability::Replicated;
        let (replicas, timeout) = (
            self.inner.cfg.replicas,
            self.inner.cfg.wait_timeout.as_millis() as u64,
        );
        let single = !self.cluster();
        let (value, acked) = retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            let run = async |c: &mut Conn| -> Result<(Value, i64), RedisError> {
                if wait && single {
                    // One round trip, on the connection that wrote: WAIT counts this
                    // client's writes.
                    let mut p = redis::pipe();
                    p.add_command(cmd.clone())
                        .cmd("WAIT")
                        .arg(replicas)
                        .arg(timeout);
                    let (v, n): (Value, i64) = p.query_async(c).await?;
                    Ok((v, n))
                } else {
                    let v: Value = cmd.query_async(c).await?;
                    if wait {
                        let n: i64 = redis::cmd("WAIT")
                            .arg(replicas)
                            .arg(timeout)
                            .query_async(c)
                            .await?;
                        Ok((v, n))
                    } else {
                        Ok((v, i64::MAX))
                    }
                }
            };
            match run(&mut c).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    script.load_async(&mut c).await?;
                    run(&mut c).await
                }
                other => other,
            }
        })
        .await?;
        if let Value::ServerError(e) = &value {
            return Err(Error::Storage(format!("redis script failed: {e:?}")));
        }
        if acked < i64::from(replicas) {
            return Err(Error::Unavailable(format!(
                "the write was applied on the primary but only {acked} of {replicas} replica(s) confirmed it within {timeout} ms"
            )));
        }
        Ok(value)
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

/// Script arguments after the common prefix / cluster / now.
#[derive(Default, Debug)]
pub(crate) struct Args(pub(crate) Vec<Vec<u8>>);

impl Args {
    pub(crate) fn s(&mut self, v: &str) -> &mut Self {
        self.0.push(v.as_bytes().to_vec());
        self
    }
    pub(crate) fn n(&mut self, v: i64) -> &mut Self {
        self.0.push(v.to_string().into_bytes());
        self
    }
    pub(crate) fn b(&mut self, v: Vec<u8>) -> &mut Self {
        self.0.push(v);
        self
    }
}

/// Helpers to read script replies.
pub(crate) mod reply {
    use quern::{Error, Result};
    use redis::Value;

    pub(crate) fn array(v: Value) -> Result<Vec<Value>> {
        match v {
            Value::Array(a) => Ok(a),
            Value::Nil => Ok(Vec::new()),
            other => Err(Error::Storage(format!("expected an array, got {other:?}"))),
        }
    }

    pub(crate) fn int(v: &Value) -> Result<i64> {
        match v {
            Value::Int(i) => Ok(*i),
            Value::BulkString(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::Storage("expected a number".into())),
            other => Err(Error::Storage(format!("expected a number, got {other:?}"))),
        }
    }

    pub(crate) fn string(v: Value) -> Result<String> {
        crate::codec::bulk_string(v)
    }
}

/// Checks a queue name given to a read or claim (the same rule as for enqueue), so a bad
/// name is refused instead of producing odd keys.
pub(crate) fn check_queue(q: &str) -> Result<()> {
    let ok = !q.is_empty()
        && q.len() <= 128
        && q.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "queue name {q:?} must be 1-128 characters of letters, digits, '_', '.', ':' or '-'"
        )))
    }
}
