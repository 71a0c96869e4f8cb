//! Per-job logs: the `job_logs` and `job_log_heads` tables (migration `job_logs`). Lines of a
//! deleted job go with it through the table's trigger.

use quern::backend::{JobLogPage, JobLogsParams, LogAppendParams, LogLevel, LogLine};
use quern::{Error, JobId};
use rusqlite::{Connection, OptionalExtension};

use super::state_of;
use crate::error::sql_err;
use crate::writer::Tx;

/// A job's head row: next sequence number, lines and bytes kept, lines dropped.
#[derive(Clone, Copy, Default)]
struct Head {
    next_seq: i64,
    lines: i64,
    bytes: i64,
    dropped: i64,
}

fn head(conn: &Connection, id: &JobId) -> quern::Result<Option<Head>> {
    conn.prepare_cached(
        "SELECT next_seq, lines, bytes, dropped FROM job_log_heads WHERE job_id = ?1",
    )
    .and_then(|mut s| {
        s.query_row([id.as_bytes()], |r| {
            Ok(Head {
                next_seq: r.get(0)?,
                lines: r.get(1)?,
                bytes: r.get(2)?,
                dropped: r.get(3)?,
            })
        })
        .optional()
    })
    .map_err(sql_err)
}

/// `job_log_append`: inserts each item's lines, then drops the oldest while a job is over a
/// cap. Lines of unknown jobs are dropped.
pub(crate) fn append(tx: &mut Tx<'_>, p: LogAppendParams) -> quern::Result<()> {
    let max_lines = i64::from(p.limits.max_lines);
    let max_bytes = i64::try_from(p.limits.max_bytes).unwrap_or(i64::MAX);
    for item in p.items {
        if item.lines.is_empty() || state_of(tx.conn, item.job_id)?.is_none() {
            continue;
        }
        let id = item.job_id;
        let mut h = head(tx.conn, &id)?.unwrap_or(Head {
            next_seq: 1,
            ..Head::default()
        });
        {
            let mut ins = tx
                .conn
                .prepare_cached(
                    "INSERT INTO job_logs (job_id, seq, at, level, attempt, message) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql_err)?;
            for l in &item.lines {
                ins.execute(rusqlite::params![
                    id.as_bytes(),
                    h.next_seq,
                    l.at,
                    l.level.as_i64(),
                    l.attempt,
                    l.message
                ])
                .map_err(sql_err)?;
                h.next_seq += 1;
                h.lines += 1;
                h.bytes += l.message.len() as i64;
            }
        }
        if h.lines > max_lines || h.bytes > max_bytes {
            drop_oldest(tx.conn, &id, &mut h, max_lines, max_bytes)?;
        }
        tx.conn
            .prepare_cached(
                "INSERT INTO job_log_heads (job_id, next_seq, lines, bytes, dropped) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (job_id) DO UPDATE SET \
                 next_seq = excluded.next_seq, lines = excluded.lines, bytes = excluded.bytes, \
                 dropped = excluded.dropped",
            )
            .and_then(|mut s| {
                s.execute(rusqlite::params![
                    id.as_bytes(),
                    h.next_seq,
                    h.lines,
                    h.bytes,
                    h.dropped
                ])
            })
            .map_err(sql_err)?;
    }
    Ok(())
}

/// Deletes the oldest lines until the job is within both caps: reads them oldest first
/// until enough are found, then deletes that prefix of the key range.
fn drop_oldest(
    conn: &Connection,
    id: &JobId,
    h: &mut Head,
    max_lines: i64,
    max_bytes: i64,
) -> quern::Result<()> {
    let mut last = None;
    {
        let mut s = conn
            .prepare_cached(
                "SELECT seq, length(CAST(message AS BLOB)) FROM job_logs WHERE job_id = ?1 \
                 ORDER BY seq",
            )
            .map_err(sql_err)?;
        let mut rows = s.query([id.as_bytes()]).map_err(sql_err)?;
        while h.lines > max_lines || h.bytes > max_bytes {
            let Some(r) = rows.next().map_err(sql_err)? else {
                break;
            };
            let seq: i64 = r.get(0).map_err(sql_err)?;
            let len: i64 = r.get(1).map_err(sql_err)?;
            h.lines -= 1;
            h.bytes -= len;
            h.dropped += 1;
            last = Some(seq);
        }
    }
    if let Some(last) = last {
        conn.prepare_cached("DELETE FROM job_logs WHERE job_id = ?1 AND seq <= ?2")
            .and_then(|mut s| s.execute(rusqlite::params![id.as_bytes(), last]))
            .map_err(sql_err)?;
    }
    Ok(())
}

/// `job_logs`: the kept lines after the cursor.
pub(crate) fn read(conn: &Connection, p: JobLogsParams) -> quern::Result<JobLogPage> {
    if state_of(conn, p.id)?.is_none() {
        return Err(Error::JobNotFound(p.id));
    }
    let dropped = head(conn, &p.id)?.map_or(0, |h| h.dropped);
    let after = i64::try_from(p.after).unwrap_or(i64::MAX);
    let limit = i64::try_from(p.limit).unwrap_or(i64::MAX);
    let lines = conn
        .prepare_cached(
            "SELECT seq, at, level, attempt, message FROM job_logs \
             WHERE job_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .and_then(|mut s| {
            s.query_map(rusqlite::params![p.id.as_bytes(), after, limit], |r| {
                Ok(LogLine {
                    seq: r.get::<_, i64>(0)? as u64,
                    at: r.get(1)?,
                    level: LogLevel::from_i64(r.get(2)?),
                    attempt: r.get::<_, i64>(3)? as u32,
                    message: r.get(4)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        })
        .map_err(sql_err)?;
    Ok(JobLogPage {
        lines,
        dropped: dropped as u64,
    })
}
