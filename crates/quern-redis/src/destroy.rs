//! Deleting every key under a prefix ([`RedisBackend::destroy_all_keys`]): a SCAN on one
//! node; on Cluster, where SCAN does not span the masters, a walk over what the registries
//! name (queues, their jobs, workflows, schedules, workers, leader leases).

use std::collections::HashSet;

use quern::Result;
use quern::model::WorkflowState;

use crate::backend::RedisBackend;
use crate::conn::{self, Conn};

/// Per-queue keys that are not per job.
const QUEUE_KEYS: [&str; 18] = [
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
    // Kind and group rate buckets and holds (`gate_new` in lua/lib.lua).
    "kt",
    "gt",
    "kh",
    "gh",
    "events",
];

impl RedisBackend {
    /// Deletes every key under this backend's prefix (for tests and `quern` admin tools).
    /// Uses SCAN, so it is safe on a live server but not atomic.
    pub async fn destroy_all_keys(&self) -> Result<u64> {
        all_keys(self).await
    }
}

/// [`RedisBackend::destroy_all_keys`].
async fn all_keys(b: &RedisBackend) -> Result<u64> {
    let pattern = format!("{}:*", b.prefix());
    let mut deleted = 0;
    match &b.inner.conn {
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
            for q in b.all_queues().await? {
                let ids: Vec<String> = b
                    .query(
                        redis::cmd("ZRANGE")
                            .arg(b.qk(&q, "ids"))
                            .arg(0)
                            .arg(-1)
                            .clone(),
                    )
                    .await?;
                for chunk in ids.chunks(500) {
                    let mut cmd = redis::cmd("UNLINK");
                    for id in chunk {
                        cmd.arg(b.qk(&q, &format!("j:{id}")))
                            .arg(b.qk(&q, &format!("dn:{id}")))
                            .arg(b.qk(&q, &format!("log:{id}")))
                            .arg(b.qk(&q, &format!("logh:{id}")));
                    }
                    deleted += b.query::<u64>(cmd).await?;
                }
                let mut cmd = redis::cmd("UNLINK");
                for suffix in QUEUE_KEYS {
                    cmd.arg(b.qk(&q, suffix));
                }
                for day in
                    crate::ops::rollup::days(b.now() - quern::backend::ROLLUP_KEEP_MS, b.now())
                {
                    cmd.arg(crate::ops::rollup::key(b, &q, day));
                }
                deleted += b.query::<u64>(cmd).await?;
            }
            deleted += workflow_keys(b).await?;
            deleted += schedule_keys(b).await?;
            let workers = crate::ops::coord::worker_ids(b).await?;
            let leaders: Vec<String> = b
                .query(redis::cmd("SMEMBERS").arg(b.gk("leaders")).clone())
                .await?;
            let mut cmd = redis::cmd("UNLINK");
            for w in workers {
                cmd.arg(b.gk(&format!("w:{w}")));
            }
            for l in leaders {
                cmd.arg(b.gk(&format!("leader:{l}")));
            }
            for suffix in ["idx", "queues", "workers", "leaders", "alerts"] {
                cmd.arg(b.gk(suffix));
            }
            deleted += b.query::<u64>(cmd).await?;
        }
    }
    Ok(deleted)
}

/// Cluster: deletes every schedule key: in each queue `{#}:cronqs` lists, the schedules
/// `{q}:crons` names (including copies a crashed move left behind), then the registries.
async fn schedule_keys(b: &RedisBackend) -> Result<u64> {
    let queues: HashSet<String> = b
        .query(redis::cmd("SMEMBERS").arg(b.gk("cronqs")).clone())
        .await?;
    let mut deleted = 0;
    for q in queues {
        let names: Vec<String> = b
            .query(redis::cmd("SMEMBERS").arg(b.qk(&q, "crons")).clone())
            .await?;
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(b.qk(&q, "crons"));
        for n in names {
            cmd.arg(b.qk(&q, &format!("cron:{n}")))
                .arg(b.qk(&q, &format!("cronh:{n}")));
        }
        deleted += b.query::<u64>(cmd).await?;
    }
    let mut cmd = redis::cmd("UNLINK");
    cmd.arg(b.gk("cron")).arg(b.gk("cronqs"));
    deleted += b.query::<u64>(cmd).await?;
    Ok(deleted)
}

/// Cluster: deletes every workflow key (SCAN does not span a cluster). Returns how many.
async fn workflow_keys(b: &RedisBackend) -> Result<u64> {
    let homes: Vec<(String, String)> = b
        .query(redis::cmd("HGETALL").arg(b.gk("wfq")).clone())
        .await?;
    let mut deleted = 0;
    for (id, home) in homes {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(b.qk(&home, &format!("wf:{id}")))
            .arg(b.qk(&home, &format!("wfj:{id}")))
            .arg(b.qk(&home, &format!("wfqs:{id}")));
        deleted += b.query::<u64>(cmd).await?;
    }
    let homes: HashSet<String> = b
        .query(redis::cmd("SMEMBERS").arg(b.gk("wfhomes")).clone())
        .await?;
    for home in homes {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(b.qk(&home, "wfs:all"));
        for s in WorkflowState::ALL {
            cmd.arg(b.qk(&home, &format!("wfs:{}", s.as_i64())));
        }
        deleted += b.query::<u64>(cmd).await?;
    }
    let mut cmd = redis::cmd("UNLINK");
    cmd.arg(b.gk("wfq")).arg(b.gk("wfhomes"));
    deleted += b.query::<u64>(cmd).await?;
    Ok(deleted)
}
