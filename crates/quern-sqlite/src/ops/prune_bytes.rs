//! `job_prune_bytes`: retention by bytes. The finished jobs' bytes are kept in the one-row
//! `finished_bytes` table by triggers (migration 0022), so a pass within the budget reads one
//! row. Over it, the pass walks `jobs_finished` (finished jobs by `finished_at`) from the
//! oldest and deletes until the excess is covered or the limit is reached, as `job_prune`
//! deletes: a finished job a still-waiting job depends on is kept.

use quern::backend::{PruneBytesParams, PruneBytesReport};

use super::admin::delete_finished;
use crate::error::sql_err;
use crate::writer::Tx;

/// The finished jobs' bytes (the maintained total).
/// Adds job `id`, just inserted already finished, to the finished bytes (what migration
/// 0022's update trigger counts for a job that becomes finished later).
pub(crate) fn count_inserted(conn: &rusqlite::Connection, id: &[u8; 16]) -> quern::Result<()> {
    conn.prepare_cached(
        "UPDATE finished_bytes SET total = total + (SELECT length(payload) \
         + coalesce(length(result), 0) + coalesce(length(checkpoint), 0) FROM jobs WHERE id = ?1) \
         WHERE id = 0",
    )
    .and_then(|mut s| s.execute([id]))
    .map_err(sql_err)?;
    Ok(())
}

pub(crate) fn finished_bytes(conn: &rusqlite::Connection) -> quern::Result<u64> {
    conn.prepare_cached("SELECT total FROM finished_bytes WHERE id = 0")
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map(|n| n.max(0) as u64)
        .map_err(sql_err)
}

pub(crate) fn prune_bytes(tx: &mut Tx<'_>, p: PruneBytesParams) -> quern::Result<PruneBytesReport> {
    let total = finished_bytes(tx.conn)?;
    let mut report = PruneBytesReport {
        finished_bytes: total,
        ..Default::default()
    };
    if total <= p.max_bytes {
        return Ok(report);
    }
    let excess = total - p.max_bytes;
    let limit = p.limit.max(1);
    let mut victims: Vec<[u8; 16]> = Vec::new();
    {
        let mut stmt = tx
            .conn
            .prepare_cached(
                "SELECT id, length(payload) + coalesce(length(result), 0) + coalesce(length(checkpoint), 0) \
                 FROM jobs j INDEXED BY jobs_finished WHERE finished_at IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM job_deps d JOIN jobs w ON w.id = d.job_id \
                                 WHERE d.dep_id = j.id AND w.state IN (0, 1, 2, 3)) \
                 ORDER BY finished_at",
            )
            .map_err(sql_err)?;
        let mut rows = stmt.query([]).map_err(sql_err)?;
        while report.bytes_freed < excess && victims.len() < limit {
            let Some(row) = rows.next().map_err(sql_err)? else {
                break;
            };
            let id: [u8; 16] = row.get(0).map_err(sql_err)?;
            let bytes: i64 = row.get(1).map_err(sql_err)?;
            victims.push(id);
            report.bytes_freed += bytes.max(0) as u64;
        }
    }
    if p.dry_run {
        report.jobs_deleted = victims.len() as u64;
        return Ok(report);
    }
    report.jobs_deleted = delete_finished(tx, &victims)?;
    Ok(report)
}
