//! Listing, pruning, rescue, queues, workers and leader leases.

use quern::backend::*;
use quern::model::StateCounts;
use quern::{Error, Job, JobId, Result};
use redis::Value;

use crate::backend::{Args, RedisBackend, reply};
use crate::codec::{decode_job, fields_from_value};
use crate::scripts;

/// Ids one list-script call looks at.
const LIST_SCAN: i64 = 2000;

impl RedisBackend {
    /// One queue's jobs matching `filter`, newest first, older than `before`, at most `limit`.
    async fn list_queue(
        &self,
        q: &str,
        filter: &JobFilter,
        limit: usize,
        before: Option<JobId>,
    ) -> Result<Vec<Job>> {
        let now = self.now();
        let mut out = Vec::new();
        let mut cursor = before.map(|b| b.to_string()).unwrap_or_default();
        let state = filter
            .state
            .map(|s| s.as_i64().to_string())
            .unwrap_or_default();
        loop {
            let mut args = Args::default();
            args.s(q)
                .s(&cursor)
                .n((limit - out.len()) as i64)
                .s(&state)
                .n(LIST_SCAN);
            let r = reply::array(
                self.eval(&scripts::LIST, Some(q), now, &args, false)
                    .await?,
            )?;
            let mut it = r.into_iter();
            let next = reply::string(it.next().unwrap_or(Value::Nil))?;
            let ids: Vec<String> = it.map(reply::string).collect::<Result<_>>()?;
            if !ids.is_empty() {
                let mut p = redis::pipe();
                for id in &ids {
                    p.cmd("HGETALL").arg(self.qk(q, &format!("j:{id}")));
                }
                let vals: Vec<Value> = crate::conn::retrying(
                    &self.inner.conn,
                    self.inner.cfg.retry_for,
                    async |mut c| p.query_async(&mut c).await,
                )
                .await?;
                for (id, v) in ids.iter().zip(vals) {
                    let f = fields_from_value(v)?;
                    if f.is_empty() {
                        continue;
                    }
                    let job = decode_job(q, id, &f, now)?;
                    if filter.kind.as_ref().is_some_and(|k| *k != job.kind)
                        || filter
                            .workflow_id
                            .as_ref()
                            .is_some_and(|w| job.workflow_id.as_ref() != Some(w))
                    {
                        continue;
                    }
                    out.push(job);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            if next.is_empty() {
                return Ok(out);
            }
            cursor = next;
        }
    }

    pub(crate) async fn list_impl(&self, params: ListParams) -> Result<JobPage> {
        if params.limit == 0 {
            return Ok(JobPage {
                jobs: Vec::new(),
                next: None,
            });
        }
        let queues = match &params.filter.queue {
            Some(q) => vec![q.clone()],
            None => self.all_queues().await?,
        };
        let mut all = Vec::new();
        for q in queues {
            all.extend(
                self.list_queue(&q, &params.filter, params.limit, params.before)
                    .await?,
            );
        }
        all.sort_by_key(|j| std::cmp::Reverse(j.id));
        all.truncate(params.limit);
        let next = if all.len() == params.limit {
            all.last().map(|j| j.id)
        } else {
            None
        };
        Ok(JobPage { jobs: all, next })
    }

    pub(crate) async fn prune_impl(&self, params: PruneParams) -> Result<PruneReport> {
        let mut report = PruneReport::default();
        let states: Vec<&str> = params
            .states
            .iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        let queues = self.all_queues().await?;
        let now = self.now();
        let mut left = params.limit;
        for (q, members) in self.group_by_queue(&queues) {
            let mut args = Args::default();
            args.n(params.finished_before)
                .n(left as i64)
                .s(if params.dry_run { "1" } else { "0" })
                .n(states.len() as i64);
            for s in &states {
                args.s(s);
            }
            for m in &members {
                args.s(&queues[*m]);
            }
            let r = reply::array(
                self.eval(&scripts::PRUNE, Some(&q), now, &args, false)
                    .await?,
            )?;
            let deleted = reply::int(&r[0])? as u64;
            report.jobs_deleted += deleted;
            report.results_expired += reply::int(&r[1])? as u64;
            left = left.saturating_sub(deleted as usize);
            if self.cluster() {
                let ids: Vec<JobId> = r[2..]
                    .iter()
                    .filter_map(|v| reply::string(v.clone()).ok()?.parse().ok())
                    .collect();
                self.unindex(&ids).await;
            }
        }
        Ok(report)
    }

    pub(crate) async fn rescue_impl(&self, params: RescueParams) -> Result<RescueReport> {
        let queues = self.all_queues().await?;
        let now = self.now();
        let mut report = RescueReport::default();
        let mut left = params.limit;
        for (q, members) in self.group_by_queue(&queues) {
            if left == 0 {
                break;
            }
            let mut args = Args::default();
            args.n(left as i64).n(members.len() as i64);
            for m in &members {
                args.s(&queues[*m]);
            }
            args.n(params.lost_workers.len() as i64);
            for w in &params.lost_workers {
                args.s(w);
            }
            let r = reply::array(
                self.eval(&scripts::RESCUE, Some(&q), now, &args, true)
                    .await?,
            )?;
            let mut dead = false;
            for v in r {
                let s = reply::string(v)?;
                if s.is_empty() {
                    dead = true;
                    continue;
                }
                let id: JobId = s.parse()?;
                left = left.saturating_sub(1);
                if dead {
                    report.dead.push(id);
                } else {
                    report.requeued.push(id);
                }
            }
        }
        Ok(report)
    }

    async fn stats_of(&self, queues: &[String]) -> Result<Vec<QueueInfo>> {
        let now = self.now();
        let mut out = Vec::with_capacity(queues.len());
        for (q, members) in self.group_by_queue(queues) {
            let mut args = Args::default();
            for m in &members {
                args.s(&queues[*m]);
            }
            let rows = reply::array(
                self.eval(&scripts::STATS, Some(&q), now, &args, false)
                    .await?,
            )?;
            for (m, row) in members.iter().zip(rows) {
                let row = reply::array(row)?;
                let n = |i: usize| reply::int(&row[i]).map(|v| v as u64);
                let counts = StateCounts {
                    scheduled: n(1)?,
                    queued: n(2)?,
                    blocked: n(3)?,
                    running: n(4)?,
                    succeeded: n(5)?,
                    dead: n(6)?,
                    cancelled: n(7)?,
                    skipped: n(8)?,
                };
                let oldest = reply::string(row[9].clone())?;
                out.push(QueueInfo {
                    name: queues[*m].clone(),
                    paused: n(0)? == 1,
                    counts,
                    oldest_queued_at: oldest.parse().ok(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(crate) async fn queue_list_impl(&self) -> Result<Vec<QueueInfo>> {
        let queues = self.all_queues().await?;
        self.stats_of(&queues).await
    }

    pub(crate) async fn queue_stats_impl(&self, queue: &str) -> Result<QueueInfo> {
        if !self.queue_exists(queue).await? {
            return Err(Error::QueueNotFound(queue.to_string()));
        }
        self.stats_of(&[queue.to_string()])
            .await?
            .pop()
            .ok_or_else(|| Error::QueueNotFound(queue.to_string()))
    }

    pub(crate) async fn queue_pause_impl(&self, queue: &str, pause: bool) -> Result<()> {
        if !self.queue_exists(queue).await? {
            return Err(Error::QueueNotFound(queue.to_string()));
        }
        let mut args = Args::default();
        args.s(queue).s(if pause { "1" } else { "0" });
        self.eval(&scripts::PAUSE, Some(queue), self.now(), &args, false)
            .await?;
        Ok(())
    }

    // --- workers --------------------------------------------------------------------------

    pub(crate) async fn worker_register_impl(&self, info: WorkerInfo) -> Result<()> {
        let json = serde_json::to_string(&info).map_err(|e| Error::Codec(e.to_string()))?;
        let key = self.gk(&format!("w:{}", info.id));
        let mut p = redis::pipe();
        p.cmd("HSET")
            .arg(&key)
            .arg("info")
            .arg(json)
            .arg("seen")
            .arg(info.last_seen_at)
            .arg("running")
            .arg(info.running)
            .ignore()
            .cmd("ZADD")
            .arg(self.gk("workers"))
            .arg(info.last_seen_at)
            .arg(&info.id)
            .ignore();
        crate::conn::retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            p.query_async::<()>(&mut c).await
        })
        .await
    }

    pub(crate) async fn worker_heartbeat_impl(&self, params: WorkerHeartbeatParams) -> Result<()> {
        let key = self.gk(&format!("w:{}", params.id));
        let now = self.now();
        let exists: bool = self.query(redis::cmd("EXISTS").arg(&key).clone()).await?;
        if !exists {
            // As on SQLite: the worker then registers again (its record was removed as lost,
            // or the store lost it).
            return Err(Error::InvalidArgument(format!(
                "worker {:?} is not registered",
                params.id
            )));
        }
        let mut p = redis::pipe();
        p.cmd("HSET")
            .arg(&key)
            .arg("seen")
            .arg(now)
            .arg("running")
            .arg(params.running)
            .ignore()
            .cmd("ZADD")
            .arg(self.gk("workers"))
            .arg(now)
            .arg(&params.id)
            .ignore();
        crate::conn::retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            p.query_async::<()>(&mut c).await
        })
        .await
    }

    pub(crate) async fn worker_deregister_impl(&self, id: &str) -> Result<()> {
        let mut p = redis::pipe();
        p.cmd("DEL")
            .arg(self.gk(&format!("w:{id}")))
            .ignore()
            .cmd("ZREM")
            .arg(self.gk("workers"))
            .arg(id)
            .ignore();
        crate::conn::retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            p.query_async::<()>(&mut c).await
        })
        .await
    }

    pub(crate) async fn worker_list_impl(&self) -> Result<Vec<WorkerInfo>> {
        let ids: Vec<String> = self
            .query(
                redis::cmd("ZREVRANGE")
                    .arg(self.gk("workers"))
                    .arg(0)
                    .arg(-1)
                    .clone(),
            )
            .await?;
        // One pipeline for all records: every node's rescuer lists the workers each pass.
        let mut p = redis::pipe();
        for id in &ids {
            p.cmd("HMGET")
                .arg(self.gk(&format!("w:{id}")))
                .arg("info")
                .arg("seen")
                .arg("running");
        }
        let rows: Vec<Vec<Option<String>>> = if ids.is_empty() {
            Vec::new()
        } else {
            crate::conn::retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
                p.query_async(&mut c).await
            })
            .await?
        };
        let mut out = Vec::with_capacity(ids.len());
        for f in rows {
            let Some(json) = &f[0] else { continue };
            let mut info: WorkerInfo =
                serde_json::from_str(json).map_err(|e| Error::Storage(e.to_string()))?;
            if let Some(s) = f[1].as_ref().and_then(|s| s.parse().ok()) {
                info.last_seen_at = s;
            }
            if let Some(r) = f[2].as_ref().and_then(|s| s.parse().ok()) {
                info.running = r;
            }
            out.push(info);
        }
        out.sort_by_key(|w| std::cmp::Reverse(w.last_seen_at));
        Ok(out)
    }

    // --- leader lease ---------------------------------------------------------------------

    async fn leader_op(&self, params: &LeaderParams, op: &str) -> Result<bool> {
        let key = self.gk(&format!("leader:{}", params.name));
        let mut args = Args::default();
        args.s(op)
            .s(&params.holder)
            .n(params.ttl.as_millis() as i64);
        // The leader script's KEYS[1] is the lease key itself (global slot).
        let v = self
            .eval_key(&scripts::LEADER, &key, self.now(), &args)
            .await?;
        if op == "a" {
            self.query::<()>(
                redis::cmd("SADD")
                    .arg(self.gk("leaders"))
                    .arg(&params.name)
                    .clone(),
            )
            .await?;
        }
        Ok(reply::int(&v)? == 1)
    }

    pub(crate) async fn leader_acquire_impl(&self, params: LeaderParams) -> Result<bool> {
        self.leader_op(&params, "a").await
    }

    pub(crate) async fn leader_renew_impl(&self, params: LeaderParams) -> Result<bool> {
        self.leader_op(&params, "n").await
    }

    pub(crate) async fn leader_release_impl(&self, params: LeaderParams) -> Result<()> {
        self.leader_op(&params, "r").await.map(|_| ())
    }

    pub(crate) async fn leader_get_impl(&self, name: &str) -> Result<Option<LeaderInfo>> {
        let f: Vec<Option<String>> = self
            .query(
                redis::cmd("HMGET")
                    .arg(self.gk(&format!("leader:{name}")))
                    .arg("h")
                    .arg("x")
                    .clone(),
            )
            .await?;
        match (&f[0], f[1].as_ref().and_then(|x| x.parse::<i64>().ok())) {
            (Some(h), Some(x)) if x > self.now() => Ok(Some(LeaderInfo {
                name: name.to_string(),
                holder: h.clone(),
                expires_at: x,
            })),
            _ => Ok(None),
        }
    }
}

impl RedisBackend {
    /// Like `eval` but with an explicit KEYS[1] (for scripts on a global key).
    pub(crate) async fn eval_key(
        &self,
        script: &redis::Script,
        key: &str,
        now: i64,
        args: &Args,
    ) -> Result<Value> {
        let mut inv = script.prepare_invoke();
        inv.key(key)
            .arg(&self.inner.cfg.prefix)
            .arg(if self.cluster() { "1" } else { "0" })
            .arg(now);
        for a in &args.0 {
            inv.arg(a.as_slice());
        }
        crate::conn::retrying(&self.inner.conn, self.inner.cfg.retry_for, async |mut c| {
            inv.invoke_async::<Value>(&mut c).await
        })
        .await
    }
}
