//! The per-kind and per-group part of admission (migration 0021): kind-pattern rate limits
//! (`QueueSettings::kinds`), the per-group rate (`QueueSettings::group_rate`) and the holds
//! a handler's `RateLimited` outcome puts on a group or a kind.
//!
//! A [`Gate`] is built for one queue per claim (and per `work_wait` check) only when one of
//! those applies, so a queue without them pays nothing. Its buckets live in `queue_buckets`,
//! read when first needed and written back at the end of the claim, in the claim's
//! transaction. The claim asks the gate about each candidate in the queue's order and
//! passes over the ones it turns away, so a throttled kind does not hold back the others;
//! it looks at most [`KIND_PROBE`] jobs past its share, which bounds a claim's work.

use std::collections::{BTreeMap, HashMap};

use quern::Millis;
use quern::model::{KindLimits, QueueSettings, RateLimit, kind_rule};
use quern::{JobId, Result};
use rusqlite::{Connection, OptionalExtension};

use super::limits::QueueRow;
use crate::error::sql_err;
use crate::writer::Tx;

/// Most ready jobs a claim looks at past the ones it takes, when a gate turns some away.
pub(crate) const KIND_PROBE: usize = 256;

/// `queue_buckets.scope` of a kind pattern's bucket.
const KIND: i64 = 0;
/// `queue_buckets.scope` of a group's bucket (its rate and its hold).
const GROUP: i64 = 1;
/// `queue_buckets.scope` of an exact kind's hold.
const HELD_KIND: i64 = 2;

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    tat: f64,
    hold_until: Millis,
    /// `tat` changed in this claim and must be written back.
    dirty: bool,
}

/// One queue's kind and group admission state during one claim or wait check.
pub(crate) struct Gate {
    queue_id: i64,
    now: Millis,
    kinds: BTreeMap<String, KindLimits>,
    group_rate: Option<RateLimit>,
    /// Some hold of the queue may be in force (`queues.holds_until` is ahead).
    holds: bool,
    buckets: HashMap<(i64, String), Bucket>,
    /// The earliest time a job this gate turned away would be admitted.
    pub next_at: Option<Millis>,
}

/// The hold that applies to a job: its group's, or its kind's when it has no group.
fn hold_key(kind: &str, group: &str) -> (i64, String) {
    if group.is_empty() {
        (HELD_KIND, kind.to_string())
    } else {
        (GROUP, group.to_string())
    }
}

impl Gate {
    /// The gate of queue `row` at `now`, or `None` when no kind rate, group rate or hold
    /// applies (the claim then takes its jobs as before).
    pub(crate) fn new(row: &QueueRow, now: Millis) -> Option<Gate> {
        let holds = row.holds_until > now;
        if row.settings.kinds.is_empty() && row.settings.group_rate.is_none() && !holds {
            return None;
        }
        Some(Gate {
            queue_id: row.id,
            now,
            kinds: row.settings.kinds.clone(),
            group_rate: row.settings.group_rate,
            holds,
            buckets: HashMap::new(),
            next_at: None,
        })
    }

    fn bucket(&mut self, conn: &Connection, key: (i64, String)) -> Result<&mut Bucket> {
        if !self.buckets.contains_key(&key) {
            let b = conn
                .prepare_cached(
                    "SELECT tat, hold_until FROM queue_buckets \
                     WHERE queue_id = ?1 AND scope = ?2 AND name = ?3",
                )
                .and_then(|mut s| {
                    s.query_row(rusqlite::params![self.queue_id, key.0, key.1], |r| {
                        Ok(Bucket {
                            tat: r.get(0)?,
                            hold_until: r.get(1)?,
                            dirty: false,
                        })
                    })
                    .optional()
                })
                .map_err(sql_err)?
                .unwrap_or_default();
            self.buckets.insert(key.clone(), b);
        }
        Ok(self.buckets.get_mut(&key).expect("inserted above"))
    }

    /// Whether one job of `kind` in `group` ("" for none) may be leased now. When not, the
    /// time it may is folded into [`Gate::next_at`].
    pub(crate) fn check(&mut self, conn: &Connection, kind: &str, group: &str) -> Result<bool> {
        let now = self.now;
        let mut at = now;
        if self.holds {
            let h = self.bucket(conn, hold_key(kind, group))?.hold_until;
            at = at.max(h);
        }
        if let Some((p, l)) = kind_rule(&self.kinds, kind).map(|(p, l)| (p.to_string(), *l)) {
            let b = self.bucket(conn, (KIND, p))?;
            let a = l.rate.admit(b.tat, now, 1);
            if a.take == 0 {
                at = at.max(a.next_at.unwrap_or(now + 1));
            }
        }
        if let Some(r) = self.group_rate {
            let b = self.bucket(conn, (GROUP, group.to_string()))?;
            let a = r.admit(b.tat, now, 1);
            if a.take == 0 {
                at = at.max(a.next_at.unwrap_or(now + 1));
            }
        }
        if at > now {
            self.next_at = Some(self.next_at.map_or(at, |n| n.min(at)));
            return Ok(false);
        }
        Ok(true)
    }

    /// Counts one leased job of `kind` in `group` (after [`Gate::check`] said yes): one
    /// token of its kind pattern's bucket and of its group's.
    pub(crate) fn take(&mut self, conn: &Connection, kind: &str, group: &str) -> Result<()> {
        let now = self.now;
        if let Some((p, l)) = kind_rule(&self.kinds, kind).map(|(p, l)| (p.to_string(), *l)) {
            let b = self.bucket(conn, (KIND, p))?;
            b.tat = l.rate.admit(b.tat, now, 1).tat;
            b.dirty = true;
        }
        if let Some(r) = self.group_rate {
            let b = self.bucket(conn, (GROUP, group.to_string()))?;
            b.tat = r.admit(b.tat, now, 1).tat;
            b.dirty = true;
        }
        Ok(())
    }

    /// Writes the buckets this claim moved.
    pub(crate) fn store(&self, tx: &Tx<'_>) -> Result<()> {
        let mut st = None;
        for ((scope, name), b) in &self.buckets {
            if !b.dirty {
                continue;
            }
            let s = match &mut st {
                Some(s) => s,
                None => st.insert(
                    tx.conn
                        .prepare_cached(
                            "INSERT INTO queue_buckets (queue_id, scope, name, tat) \
                             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (queue_id, scope, name) \
                             DO UPDATE SET tat = excluded.tat",
                        )
                        .map_err(sql_err)?,
                ),
            };
            s.execute(rusqlite::params![self.queue_id, scope, name, b.tat])
                .map_err(sql_err)?;
        }
        Ok(())
    }
}

/// The ids of up to `n` ready jobs of non-grouped queue `row` that come first in its order
/// and that `gate` admits, among its first `n + KIND_PROBE` ready jobs; each one picked is
/// counted in the gate. The claim leases them; `work_wait` asks with `n = 1`.
pub(crate) fn pick(
    conn: &Connection,
    row: &QueueRow,
    gate: &mut Gate,
    n: usize,
    below: i64,
    now: Millis,
) -> Result<Vec<[u8; 16]>> {
    let scan = (n + KIND_PROBE) as i64;
    let mut out = Vec::with_capacity(n);
    if super::order::is_default(&row.settings) {
        let mut st = conn
            .prepare_cached(
                "SELECT id, kind, coalesce(grp, '') FROM jobs \
                 WHERE queue_id = ?1 AND state = 1 AND priority < ?2 \
                 ORDER BY priority, run_at, id LIMIT ?3",
            )
            .map_err(sql_err)?;
        let mut rows = st
            .query(rusqlite::params![row.id, below, scan])
            .map_err(sql_err)?;
        while out.len() < n {
            let Some(r) = rows.next().map_err(sql_err)? else {
                break;
            };
            let id: [u8; 16] = r.get(0).map_err(sql_err)?;
            let kind: String = r.get(1).map_err(sql_err)?;
            let group: String = r.get(2).map_err(sql_err)?;
            if gate.check(conn, &kind, &group)? {
                gate.take(conn, &kind, &group)?;
                out.push(id);
            }
        }
        return Ok(out);
    }
    let ids = super::order::pick_ids(conn, row.id, &row.settings, scan as usize, below, now)?;
    let mut st = conn
        .prepare_cached("SELECT kind, coalesce(grp, '') FROM jobs WHERE id = ?1")
        .map_err(sql_err)?;
    for id in ids {
        if out.len() >= n {
            break;
        }
        let (kind, group): (String, String) = st
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql_err)?;
        if gate.check(conn, &kind, &group)? {
            gate.take(conn, &kind, &group)?;
            out.push(id);
        }
    }
    Ok(out)
}

/// `RateLimited`: holds the group of job `id` (or its kind, without a group) in its queue
/// until `until` (never earlier than a hold already there), in the failure's transaction.
pub(crate) fn hold(tx: &Tx<'_>, id: JobId, until: Millis) -> Result<()> {
    let (queue_id, kind, group): (i64, String, String) = tx
        .conn
        .prepare_cached("SELECT queue_id, kind, coalesce(grp, '') FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))))
        .map_err(sql_err)?;
    let (scope, name) = hold_key(&kind, &group);
    tx.conn
        .prepare_cached(
            "INSERT INTO queue_buckets (queue_id, scope, name, hold_until) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (queue_id, scope, name) \
             DO UPDATE SET hold_until = max(hold_until, excluded.hold_until)",
        )
        .and_then(|mut s| s.execute(rusqlite::params![queue_id, scope, name, until]))
        .map_err(sql_err)?;
    tx.conn
        .prepare_cached("UPDATE queues SET holds_until = max(holds_until, ?2) WHERE id = ?1")
        .and_then(|mut s| s.execute(rusqlite::params![queue_id, until]))
        .map_err(sql_err)?;
    // Holds of kinds that have passed are of no further use.
    tx.conn
        .prepare_cached(
            "DELETE FROM queue_buckets WHERE queue_id = ?1 AND scope = ?2 AND hold_until <= ?3",
        )
        .and_then(|mut s| s.execute(rusqlite::params![queue_id, HELD_KIND, tx.now]))
        .map_err(sql_err)?;
    Ok(())
}

/// `queue_update`'s part: stores the kind patterns and the group rate; a pattern whose
/// limits changed (or that was removed) and, when the group rate changed, every group
/// starts with a full bucket.
pub(crate) fn store_settings(
    tx: &Tx<'_>,
    id: i64,
    old: &QueueSettings,
    new: &QueueSettings,
) -> Result<()> {
    let kinds = if new.kinds.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&new.kinds).map_err(|e| quern::Error::Codec(e.to_string()))?)
    };
    let r = new.group_rate;
    tx.conn
        .prepare_cached(
            "UPDATE queues SET kind_rates = ?2, group_rate_count = ?3, group_rate_per_ms = ?4, \
             group_rate_burst = ?5 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(rusqlite::params![
                id,
                kinds,
                r.map(|r| i64::from(r.count)),
                r.map(|r| r.per.as_millis() as i64),
                r.map(|r| i64::from(r.burst)),
            ])
        })
        .map_err(sql_err)?;
    for (p, l) in &old.kinds {
        if new.kinds.get(p) != Some(l) {
            tx.conn
                .prepare_cached(
                    "DELETE FROM queue_buckets WHERE queue_id = ?1 AND scope = ?2 AND name = ?3",
                )
                .and_then(|mut s| s.execute(rusqlite::params![id, KIND, p]))
                .map_err(sql_err)?;
        }
    }
    if old.group_rate != new.group_rate {
        tx.conn
            .prepare_cached("UPDATE queue_buckets SET tat = 0 WHERE queue_id = ?1 AND scope = ?2")
            .and_then(|mut s| s.execute(rusqlite::params![id, GROUP]))
            .map_err(sql_err)?;
    }
    Ok(())
}
