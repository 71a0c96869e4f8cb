//! Job events (`crate::events` has the layout): the cold-path helpers that record a move
//! after the statement that made it, a job's timeline, the stream after a cursor, and
//! retention.

use quern::backend::{EventListParams, EventPage, EventPruneParams, EventReadParams};
use quern::model::JobEvent;
use quern::{JobId, JobState};
use rusqlite::{Connection, OptionalExtension};

use crate::error::sql_err;
use crate::writer::Tx;

/// Most `job_events` rows one `event_prune` call deletes (the writer is not held up by a
/// huge backlog; the next pass takes the rest).
const PRUNE_BATCH: i64 = 100_000;

/// Rows read per step of `event_read`.
const READ_STEP: i64 = 256;

/// After a cold-path statement moved job `id` out of `from` (`None`: just stored): appends
/// its timeline line and records it for the stream. A second write of the row, only on the
/// cold paths (cancel, retry and replay, rescue, spawn, import); the hot paths store no line
/// (their moves are derived at read time, `quern::model::job_timeline`) and release and
/// dependency settlement append in their own statement.
pub(crate) fn moved(tx: &Tx<'_>, id: JobId, from: Option<JobState>) -> quern::Result<()> {
    let from_text = from.map(|s| s.as_i64().to_string()).unwrap_or_default();
    let row: Option<(i64, String, i64, i64)> = tx
        .conn
        .prepare_cached(&format!(
            "UPDATE jobs SET {} WHERE id = ?1 RETURNING queue_id, kind, state, attempt",
            crate::events::timeline_sql("?2", "?3", "state", "attempt", "?4")
        ))
        .and_then(|mut s| {
            s.query_row(
                rusqlite::params![id.as_bytes(), tx.now, from_text, tx.actor_param()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
        })
        .map_err(sql_err)?;
    if let Some((queue_id, kind, state, attempt)) = row {
        let to = crate::rows::state_from_i64(state).map_err(sql_err)?;
        tx.event(queue_id, id, &kind, from, Some(to), attempt as u32);
    }
    Ok(())
}

/// Before job `id` is deleted (pruned, or deleted by id): records its deletion for the
/// stream (its timeline goes with the row).
pub(crate) fn deleting(tx: &Tx<'_>, id: &[u8; 16]) -> quern::Result<()> {
    let row: Option<(i64, String, i64, i64)> = tx
        .conn
        .prepare_cached("SELECT queue_id, kind, state, attempt FROM jobs WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()
        })
        .map_err(sql_err)?;
    if let Some((queue_id, kind, state, attempt)) = row {
        let from = crate::rows::state_from_i64(state).map_err(sql_err)?;
        tx.event(
            queue_id,
            JobId::from_bytes(*id),
            &kind,
            Some(from),
            None,
            attempt as u32,
        );
    }
    Ok(())
}

/// A job's timeline: the moves derived from its row (`quern::model::job_timeline`) merged
/// with the lines its `events` column keeps.
pub(crate) fn list(c: &Connection, p: EventListParams) -> quern::Result<Vec<JobEvent>> {
    let tx = c.unchecked_transaction().map_err(sql_err)?;
    let Some(job) = super::admin::get(&tx, p.job)? else {
        return Ok(Vec::new());
    };
    let text: Option<String> = tx
        .prepare_cached("SELECT events FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row([p.job.as_bytes()], |r| r.get(0)))
        .map_err(sql_err)?;
    let stored = crate::events::parse_timeline(
        p.job,
        &job.queue,
        &job.kind,
        text.as_deref().unwrap_or_default(),
    )?;
    Ok(quern::model::job_timeline(&job, stored))
}

/// A stream cursor of this store: `SEQ.INDEX`, the row and the record in it last read.
fn parse_cursor(c: &str) -> quern::Result<(i64, i64)> {
    c.split_once('.')
        .and_then(|(s, i)| Some((s.parse::<i64>().ok()?, i.parse::<i64>().ok()?)))
        .filter(|(s, i)| *s >= 0 && *i >= 0)
        .ok_or_else(|| quern::Error::InvalidArgument(format!("not an event cursor: {c:?}")))
}

fn cursor(seq: i64, index: i64) -> String {
    format!("{seq}.{index}")
}

pub(crate) fn read(c: &Connection, p: EventReadParams) -> quern::Result<EventPage> {
    // Past record `idx` of row `seq` (a fresh read starts before row 1's first record).
    let (mut seq, mut idx) = match p.after.as_deref() {
        Some(a) => parse_cursor(a)?,
        None => (0, i64::MAX),
    };
    let start = p.after.clone().unwrap_or_else(|| cursor(0, 0));
    if p.limit == 0 {
        return Ok(EventPage {
            events: Vec::new(),
            cursor: Some(start),
        });
    }
    // One snapshot for every step.
    let tx = c.unchecked_transaction().map_err(sql_err)?;
    let queue_id: Option<i64> = match &p.queue {
        None => None,
        Some(q) => {
            let id = tx
                .prepare_cached("SELECT id FROM queues WHERE name = ?1")
                .and_then(|mut s| s.query_row([q], |r| r.get(0)).optional())
                .map_err(sql_err)?;
            // A queue never used has no events: an id no row has.
            Some(id.unwrap_or(-1))
        }
    };
    let mut events = Vec::new();
    let mut next = start;
    'rows: loop {
        type Row = (i64, i64, Option<String>, Option<String>, Vec<u8>);
        let rows: Vec<Row> = tx
            .prepare_cached(
                "SELECT seq, at, (SELECT name FROM queues WHERE queues.id = e.queue_id), actor, recs \
                 FROM job_events e WHERE seq >= ?1 AND (?2 IS NULL OR queue_id = ?2) \
                 ORDER BY seq LIMIT ?3",
            )
            .and_then(|mut s| {
                s.query_map(rusqlite::params![seq, queue_id, READ_STEP], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .and_then(|rows| rows.collect())
            })
            .map_err(sql_err)?;
        let got = rows.len();
        for (s, at, queue, actor, recs) in rows {
            let recs = crate::events::unpack(&recs).map_err(sql_err)?;
            for (i, r) in recs.into_iter().enumerate() {
                let i = i as i64;
                if s == seq && i <= idx {
                    continue;
                }
                (seq, idx) = (s, i);
                next = cursor(s, i);
                let keep = p.kind.as_deref().is_none_or(|k| r.kind == k)
                    && p.state.is_none_or(|st| r.to == Some(st));
                if !keep {
                    continue;
                }
                events.push(JobEvent {
                    cursor: next.clone(),
                    job: r.job,
                    queue: queue.clone().unwrap_or_default(),
                    kind: r.kind,
                    from: r.from,
                    to: r.to,
                    attempt: r.attempt,
                    at,
                    actor: actor.clone(),
                });
                if events.len() == p.limit {
                    break 'rows;
                }
            }
            // The whole row is read: the next step starts after it.
            (seq, idx) = (s, i64::MAX);
        }
        if (got as i64) < READ_STEP {
            break;
        }
    }
    Ok(EventPage {
        events,
        cursor: Some(next),
    })
}

pub(crate) fn prune(tx: &mut Tx<'_>, p: EventPruneParams) -> quern::Result<u64> {
    let c = tx.conn;
    let (first, last): (Option<i64>, Option<i64>) = c
        .query_row("SELECT min(seq), max(seq) FROM job_events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(sql_err)?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(0);
    };
    // Delete `seq < keep_from`; the newest row always stays, so `seq` is never reused.
    let mut keep_from = first;
    if let Some(n) = p.max_events {
        // The oldest row of the newest `n` events (counted by whole rows, newest first).
        let from: Option<i64> = c
            .prepare_cached(
                "SELECT seq FROM (SELECT seq, sum(n) OVER (ORDER BY seq DESC) AS c FROM job_events) \
                 WHERE c <= ?1 ORDER BY seq LIMIT 1",
            )
            .and_then(|mut s| s.query_row([n.max(1) as i64], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        keep_from = keep_from.max(from.unwrap_or(last));
    }
    if let Some(age) = p.max_age {
        let cutoff = tx.now - age.as_millis() as i64;
        let young: Option<i64> = c
            .prepare_cached("SELECT seq FROM job_events WHERE at >= ?1 ORDER BY seq LIMIT 1")
            .and_then(|mut s| s.query_row([cutoff], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        keep_from = keep_from.max(young.unwrap_or(last));
    }
    let keep_from = keep_from.min(last).min(first + PRUNE_BATCH);
    if keep_from <= first {
        return Ok(0);
    }
    let n: i64 = c
        .prepare_cached("SELECT coalesce(sum(n), 0) FROM job_events WHERE seq < ?1")
        .and_then(|mut s| s.query_row([keep_from], |r| r.get(0)))
        .map_err(sql_err)?;
    c.prepare_cached("DELETE FROM job_events WHERE seq < ?1")
        .and_then(|mut s| s.execute([keep_from]))
        .map_err(sql_err)?;
    Ok(n as u64)
}
