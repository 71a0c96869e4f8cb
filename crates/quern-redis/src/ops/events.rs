//! Job events ("Job events" in `lua/lib.lua` has the layout): a job's timeline (its hash's
//! `v1…` lines, `ev_list.lua`), the stream read across queues, and retention.
//!
//! The stream of a queue is `{q}:events`, one entry per script call that moved its jobs
//! (fields `at`, `x` actor, `r` the records `id,from,to,attempt,kind`, one a line). A cursor
//! is the position reached in each queue's stream (a queue not named has not been read yet):
//! `ID` when the entry was read whole, `ID.N` when its records up to `N` were, written as
//! `r2.` and the hex of a JSON object `{queue: position}`. Opaque to callers, stable across
//! servers (no server state), and each position is an id of that queue's own stream, which
//! lives in the queue's slot on Cluster.

use std::collections::BTreeMap;

use quern::backend::{EventListParams, EventPage, EventPruneParams, EventReadParams};
use quern::model::JobEvent;
use quern::{Error, JobId, JobState, Result};
use redis::Value;

use crate::backend::RedisBackend;
use crate::eval::{Ack, Args};
use crate::{reply, scripts};

/// Entries of the age cap examined per step (the oldest first).
const AGE_STEP: usize = 200;

type Positions = BTreeMap<String, String>;

/// One stream entry: its id, `at`, actor and records.
struct Entry {
    id: String,
    key: (u64, u64),
    at: i64,
    actor: Option<String>,
    recs: String,
}

fn encode_cursor(pos: &Positions) -> String {
    let json = serde_json::to_string(pos).expect("a map of strings serializes");
    let mut out = String::with_capacity(3 + 2 * json.len());
    out.push_str("r2.");
    for b in json.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A position: the entry id and, when only part of it was read, the last record read.
fn parse_pos(p: &str) -> Option<((u64, u64), Option<usize>)> {
    let (id, idx) = match p.split_once('.') {
        Some((id, i)) => (id, Some(i.parse().ok()?)),
        None => (p, None),
    };
    Some((parse_id(id)?, idx))
}

fn decode_cursor(c: &str) -> Result<Positions> {
    let bad = || Error::InvalidArgument(format!("not an event cursor: {c:?}"));
    let hex = c.strip_prefix("r2.").ok_or_else(bad)?;
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
        .collect::<std::result::Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    let pos: Positions = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if pos.values().any(|p| parse_pos(p).is_none()) {
        return Err(bad());
    }
    Ok(pos)
}

/// A stream entry id `ms-seq`, for ordering entries across queues.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (a, b) = id.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn state(s: &str) -> Result<Option<JobState>> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<i64>()
        .ok()
        .and_then(JobState::from_i64)
        .map(Some)
        .ok_or_else(|| Error::Storage(format!("malformed event state {s:?}")))
}

/// One entry as XRANGE answers it: `[id, [field, value, …]]`.
fn entry(v: Value) -> Result<Entry> {
    let mut it = reply::array(v)?.into_iter();
    let (Some(id), Some(fields)) = (it.next(), it.next()) else {
        return Err(Error::Storage("malformed event entry".into()));
    };
    let id = reply::bulk_string(id)?;
    let key = parse_id(&id).ok_or_else(|| Error::Storage(format!("malformed stream id {id:?}")))?;
    let mut e = Entry {
        id,
        key,
        at: 0,
        actor: None,
        recs: String::new(),
    };
    let mut kv = reply::array(fields)?.into_iter();
    while let (Some(k), Some(v)) = (kv.next(), kv.next()) {
        match reply::bulk_string(k)?.as_str() {
            "at" => e.at = reply::bulk_string(v)?.parse().unwrap_or(0),
            "x" => e.actor = Some(reply::bulk_string(v)?),
            "r" => e.recs = reply::bulk_string(v)?,
            _ => {}
        }
    }
    Ok(e)
}

/// A record `id,from,to,attempt,kind` of an entry.
fn record(queue: &str, e: &Entry, line: &str, cursor: String) -> Result<JobEvent> {
    let bad = || Error::Storage(format!("malformed event record {line:?}"));
    let mut f = line.splitn(5, ',');
    let (Some(id), Some(from), Some(to), Some(attempt), Some(kind)) =
        (f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return Err(bad());
    };
    let job: JobId = id.parse().map_err(|_| bad())?;
    Ok(JobEvent {
        cursor,
        job,
        queue: queue.to_string(),
        kind: kind.to_string(),
        from: state(from)?,
        to: state(to)?,
        attempt: attempt.parse().unwrap_or(0),
        at: e.at,
        actor: e.actor.clone(),
    })
}

/// A job's timeline: the moves derived from the job (`quern::model::job_timeline`) merged
/// with the lines its hash stores (`ev_list.lua`).
pub(crate) async fn list(b: &RedisBackend, p: EventListParams) -> Result<Vec<JobEvent>> {
    let Some(job) = super::read::get(b, p.job).await? else {
        return Ok(Vec::new());
    };
    let q = job.queue.clone();
    let mut args = Args::default();
    args.s(&q).s(&p.job.to_string());
    let out = reply::array(
        b.eval(&scripts::EV_LIST, Some(&q), b.now(), &args, Ack::Primary)
            .await?,
    )?;
    let mut it = out.into_iter();
    if it.next().map(|v| reply::int(&v)).transpose()? != Some(1) {
        return Ok(Vec::new());
    }
    let mut stored = Vec::new();
    for (i, v) in it.enumerate() {
        let line = reply::bulk_string(v)?;
        let bad = || Error::Storage(format!("malformed timeline line {line:?}"));
        let mut f = line.splitn(5, ',');
        let (Some(at), Some(from), Some(to), Some(attempt), Some(actor)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad());
        };
        stored.push(JobEvent {
            cursor: format!("t.{i}"),
            job: p.job,
            queue: q.clone(),
            kind: job.kind.clone(),
            from: state(from)?,
            to: state(to)?,
            attempt: attempt.parse().map_err(|_| bad())?,
            at: at.parse().map_err(|_| bad())?,
            actor: (!actor.is_empty()).then(|| actor.to_string()),
        });
    }
    Ok(quern::model::job_timeline(&job, stored))
}

/// The kinds of the jobs whose records left the kind out (the claim and the ends of an
/// attempt, which have no kind at hand in their scripts): read from the jobs' hashes, one
/// pipeline per queue (its slot). A job gone since keeps ''.
async fn resolve_kinds(b: &RedisBackend, events: &mut [(usize, JobEvent)]) -> Result<()> {
    let mut known: std::collections::HashMap<JobId, String> = events
        .iter()
        .filter(|(_, e)| !e.kind.is_empty())
        .map(|(_, e)| (e.job, e.kind.clone()))
        .collect();
    let mut wanted: BTreeMap<String, Vec<JobId>> = BTreeMap::new();
    for (_, e) in events.iter() {
        if e.kind.is_empty() && !known.contains_key(&e.job) {
            let ids = wanted.entry(e.queue.clone()).or_default();
            if !ids.contains(&e.job) {
                ids.push(e.job);
            }
        }
    }
    let now = b.now();
    for (q, ids) in wanted {
        for chunk in ids.chunks(1000) {
            let fields =
                super::read::hashes(b, chunk.iter().map(|id| (q.as_str(), id.to_string()))).await?;
            for (id, f) in chunk.iter().zip(fields) {
                if f.is_empty() {
                    continue;
                }
                let job = crate::codec::decode_job(&q, &id.to_string(), &f, now)?;
                known.insert(*id, job.kind);
            }
        }
    }
    for (_, e) in events.iter_mut() {
        if e.kind.is_empty()
            && let Some(k) = known.get(&e.job)
        {
            e.kind = k.clone();
        }
    }
    Ok(())
}

pub(crate) async fn read(b: &RedisBackend, p: EventReadParams) -> Result<EventPage> {
    let mut pos = match &p.after {
        Some(c) => decode_cursor(c)?,
        None => Positions::new(),
    };
    if p.limit == 0 {
        return Ok(EventPage {
            events: Vec::new(),
            cursor: Some(encode_cursor(&pos)),
        });
    }
    let queues = match &p.queue {
        Some(q) => vec![q.clone()],
        None => b.all_queues().await?,
    };
    // Up to `limit` entries of each queue from its position (each holds one record at
    // least), merged by entry id.
    let mut all: Vec<(usize, Entry, Option<usize>)> = Vec::new();
    for (qi, q) in queues.iter().enumerate() {
        let (from, skip) = match pos.get(q).and_then(|p| parse_pos(p).map(|x| (p, x))) {
            Some((p, (_, Some(i)))) => (
                p.split_once('.').map_or(p.as_str(), |x| x.0).to_string(),
                Some(i),
            ),
            Some((p, (_, None))) => (format!("({p}"), None),
            None => ("-".to_string(), None),
        };
        let v: Value = b
            .query(
                redis::cmd("XRANGE")
                    .arg(b.qk(q, "events"))
                    .arg(&from)
                    .arg("+")
                    .arg("COUNT")
                    .arg(p.limit)
                    .clone(),
            )
            .await?;
        for e in reply::array(v)? {
            let e = entry(e)?;
            // The partly read entry (if retention has not dropped it meanwhile).
            let skip = skip.filter(|_| from == e.id);
            all.push((qi, e, skip));
        }
    }
    all.sort_by_key(|(qi, e, _)| (e.key, *qi));
    // Every record of the entries read, with the cursor just past it; kinds resolved, then
    // filtered up to the limit.
    let mut recs: Vec<(usize, JobEvent)> = Vec::new();
    'entries: for (qi, e, skip) in &all {
        let q = &queues[*qi];
        for (i, line) in e.recs.split('\n').enumerate() {
            if skip.is_some_and(|s| i <= s) || line.is_empty() {
                continue;
            }
            pos.insert(q.clone(), format!("{}.{i}", e.id));
            let ev = record(q, e, line, encode_cursor(&pos))?;
            let st_ok = p.state.is_none_or(|s| ev.to == Some(s));
            if st_ok {
                recs.push((*qi, ev));
            }
            // Enough candidates for the page: the filters can only drop some of them.
            if p.kind.is_none() && recs.len() == p.limit {
                break 'entries;
            }
        }
        pos.insert(q.clone(), e.id.clone());
    }
    resolve_kinds(b, &mut recs).await?;
    let mut events = Vec::new();
    let mut last_cursor = None;
    for (_, ev) in recs {
        let keep = p.kind.as_deref().is_none_or(|k| ev.kind == k);
        if keep {
            last_cursor = Some(ev.cursor.clone());
            events.push(ev);
            if events.len() == p.limit {
                break;
            }
        }
    }
    // A full page resumes after its last event; otherwise after everything examined.
    let cursor = if events.len() == p.limit {
        last_cursor.expect("a full page has a last event")
    } else {
        encode_cursor(&pos)
    };
    Ok(EventPage {
        events,
        cursor: Some(cursor),
    })
}

pub(crate) async fn prune(b: &RedisBackend, p: EventPruneParams) -> Result<u64> {
    let mut dropped = 0u64;
    for q in b.all_queues().await? {
        let key = b.qk(&q, "events");
        if let Some(n) = p.max_events {
            // Entries, not events: one entry holds the jobs one call moved.
            let before: u64 = b.query(redis::cmd("XLEN").arg(&key).clone()).await?;
            let _: u64 = b
                .query(
                    redis::cmd("XTRIM")
                        .arg(&key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(n.max(1))
                        .clone(),
                )
                .await?;
            let after: u64 = b.query(redis::cmd("XLEN").arg(&key).clone()).await?;
            dropped += before.saturating_sub(after);
        }
        if let Some(age) = p.max_age {
            let cutoff = b.now() - age.as_millis() as i64;
            // The oldest entries, a step at a time, up to the first young enough to keep;
            // the newest entry always stays.
            loop {
                let v: Value = b
                    .query(
                        redis::cmd("XRANGE")
                            .arg(&key)
                            .arg("-")
                            .arg("+")
                            .arg("COUNT")
                            .arg(AGE_STEP)
                            .clone(),
                    )
                    .await?;
                let entries = reply::array(v)?;
                let n = entries.len();
                let mut keep_from = None;
                let mut old = Vec::new();
                for e in entries {
                    let e = entry(e)?;
                    if e.at >= cutoff {
                        keep_from = Some(e.id);
                        break;
                    }
                    old.push(e);
                }
                if keep_from.is_none() && n < AGE_STEP {
                    // Every entry is old: keep the newest.
                    keep_from = old.pop().map(|e| e.id);
                }
                let Some(min_id) = keep_from
                    .or_else(|| old.last().map(|e| format!("{}-{}", e.key.0, e.key.1 + 1)))
                else {
                    break;
                };
                let events: u64 = old
                    .iter()
                    .map(|e| e.recs.split('\n').filter(|l| !l.is_empty()).count() as u64)
                    .sum();
                let gone: u64 = b
                    .query(
                        redis::cmd("XTRIM")
                            .arg(&key)
                            .arg("MINID")
                            .arg(min_id)
                            .clone(),
                    )
                    .await?;
                if gone > 0 {
                    dropped += events;
                }
                if n < AGE_STEP || gone == 0 {
                    break;
                }
            }
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let mut pos = Positions::new();
        pos.insert("a=b;c".into(), "17-3".into());
        pos.insert("q".into(), "0-1.4".into());
        let c = encode_cursor(&pos);
        assert_eq!(decode_cursor(&c).unwrap(), pos);
        for bad in ["", "12", "r2.zz", "r2.7b", "r2.7b2271223a2278227d", "1.0"] {
            assert!(
                matches!(decode_cursor(bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }
}
