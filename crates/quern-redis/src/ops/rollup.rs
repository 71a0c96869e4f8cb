//! `stats_minutes`: the per-queue day hashes `roll:<day>` that `complete.lua`, `fail.lua`
//! and `rescue.lua` add to (see `flush_roll` in `lua/lib.lua`). Read with one pipelined
//! `HGETALL` per queue and day (on Cluster one pipeline per queue): O(queues × days), never
//! a read of jobs.

use std::collections::BTreeMap;

use quern::Result;
use quern::backend::{MINUTE_MS, MinuteCounts, MinutesParams, ROLLUP_KEEP_MS};
use redis::Value;

use crate::backend::RedisBackend;
use crate::reply;

const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// The days (from the epoch) that hold the minutes from `since` to `now`, at most the
/// kept ones.
pub(crate) fn days(since: i64, now: i64) -> std::ops::RangeInclusive<i64> {
    let last = now.div_euclid(DAY_MS);
    let first = since.max(now - ROLLUP_KEEP_MS).div_euclid(DAY_MS).min(last);
    first..=last
}

/// The rollup hash of queue `q` for `day`.
pub(crate) fn key(b: &RedisBackend, q: &str, day: i64) -> String {
    b.qk(q, &format!("roll:{day}"))
}

pub(crate) async fn minutes(b: &RedisBackend, p: MinutesParams) -> Result<Vec<MinuteCounts>> {
    let queues = match &p.queue {
        Some(q) => vec![q.clone()],
        None => b.all_queues().await?,
    };
    let since = MinuteCounts::minute_of(p.since);
    let days = days(since, b.now());
    let mut pipe = redis::pipe();
    let mut asked = Vec::new();
    for q in &queues {
        for day in days.clone() {
            pipe.cmd("HGETALL").arg(key(b, q, day));
            asked.push(q);
        }
    }
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    // On Cluster a pipeline must stay in one slot: one per queue (its days share its slot).
    let vals: Vec<Value> = if b.is_cluster() {
        let mut all = Vec::with_capacity(asked.len());
        for q in &queues {
            let mut one = redis::pipe();
            for day in days.clone() {
                one.cmd("HGETALL").arg(key(b, q, day));
            }
            let v: Vec<Value> = b.pipeline(&one).await?;
            all.extend(v);
        }
        all
    } else {
        b.pipeline(&pipe).await?
    };
    let mut rows: BTreeMap<(i64, &str), MinuteCounts> = BTreeMap::new();
    for (q, v) in asked.into_iter().zip(vals) {
        for (field, n) in reply::fields_from_value(v)? {
            let (minute, which) = field.split_at(field.len().saturating_sub(1));
            let (Ok(minute), Ok(n)) = (
                minute.parse::<i64>(),
                String::from_utf8_lossy(&n).parse::<u64>(),
            ) else {
                continue;
            };
            let at = minute * MINUTE_MS;
            if at < since {
                continue;
            }
            let row = rows
                .entry((at, q.as_str()))
                .or_insert_with(|| MinuteCounts {
                    at,
                    queue: q.clone(),
                    ..MinuteCounts::default()
                });
            match which {
                "s" => row.succeeded += n,
                "f" => row.failed += n,
                "d" => row.dead += n,
                _ => {}
            }
        }
    }
    Ok(rows.into_values().collect())
}
