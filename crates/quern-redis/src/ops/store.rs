//! What every script that stores new jobs shares: the general enqueue arguments, the checks
//! made before anything is sent, the Cluster id index, and where a workflow's jobs live.
//!
//! `job_enqueue` (`enqueue.rs`), a workflow's create and update (`workflow.rs`) and a spawn
//! (`fail.rs`) all store jobs through the same enqueue script body, so they build its
//! arguments, check the jobs and claim their ids the same way, here.
//!
//! **Workflow homes.** On a single node the workflow keys share the global tag `{#}`; on
//! Redis Cluster they live in the slot of the workflow's home queue, and every job of the
//! workflow (tasks, `for_each` instances, compensations, spawned children) must be in that
//! queue, since a script cannot leave its slot. `{#}:wfq` maps each workflow id to its home
//! queue and `{#}:wfhomes` lists the homes (Cluster only; written before the script, like
//! the job id index).

use std::collections::HashSet;

use quern::backend::{BatchMode, EnqueueParams};
use quern::model::Limits;
use quern::{Error, JobId, NewJob, Result};
use redis::{Script, Value};

use crate::backend::RedisBackend;
use crate::codec::encode_static;
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// The general enqueue script's arguments for the jobs `idxs`.
pub(crate) fn args_for(
    params: &EnqueueParams,
    idxs: &[usize],
    atomic: bool,
    now: i64,
) -> Result<Args> {
    let mut args = Args::default();
    args.s(if atomic { "a" } else { "b" }).n(idxs.len() as i64);
    for i in idxs {
        let j = &params.jobs[*i];
        let mut seen = HashSet::new();
        let deps: Vec<&JobId> = j.depends_on.iter().filter(|d| seen.insert(*d)).collect();
        args.s(&j.id.to_string())
            .s(&j.queue)
            .n(i64::from(j.priority.get()))
            .n(i64::from(j.max_attempts))
            .n(j.due_at(now))
            .b(encode_static(j)?)
            .s(j.unique_key.as_deref().unwrap_or(""));
        match j.unique_for {
            Some(d) => args.n(d.as_millis() as i64),
            None => args.s(""),
        };
        args.n(j.trigger.code()).n(deps.len() as i64);
        for d in deps {
            args.s(&d.to_string());
        }
        // The kind, for the job events' stream records.
        args.s(&j.kind);
    }
    // The groups after the jobs, only when there is one (see enqueue.lua).
    if idxs.iter().any(|i| params.jobs[*i].group.is_some()) {
        for i in idxs {
            args.s(params.jobs[*i].group.as_deref().unwrap_or(""));
        }
    }
    Ok(args)
}

/// The enqueue arguments of an atomic batch (the jobs a workflow script stores).
pub(crate) fn atomic_args(jobs: &[NewJob], now: i64) -> Result<Args> {
    let params = EnqueueParams {
        jobs: jobs.to_vec(),
        mode: BatchMode::Atomic,
    };
    let idxs: Vec<usize> = (0..jobs.len()).collect();
    args_for(&params, &idxs, true, now)
}

/// The enqueue part of a workflow script's arguments, `None` when it stores no jobs.
pub(crate) fn enqueue_part(jobs: &[NewJob], now: i64) -> Result<Option<Args>> {
    if jobs.is_empty() {
        return Ok(None);
    }
    atomic_args(jobs, now).map(Some)
}

/// Runs a workflow script that stores `jobs` after its own arguments `head`, in `slot`,
/// with the jobs' ids claimed in the Cluster id index of queue `home` first. Returns the
/// reply and the ids it newly indexed, which the caller drops again when the script refused.
pub(crate) async fn eval_storing(
    b: &RedisBackend,
    script: &Script,
    slot: Option<&str>,
    home: &str,
    head: Args,
    jobs: &[NewJob],
    now: i64,
) -> Result<(Vec<Value>, Vec<JobId>)> {
    let enq = enqueue_part(jobs, now)?;
    let indexed = index_batch(b, home, jobs, now).await?;
    let args = with_head(head, enq);
    let out = reply::array(b.eval(script, slot, now, &args, Ack::Replicas).await?)?;
    Ok((out, indexed))
}

/// A workflow script's own arguments (`M`, then them) followed by enqueue arguments.
pub(crate) fn with_head(head: Args, enqueue: Option<Args>) -> Args {
    let mut a = Args::default();
    a.n(head.0.len() as i64);
    a.0.extend(head.0);
    if let Some(e) = enqueue {
        a.0.extend(e.0);
    }
    a
}

/// Checks what needs no store for the job at batch index `i`; a refusal names the index.
pub(crate) fn check_job(i: usize, job: &NewJob, limits: &Limits) -> Result<()> {
    job.validate(limits).map_err(|e| match e {
        Error::InvalidJob { reason, .. } | Error::InvalidArgument(reason) => Error::InvalidJob {
            index: Some(i),
            reason,
        },
        other => other,
    })
}

/// [`check_job`] for every job of an atomic batch: the first refusal refuses the batch.
pub(crate) fn check_jobs(jobs: &[NewJob], limits: &Limits) -> Result<()> {
    jobs.iter()
        .enumerate()
        .try_for_each(|(i, job)| check_job(i, job, limits))
}

/// On Cluster every job of a workflow must be in its home queue.
pub(crate) fn check_home(home: &str, jobs: &[NewJob], what: &str) -> Result<()> {
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

/// The error of a job refused inside a script: `{…, index (1-based), message}`.
pub(crate) fn refused_job(idx: &Value, msg: Value) -> Result<Error> {
    Ok(Error::InvalidJob {
        index: Some((reply::int(idx)? - 1).max(0) as usize),
        reason: reply::string(msg)?,
    })
}

/// A workflow key: `<prefix>:{#}:<suffix>` on a single node, `<prefix>:{<home>}:<suffix>`
/// on Cluster.
pub(crate) fn wk(b: &RedisBackend, home: &str, suffix: &str) -> String {
    if b.cluster() {
        b.qk(home, suffix)
    } else {
        b.gk(suffix)
    }
}

/// The slot a workflow script runs in.
pub(crate) fn home_slot<'a>(b: &RedisBackend, home: &'a str) -> Option<&'a str> {
    b.cluster().then_some(home)
}

/// The home queue of a workflow (`""` on a single node, where it does not matter), or
/// `None` when no such workflow is known.
pub(crate) async fn home_of(b: &RedisBackend, id: &str) -> Result<Option<String>> {
    if !b.cluster() {
        return Ok(Some(String::new()));
    }
    b.query(redis::cmd("HGET").arg(b.gk("wfq")).arg(id).clone())
        .await
}

/// What the Cluster id index answered for one job id.
pub(crate) enum Indexed {
    /// Newly entered for this queue: drop it again if the job is not stored.
    New,
    /// Already entered for this queue (a job stored before, or a retried call).
    Known,
    /// Used by a job in this other queue: the job is refused.
    Elsewhere(String),
}

/// Cluster: registers the queue `q` and claims the ids in the global id index, before the
/// script that stores the jobs runs (a script stays in its queue's slot, the index is in the
/// global one), so a stored job is always findable.
pub(crate) async fn index_ids(
    b: &RedisBackend,
    q: &str,
    ids: &[JobId],
    now: i64,
) -> Result<Vec<Indexed>> {
    b.query::<()>(redis::cmd("SADD").arg(b.gk("queues")).arg(q).clone())
        .await?;
    let mut ia = Args::default();
    ia.n(ids.len() as i64);
    for id in ids {
        ia.s(&id.to_string()).s(q);
    }
    let marks = reply::array(b.eval_key(&scripts::INDEX, &b.gk("idx"), now, &ia).await?)?;
    marks
        .into_iter()
        .map(|m| match reply::int(&m) {
            Ok(1) => Ok(Indexed::New),
            Ok(_) => Ok(Indexed::Known),
            Err(_) => Ok(Indexed::Elsewhere(reply::string(m)?)),
        })
        .collect()
}

/// The refusal of a job whose id a job in another queue already uses.
pub(crate) fn id_taken(index: usize, id: JobId, other: &str) -> Error {
    Error::InvalidJob {
        index: Some(index),
        reason: format!("job id {id} is already used by a job in queue {other:?}"),
    }
}

/// Cluster: [`index_ids`] for an atomic batch. Returns the ids it newly indexed, to drop if
/// the script refuses; an id used in another queue refuses the batch.
pub(crate) async fn index_batch(
    b: &RedisBackend,
    q: &str,
    jobs: &[NewJob],
    now: i64,
) -> Result<Vec<JobId>> {
    if !b.cluster() || jobs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    let mut indexed = Vec::new();
    let mut clash = None;
    for (i, mark) in index_ids(b, q, &ids, now).await?.into_iter().enumerate() {
        match mark {
            Indexed::New => indexed.push(ids[i]),
            Indexed::Known => {}
            Indexed::Elsewhere(other) => {
                clash.get_or_insert((i, other));
            }
        }
    }
    if let Some((i, other)) = clash {
        unindex(b, &indexed).await;
        return Err(id_taken(i, ids[i], &other));
    }
    Ok(indexed)
}

/// Drops ids from the Cluster id index (jobs that were not stored, or were pruned).
pub(crate) async fn unindex(b: &RedisBackend, ids: &[JobId]) {
    if ids.is_empty() {
        return;
    }
    let mut cmd = redis::cmd("HDEL");
    cmd.arg(b.gk("idx"));
    for id in ids {
        cmd.arg(id.to_string());
    }
    if let Err(e) = b.query::<()>(cmd).await {
        tracing::warn!(error = %e, "could not clean the id index; stale entries are harmless");
    }
}
