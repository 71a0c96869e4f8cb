//! The operations, each a function run on the writer (inside the group transaction) or on a
//! reader. One file per area.

pub(crate) mod admin;
pub(crate) mod alerts;
pub(crate) mod claim;
pub(crate) mod coord;
pub(crate) mod counts;
pub(crate) mod deplist;
pub(crate) mod deps;
pub(crate) mod enqueue;
pub(crate) mod events;
pub(crate) mod gate;
pub(crate) mod groups;
pub(crate) mod import;
pub(crate) mod lease;
pub(crate) mod limits;
pub(crate) mod logs;
pub(crate) mod order;
pub(crate) mod prune_bytes;
pub(crate) mod read;
pub(crate) mod rollup;
pub(crate) mod schedule;
pub(crate) mod spawn;
pub(crate) mod workflow;

use rusqlite::{Connection, OptionalExtension};

use crate::error::sql_err;
use quern::{JobId, JobState};

/// A job's state, or `None` if it does not exist.
pub(crate) fn state_of(conn: &Connection, id: JobId) -> quern::Result<Option<JobState>> {
    let n: Option<i64> = conn
        .prepare_cached("SELECT state FROM jobs WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_bytes()], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    Ok(n.and_then(JobState::from_i64))
}
