//! Workflows on Redis: the records (create, get, list, compare-and-set update, counts), the
//! `Skip` and `Spawn` failure actions, and the enqueue of jobs that carry a workflow id.
//!
//! Every change is one script. The workflow scripts are what they use of `lua/lib.lua`,
//! then the enqueue and retry script bodies wrapped as functions (`ENQ`, `RETRY`), then
//! `lua/wf_lib.lua`, then their own body: so a workflow's record and its jobs are stored, or a spawn's children and
//! its parent's change, in one atomic step that uses the very same enqueue code as
//! `job_enqueue`.
//!
//! Layout (see `lua/wf_lib.lua` and ARCHITECTURE.md): on a single node the workflow keys
//! share the global tag `{#}`; on Redis Cluster they live in the slot of the workflow's home
//! queue, and every job of the workflow (tasks, `for_each` instances, compensations) must be
//! in that queue, since a script cannot leave its slot. `{#}:wfq` maps each workflow id to
//! its home queue and `{#}:wfhomes` lists the homes (Cluster only; written before the
//! script, like the job id index).

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use quern::backend::*;
use quern::model::{
    ErrorKind, ErrorRecord, StateCounts, WorkflowPhase, WorkflowRecord, WorkflowState,
};
use quern::{Error, Job, JobId, JobState, NewJob, Result};
use redis::{Script, Value};

use crate::backend::{Args, RedisBackend, reply};
use crate::codec::{self, decode_job, fields_from_value};
use crate::scripts;

macro_rules! wf_script {
    ($name:ident, $file:literal) => {
        static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(&scripts::with_lib(concat!(
                "\nlocal function ENQ(ARGV)\n",
                include_str!("../lua/enqueue.lua"),
                "\nend\nlocal function RETRY(ARGV)\n",
                include_str!("../lua/retry.lua"),
                "\nend\n",
                include_str!("../lua/wf_lib.lua"),
                include_str!(concat!("../lua/", $file))
            )))
        });
    };
}

wf_script!(WF_ENQUEUE, "wf_enqueue.lua");
wf_script!(WF_CREATE, "wf_create.lua");
wf_script!(WF_UPDATE, "wf_update.lua");
wf_script!(WF_COUNTS, "wf_counts.lua");
wf_script!(WF_LIST, "wf_list.lua");
wf_script!(WF_SKIP, "wf_skip.lua");
wf_script!(WF_SPAWN, "wf_spawn.lua");

/// The most records one `workflow_list` page returns.
const LIST_MAX: usize = 10_000;

/// A script's own arguments (`M`, then them) followed by enqueue arguments.
fn with_head(head: Args, enqueue: Option<Args>) -> Args {
    let mut a = Args::default();
    a.n(head.0.len() as i64);
    a.0.extend(head.0);
    if let Some(e) = enqueue {
        a.0.extend(e.0);
    }
    a
}

/// The enqueue arguments of an atomic batch.
fn enqueue_args(jobs: &[NewJob], now: i64) -> Result<Args> {
    let params = EnqueueParams {
        jobs: jobs.to_vec(),
        mode: BatchMode::Atomic,
    };
    let idxs: Vec<usize> = (0..jobs.len()).collect();
    crate::jobs::args_for(&params, &idxs, true, now)
}

/// Checks what needs no store, as `job_enqueue` does, naming the job by its batch index.
fn validate_jobs(jobs: &[NewJob], limits: &quern::model::Limits) -> Result<()> {
    for (i, job) in jobs.iter().enumerate() {
        if let Err(e) = job.validate(limits) {
            return Err(match e {
                Error::InvalidJob { reason, .. } | Error::InvalidArgument(reason) => {
                    Error::InvalidJob {
                        index: Some(i),
                        reason,
                    }
                }
                other => other,
            });
        }
    }
    Ok(())
}

/// On Cluster every job of a workflow must be in its home queue.
fn check_home(home: &str, jobs: &[NewJob], what: &str) -> Result<()> {
    match jobs.iter().position(|j| j.queue != home) {
        Some(i) => Err(Error::InvalidJob {
            index: Some(i),
            reason: format!(
                "{what} is in queue {:?}, but on Redis Cluster every job of a workflow must be in one queue (here {home:?}): a script works in one hash slot and each queue is its own slot",
                jobs[i].queue
            ),
        }),
        None => Ok(()),
    }
}

fn text(f: &codec::Fields, k: &str) -> Option<String> {
    f.get(k).map(|v| String::from_utf8_lossy(v).into_owned())
}

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("corrupt workflow record: {what}"))
}

fn num(f: &codec::Fields, k: &str) -> Result<Option<i64>> {
    match text(f, k) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| corrupt(k)),
    }
}

/// Rebuilds a record from its hash.
fn decode_record(id: &str, f: &codec::Fields) -> Result<WorkflowRecord> {
    let state = num(f, "s")?
        .and_then(WorkflowState::from_i64)
        .ok_or_else(|| corrupt("s"))?;
    let phase = num(f, "ph")?
        .and_then(WorkflowPhase::from_i64)
        .ok_or_else(|| corrupt("ph"))?;
    let spec = match f.get("sp") {
        Some(b) => serde_json::from_slice(b).map_err(|_| corrupt("sp"))?,
        None => serde_json::Value::Null,
    };
    let tasks: BTreeMap<String, JobId> = match f.get("tk") {
        Some(b) => serde_json::from_slice(b).map_err(|_| corrupt("tk"))?,
        None => BTreeMap::new(),
    };
    let compensations = match text(f, "cm") {
        Some(s) => s
            .split_whitespace()
            .map(|x| x.parse().map_err(|_| corrupt("cm")))
            .collect::<Result<Vec<JobId>>>()?,
        None => Vec::new(),
    };
    Ok(WorkflowRecord {
        id: id.to_string(),
        name: text(f, "n").ok_or_else(|| corrupt("n"))?,
        state,
        phase,
        revision: num(f, "v")?.ok_or_else(|| corrupt("v"))? as u64,
        spec,
        tasks,
        compensations,
        error: text(f, "er"),
        created_at: num(f, "c")?.ok_or_else(|| corrupt("c"))?,
        updated_at: num(f, "u")?.ok_or_else(|| corrupt("u"))?,
        finished_at: num(f, "fa")?,
    })
}

/// The error of a job refused inside a script: `{…, index (1-based), message}`.
fn refused_job(idx: &Value, msg: Value) -> Result<Error> {
    Ok(Error::InvalidJob {
        index: Some((reply::int(idx)? - 1).max(0) as usize),
        reason: reply::string(msg)?,
    })
}

impl RedisBackend {
    /// `<prefix>:{#}:<suffix>` on a single node, `<prefix>:{<home>}:<suffix>` on Cluster.
    fn wk(&self, home: &str, suffix: &str) -> String {
        if self.cluster() {
            self.qk(home, suffix)
        } else {
            self.gk(suffix)
        }
    }

    /// The slot a workflow script runs in.
    fn home_slot<'a>(&self, home: &'a str) -> Option<&'a str> {
        self.cluster().then_some(home)
    }

    /// The home queue of a workflow (`""` on a single node, where it does not matter), or
    /// `None` when no such workflow is known.
    async fn home_of(&self, id: &str) -> Result<Option<String>> {
        if !self.cluster() {
            return Ok(Some(String::new()));
        }
        self.query(redis::cmd("HGET").arg(self.gk("wfq")).arg(id).clone())
            .await
    }

    /// Cluster: registers the queue and claims the jobs' ids in the global id index before
    /// the script runs (as `job_enqueue` does). Returns the ids it newly indexed, to drop if
    /// the script refuses; an id used in another queue refuses the batch.
    async fn cluster_index(&self, q: &str, jobs: &[NewJob], now: i64) -> Result<Vec<JobId>> {
        if !self.cluster() || jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.query::<()>(redis::cmd("SADD").arg(self.gk("queues")).arg(q).clone())
            .await?;
        let mut ia = Args::default();
        ia.n(jobs.len() as i64);
        for j in jobs {
            ia.s(&j.id.to_string()).s(q);
        }
        let marks = reply::array(
            self.eval_key(&scripts::INDEX, &self.gk("idx"), now, &ia)
                .await?,
        )?;
        let mut indexed = Vec::new();
        let mut clash = None;
        for (i, (j, m)) in jobs.iter().zip(marks).enumerate() {
            match reply::int(&m) {
                Ok(1) => indexed.push(j.id),
                Ok(_) => {}
                Err(_) => {
                    if clash.is_none() {
                        clash = Some((i, reply::string(m)?));
                    }
                }
            }
        }
        if let Some((i, other)) = clash {
            self.unindex(&indexed).await;
            return Err(Error::InvalidJob {
                index: Some(i),
                reason: format!(
                    "job id {} is already used by a job in queue {other:?}",
                    jobs[i].id
                ),
            });
        }
        Ok(indexed)
    }

    // --- enqueue of jobs carrying a workflow id ------------------------------------------

    /// Runs the enqueue script for the jobs `idxs` of one `job_enqueue` call: the plain one,
    /// or, when some carry a workflow id, the one that also adds them to their workflow's
    /// member set (so counts and cancels see every job of a workflow, however it was
    /// enqueued). Same reply either way.
    pub(crate) async fn eval_enqueue(
        &self,
        params: &EnqueueParams,
        idxs: &[usize],
        q: &str,
        now: i64,
        args: &Args,
    ) -> Result<Value> {
        if !idxs.iter().any(|i| params.jobs[*i].workflow_id.is_some()) {
            return self.eval(&scripts::ENQUEUE, Some(q), now, args, true).await;
        }
        if self.cluster() {
            // A job of an existing workflow must be in that workflow's home queue (one
            // lookup per distinct workflow).
            let mut seen = HashSet::new();
            for i in idxs {
                if let Some(w) = &params.jobs[*i].workflow_id
                    && seen.insert(w.as_str())
                    && let Some(home) = self.home_of(w).await?
                    && home != q
                {
                    return Err(Error::InvalidJob {
                        index: Some(*i),
                        reason: format!(
                            "job of workflow {w} is in queue {q:?}, but on Redis Cluster every job of a workflow must be in one queue (here {home:?})"
                        ),
                    });
                }
            }
        }
        let mut head = Args::default();
        for i in idxs {
            head.s(params.jobs[*i].workflow_id.as_deref().unwrap_or(""));
        }
        let mut all = with_head(head, None);
        all.0.extend(args.0.iter().cloned());
        self.eval(&WF_ENQUEUE, Some(q), now, &all, true).await
    }

    // --- records ----------------------------------------------------------------------------

    pub(crate) async fn workflow_create_impl(
        &self,
        p: WorkflowCreateParams,
    ) -> Result<WorkflowRecord> {
        p.check()?;
        let w = p.workflow;
        validate_jobs(&p.jobs, &self.inner.limits)?;
        let home = p
            .jobs
            .first()
            .map(|j| j.queue.clone())
            .unwrap_or_else(|| "default".into());
        if self.cluster() {
            check_home(&home, &p.jobs, "a task job")?;
        }
        let now = self.now();
        let tasks = serde_json::to_string(&w.tasks).map_err(|e| Error::Codec(e.to_string()))?;
        let mut head = Args::default();
        head.s(&home)
            .s(&w.id)
            .s(&w.name)
            .s(&w.spec.to_string())
            .s(&tasks);
        for _ in &p.jobs {
            head.s(&w.id);
        }
        let enq = if p.jobs.is_empty() {
            None
        } else {
            Some(enqueue_args(&p.jobs, now)?)
        };
        let taken =
            || Error::InvalidArgument(format!("a workflow with id {} already exists", w.id));
        let mut indexed = Vec::new();
        if self.cluster() {
            let fresh: bool = self
                .query(
                    redis::cmd("HSETNX")
                        .arg(self.gk("wfq"))
                        .arg(&w.id)
                        .arg(&home)
                        .clone(),
                )
                .await?;
            if !fresh {
                return Err(taken());
            }
            self.query::<()>(
                redis::cmd("SADD")
                    .arg(self.gk("wfhomes"))
                    .arg(&home)
                    .clone(),
            )
            .await?;
            match self.cluster_index(&home, &p.jobs, now).await {
                Ok(ids) => indexed = ids,
                Err(e) => {
                    self.forget_home(&w.id).await;
                    return Err(e);
                }
            }
        }
        let out = self
            .eval(
                &WF_CREATE,
                self.home_slot(&home),
                now,
                &with_head(head, enq),
                true,
            )
            .await;
        let out = match out.and_then(reply::array) {
            Ok(v) => v,
            Err(e) => {
                // The script may or may not have run: keep the index entries (harmless if
                // stale), so a stored workflow is never unfindable.
                return Err(e);
            }
        };
        let code = reply::int(&out[0])?;
        if code == 0 {
            return Ok(WorkflowRecord::from_new(w, now));
        }
        self.unindex(&indexed).await;
        let mut it = out.into_iter().skip(1);
        match code {
            1 => Err(taken()),
            _ => {
                if self.cluster() {
                    self.forget_home(&w.id).await;
                }
                let idx = it.next().unwrap_or(Value::Nil);
                Err(refused_job(&idx, it.next().unwrap_or(Value::Nil))?)
            }
        }
    }

    /// Cluster: drops a workflow's home entry after its create was refused.
    async fn forget_home(&self, id: &str) {
        if let Err(e) = self
            .query::<()>(redis::cmd("HDEL").arg(self.gk("wfq")).arg(id).clone())
            .await
        {
            tracing::warn!(error = %e, "could not drop a workflow home entry; a stale one only reserves the id");
        }
    }

    pub(crate) async fn workflow_get_impl(&self, id: &str) -> Result<Option<WorkflowRecord>> {
        let Some(home) = self.home_of(id).await? else {
            return Ok(None);
        };
        let v: Value = self
            .query(
                redis::cmd("HGETALL")
                    .arg(self.wk(&home, &format!("wf:{id}")))
                    .clone(),
            )
            .await?;
        let f = fields_from_value(v)?;
        if f.is_empty() {
            return Ok(None);
        }
        decode_record(id, &f).map(Some)
    }

    pub(crate) async fn workflow_list_impl(&self, p: WorkflowListParams) -> Result<WorkflowPage> {
        let limit = p.limit.clamp(1, LIST_MAX);
        let homes: Vec<String> = if self.cluster() {
            let mut h: Vec<String> = self
                .query(redis::cmd("SMEMBERS").arg(self.gk("wfhomes")).clone())
                .await?;
            h.sort();
            h
        } else {
            vec![String::new()]
        };
        let which = match p.state {
            Some(s) => s.as_i64().to_string(),
            None => "all".into(),
        };
        let now = self.now();
        let mut all: Vec<WorkflowRecord> = Vec::new();
        for home in &homes {
            let mut args = Args::default();
            args.s(home)
                .s(&which)
                .s(p.before.as_deref().unwrap_or(""))
                .n(limit as i64 + 1);
            let out = reply::array(
                self.eval(
                    &WF_LIST,
                    self.home_slot(home),
                    now,
                    &with_head(args, None),
                    false,
                )
                .await?,
            )?;
            let mut it = out.into_iter();
            while let (Some(id), Some(fields)) = (it.next(), it.next()) {
                let id = reply::string(id)?;
                let f = fields_from_value(fields)?;
                if !f.is_empty() {
                    all.push(decode_record(&id, &f)?);
                }
            }
        }
        all.sort_by(|a, b| b.id.cmp(&a.id));
        let next = if all.len() > limit {
            all.truncate(limit);
            all.last().map(|w| w.id.clone())
        } else {
            None
        };
        Ok(WorkflowPage {
            workflows: all,
            next,
        })
    }

    pub(crate) async fn workflow_update_impl(
        &self,
        p: WorkflowUpdateParams,
    ) -> Result<WorkflowRecord> {
        let Some(home) = self.home_of(&p.id).await? else {
            return Err(Error::WorkflowNotFound(p.id));
        };
        if !p.compensations.is_empty() {
            check_workflow_membership(&p.id, &p.compensations)?;
            validate_jobs(&p.compensations, &self.inner.limits)?;
            if self.cluster() {
                check_home(&home, &p.compensations, "a compensation job")?;
            }
        }
        if self.cluster() && !p.retry.is_empty() {
            let qs = self.queues_of(&p.retry).await?;
            for (id, q) in p.retry.iter().zip(qs) {
                match q {
                    None => return Err(Error::JobNotFound(*id)),
                    Some(q) if q != home => {
                        return Err(Error::InvalidArgument(format!(
                            "job {id} is not a job of workflow {}",
                            p.id
                        )));
                    }
                    Some(_) => {}
                }
            }
        }
        let now = self.now();
        let reason = match p.cancel {
            Some(CancelScope::NotStarted) => {
                format!("workflow {} failed; cancelled before it started", p.id)
            }
            _ => format!("workflow {} was cancelled", p.id),
        };
        let line = codec::error_line(&ErrorRecord {
            attempt: 0,
            at: now,
            kind: ErrorKind::Cancelled,
            message: reason,
        });
        let mut head = Args::default();
        head.s(&home).s(&p.id).n(p.revision as i64);
        match p.state {
            Some(s) => head.n(s.as_i64()),
            None => head.s(""),
        };
        match p.phase {
            Some(ph) => head.n(ph.as_i64()),
            None => head.s(""),
        };
        match &p.error {
            None => head.s("").s(""),
            Some(None) => head.s("c").s(""),
            Some(Some(e)) => head.s("s").s(e),
        };
        head.s(match p.cancel {
            None => "",
            Some(CancelScope::NotStarted) => "n",
            Some(CancelScope::All) => "a",
        })
        .s(&line)
        .n(p.retry.len() as i64);
        for id in &p.retry {
            head.s(&id.to_string());
        }
        for _ in &p.compensations {
            head.s(&p.id);
        }
        let enq = if p.compensations.is_empty() {
            None
        } else {
            Some(enqueue_args(&p.compensations, now)?)
        };
        let indexed = self.cluster_index(&home, &p.compensations, now).await?;
        let out = reply::array(
            self.eval(
                &WF_UPDATE,
                self.home_slot(&home),
                now,
                &with_head(head, enq),
                true,
            )
            .await?,
        )?;
        let code = reply::int(&out[0])?;
        if code != 0 {
            self.unindex(&indexed).await;
        }
        let mut it = out.into_iter().skip(1);
        let mut next = || it.next().unwrap_or(Value::Nil);
        let job_id = |v: Value| -> Result<JobId> { reply::string(v)?.parse() };
        match code {
            0 => decode_record(&p.id, &fields_from_value(next())?),
            1 => Err(Error::WorkflowNotFound(p.id)),
            2 => Err(Error::Conflict(format!(
                "workflow {} is at revision {}, not {} (it changed since it was read)",
                p.id,
                reply::int(&next())?,
                p.revision
            ))),
            3 => Err(Error::JobNotFound(job_id(next())?)),
            4 => Err(Error::InvalidArgument(format!(
                "job {} is not a job of workflow {}",
                job_id(next())?,
                p.id
            ))),
            5 => {
                let id = job_id(next())?;
                let from = JobState::from_i64(reply::int(&next())?)
                    .ok_or_else(|| Error::Storage("bad state".into()))?;
                Err(Error::InvalidTransition {
                    id,
                    from,
                    action: "retry",
                })
            }
            6 => Err(Error::InvalidArgument(format!(
                "job {} cannot be retried: its dependencies can no longer meet its trigger (replay the failed dependency first)",
                job_id(next())?
            ))),
            _ => {
                let idx = next();
                Err(refused_job(&idx, next())?)
            }
        }
    }

    pub(crate) async fn workflow_counts_impl(&self, id: &str) -> Result<StateCounts> {
        let Some(home) = self.home_of(id).await? else {
            return Err(Error::WorkflowNotFound(id.to_string()));
        };
        let mut args = Args::default();
        args.s(&home).s(id);
        let out = reply::array(
            self.eval(
                &WF_COUNTS,
                self.home_slot(&home),
                self.now(),
                &with_head(args, None),
                false,
            )
            .await?,
        )?;
        if out.len() != JobState::ALL.len() {
            return Err(Error::WorkflowNotFound(id.to_string()));
        }
        let mut c = StateCounts::default();
        for (s, v) in JobState::ALL.iter().zip(&out) {
            *c.get_mut(*s) = reply::int(v)?.max(0) as u64;
        }
        Ok(c)
    }

    // --- reads ------------------------------------------------------------------------------

    /// Several jobs in few round trips: one index lookup, then one pipeline per queue.
    pub(crate) async fn get_many_impl(&self, ids: &[JobId]) -> Result<Vec<Option<Job>>> {
        let mut out: Vec<Option<Job>> = vec![None; ids.len()];
        if ids.is_empty() {
            return Ok(out);
        }
        let queues = self.queues_of(ids).await?;
        let named: Vec<usize> = (0..ids.len()).filter(|i| queues[*i].is_some()).collect();
        let names: Vec<String> = named
            .iter()
            .map(|i| queues[*i].clone().unwrap_or_default())
            .collect();
        let now = self.now();
        for (_, members) in self.group_by_queue(&names) {
            for chunk in members.chunks(1000) {
                let mut p = redis::pipe();
                for m in chunk {
                    let i = named[*m];
                    p.cmd("HGETALL")
                        .arg(self.qk(&names[*m], &format!("j:{}", ids[i])));
                }
                let vals: Vec<Value> = crate::conn::retrying(
                    &self.inner.conn,
                    self.inner.cfg.retry_for,
                    async |mut c| p.query_async(&mut c).await,
                )
                .await?;
                for (m, v) in chunk.iter().zip(vals) {
                    let i = named[*m];
                    let f = fields_from_value(v)?;
                    if !f.is_empty() {
                        out[i] = Some(decode_job(&names[*m], &ids[i].to_string(), &f, now)?);
                    }
                }
            }
        }
        Ok(out)
    }

    // --- Skip and Spawn ---------------------------------------------------------------------

    /// `job_fail` for a batch holding `Skip` or `Spawn` items: those go one by one through
    /// their own scripts, the others through the ordinary fail script; results in order.
    pub(crate) async fn fail_with_workflow_actions(
        &self,
        params: FailParams,
    ) -> Result<Vec<Result<()>>> {
        let mut plain = Vec::new();
        let mut plain_at = Vec::new();
        let mut out: Vec<Option<Result<()>>> = (0..params.items.len()).map(|_| None).collect();
        let mut special = Vec::new();
        for (i, f) in params.items.into_iter().enumerate() {
            if matches!(f.action, FailAction::Skip | FailAction::Spawn { .. }) {
                special.push((i, f));
            } else {
                plain_at.push(i);
                plain.push(f);
            }
        }
        if !plain.is_empty() {
            let r = Box::pin(self.fail_impl(FailParams { items: plain })).await?;
            for (i, r) in plain_at.into_iter().zip(r) {
                out[i] = Some(r);
            }
        }
        for (i, f) in special {
            out[i] = Some(self.fail_special(f).await?);
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Storage("item not handled".into()))))
            .collect())
    }

    /// One `Skip` or `Spawn`. Outer `Err`: the call failed; inner: this item's answer.
    async fn fail_special(&self, f: Failure) -> Result<Result<()>> {
        let id = f.token.job_id;
        let lost = || Err(Error::LeaseLost { job_id: id });
        let Some(q) = self.queues_of(&[id]).await?.pop().flatten() else {
            return Ok(lost());
        };
        let now = self.now();
        match f.action {
            FailAction::Skip => {
                let line = codec::error_line(&ErrorRecord {
                    attempt: f.token.attempt,
                    at: now,
                    kind: ErrorKind::Skipped,
                    message: f.message,
                });
                let mut head = Args::default();
                head.s(&q)
                    .s(&id.to_string())
                    .n(f.token.epoch as i64)
                    .s(&line);
                let v = self
                    .eval(&WF_SKIP, Some(&q), now, &with_head(head, None), true)
                    .await?;
                if reply::int(&v)? == 1 {
                    self.forget_queue(&id);
                    Ok(Ok(()))
                } else {
                    Ok(lost())
                }
            }
            FailAction::Spawn {
                children,
                checkpoint,
            } => {
                if let Some(cp) = &checkpoint {
                    let size = cp.stored_bytes().len();
                    let limit = self.inner.limits.max_payload_bytes;
                    if size > limit {
                        return Ok(Err(Error::PayloadTooLarge { size, limit }));
                    }
                }
                if let Err(e) = validate_jobs(&children, &self.inner.limits) {
                    return Ok(Err(e));
                }
                if let Some(i) = children.iter().position(|c| c.depends_on.contains(&id)) {
                    return Ok(Err(Error::InvalidJob {
                        index: Some(i),
                        reason: format!("a child cannot depend on the job {id} that spawns it"),
                    }));
                }
                if self.cluster()
                    && let Err(e) = check_home(&q, &children, "a spawned child")
                {
                    return Ok(Err(e));
                }
                let mut head = Args::default();
                head.s(&q).s(&id.to_string()).n(f.token.epoch as i64);
                match &checkpoint {
                    Some(cp) => head.s("1").b(codec::encode_payload(cp)),
                    None => head.s("0").s(""),
                };
                for c in &children {
                    head.s(c.workflow_id.as_deref().unwrap_or(""));
                }
                let enq = if children.is_empty() {
                    None
                } else {
                    Some(enqueue_args(&children, now)?)
                };
                let indexed = match self.cluster_index(&q, &children, now).await {
                    Ok(ids) => ids,
                    Err(e @ Error::InvalidJob { .. }) => return Ok(Err(e)),
                    Err(e) => return Err(e),
                };
                let out = reply::array(
                    self.eval(&WF_SPAWN, Some(&q), now, &with_head(head, enq), true)
                        .await?,
                )?;
                let code = reply::int(&out[0])?;
                if code != 1 {
                    self.unindex(&indexed).await;
                }
                let mut it = out.into_iter().skip(1);
                match code {
                    1 => {
                        self.forget_queue(&id);
                        Ok(Ok(()))
                    }
                    0 => Ok(lost()),
                    _ => {
                        let idx = it.next().unwrap_or(Value::Nil);
                        Ok(Err(refused_job(&idx, it.next().unwrap_or(Value::Nil))?))
                    }
                }
            }
            _ => Err(Error::Storage("not a workflow action".into())),
        }
    }

    // --- admin ------------------------------------------------------------------------------

    /// Cluster: deletes every workflow key (SCAN does not span a cluster). Returns how many.
    pub(crate) async fn destroy_workflow_keys(&self) -> Result<u64> {
        let homes: Vec<(String, String)> = self
            .query(redis::cmd("HGETALL").arg(self.gk("wfq")).clone())
            .await?;
        let mut deleted = 0;
        for (id, home) in homes {
            let mut cmd = redis::cmd("UNLINK");
            cmd.arg(self.qk(&home, &format!("wf:{id}")))
                .arg(self.qk(&home, &format!("wfj:{id}")))
                .arg(self.qk(&home, &format!("wfqs:{id}")));
            deleted += self.query::<u64>(cmd).await?;
        }
        let homes: HashSet<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.gk("wfhomes")).clone())
            .await?;
        for home in homes {
            let mut cmd = redis::cmd("UNLINK");
            cmd.arg(self.qk(&home, "wfs:all"));
            for s in WorkflowState::ALL {
                cmd.arg(self.qk(&home, &format!("wfs:{}", s.as_i64())));
            }
            deleted += self.query::<u64>(cmd).await?;
        }
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(self.gk("wfq")).arg(self.gk("wfhomes"));
        deleted += self.query::<u64>(cmd).await?;
        Ok(deleted)
    }
}
