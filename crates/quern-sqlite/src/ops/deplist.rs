//! Where a job's dependency list is kept: inline in its row (`jobs.depends_on`) when short,
//! in `job_dep_lists` when long (with `jobs.deps_total` giving its length).
//!
//! Why: settling a dependency updates the waiting job's counters, which rewrites its row. A
//! join over 10,000 tasks (or a fan-out parent waiting on 10,000 instances) would otherwise
//! carry a 160 KB list in that row, and each of the 10,000 updates would copy and compare it:
//! quadratic in the fan-in. Kept outside, each update touches a small row: O(1) per finished
//! dependency, as the counters intend.

use quern::JobId;
use rusqlite::{Connection, OptionalExtension};

use crate::error::sql_err;
use crate::rows::{decode_ids, encode_ids};

/// Lists longer than this many ids are kept outside the row.
pub(crate) const INLINE_MAX: usize = 32;

/// The SQL expression that reads a job's list wherever it is kept (in `jobs` queries).
/// Short-circuits for jobs with an inline list or none, so plain jobs never look further.
pub(crate) const DEPS_EXPR: &str = crate::deps_expr!();

/// The two columns to write for a list: the inline blob, or `deps_total` with the list
/// stored outside (replacing any earlier outside list of the job).
pub(crate) fn store(
    conn: &Connection,
    id: JobId,
    deps: &[JobId],
    fresh: bool,
) -> quern::Result<(Option<Vec<u8>>, Option<i64>)> {
    if deps.len() <= INLINE_MAX {
        if !fresh {
            conn.prepare_cached("DELETE FROM job_dep_lists WHERE job_id = ?1")
                .and_then(|mut s| s.execute([id.as_bytes()]))
                .map_err(sql_err)?;
        }
        return Ok((encode_ids(deps), None));
    }
    conn.prepare_cached("INSERT OR REPLACE INTO job_dep_lists (job_id, ids) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(rusqlite::params![id.as_bytes(), encode_ids(deps)]))
        .map_err(sql_err)?;
    Ok((None, Some(deps.len() as i64)))
}

/// A job's dependency list, or `None` when the job does not exist.
pub(crate) fn load(conn: &Connection, id: JobId) -> quern::Result<Option<Vec<JobId>>> {
    let blob: Option<Option<Vec<u8>>> = conn
        .prepare_cached(&format!("SELECT {DEPS_EXPR} FROM jobs WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id.as_bytes()], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    Ok(blob.map(|b| b.as_deref().map(decode_ids).unwrap_or_default()))
}

/// Forgets the outside list of a deleted job.
pub(crate) fn forget(conn: &Connection, id: &[u8]) -> quern::Result<()> {
    conn.prepare_cached("DELETE FROM job_dep_lists WHERE job_id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map(|_| ())
        .map_err(sql_err)
}
