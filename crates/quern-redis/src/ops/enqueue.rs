//! `job_enqueue`. A batch goes to `enqueue_plain.lua` when it can (no unique key,
//! dependency or workflow, no id twice: the common case), in groups of consecutive jobs that
//! share queue, run_at, priority, max attempts and chunk count: what a group shares is sent
//! once, and each job adds only its id and its blob already cut into chunks. The client
//! computes what it can as well as Lua (the ready score, the chunks): in Redis's Lua every
//! argument converted, string built and table field set costs hundreds of instructions per
//! job. Anything else goes to the general `enqueue.lua`.

use std::collections::HashSet;

use quern::backend::*;
use quern::{Error, JobId, JobState, Result};
use redis::Value;

use super::store::{self, Indexed};
use crate::backend::RedisBackend;
use crate::codec::{self, encode_static};
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// Jobs per enqueue script call in best-effort mode (an atomic batch is always one call).
const ENQUEUE_CHUNK: usize = 2000;

/// True when the jobs `idxs` can take the plain enqueue script (`enqueue_plain.lua`): no
/// unique key, no dependencies, no workflow, no group, and no id twice.
fn all_plain(params: &EnqueueParams, idxs: &[usize]) -> bool {
    // A fast hasher: SipHash over every id of a batch showed in the client's profile.
    let mut ids =
        HashSet::with_capacity_and_hasher(idxs.len(), foldhash::fast::RandomState::default());
    idxs.iter().all(|i| {
        let j = &params.jobs[*i];
        j.unique_key.is_none()
            && j.depends_on.is_empty()
            && j.workflow_id.is_none()
            && j.group.is_none()
            && ids.insert(j.id)
    })
}

/// What consecutive plain jobs must share to form one group of `enqueue_plain.lua`: queue,
/// run_at, priority, max attempts, chunk count and kind (for the job events).
type GroupKey<'a> = (&'a str, i64, u8, u32, usize, &'a str);

/// The plain enqueue script's arguments for the jobs `idxs` (see `all_plain`): runs of
/// consecutive jobs that share queue, run_at, priority, max attempts and chunk count form a
/// group, whose shared values are sent once (see `enqueue_plain.lua`).
fn plain_args_for(params: &EnqueueParams, idxs: &[usize], atomic: bool, now: i64) -> Result<Args> {
    let mut args = Args::default();
    args.0.reserve(2 + 4 * idxs.len());
    args.s(if atomic { "a" } else { "b" }).n(idxs.len() as i64);
    // The current group's key and the index of its job-count argument.
    let mut group: Option<(GroupKey, usize)> = None;
    let mut count = 0i64;
    for i in idxs {
        let j = &params.jobs[*i];
        let run_at = j.due_at(now);
        let blob = encode_static(j)?;
        let chunks = codec::static_chunks(&blob);
        let key = (
            j.queue.as_str(),
            run_at,
            j.priority.get(),
            j.max_attempts,
            chunks.len(),
            j.kind.as_str(),
        );
        if group.map(|(k, _)| k) != Some(key) {
            if let Some((_, at)) = group {
                args.0[at] = count.to_string().into_bytes();
            }
            args.s(&j.queue);
            if run_at > now {
                args.s("");
            } else {
                args.n(codec::ready_score(j.priority.get(), run_at));
            }
            args.n(run_at)
                .n(i64::from(j.priority.get()))
                .n(i64::from(j.max_attempts))
                .n(chunks.len() as i64);
            group = Some((key, args.0.len()));
            args.s("");
            args.s(&j.kind);
            count = 0;
        }
        count += 1;
        args.b(j.id.to_string().into_bytes());
        for c in chunks {
            args.b(c.to_vec());
        }
    }
    if let Some((_, at)) = group {
        args.0[at] = count.to_string().into_bytes();
    }
    Ok(args)
}

/// An enqueue script call: the plain script, or `None` for the general one (which
/// `eval_enqueue` runs, adding workflow members), and its arguments.
struct EnqueueCall {
    script: Option<&'static redis::Script>,
    args: Args,
}

/// The enqueue script for the jobs `idxs` (the plain one when it can take them) and its
/// arguments.
fn enqueue_call_for(
    params: &EnqueueParams,
    idxs: &[usize],
    atomic: bool,
    now: i64,
) -> Result<EnqueueCall> {
    if all_plain(params, idxs) {
        return Ok(EnqueueCall {
            script: Some(&scripts::ENQUEUE_PLAIN),
            args: plain_args_for(params, idxs, atomic, now)?,
        });
    }
    Ok(EnqueueCall {
        script: None,
        args: store::args_for(params, idxs, atomic, now)?,
    })
}

/// `job_enqueue`: validates every job, then stores them in as few script calls as the
/// topology allows (all in one on a single node, one per queue on Cluster; best-effort
/// batches in chunks of [`ENQUEUE_CHUNK`]).
pub(crate) async fn enqueue(b: &RedisBackend, params: EnqueueParams) -> Result<EnqueueResults> {
    let atomic = params.mode == BatchMode::Atomic;
    let n = params.jobs.len();
    let mut results: Vec<Option<Result<EnqueueOutcome>>> = (0..n).map(|_| None).collect();
    // Checks that need no store, before anything is written.
    let mut valid = Vec::with_capacity(n);
    for (i, job) in params.jobs.iter().enumerate() {
        match store::check_job(i, job, &b.inner.limits) {
            Ok(()) => valid.push(i),
            Err(e) if atomic => return Err(e),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    if atomic && b.cluster() {
        let qs: HashSet<&str> = params.jobs.iter().map(|j| j.queue.as_str()).collect();
        if qs.len() > 1 {
            return Err(Error::InvalidArgument(
                "an atomic batch must stay in one queue on Redis Cluster (each queue lives in its own hash slot); use best-effort mode or one batch per queue".into(),
            ));
        }
    }
    // Groups: all valid jobs in one script on a single node; one per queue on Cluster.
    let queues: Vec<String> = valid
        .iter()
        .map(|i| params.jobs[*i].queue.clone())
        .collect();
    let mut calls: Vec<(String, Vec<usize>)> = Vec::new();
    for (q, idxs) in b.group_by_queue(&queues) {
        let idxs: Vec<usize> = idxs.into_iter().map(|k| valid[k]).collect();
        if atomic {
            calls.push((q, idxs));
        } else {
            for c in idxs.chunks(ENQUEUE_CHUNK) {
                calls.push((q.clone(), c.to_vec()));
            }
        }
    }
    let now = b.now();
    for (q, mut idxs) in calls {
        let mut call = enqueue_call_for(&params, &idxs, atomic, now)?;
        // On Cluster the registry and id index live in the global slot, outside the
        // script: written first, so a stored job is always findable. Ids already used
        // in another queue are refused here.
        let mut indexed: Vec<JobId> = Vec::new();
        if b.cluster() {
            let ids: Vec<JobId> = idxs.iter().map(|i| params.jobs[*i].id).collect();
            let marks = store::index_ids(b, &q, &ids, now).await?;
            let mut refused: Vec<(usize, Error)> = Vec::new();
            for ((i, id), mark) in idxs.iter().zip(&ids).zip(marks) {
                match mark {
                    Indexed::New => indexed.push(*id),
                    Indexed::Known => {}
                    Indexed::Elsewhere(other) => {
                        refused.push((*i, store::id_taken(*i, *id, &other)))
                    }
                }
            }
            if !refused.is_empty() {
                if atomic {
                    store::unindex(b, &indexed).await;
                    return Err(refused.swap_remove(0).1);
                }
                idxs.retain(|i| refused.iter().all(|(r, _)| r != i));
                for (i, e) in refused {
                    results[i] = Some(Err(e));
                }
                if idxs.is_empty() {
                    continue;
                }
                call = enqueue_call_for(&params, &idxs, atomic, now)?;
            }
        }
        enqueue_call(
            b,
            &params,
            &q,
            &idxs,
            &call,
            now,
            atomic,
            &indexed,
            &mut results,
        )
        .await?;
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Storage("job not handled".into()))))
        .collect())
}

/// Runs the enqueue script for the jobs `idxs` of one call and records their outcomes.
#[allow(clippy::too_many_arguments)]
async fn enqueue_call(
    b: &RedisBackend,
    params: &EnqueueParams,
    q: &str,
    idxs: &[usize],
    call: &EnqueueCall,
    now: i64,
    atomic: bool,
    indexed: &[JobId],
    results: &mut [Option<Result<EnqueueOutcome>>],
) -> Result<()> {
    // Jobs carrying a workflow id also join its member set (see `eval_general`); plain
    // batches carry none.
    let out = match call.script {
        Some(script) => {
            b.eval(script, Some(q), now, &call.args, Ack::Replicas)
                .await?
        }
        None => eval_general(b, params, idxs, q, now, &call.args).await?,
    };
    let out = reply::array(out)?;
    let mut it = out.into_iter();
    let codes = reply::bulk_bytes(it.next().unwrap_or(Value::Nil))?;
    if codes.len() != 2 * idxs.len() {
        return Err(Error::Storage(
            "enqueue script reply has the wrong length".into(),
        ));
    }
    let mut details = std::collections::HashMap::new();
    while let (Some(i), Some(v)) = (it.next(), it.next()) {
        details.insert(reply::int(&i)? as usize - 1, reply::string(v)?);
    }
    let mut rejected = Vec::new();
    for (k, i) in idxs.iter().enumerate() {
        let code = codes[2 * k] - b'0';
        let state = || {
            JobState::from_i64(i64::from(codes[2 * k + 1] - b'0'))
                .ok_or_else(|| Error::Storage("bad state in enqueue reply".into()))
        };
        let own = params.jobs[*i].id;
        let r = match code {
            0 | 2 => Ok(EnqueueOutcome {
                id: own,
                state: state()?,
                duplicate: false,
            }),
            1 => Ok(EnqueueOutcome {
                id: details
                    .get(&k)
                    .ok_or_else(|| Error::Storage("missing duplicate id".into()))?
                    .parse()?,
                state: state()?,
                duplicate: true,
            }),
            _ => {
                rejected.push(own);
                Err(Error::InvalidJob {
                    index: Some(*i),
                    reason: details.remove(&k).unwrap_or_default(),
                })
            }
        };
        if atomic && let Err(e) = r {
            store::unindex(b, indexed).await;
            return Err(e);
        }
        if code == 1 && indexed.contains(&own) {
            // Not stored (a unique-key duplicate): its id was never used.
            rejected.push(own);
        }
        results[*i] = Some(r);
    }
    if b.cluster() {
        let drop: Vec<JobId> = rejected
            .into_iter()
            .filter(|id| indexed.contains(id))
            .collect();
        store::unindex(b, &drop).await;
    }
    Ok(())
}

/// Runs the general enqueue script for the jobs `idxs` of one `job_enqueue` call: the plain one,
/// or, when some carry a workflow id, the one that also adds them to their workflow's
/// member set (so counts and cancels see every job of a workflow, however it was
/// enqueued). Same reply either way.
async fn eval_general(
    b: &RedisBackend,
    params: &EnqueueParams,
    idxs: &[usize],
    q: &str,
    now: i64,
    args: &Args,
) -> Result<Value> {
    if !idxs.iter().any(|i| params.jobs[*i].workflow_id.is_some()) {
        return b
            .eval(&scripts::ENQUEUE, Some(q), now, args, Ack::Replicas)
            .await;
    }
    if b.cluster() {
        // A job of an existing workflow must be in that workflow's home queue (one
        // lookup per distinct workflow).
        let mut seen = HashSet::new();
        for i in idxs {
            if let Some(w) = &params.jobs[*i].workflow_id
                && seen.insert(w.as_str())
                && let Some(home) = store::home_of(b, w).await?
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
    let mut all = store::with_head(head, None);
    all.0.extend(args.0.iter().cloned());
    b.eval(&scripts::WF_ENQUEUE, Some(q), now, &all, Ack::Replicas)
        .await
}
