//! `job_prune_bytes`: retention by bytes. Each queue keeps the bytes of its finished jobs in
//! its `meta` hash (field `fb`, kept by the scripts that finish, retry, prune and delete
//! jobs; see `fin_add` in lib.lua), so a pass within the budget reads one field per queue.
//! Over it, `prune_bytes.lua` lists each queue's oldest finished jobs with their bytes, the
//! lists are merged here by `finished_at` (oldest first across queues), and the jobs that
//! cover the excess are deleted per queue (per slot on Cluster) by the same script.

use std::collections::BTreeMap;

use quern::backend::{PruneBytesParams, PruneBytesReport};
use quern::{JobId, Result};

use super::store;
use crate::backend::RedisBackend;
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// A finished job that may be deleted: when it finished, its queue, id and bytes.
struct Candidate {
    finished_at: i64,
    queue: String,
    id: String,
    bytes: u64,
}

/// The finished bytes of every queue, and (with `n` > 0) each queue's `n` oldest
/// finished jobs.
async fn count(b: &RedisBackend, queues: &[String], n: usize) -> Result<(u64, Vec<Candidate>)> {
    let now = b.now();
    let (mut total, mut cands) = (0i64, Vec::new());
    for (q, members) in b.group_by_queue(queues) {
        let mut args = Args::default();
        args.s("c").n(n as i64);
        for m in &members {
            args.s(&queues[*m]);
        }
        let r = reply::array(
            b.eval(&scripts::PRUNE_BYTES, Some(&q), now, &args, Ack::Primary)
                .await?,
        )?;
        let mut it = r.into_iter();
        while let Some(name) = it.next() {
            let name = reply::string(name)?;
            let next = |it: &mut std::vec::IntoIter<redis::Value>| {
                it.next()
                    .ok_or_else(|| quern::Error::Storage("prune_bytes.lua: short reply".into()))
            };
            total += reply::int(&next(&mut it)?)?.max(0);
            let k = reply::int(&next(&mut it)?)?;
            for _ in 0..k {
                let id = reply::string(next(&mut it)?)?;
                let finished_at = reply::string(next(&mut it)?)?
                    .parse::<i64>()
                    .map_err(|e| quern::Error::Storage(format!("prune_bytes.lua: {e}")))?;
                let bytes = reply::int(&next(&mut it)?)?.max(0) as u64;
                cands.push(Candidate {
                    finished_at,
                    queue: name.clone(),
                    id,
                    bytes,
                });
            }
        }
    }
    Ok((total.max(0) as u64, cands))
}

pub(crate) async fn prune_bytes(b: &RedisBackend, p: PruneBytesParams) -> Result<PruneBytesReport> {
    let queues = b.all_queues().await?;
    let (total, _) = count(b, &queues, 0).await?;
    let mut report = PruneBytesReport {
        finished_bytes: total,
        ..Default::default()
    };
    if total <= p.max_bytes {
        return Ok(report);
    }
    let excess = total - p.max_bytes;
    let limit = p.limit.max(1);
    let (_, mut cands) = count(b, &queues, limit).await?;
    cands.sort_by(|a, b| (a.finished_at, &a.id).cmp(&(b.finished_at, &b.id)));
    let mut picked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut n = 0usize;
    for c in cands {
        if report.bytes_freed >= excess || n >= limit {
            break;
        }
        report.bytes_freed += c.bytes;
        n += 1;
        picked.entry(c.queue).or_default().push(c.id);
    }
    if p.dry_run {
        report.jobs_deleted = n as u64;
        return Ok(report);
    }
    report.bytes_freed = 0;
    let names: Vec<String> = picked.keys().cloned().collect();
    let now = b.now();
    for (q, members) in b.group_by_queue(&names) {
        let mut args = Args::default();
        args.s("d");
        for m in &members {
            let name = &names[*m];
            for id in &picked[name] {
                args.s(name).s(id);
            }
        }
        let r = reply::array(
            b.eval(&scripts::PRUNE_BYTES, Some(&q), now, &args, Ack::Primary)
                .await?,
        )?;
        report.jobs_deleted += reply::int(&r[0])?.max(0) as u64;
        report.bytes_freed += reply::int(&r[1])?.max(0) as u64;
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
