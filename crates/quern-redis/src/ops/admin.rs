//! Operator actions: `job_cancel`, `job_reprioritize`, `job_retry`, `job_prune`, `lease_rescue`, and the queue
//! registry (list, stats, pause, resume).

use std::collections::HashSet;

use quern::backend::*;
use quern::model::ErrorRecord;
use quern::{Error, Job, JobId, JobState, Result};
use redis::Value;

use super::{read, store};
use crate::backend::RedisBackend;
use crate::codec::{self, decode_job};
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// What `queue_pause` does with the queue's flag.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pause {
    Pause,
    Resume,
}

/// `job_cancel`: a job that has not finished ends `cancelled` (a running one loses its
/// lease), its dependents are settled, and the reason joins its error history.
pub(crate) async fn cancel(b: &RedisBackend, params: CancelParams) -> Result<Job> {
    let now = b.now();
    let q = queue_of_job(b, params.id).await?;
    let line = match &params.reason {
        Some(r) => {
            // The attempt is not known here; the script does not need it exactly, the
            // history records the attempt the job was at.
            let job = read::get(b, params.id).await?;
            codec::error_line(&ErrorRecord {
                attempt: job.map(|j| j.attempt).unwrap_or(0),
                at: now,
                kind: quern::model::ErrorKind::Cancelled,
                message: r.clone(),
                claimed_at: None,
                due_at: None,
                retry_at: None,
            })?
        }
        None => String::new(),
    };
    let mut args = Args::default();
    args.s(&q).s(&params.id.to_string()).s(&line);
    let out = b
        .eval(&scripts::CANCEL, Some(&q), now, &args, Ack::Replicas)
        .await?;
    let job = job_answer(out, &q, params.id, now, "cancel")?;
    b.forget_queue(&params.id);
    Ok(job)
}

/// `job_reprioritize`: a job waiting to run gets a new priority, which a queued job's
/// ready-set score takes at once; the script checks the state and changes nothing else.
pub(crate) async fn reprioritize(b: &RedisBackend, params: JobReprioritizeParams) -> Result<Job> {
    let now = b.now();
    let q = queue_of_job(b, params.id).await?;
    let mut args = Args::default();
    args.s(&q)
        .s(&params.id.to_string())
        .n(i64::from(params.priority.get()));
    let out = b
        .eval(&scripts::REPRIORITIZE, Some(&q), now, &args, Ack::Replicas)
        .await?;
    job_answer(out, &q, params.id, now, "reprioritize")
}

/// The queue job `id` lives in, or `JobNotFound`.
async fn queue_of_job(b: &RedisBackend, id: JobId) -> Result<String> {
    let q = b.queues_of(&[id]).await?.pop().flatten();
    q.ok_or(Error::JobNotFound(id))
}

/// Reads the answer of a script that changes one job by id and returns it: `{0, HGETALL}`
/// (the job as stored after the change), `{1, state}` (the job's state refuses `action`) or
/// `{2}` (no such job).
fn job_answer(
    out: Value,
    q: &str,
    id: JobId,
    now: quern::Millis,
    action: &'static str,
) -> Result<Job> {
    let out = reply::array(out)?;
    let Some(code) = out.first() else {
        return Err(Error::Storage(format!("empty reply to {action} {id}")));
    };
    match reply::int(code)? {
        0 => {
            let fields = reply::fields_from_value(out.into_iter().nth(1).unwrap_or(Value::Nil))?;
            decode_job(q, &id.to_string(), &fields, now)
        }
        1 => Err(Error::InvalidTransition {
            id,
            from: reply::state(&out[1])?,
            action,
        }),
        _ => Err(Error::JobNotFound(id)),
    }
}

/// `job_retry`: by ids, or the dead jobs of a queue (and kind); all or nothing.
pub(crate) async fn retry(b: &RedisBackend, params: RetryParams) -> Result<Vec<JobId>> {
    let ids: Vec<JobId> = match &params.target {
        RetryTarget::Ids(ids) => {
            let mut seen = HashSet::new();
            ids.iter().copied().filter(|i| seen.insert(*i)).collect()
        }
        RetryTarget::Dead { queue, kind } => {
            let mut out = Vec::new();
            let queues = match queue {
                Some(q) => vec![q.clone()],
                None => b.all_queues().await?,
            };
            'outer: for q in queues {
                let mut cursor: Option<JobId> = None;
                loop {
                    let page = read::list(
                        b,
                        ListParams {
                            filter: JobFilter {
                                queue: Some(q.clone()),
                                state: Some(JobState::Dead),
                                kind: kind.clone(),
                                workflow_id: None,
                            },
                            limit: 500,
                            before: cursor,
                        },
                    )
                    .await?;
                    for j in &page.jobs {
                        out.push(j.id);
                        if out.len() >= params.limit {
                            break 'outer;
                        }
                    }
                    match page.next {
                        Some(n) if !page.jobs.is_empty() => cursor = Some(n),
                        _ => break,
                    }
                }
            }
            out
        }
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let queues = b.queues_of(&ids).await?;
    if let Some(i) = queues.iter().position(Option::is_none) {
        return Err(Error::JobNotFound(ids[i]));
    }
    let names: Vec<String> = queues.into_iter().map(Option::unwrap_or_default).collect();
    let now = b.now();
    let groups = b.group_by_queue(&names);
    // All or nothing: with several slot groups (Cluster), every group is checked before
    // any is moved.
    let phases: &[&str] = if groups.len() > 1 {
        &["1", "0"]
    } else {
        &["0"]
    };
    for phase in phases {
        for (q, members) in &groups {
            let mut args = Args::default();
            args.n(members.len() as i64).s(phase);
            for m in members {
                args.s(&names[*m]).s(&ids[*m].to_string());
            }
            let out = reply::array(
                b.eval(&scripts::RETRY, Some(q), now, &args, Ack::Replicas)
                    .await?,
            )?;
            match reply::int(&out[0])? {
                0 => {}
                1 => {
                    let i = members[reply::int(&out[1])? as usize];
                    return Err(Error::InvalidTransition {
                        id: ids[i],
                        from: reply::state(&out[2])?,
                        action: "retry",
                    });
                }
                2 => {
                    let i = members[reply::int(&out[1])? as usize];
                    return Err(Error::JobNotFound(ids[i]));
                }
                _ => {
                    let i = members[reply::int(&out[1])? as usize];
                    return Err(Error::InvalidArgument(format!(
                        "job {} cannot be retried: its dependencies can no longer meet its trigger (replay the failed dependency first)",
                        ids[i]
                    )));
                }
            }
        }
    }
    Ok(ids)
}

/// `job_prune`: deletes finished jobs and expires results, oldest first.
pub(crate) async fn prune(b: &RedisBackend, params: PruneParams) -> Result<PruneReport> {
    let mut report = PruneReport::default();
    let states: Vec<&str> = params
        .states
        .iter()
        .filter(|s| s.is_terminal())
        .map(|s| s.as_str())
        .collect();
    let queues: Vec<String> = b
        .all_queues()
        .await?
        .into_iter()
        .filter(|q| params.covers(q))
        .collect();
    let now = b.now();
    let mut left = params.limit;
    for (q, members) in b.group_by_queue(&queues) {
        let mut args = Args::default();
        args.n(params.finished_before)
            .n(left as i64)
            .s(if params.dry_run { "1" } else { "0" })
            .n(states.len() as i64);
        for s in &states {
            args.s(s);
        }
        for m in &members {
            let name = &queues[*m];
            args.s(name)
                .s(if params.deletes_from(name) { "1" } else { "0" });
        }
        let r = reply::array(
            b.eval(&scripts::PRUNE, Some(&q), now, &args, Ack::Primary)
                .await?,
        )?;
        let deleted = reply::int(&r[0])? as u64;
        report.jobs_deleted += deleted;
        report.results_expired += reply::int(&r[1])? as u64;
        left = left.saturating_sub(deleted as usize);
        if b.cluster() {
            let ids: Vec<JobId> = r[2..]
                .iter()
                .filter_map(|v| reply::string(v.clone()).ok()?.parse().ok())
                .collect();
            store::unindex(b, &ids).await;
        }
    }
    Ok(report)
}

/// `lease_rescue`: running jobs whose lease expired, or whose worker is known lost, are
/// queued again (or dead when out of attempts).
pub(crate) async fn rescue(b: &RedisBackend, params: RescueParams) -> Result<RescueReport> {
    let queues = b.all_queues().await?;
    let now = b.now();
    let mut report = RescueReport::default();
    let mut left = params.limit;
    for (q, members) in b.group_by_queue(&queues) {
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
            b.eval(&scripts::RESCUE, Some(&q), now, &args, Ack::Replicas)
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

/// `queue_list`: every queue ever used, with its counts.
pub(crate) async fn queue_list(b: &RedisBackend) -> Result<Vec<QueueInfo>> {
    let queues = b.all_queues().await?;
    read::stats(b, &queues).await
}

/// `queue_stats`.
pub(crate) async fn queue_stats(b: &RedisBackend, queue: &str) -> Result<QueueInfo> {
    if !b.queue_exists(queue).await? {
        return Err(Error::QueueNotFound(queue.to_string()));
    }
    read::stats(b, &[queue.to_string()])
        .await?
        .pop()
        .ok_or_else(|| Error::QueueNotFound(queue.to_string()))
}

/// `queue_pause` and `queue_resume`: a paused queue keeps its jobs but hands none out.
pub(crate) async fn queue_pause(b: &RedisBackend, queue: &str, pause: Pause) -> Result<()> {
    if !b.queue_exists(queue).await? {
        return Err(Error::QueueNotFound(queue.to_string()));
    }
    let mut args = Args::default();
    args.s(queue).s(match pause {
        Pause::Pause => "1",
        Pause::Resume => "0",
    });
    b.eval(&scripts::PAUSE, Some(queue), b.now(), &args, Ack::Primary)
        .await?;
    Ok(())
}
