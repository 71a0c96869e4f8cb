//! Queue settings (migration 0007) and the one admission function the claim and
//! `work_wait` share.
//!
//! The concurrency cap counts the queue's running jobs through `jobs_claim` (a range of the
//! index, only when a cap is set). The rate limit's GCRA state is `queues.rate_tat`, moved
//! by the claim in the same transaction as the leases.

use std::time::Duration;

use quern::Millis;
use quern::backend::QueueUpdateParams;
use quern::model::{QueueSettings, QueueUsage, RateLimit};
use quern::{Error, Result};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::error::sql_err;
use crate::writer::Tx;

/// A queue's row as the claim reads it.
#[derive(Clone, Debug)]
pub(crate) struct QueueRow {
    pub id: i64,
    pub paused: bool,
    pub settings: QueueSettings,
    pub tat: f64,
    /// The queue has had a grouped job: its claim goes round-robin over groups
    /// (`ops/groups.rs`).
    pub grouped: bool,
    /// The group rotation's counter (`queues.group_seq`).
    pub group_seq: i64,
    /// The latest admission hold of a group or kind of the queue (`RateLimited`); holds
    /// are looked up only while `now` is before it (ops/gate.rs).
    pub holds_until: i64,
}

const COLS: &str = "id, paused, concurrency, rate_count, rate_per_ms, rate_burst, rate_tat, \
                    weight, claim_order, aging_after_ms, aging_step, aging_every_ms, aging_bound, \
                    grouped, group_concurrency, group_seq, kind_rates, group_rate_count, \
                    group_rate_per_ms, group_rate_burst, holds_until";

/// A rate limit stored as three columns (count, period in ms, burst).
fn rate_cols(c: Option<i64>, p: Option<i64>, b: Option<i64>) -> Option<RateLimit> {
    match (c, p, b) {
        (Some(c), Some(p), Some(b)) => Some(RateLimit {
            count: c as u32,
            per: Duration::from_millis(p as u64),
            burst: b as u32,
        }),
        _ => None,
    }
}

fn row(r: &Row<'_>) -> rusqlite::Result<QueueRow> {
    let count: Option<i64> = r.get(3)?;
    let per: Option<i64> = r.get(4)?;
    let burst: Option<i64> = r.get(5)?;
    let rate = rate_cols(count, per, burst);
    let kinds = match r.get::<_, Option<String>>(16)? {
        None => Default::default(),
        Some(t) => serde_json::from_str(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(16, rusqlite::types::Type::Text, Box::new(e))
        })?,
    };
    Ok(QueueRow {
        id: r.get(0)?,
        paused: r.get::<_, i64>(1)? != 0,
        settings: QueueSettings {
            concurrency: r.get::<_, Option<i64>>(2)?.map(|c| c as u32),
            rate,
            weight: r.get::<_, Option<i64>>(7)?.map(|w| w as u32),
            order: super::order::order_from_i64(r.get(8)?),
            aging: super::order::aging_from_row(r, 9)?,
            group_concurrency: r.get::<_, Option<i64>>(14)?.map(|c| c as u32),
            kinds,
            group_rate: rate_cols(r.get(17)?, r.get(18)?, r.get(19)?),
            ..Default::default()
        },
        tat: r.get(6)?,
        grouped: r.get::<_, i64>(13)? != 0,
        group_seq: r.get(15)?,
        holds_until: r.get(20)?,
    })
}

/// The queue's row, or `None` if it was never used nor configured.
pub(crate) fn load(conn: &Connection, queue: &str) -> Result<Option<QueueRow>> {
    conn.prepare_cached(&format!("SELECT {COLS} FROM queues WHERE name = ?1"))
        .and_then(|mut s| s.query_row([queue], row).optional())
        .map_err(sql_err)
}

/// Jobs of the queue running now.
pub(crate) fn running(conn: &Connection, queue_id: i64) -> Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM jobs WHERE queue_id = ?1 AND state = 3")
        .and_then(|mut s| s.query_row([queue_id], |r| r.get::<_, i64>(0)))
        .map(|n| n as u64)
        .map_err(sql_err)
}

/// What the queue's limits admit of `want` jobs at `now`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Admission {
    pub take: usize,
    /// The rate limiter's state after taking `take` (unchanged without a rate limit).
    pub tat: f64,
    /// Throttled by the rate limit: when one more job is admitted.
    pub next_at: Option<Millis>,
    /// Held back by the concurrency cap (frees when a running job ends).
    pub capped: bool,
}

/// The admission rule, for the claim (`want` = the share drawn for the queue) and for
/// `work_wait` (`want` = 1). `running` is the queue's running jobs, counted by the caller
/// only when the queue has a cap.
pub(crate) fn admit(q: &QueueRow, running: u64, want: usize, now: Millis) -> Admission {
    let mut take = want;
    let mut capped = false;
    if let Some(cap) = q.settings.concurrency {
        let room = u64::from(cap).saturating_sub(running) as usize;
        if room < take {
            take = room;
            capped = true;
        }
    }
    let (mut tat, mut next_at) = (q.tat, None);
    if let Some(rate) = &q.settings.rate {
        let a = rate.admit(q.tat, now, take);
        if a.take < take && !capped {
            next_at = a.next_at;
        }
        take = a.take;
        tat = a.tat;
    }
    Admission {
        take,
        tat,
        next_at,
        capped,
    }
}

/// After a claim took `got` jobs of `q` (at most what `admit` allowed): stores the limiter's
/// state for exactly `got`.
pub(crate) fn took(tx: &Tx<'_>, q: &QueueRow, got: usize) -> Result<f64> {
    let Some(rate) = &q.settings.rate else {
        return Ok(q.tat);
    };
    if got == 0 {
        return Ok(q.tat);
    }
    let tat = rate.admit(q.tat, tx.now, got).tat;
    tx.conn
        .prepare_cached("UPDATE queues SET rate_tat = ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(rusqlite::params![q.id, tat]))
        .map_err(sql_err)?;
    Ok(tat)
}

/// The settings the claim does not read (migration 0018): retention and default retry.
fn load_extra(conn: &Connection, id: i64, s: &mut QueueSettings) -> Result<()> {
    let (retention, retry): (Option<String>, Option<String>) = conn
        .prepare_cached("SELECT retention, retry FROM queues WHERE id = ?1")
        .and_then(|mut st| st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(sql_err)?;
    let bad = |e: serde_json::Error| Error::Storage(format!("stored queue setting: {e}"));
    if let Some(t) = retention {
        s.retention = serde_json::from_str(&t).map_err(bad)?;
    }
    if let Some(t) = retry {
        s.retry = Some(serde_json::from_str(&t).map_err(bad)?);
    }
    Ok(())
}

fn store_extra(tx: &Tx<'_>, id: i64, s: &QueueSettings) -> Result<()> {
    let json = |v: serde_json::Result<String>| v.map_err(|e| Error::Codec(e.to_string()));
    let retention = if s.retention.is_empty() {
        None
    } else {
        Some(json(serde_json::to_string(&s.retention))?)
    };
    let retry = match &s.retry {
        None => None,
        Some(p) => Some(json(serde_json::to_string(p))?),
    };
    tx.conn
        .prepare_cached("UPDATE queues SET retention = ?2, retry = ?3 WHERE id = ?1")
        .and_then(|mut st| st.execute(rusqlite::params![id, retention, retry]))
        .map_err(sql_err)?;
    Ok(())
}

pub(crate) fn get(conn: &Connection, queue: &str, now: Millis) -> Result<QueueUsage> {
    let mut q = load(conn, queue)?.ok_or_else(|| Error::QueueNotFound(queue.to_string()))?;
    load_extra(conn, q.id, &mut q.settings)?;
    Ok(QueueUsage {
        running: running(conn, q.id)?,
        tokens: q.settings.rate.map(|r| r.tokens(q.tat, now)),
        settings: q.settings,
    })
}

pub(crate) fn update(tx: &mut Tx<'_>, p: QueueUpdateParams) -> Result<QueueSettings> {
    quern::model::validate_queue_name(&p.queue)?;
    let id = super::enqueue::ensure_queue(tx, &p.queue)?;
    let mut old = load(tx.conn, &p.queue)?.ok_or_else(|| Error::QueueNotFound(p.queue.clone()))?;
    load_extra(tx.conn, old.id, &mut old.settings)?;
    let new = p.apply(&old.settings);
    new.validate()?;
    let tat = if new.rate == old.settings.rate {
        old.tat
    } else {
        0.0
    };
    let r = new.rate;
    tx.conn
        .prepare_cached(
            "UPDATE queues SET concurrency = ?2, rate_count = ?3, rate_per_ms = ?4, \
             rate_burst = ?5, rate_tat = ?6, group_concurrency = ?7 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(rusqlite::params![
                id,
                new.concurrency.map(i64::from),
                r.map(|r| i64::from(r.count)),
                r.map(|r| r.per.as_millis() as i64),
                r.map(|r| i64::from(r.burst)),
                tat,
                new.group_concurrency.map(i64::from),
            ])
        })
        .map_err(sql_err)?;
    super::order::store(tx, id, &new)?;
    store_extra(tx, id, &new)?;
    super::gate::store_settings(tx, id, &old.settings, &new)?;
    // A raised cap or a new rate may admit jobs at once.
    tx.st.wake = true;
    Ok(new)
}
