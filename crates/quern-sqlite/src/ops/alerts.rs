//! Alert rule states (compare-and-set per rule) and the operator's delete of finished jobs.

use quern::backend::{AlertStatePutParams, AlertStateRecord, JobDeleteParams, JobDeleteReport};
use quern::{Error, JobState};
use rusqlite::{Connection, OptionalExtension};

use super::deplist;
use crate::error::sql_err;
use crate::writer::Tx;

pub(crate) fn alert_state_list(conn: &Connection) -> quern::Result<Vec<AlertStateRecord>> {
    conn.prepare_cached("SELECT name, version, state FROM alert_state ORDER BY name")
        .and_then(|mut s| {
            s.query_map([], |r| {
                Ok(AlertStateRecord {
                    name: r.get(0)?,
                    version: r.get::<_, i64>(1)? as u64,
                    state: r.get(2)?,
                })
            })
            .and_then(|rows| rows.collect())
        })
        .map_err(sql_err)
}

pub(crate) fn alert_state_put(
    tx: &mut Tx<'_>,
    p: AlertStatePutParams,
) -> quern::Result<Option<u64>> {
    let stored: Option<i64> = tx
        .conn
        .prepare_cached("SELECT version FROM alert_state WHERE name = ?1")
        .and_then(|mut s| s.query_row([&p.name], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    if stored.unwrap_or(0) as u64 != p.expect {
        return Ok(None);
    }
    let next = p.expect + 1;
    tx.conn
        .prepare_cached(
            "INSERT INTO alert_state (name, version, state) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, state = excluded.state",
        )
        .and_then(|mut s| s.execute(rusqlite::params![p.name, next as i64, p.state]))
        .map_err(sql_err)?;
    Ok(Some(next))
}

/// Checks every id first (all or nothing), then deletes as `admin::prune` does: the row
/// (its unique key is a column of it, its log lines go by trigger), the edges naming it
/// as a dependency, and its dependency list.
pub(crate) fn job_delete(tx: &mut Tx<'_>, p: JobDeleteParams) -> quern::Result<JobDeleteReport> {
    let mut ids: Vec<quern::JobId> = Vec::with_capacity(p.ids.len());
    for id in p.ids {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    for id in &ids {
        let state: Option<i64> = tx
            .conn
            .prepare_cached("SELECT state FROM jobs WHERE id = ?1")
            .and_then(|mut s| s.query_row([id.as_bytes()], |r| r.get(0)).optional())
            .map_err(sql_err)?;
        let Some(state) = state else {
            return Err(Error::JobNotFound(*id));
        };
        let state = JobState::from_i64(state)
            .ok_or_else(|| Error::Storage(format!("job {id} has an unknown state {state}")))?;
        if !state.is_terminal() {
            return Err(Error::InvalidTransition {
                id: *id,
                from: state,
                action: "delete",
            });
        }
    }
    if p.dry_run {
        return Ok(JobDeleteReport {
            deleted: ids.len() as u64,
        });
    }
    let mut deleted = 0u64;
    for id in &ids {
        let key = id.as_bytes();
        super::events::deleting(tx, key)?;
        let gone: Option<(i64, JobState)> = tx
            .conn
            .prepare_cached("DELETE FROM jobs WHERE id = ?1 RETURNING queue_id, state")
            .and_then(|mut s| {
                s.query_row([key], |r| {
                    Ok((r.get(0)?, crate::rows::state_from_i64(r.get(1)?)?))
                })
                .optional()
            })
            .map_err(sql_err)?;
        if let Some((queue_id, state)) = gone {
            deleted += 1;
            tx.st.counts.add(queue_id, state, -1);
        }
        tx.conn
            .prepare_cached("DELETE FROM job_deps WHERE dep_id = ?1")
            .and_then(|mut s| s.execute([key]))
            .map_err(sql_err)?;
        deplist::forget(tx.conn, key)?;
    }
    Ok(JobDeleteReport { deleted })
}
