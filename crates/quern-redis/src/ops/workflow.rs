//! Workflow records: create, get, list, compare-and-set update, counts. (Jobs carrying a
//! workflow id are stored by `enqueue.rs`; the `Skip` and `Spawn` failure actions are in
//! `fail.rs`; what they share with this file is in `store.rs`.)
//!
//! Every change is one script (see `wf_script!` in `scripts.rs`), so a workflow's record and
//! its jobs are stored in one atomic step that uses the very same enqueue code as
//! `job_enqueue`. `workflow_update` checks everything that can refuse it before it writes
//! anything, because a Lua script that fails half-way keeps its earlier writes.
//!
//! `workflow_counts` intersects the workflow's member set of each queue (`{q}:wfj:<id>`)
//! with the queue's structure of each state (`ZINTERCARD`, `SINTERCARD`: in C, over the
//! smaller set), so it costs O(jobs of the workflow) and never scans a queue.

use std::collections::BTreeMap;

use quern::backend::*;
use quern::model::{
    ErrorKind, ErrorRecord, StateCounts, WorkflowPhase, WorkflowRecord, WorkflowState,
};
use quern::{Error, JobId, JobState, Result};
use redis::Value;

use super::store;
use crate::backend::RedisBackend;
use crate::codec::{self, Fields};
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// The most records one `workflow_list` page returns.
const LIST_MAX: usize = 10_000;

fn text(f: &Fields, k: &str) -> Option<String> {
    f.get(k).map(|v| String::from_utf8_lossy(v).into_owned())
}

fn corrupt(what: &str) -> Error {
    Error::Storage(format!("corrupt workflow record: {what}"))
}

fn num(f: &Fields, k: &str) -> Result<Option<i64>> {
    match text(f, k) {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| corrupt(k)),
    }
}

/// Rebuilds a record from its hash.
fn decode_record(id: &str, f: &Fields) -> Result<WorkflowRecord> {
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

pub(crate) async fn create(b: &RedisBackend, p: WorkflowCreateParams) -> Result<WorkflowRecord> {
    p.check()?;
    let w = p.workflow;
    store::check_jobs(&p.jobs, &b.inner.limits)?;
    let home = p
        .jobs
        .first()
        .map(|j| j.queue.clone())
        .unwrap_or_else(|| "default".into());
    if b.cluster() {
        store::check_home(&home, &p.jobs, "a task job")?;
    }
    let now = b.now();
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
    let enq = store::enqueue_part(&p.jobs, now)?;
    let taken = || Error::InvalidArgument(format!("a workflow with id {} already exists", w.id));
    let mut indexed = Vec::new();
    if b.cluster() {
        let fresh: bool = b
            .query(
                redis::cmd("HSETNX")
                    .arg(b.gk("wfq"))
                    .arg(&w.id)
                    .arg(&home)
                    .clone(),
            )
            .await?;
        if !fresh {
            return Err(taken());
        }
        b.query::<()>(redis::cmd("SADD").arg(b.gk("wfhomes")).arg(&home).clone())
            .await?;
        match store::index_batch(b, &home, &p.jobs, now).await {
            Ok(ids) => indexed = ids,
            Err(e) => {
                forget_home(b, &w.id).await;
                return Err(e);
            }
        }
    }
    let out = b
        .eval(
            &scripts::WF_CREATE,
            store::home_slot(b, &home),
            now,
            &store::with_head(head, enq),
            Ack::Replicas,
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
    store::unindex(b, &indexed).await;
    let mut it = out.into_iter().skip(1);
    match code {
        1 => Err(taken()),
        _ => {
            if b.cluster() {
                forget_home(b, &w.id).await;
            }
            let idx = it.next().unwrap_or(Value::Nil);
            Err(store::refused_job(&idx, it.next().unwrap_or(Value::Nil))?)
        }
    }
}

/// Cluster: drops a workflow's home entry after its create was refused.
async fn forget_home(b: &RedisBackend, id: &str) {
    if let Err(e) = b
        .query::<()>(redis::cmd("HDEL").arg(b.gk("wfq")).arg(id).clone())
        .await
    {
        tracing::warn!(error = %e, "could not drop a workflow home entry; a stale one only reserves the id");
    }
}

pub(crate) async fn get(b: &RedisBackend, id: &str) -> Result<Option<WorkflowRecord>> {
    let Some(home) = store::home_of(b, id).await? else {
        return Ok(None);
    };
    let v: Value = b
        .query(
            redis::cmd("HGETALL")
                .arg(store::wk(b, &home, &format!("wf:{id}")))
                .clone(),
        )
        .await?;
    let f = reply::fields_from_value(v)?;
    if f.is_empty() {
        return Ok(None);
    }
    decode_record(id, &f).map(Some)
}

pub(crate) async fn list(b: &RedisBackend, p: WorkflowListParams) -> Result<WorkflowPage> {
    let limit = p.limit.clamp(1, LIST_MAX);
    let homes: Vec<String> = if b.cluster() {
        let mut h: Vec<String> = b
            .query(redis::cmd("SMEMBERS").arg(b.gk("wfhomes")).clone())
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
    let now = b.now();
    let mut all: Vec<WorkflowRecord> = Vec::new();
    for home in &homes {
        let mut args = Args::default();
        args.s(home)
            .s(&which)
            .s(p.before.as_deref().unwrap_or(""))
            .n(limit as i64 + 1);
        let out = reply::array(
            b.eval(
                &scripts::WF_LIST,
                store::home_slot(b, home),
                now,
                &store::with_head(args, None),
                Ack::Primary,
            )
            .await?,
        )?;
        let mut it = out.into_iter();
        while let (Some(id), Some(fields)) = (it.next(), it.next()) {
            let id = reply::string(id)?;
            let f = reply::fields_from_value(fields)?;
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

pub(crate) async fn update(b: &RedisBackend, p: WorkflowUpdateParams) -> Result<WorkflowRecord> {
    let Some(home) = store::home_of(b, &p.id).await? else {
        return Err(Error::WorkflowNotFound(p.id));
    };
    if !p.compensations.is_empty() {
        check_workflow_membership(&p.id, &p.compensations)?;
        store::check_jobs(&p.compensations, &b.inner.limits)?;
        if b.cluster() {
            store::check_home(&home, &p.compensations, "a compensation job")?;
        }
    }
    if b.cluster() && !p.retry.is_empty() {
        let qs = b.queues_of(&p.retry).await?;
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
    let now = b.now();
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
        claimed_at: None,
        due_at: None,
        retry_at: None,
    })?;
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
    let (out, indexed) = store::eval_storing(
        b,
        &scripts::WF_UPDATE,
        store::home_slot(b, &home),
        &home,
        head,
        &p.compensations,
        now,
    )
    .await?;
    let code = reply::int(&out[0])?;
    if code != 0 {
        store::unindex(b, &indexed).await;
    }
    let mut it = out.into_iter().skip(1);
    let mut next = || it.next().unwrap_or(Value::Nil);
    let job_id = |v: Value| -> Result<JobId> { reply::string(v)?.parse() };
    match code {
        0 => decode_record(&p.id, &reply::fields_from_value(next())?),
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
            Err(store::refused_job(&idx, next())?)
        }
    }
}

pub(crate) async fn counts(b: &RedisBackend, id: &str) -> Result<StateCounts> {
    let Some(home) = store::home_of(b, id).await? else {
        return Err(Error::WorkflowNotFound(id.to_string()));
    };
    let mut args = Args::default();
    args.s(&home).s(id);
    let out = reply::array(
        b.eval(
            &scripts::WF_COUNTS,
            store::home_slot(b, &home),
            b.now(),
            &store::with_head(args, None),
            Ack::Primary,
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
