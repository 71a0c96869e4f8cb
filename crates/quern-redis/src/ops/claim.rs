//! `job_claim`: one `claim.lua` call per round takes a whole batch (single node: all
//! queues in one call; Cluster: one call per queue).
//!
//! For each listed queue that is not paused the script promotes due scheduled jobs, takes
//! the first n of the ready set and per job bumps the fencing epoch and the attempt, sets
//! the lease and adds it to the lease set. It answers with each job's hash as it was before
//! the claim, all packed into one MessagePack string (`packed.rs`): parsing ~20 bulk strings
//! per claimed job was a fifth of a draining worker's CPU. The Rust side draws each of the
//! `limit` jobs to a queue in proportion to the weights and redraws the share of queues
//! that ran dry.

use quern::backend::*;
use quern::model::validate_queue_name;
use quern::{Error, Result};
use redis::Value;

use crate::backend::RedisBackend;
use crate::codec::{self, decode_job};
use crate::eval::{Ack, Args};
use crate::scripts;

/// The claim script's reply: queue, id and the hash as it was, per job taken (see
/// `lua/claim.lua` and `packed.rs`).
type Images = Vec<(String, String, codec::Fields)>;

fn claimed_images(v: Value) -> Result<(Images, Option<i64>)> {
    let buf = match v {
        Value::BulkString(b) => b,
        Value::Array(a) if a.is_empty() => return Ok((Vec::new(), None)),
        Value::Nil => return Ok((Vec::new(), None)),
        other => {
            return Err(Error::Storage(format!("unexpected claim reply {other:?}")));
        }
    };
    let mut r = crate::packed::Reader::new(&buf);
    let n = r.array()?;
    if n % 3 == 2 {
        return Err(Error::Storage("claim reply has the wrong length".into()));
    }
    let mut out = Vec::with_capacity(n / 3);
    for _ in 0..n / 3 {
        let q = r.text()?.to_string();
        let id = r.text()?.to_string();
        let m = r.array()?;
        let mut f = codec::fields_with_capacity(m / 2);
        for _ in 0..m / 2 {
            let k = r.text()?.to_string();
            f.insert(k, r.bytes()?.to_vec());
        }
        out.push((q, id, f));
    }
    // One more element: the next admission time of a throttled queue.
    let next = if n % 3 == 1 {
        let t = r.text()?;
        Some(t.parse::<i64>().map_err(|_| {
            Error::Storage(format!("claim reply's next admission {t:?} is not a time"))
        })?)
    } else {
        None
    };
    if !r.done() {
        return Err(Error::Storage("claim reply has trailing bytes".into()));
    }
    Ok((out, next))
}

pub(crate) async fn claim(b: &RedisBackend, params: ClaimParams) -> Result<ClaimOutcome> {
    if params.limit == 0 || params.queues.is_empty() {
        return Ok(ClaimOutcome::default());
    }
    for q in &params.queues {
        validate_queue_name(&q.queue)?;
    }
    let now = b.now();
    let lease_ms = params.lease.as_millis() as i64;
    let mut claimed = Vec::new();
    let mut next_admission: Option<i64> = None;
    // Each job goes to a queue drawn by weight among those that still have work (the
    // core's `ClaimSplit`); a queue that returns fewer jobs than asked is out, and its
    // share is drawn again.
    let split = ClaimSplit::new(&params.queues);
    let queues = split.queues();
    let mut open: Vec<usize> = (0..queues.len()).collect();
    let mut left = params.limit;
    for _round in 0..4 {
        if left == 0 || open.is_empty() {
            break;
        }
        let want = split.draw(&open, left, fastrand::f64);
        let names: Vec<String> = open.iter().map(|i| queues[*i].queue.clone()).collect();
        let mut got = vec![0usize; queues.len()];
        for (_, members) in b.group_by_queue(&names) {
            let mut args = Args::default();
            args.s(&params.worker_id)
                .n(lease_ms)
                .n(members.len() as i64);
            for m in &members {
                let qi = open[*m];
                args.s(&queues[qi].queue).n(want[qi] as i64);
            }
            args.s(&codec::score_bound(params.more_urgent_than))
                .n(i64::from(fastrand::u32(1..2_147_483_646)));
            let slot = &queues[open[members[0]]].queue;
            let out = b
                .eval(&scripts::CLAIM, Some(slot), now, &args, Ack::Primary)
                .await?;
            let (images, next) = claimed_images(out)?;
            if let Some(t) = next {
                next_admission = Some(next_admission.map_or(t, |n| n.min(t)));
            }
            for (q, id, f) in images {
                // The script returns the hash as it was before the claim; the claim's
                // changes are the core's rule, applied to the decoded job.
                let ready = decode_job(&q, &id, &f, now)?;
                let job = ClaimedJob::from_ready(ready, &params.worker_id, now + lease_ms, now);
                if let Some(qi) = queues.iter().position(|w| w.queue == q) {
                    got[qi] += 1;
                }
                b.cache_queue(job.job.id, &q);
                claimed.push(job);
            }
        }
        let before = open.len();
        open.retain(|i| got[*i] >= want[*i]);
        let n: usize = got.iter().sum();
        left -= n.min(left);
        if open.len() == before {
            break;
        }
    }
    Ok(ClaimOutcome {
        jobs: claimed,
        next_admission,
    })
}
