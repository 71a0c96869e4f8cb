//! How the writer records job events (migration `0020_events.sql`), per operation rather
//! than per job row.
//!
//! Two places, both written inside the operation's transaction:
//!
//! - the job's own timeline, `jobs.events`: the statement that changes a job's state
//!   appends one text line to the column in the same row write ([`timeline_sql`] builds the
//!   expression; the INSERT of a new job writes its first line, [`timeline_line`]). Reading
//!   a timeline is one row read; a pruned or deleted job takes its timeline with it.
//! - the stream, `job_events`: the operations push one record per job they move into the
//!   writer's [`EventBuf`]; when the operation returns, [`flush`] writes one row per queue
//!   it touched, packing its records (a batch enqueue of 1,000 jobs is one row). A failed
//!   operation's records are dropped with its savepoint.
//!
//! A record in `job_events.recs`: the job id (16 bytes), from and to (one byte each, the
//! state integer, 255 for none), the attempt (u32, little-endian), the kind's length (u16,
//! little-endian) and the kind (UTF-8). The row holds `at` (the group's clock reading) and
//! the operation's actor once.

use quern::model::JobEvent;
use quern::{JobId, JobState, Millis};
use rusqlite::Connection;

use crate::error::sql_err;

/// The byte for "no state" in a packed record.
const NONE: u8 = 255;

/// The records of the running operation, by queue (few queues per operation, so a list).
#[derive(Clone, Default)]
pub(crate) struct EventBuf {
    rows: Vec<(i64, i64, Vec<u8>)>,
}

fn state_byte(s: Option<JobState>) -> u8 {
    s.map_or(NONE, |s| s.as_i64() as u8)
}

fn byte_state(b: u8) -> rusqlite::Result<Option<JobState>> {
    if b == NONE {
        return Ok(None);
    }
    crate::rows::state_from_i64(i64::from(b)).map(Some)
}

impl EventBuf {
    /// Records that `job` (of `queue_id`, of `kind`) moved from `from` to `to` (`None`:
    /// just stored / deleted), with `attempt` after the move.
    pub(crate) fn push(
        &mut self,
        queue_id: i64,
        job: JobId,
        kind: &str,
        from: Option<JobState>,
        to: Option<JobState>,
        attempt: u32,
    ) {
        let row = match self.rows.iter_mut().rposition(|r| r.0 == queue_id) {
            Some(i) => &mut self.rows[i],
            None => {
                self.rows.push((queue_id, 0, Vec::with_capacity(64)));
                self.rows.last_mut().expect("just pushed")
            }
        };
        row.1 += 1;
        let b = &mut row.2;
        b.extend_from_slice(job.as_bytes());
        b.push(state_byte(from));
        b.push(state_byte(to));
        b.extend_from_slice(&attempt.to_le_bytes());
        let kind = &kind.as_bytes()[..kind.len().min(u16::MAX as usize)];
        b.extend_from_slice(&(kind.len() as u16).to_le_bytes());
        b.extend_from_slice(kind);
    }

    pub(crate) fn clear(&mut self) {
        self.rows.clear();
    }
}

/// Writes the running operation's records as one `job_events` row per queue.
pub(crate) fn flush(
    conn: &Connection,
    buf: &mut EventBuf,
    now: Millis,
    actor: Option<&str>,
) -> quern::Result<()> {
    if buf.rows.is_empty() {
        return Ok(());
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO job_events (at, queue_id, actor, n, recs) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(sql_err)?;
    for (queue_id, n, recs) in buf.rows.drain(..) {
        stmt.execute(rusqlite::params![now, queue_id, actor, n, recs])
            .map_err(sql_err)?;
    }
    Ok(())
}

/// One decoded record of a `job_events` row.
pub(crate) struct Rec {
    pub job: JobId,
    pub from: Option<JobState>,
    pub to: Option<JobState>,
    pub attempt: u32,
    pub kind: String,
}

/// Decodes a row's packed records.
pub(crate) fn unpack(recs: &[u8]) -> rusqlite::Result<Vec<Rec>> {
    let bad = || rusqlite::Error::InvalidColumnType(0, "recs".into(), rusqlite::types::Type::Blob);
    let mut out = Vec::new();
    let mut i = 0;
    while i < recs.len() {
        if recs.len() < i + 24 {
            return Err(bad());
        }
        let id: [u8; 16] = recs[i..i + 16].try_into().map_err(|_| bad())?;
        let from = byte_state(recs[i + 16])?;
        let to = byte_state(recs[i + 17])?;
        let attempt = u32::from_le_bytes(recs[i + 18..i + 22].try_into().map_err(|_| bad())?);
        let klen = u16::from_le_bytes(recs[i + 22..i + 24].try_into().map_err(|_| bad())?) as usize;
        i += 24;
        let kind = recs.get(i..i + klen).ok_or_else(bad)?;
        i += klen;
        out.push(Rec {
            job: JobId::from_bytes(id),
            from,
            to,
            attempt,
            kind: String::from_utf8_lossy(kind).into_owned(),
        });
    }
    Ok(out)
}

/// The text of a state in a timeline line.
fn state_text(s: Option<JobState>) -> String {
    s.map(|s| s.as_i64().to_string()).unwrap_or_default()
}

/// The actor as a timeline line holds it (no line break inside).
fn actor_text(actor: Option<&str>) -> String {
    actor
        .map(|a| a.replace(['\n', '\r'], " "))
        .unwrap_or_default()
}

/// The timeline line of a move whose every value the caller knows.
pub(crate) fn timeline_line(
    at: Millis,
    from: Option<JobState>,
    to: Option<JobState>,
    attempt: u32,
    actor: Option<&str>,
) -> String {
    format!(
        "{at},{},{},{attempt},{}\n",
        state_text(from),
        state_text(to),
        actor_text(actor)
    )
}

/// The `SET` assignment appending one line to `jobs.events`, for an UPDATE statement:
/// each argument is an SQL expression (a parameter such as `?3`, a column — which in a
/// `SET` reads the row's old value — or a literal). `actor` must be a text parameter
/// (bind [`actor_param`]).
pub(crate) fn timeline_sql(at: &str, from: &str, to: &str, attempt: &str, actor: &str) -> String {
    format!(
        "events = coalesce(events, '') || ({at} || ',' || {from} || ',' || {to} || ',' || \
         ({attempt}) || ',' || {actor} || char(10))"
    )
}

/// The actor as bound for [`timeline_sql`]'s `actor` parameter.
pub(crate) fn actor_param(actor: Option<&str>) -> String {
    actor_text(actor)
}

/// Decodes a job's `events` column into its timeline (the cursor of each is the job's
/// position in its own timeline, `t.N`: not a stream cursor).
pub(crate) fn parse_timeline(
    job: JobId,
    queue: &str,
    kind: &str,
    text: &str,
) -> quern::Result<Vec<JobEvent>> {
    let bad = |l: &str| quern::Error::Storage(format!("malformed timeline line {l:?}"));
    let st = |s: &str, l: &str| -> quern::Result<Option<JobState>> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<i64>()
            .ok()
            .and_then(JobState::from_i64)
            .map(Some)
            .ok_or_else(|| bad(l))
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut f = line.splitn(5, ',');
        let (Some(at), Some(from), Some(to), Some(attempt), Some(actor)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad(line));
        };
        out.push(JobEvent {
            cursor: format!("t.{i}"),
            job,
            queue: queue.to_string(),
            kind: kind.to_string(),
            from: st(from, line)?,
            to: st(to, line)?,
            attempt: attempt.parse().map_err(|_| bad(line))?,
            at: at.parse().map_err(|_| bad(line))?,
            actor: (!actor.is_empty()).then(|| actor.to_string()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut b = EventBuf::default();
        let (a, c) = (JobId::new(), JobId::new());
        b.push(1, a, "k.one", None, Some(JobState::Queued), 0);
        b.push(2, c, "", Some(JobState::Running), None, 7);
        b.push(
            1,
            c,
            "é",
            Some(JobState::Queued),
            Some(JobState::Running),
            1,
        );
        assert_eq!(b.rows.len(), 2);
        let r = unpack(&b.rows[0].2).unwrap();
        assert_eq!(b.rows[0].1, 2);
        assert_eq!(
            (r[0].job, r[0].from, r[0].to, r[0].attempt),
            (a, None, Some(JobState::Queued), 0)
        );
        assert_eq!(r[1].kind, "é");
        let r = unpack(&b.rows[1].2).unwrap();
        assert_eq!(
            (r[0].job, r[0].from, r[0].to, r[0].attempt),
            (c, Some(JobState::Running), None, 7)
        );
        assert!(unpack(&[1, 2, 3]).is_err());
        let line = timeline_line(
            5,
            None,
            Some(JobState::Queued),
            0,
            Some("ops@1.2.3.4:5,x\ny"),
        );
        let t = parse_timeline(a, "q", "k", &line).unwrap();
        assert_eq!(t[0].actor.as_deref(), Some("ops@1.2.3.4:5,x y"));
        assert_eq!(
            (t[0].at, t[0].from, t[0].to),
            (5, None, Some(JobState::Queued))
        );
    }
}
