//! Reads: `job_get`, `job_get_many`, `job_list` and the per-queue stats. A job is one hash
//! (`{q}:j:<id>`, see `codec.rs`), found through its queue: the token → queue cache or the
//! id index `{#}:idx`. Reads never wait for replicas.

use quern::backend::*;
use quern::model::StateCounts;
use quern::{Job, JobId, JobState, Result};
use redis::Value;

use crate::backend::RedisBackend;
use crate::codec::{Fields, decode_job};
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// Job hashes (HGETALL) of `(queue, id)` pairs, fetched in one pipeline, in order; an
/// empty one for a job that does not exist.
pub(crate) async fn hashes<'a>(
    b: &RedisBackend,
    jobs: impl IntoIterator<Item = (&'a str, String)>,
) -> Result<Vec<Fields>> {
    let mut p = redis::pipe();
    for (q, id) in jobs {
        p.cmd("HGETALL").arg(b.qk(q, &format!("j:{id}")));
    }
    let vals: Vec<Value> = b.pipeline(&p).await?;
    vals.into_iter().map(reply::fields_from_value).collect()
}

/// `job_get`.
pub(crate) async fn get(b: &RedisBackend, id: JobId) -> Result<Option<Job>> {
    let Some(q) = b.queues_of(&[id]).await?.pop().flatten() else {
        return Ok(None);
    };
    let fields = hashes(b, [(q.as_str(), id.to_string())])
        .await?
        .pop()
        .unwrap_or_default();
    if fields.is_empty() {
        return Ok(None);
    }
    decode_job(&q, &id.to_string(), &fields, b.now()).map(Some)
}

/// `job_get_many`: several jobs in few round trips, one index lookup, then one pipeline
/// per slot group (of at most 1,000 jobs).
pub(crate) async fn get_many(b: &RedisBackend, ids: &[JobId]) -> Result<Vec<Option<Job>>> {
    let mut out: Vec<Option<Job>> = vec![None; ids.len()];
    if ids.is_empty() {
        return Ok(out);
    }
    let queues = b.queues_of(ids).await?;
    let named: Vec<usize> = (0..ids.len()).filter(|i| queues[*i].is_some()).collect();
    let names: Vec<String> = named
        .iter()
        .map(|i| queues[*i].clone().unwrap_or_default())
        .collect();
    let now = b.now();
    for (_, members) in b.group_by_queue(&names) {
        for chunk in members.chunks(1000) {
            let jobs = chunk
                .iter()
                .map(|m| (names[*m].as_str(), ids[named[*m]].to_string()));
            for (m, f) in chunk.iter().zip(hashes(b, jobs).await?) {
                let i = named[*m];
                if !f.is_empty() {
                    out[i] = Some(decode_job(&names[*m], &ids[i].to_string(), &f, now)?);
                }
            }
        }
    }
    Ok(out)
}

/// Ids one list-script call looks at.
const LIST_SCAN: i64 = 2000;

/// One queue's jobs matching `filter`, newest first, older than `before`, at most `limit`.
async fn list_queue(
    b: &RedisBackend,
    q: &str,
    filter: &JobFilter,
    limit: usize,
    before: Option<JobId>,
) -> Result<Vec<Job>> {
    let now = b.now();
    let mut out = Vec::new();
    let mut cursor = before.map(|id| id.to_string()).unwrap_or_default();
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
            b.eval(&scripts::LIST, Some(q), now, &args, Ack::Primary)
                .await?,
        )?;
        let mut it = r.into_iter();
        let next = reply::string(it.next().unwrap_or(Value::Nil))?;
        let ids: Vec<String> = it.map(reply::string).collect::<Result<_>>()?;
        if !ids.is_empty() {
            let jobs = ids.iter().map(|id| (q, id.clone()));
            for (id, f) in ids.iter().zip(hashes(b, jobs).await?) {
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

/// `job_list`: each queue's newest matching jobs, merged newest first.
pub(crate) async fn list(b: &RedisBackend, params: ListParams) -> Result<JobPage> {
    if params.limit == 0 {
        return Ok(JobPage {
            jobs: Vec::new(),
            next: None,
        });
    }
    let queues = match &params.filter.queue {
        Some(q) => vec![q.clone()],
        None => b.all_queues().await?,
    };
    let mut all = Vec::new();
    for q in queues {
        all.extend(list_queue(b, &q, &params.filter, params.limit, params.before).await?);
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

/// Counts, pause flag and oldest queued job of each queue, sorted by name.
pub(crate) async fn stats(b: &RedisBackend, queues: &[String]) -> Result<Vec<QueueInfo>> {
    let now = b.now();
    let mut out = Vec::with_capacity(queues.len());
    for (q, members) in b.group_by_queue(queues) {
        let mut args = Args::default();
        for m in &members {
            args.s(&queues[*m]);
        }
        let rows = reply::array(
            b.eval(&scripts::STATS, Some(&q), now, &args, Ack::Primary)
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
    out.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(out)
}

/// Jobs read per round trip by [`finished`].
const FINISHED_PAGE: usize = 1000;

/// `job_finished`: for each queue and terminal state, the ids in the state's set scored by
/// `finished_at` from `since` on (`ZRANGEBYSCORE`, in pages), then their hashes in one
/// pipeline per page; the kind filter is applied to the decoded jobs. No script: a long
/// report never blocks the server.
pub(crate) async fn finished(
    b: &RedisBackend,
    p: quern::backend::FinishedParams,
) -> Result<Vec<quern::backend::FinishedJob>> {
    let queues = match &p.queue {
        Some(q) => vec![q.clone()],
        None => b.all_queues().await?,
    };
    let now = b.now();
    let mut out = Vec::new();
    for q in &queues {
        for state in [
            JobState::Succeeded,
            JobState::Dead,
            JobState::Cancelled,
            JobState::Skipped,
        ] {
            let mut offset = 0;
            loop {
                let ids: Vec<String> = b
                    .query(
                        redis::cmd("ZRANGEBYSCORE")
                            .arg(b.qk(q, state.as_str()))
                            .arg(p.since)
                            .arg("+inf")
                            .arg("LIMIT")
                            .arg(offset)
                            .arg(FINISHED_PAGE)
                            .clone(),
                    )
                    .await?;
                if ids.is_empty() {
                    break;
                }
                offset += ids.len();
                let fields = hashes(b, ids.iter().map(|id| (q.as_str(), id.clone()))).await?;
                for (id, f) in ids.iter().zip(fields) {
                    if f.is_empty() {
                        continue; // pruned between the two reads
                    }
                    let j = decode_job(q, id, &f, now)?;
                    if p.kind.as_ref().is_some_and(|k| *k != j.kind) || !j.state.is_terminal() {
                        continue;
                    }
                    out.push(quern::backend::FinishedJob {
                        id: j.id,
                        queue: j.queue,
                        kind: j.kind,
                        state: j.state,
                        attempt: j.attempt,
                        created_at: j.created_at,
                        run_at: j.run_at,
                        started_at: j.started_at,
                        finished_at: j.finished_at.unwrap_or(now),
                    });
                }
                if ids.len() < FINISHED_PAGE {
                    break;
                }
            }
        }
    }
    Ok(out)
}
