//! What a lease holder tells the store: `job_heartbeat`, `job_complete`, `job_release`, and
//! [`per_item`], the batch call every transition of a running job goes through (`fail.rs`
//! uses it too).
//!
//! **Fencing.** Every script that changes a running job checks `s == running and e == token
//! epoch`; otherwise it answers "lease lost" for that item and changes nothing. Items carry
//! only their token, so the job's queue comes from the token → queue cache (filled by the
//! claim) or the id index.

use quern::backend::*;
use quern::{Error, JobId, Payload, Result};

use crate::backend::RedisBackend;
use crate::codec::encode_payload;
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// Puts per-item refusals back at their input positions among the other items' results.
fn merge_refused<T>(done: Vec<Result<T>>, refused: Vec<(usize, Error)>) -> Vec<Result<T>> {
    let total = done.len() + refused.len();
    let mut refused = refused.into_iter().peekable();
    let mut done = done.into_iter();
    let mut out = Vec::with_capacity(total);
    for i in 0..total {
        match refused.peek() {
            Some((j, _)) if *j == i => {
                out.push(Err(refused.next().map(|r| r.1).unwrap_or(Error::Shutdown)))
            }
            _ => out.push(done.next().unwrap_or(Err(Error::Shutdown))),
        }
    }
    out
}

/// Splits off the items whose result or checkpoint (`stored`) is over the payload limit,
/// with their positions: they are refused one by one, so the other items of a batch go
/// through.
fn split_oversized<T>(
    b: &RedisBackend,
    items: Vec<T>,
    stored: impl Fn(&T) -> Option<&Payload>,
) -> (Vec<(usize, Error)>, Vec<T>) {
    let mut refused = Vec::new();
    let mut keep = Vec::with_capacity(items.len());
    for (i, it) in items.into_iter().enumerate() {
        match b.inner.limits.check_stored(stored(&it)) {
            Ok(()) => keep.push(it),
            Err(e) => refused.push((i, e)),
        }
    }
    (refused, keep)
}

/// Runs a per-item script over tokens grouped by queue: `head` appends the arguments
/// shared by all items, `push` one item's own. Returns each item's integer reply, or `None`
/// for an item whose job does not exist (no queue is known for it), which every caller
/// answers as a lost lease.
pub(crate) async fn per_item(
    b: &RedisBackend,
    script: &redis::Script,
    tokens: &[&LeaseToken],
    head: impl Fn(&mut Args),
    push: impl Fn(usize, &mut Args),
    ack: Ack,
) -> Result<Vec<Option<i64>>> {
    let now = b.now();
    let ids: Vec<JobId> = tokens.iter().map(|t| t.job_id).collect();
    let queues = b.queues_of(&ids).await?;
    let mut out = vec![None; tokens.len()];
    let present: Vec<usize> = (0..tokens.len()).filter(|i| queues[*i].is_some()).collect();
    let names: Vec<String> = present
        .iter()
        .map(|i| queues[*i].clone().unwrap_or_default())
        .collect();
    for (q, members) in b.group_by_queue(&names) {
        let mut args = Args::default();
        head(&mut args);
        args.n(members.len() as i64);
        for m in &members {
            let i = present[*m];
            args.s(queues[i].as_deref().unwrap_or(""))
                .s(&tokens[i].job_id.to_string())
                .n(tokens[i].epoch as i64);
            push(i, &mut args);
        }
        let r = reply::array(b.eval(script, Some(&q), now, &args, ack).await?)?;
        for (m, v) in members.iter().zip(r) {
            out[present[*m]] = Some(reply::int(&v)?);
        }
    }
    Ok(out)
}

/// The answers of a script that replies `1` for a done item: the others lost their lease.
/// A finished job's queue is no longer cached.
pub(crate) fn lost_or_ok(
    b: &RedisBackend,
    r: Vec<Option<i64>>,
    tokens: &[&LeaseToken],
) -> Vec<Result<()>> {
    r.into_iter()
        .zip(tokens)
        .map(|(v, t)| {
            if v == Some(1) {
                b.forget_queue(&t.job_id);
                Ok(())
            } else {
                Err(Error::LeaseLost { job_id: t.job_id })
            }
        })
        .collect()
}

/// `job_heartbeat`: extends each lease (and stores progress and checkpoints); answers the
/// new lease deadline per item.
pub(crate) async fn heartbeat(
    b: &RedisBackend,
    params: HeartbeatParams,
) -> Result<Vec<Result<quern::Millis>>> {
    let (refused, items) = split_oversized(b, params.items, |it| it.checkpoint.as_ref());
    if items.is_empty() {
        return Ok(merge_refused(Vec::new(), refused));
    }
    let lease_ms = params.lease.as_millis() as i64;
    let mut progress = Vec::with_capacity(items.len());
    for it in &items {
        progress.push(match &it.progress {
            Some(p) => serde_json::to_string(p).map_err(|e| Error::Codec(e.to_string()))?,
            None => String::new(),
        });
    }
    let tokens: Vec<&LeaseToken> = items.iter().map(|i| &i.token).collect();
    let r = per_item(
        b,
        &scripts::HEARTBEAT,
        &tokens,
        |a| {
            a.n(lease_ms);
        },
        |i, a| {
            a.s(&progress[i]);
            match &items[i].checkpoint {
                Some(cp) => a.s("1").b(encode_payload(cp)),
                None => a.s("0").s(""),
            };
        },
        Ack::Primary,
    )
    .await?;
    // The script answers the new deadline, or a negative number for a lost lease.
    let done = r
        .into_iter()
        .zip(&tokens)
        .map(|(v, t)| match v {
            Some(deadline) if deadline >= 0 => Ok(deadline),
            _ => Err(Error::LeaseLost { job_id: t.job_id }),
        })
        .collect();
    Ok(merge_refused(done, refused))
}

/// `job_complete`: each job succeeds with its result (kept for its retention), and its
/// dependents are settled in the same script (`finish` in `lua/lib.lua`).
pub(crate) async fn complete(b: &RedisBackend, params: CompleteParams) -> Result<Vec<Result<()>>> {
    let (refused, items) = split_oversized(b, params.items, |c| c.result.as_ref());
    if items.is_empty() {
        return Ok(merge_refused(Vec::new(), refused));
    }
    let tokens: Vec<&LeaseToken> = items.iter().map(|c| &c.token).collect();
    let r = per_item(
        b,
        &scripts::COMPLETE,
        &tokens,
        |_| {},
        |i, a| {
            match &items[i].result {
                Some(p) => a.b(encode_payload(p)),
                None => a.s(""),
            };
            match items[i].result_ttl {
                Some(d) => a.n(d.as_millis() as i64),
                None => a.s(""),
            };
            match items[i].started_at {
                Some(t) => a.n(t),
                None => a.s(""),
            };
        },
        Ack::Replicas,
    )
    .await?;
    Ok(merge_refused(lost_or_ok(b, r, &tokens), refused))
}

/// `job_release`: each job goes back to its queue without using up an attempt.
pub(crate) async fn release(b: &RedisBackend, params: ReleaseParams) -> Result<Vec<Result<()>>> {
    let tokens: Vec<&LeaseToken> = params.tokens.iter().collect();
    let r = per_item(
        b,
        &scripts::RELEASE,
        &tokens,
        |_| {},
        |_, _| {},
        Ack::Primary,
    )
    .await?;
    Ok(lost_or_ok(b, r, &tokens))
}
