//! Claim orders other than the default, and priority aging (migration 0012).
//!
//! The default order (priority, run_at, id) without aging is one range of `jobs_claim`
//! (`claim::lease_from_queue`). Every other order reads the first `n` ready jobs of each
//! priority level (ten short ranges of the same index, `run_at` ascending, or descending for
//! `lifo`) and lets the core's [`quern::model::pick`] merge them: the first `n` of the queue
//! in any order are among the first `n` of each level (see its docs). So no index is added
//! for them (an index on (queue_id, state, run_at) would cost every enqueue and claim a
//! b-tree write); their cost is ten index seeks and up to 10·n index entries per claim,
//! plus, for `weighted-random` only, a count of the queue's ready jobs per level (a scan of
//! the queue's ready range of the index, O(ready jobs)).

use std::time::Duration;

use quern::Millis;
use quern::model::{Aging, Candidate, ClaimOrder, OrderRule, Priority, QueueSettings};
use rusqlite::{Connection, Row};

use crate::error::sql_err;
use crate::writer::Tx;

pub(crate) fn order_from_i64(n: i64) -> ClaimOrder {
    match n {
        1 => ClaimOrder::Fifo,
        2 => ClaimOrder::Lifo,
        3 => ClaimOrder::WeightedRandom,
        _ => ClaimOrder::Priority,
    }
}

fn order_to_i64(o: ClaimOrder) -> i64 {
    match o {
        ClaimOrder::Priority => 0,
        ClaimOrder::Fifo => 1,
        ClaimOrder::Lifo => 2,
        ClaimOrder::WeightedRandom => 3,
    }
}

/// The aging columns starting at `at` (after, step, every, bound), `None` when off.
pub(crate) fn aging_from_row(r: &Row<'_>, at: usize) -> rusqlite::Result<Option<Aging>> {
    let Some(after) = r.get::<_, Option<i64>>(at)? else {
        return Ok(None);
    };
    let step: i64 = r.get::<_, Option<i64>>(at + 1)?.unwrap_or(1);
    let every: Option<i64> = r.get(at + 2)?;
    let bound: i64 = r.get::<_, Option<i64>>(at + 3)?.unwrap_or(0);
    Ok(Some(Aging {
        after: Duration::from_millis(after as u64),
        step: step as u8,
        every: every.map(|e| Duration::from_millis(e as u64)),
        bound: Priority::new(bound as u8).unwrap_or(Priority::CRITICAL),
    }))
}

/// Writes the order, aging and weight of `s` to queue `id` (in `limits::update`'s step).
pub(crate) fn store(tx: &Tx<'_>, id: i64, s: &QueueSettings) -> quern::Result<()> {
    let a = s.aging;
    tx.conn
        .prepare_cached(
            "UPDATE queues SET weight = ?2, claim_order = ?3, aging_after_ms = ?4, \
             aging_step = ?5, aging_every_ms = ?6, aging_bound = ?7 WHERE id = ?1",
        )
        .and_then(|mut st| {
            st.execute(rusqlite::params![
                id,
                s.weight.map(i64::from),
                order_to_i64(s.order),
                a.map(|a| a.after.as_millis() as i64),
                a.map(|a| i64::from(a.step)),
                a.and_then(|a| a.every).map(|e| e.as_millis() as i64),
                a.map(|a| i64::from(a.bound.get())),
            ])
        })
        .map_err(sql_err)?;
    Ok(())
}

/// Whether the queue's claim is the one-range default (priority order, no aging).
pub(crate) fn is_default(s: &QueueSettings) -> bool {
    s.order == ClaimOrder::Priority && s.aging.is_none()
}

/// The ids of the first `n` ready jobs of the queue in its order, among those whose
/// (effective) priority is below `below`. For a queue whose order is not the default.
pub(crate) fn pick_ids(
    conn: &Connection,
    queue_id: i64,
    s: &QueueSettings,
    n: usize,
    below: i64,
    now: Millis,
) -> quern::Result<Vec<[u8; 16]>> {
    let below = below.clamp(0, 10) as u8;
    let desc = s.order == ClaimOrder::Lifo;
    let sql = if desc {
        "SELECT id, run_at FROM jobs WHERE queue_id = ?1 AND state = 1 AND priority = ?2 \
         ORDER BY run_at DESC, id DESC LIMIT ?3"
    } else {
        "SELECT id, run_at FROM jobs WHERE queue_id = ?1 AND state = 1 AND priority = ?2 \
         ORDER BY run_at, id LIMIT ?3"
    };
    let mut stmt = conn.prepare_cached(sql).map_err(sql_err)?;
    let mut levels: [Vec<Candidate<[u8; 16]>>; 10] = Default::default();
    for (p, level) in levels.iter_mut().enumerate() {
        // Without aging a level at or past the bound has nothing to give; with aging any
        // level may (its old jobs are promoted).
        if s.aging.is_none() && p as u8 >= below {
            break;
        }
        *level = stmt
            .query_map(rusqlite::params![queue_id, p as i64, n as i64], |r| {
                Ok(Candidate {
                    priority: p as u8,
                    due: r.get(1)?,
                    id: r.get::<_, [u8; 16]>(0)?,
                })
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sql_err)?;
    }
    let mut counts = [0u64; 10];
    if s.order == ClaimOrder::WeightedRandom {
        let mut c = conn
            .prepare_cached(
                "SELECT priority, count(*) FROM jobs WHERE queue_id = ?1 AND state = 1 \
                 GROUP BY priority",
            )
            .map_err(sql_err)?;
        let rows = c
            .query_map([queue_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(sql_err)?;
        for (p, k) in rows {
            if (0..10).contains(&p) {
                counts[p as usize] = k as u64;
            }
        }
    }
    let rule = OrderRule {
        order: s.order,
        aging: s.aging.as_ref(),
        now,
    };
    Ok(
        quern::model::pick(rule, &levels, &counts, n, below, fastrand::f64)
            .into_iter()
            .map(|c| c.id)
            .collect(),
    )
}
