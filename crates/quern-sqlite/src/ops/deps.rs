//! Dependency bookkeeping: unblocking and skip propagation.
//!
//! A blocked job keeps two counters over its dependencies: how many are terminal
//! (`deps_done`) and how many succeeded (`deps_ok`). When a job reaches a terminal state, each
//! blocked dependent's counters move by one and its trigger decides (`Trigger::resolve_counts`):
//! queue it, skip it, or keep waiting. A skip is itself terminal, so it propagates through a
//! worklist — all inside the caller's transaction, so a chain a→b→c→d is settled atomically.

use quern::{JobId, JobState};

use crate::error::sql_err;
use crate::writer::Tx;

fn dependents(tx: &Tx<'_>, id: JobId) -> quern::Result<Vec<JobId>> {
    let mut stmt = tx
        .conn
        .prepare_cached("SELECT job_id FROM job_deps WHERE dep_id = ?1")
        .map_err(sql_err)?;
    stmt.query_map([id.as_bytes()], |r| r.get::<_, [u8; 16]>(0))
        .and_then(|rows| rows.map(|r| r.map(JobId::from_bytes)).collect())
        .map_err(sql_err)
}

/// Job `id` just became terminal with `state`: settle its waiting dependents, transitively.
pub(crate) fn on_terminal(tx: &mut Tx<'_>, id: JobId, state: JobState) -> quern::Result<()> {
    let mut work = vec![(id, state)];
    while let Some((dep, dep_state)) = work.pop() {
        let ok = i64::from(dep_state == JobState::Succeeded);
        for job in dependents(tx, dep)? {
            let row: Option<(i64, i64, i64, i64, i64, i64)> = {
                let mut stmt = tx
                    .conn
                    .prepare_cached(
                        "UPDATE jobs SET deps_done = deps_done + 1, deps_ok = deps_ok + ?2 \
                         WHERE id = ?1 AND state = 2 \
                         RETURNING trigger_rule, deps_done, deps_ok, coalesce(deps_total, length(depends_on) / 16), run_at, \
                         queue_id",
                    )
                    .map_err(sql_err)?;
                let mut rows = stmt
                    .query(rusqlite::params![job.as_bytes(), ok])
                    .map_err(sql_err)?;
                match rows.next().map_err(sql_err)? {
                    Some(r) => Some((
                        r.get(0).map_err(sql_err)?,
                        r.get(1).map_err(sql_err)?,
                        r.get(2).map_err(sql_err)?,
                        r.get(3).map_err(sql_err)?,
                        r.get(4).map_err(sql_err)?,
                        r.get(5).map_err(sql_err)?,
                    )),
                    None => None,
                }
            };
            let Some((trigger, done, okc, total, run_at, queue_id)) = row else {
                continue;
            };
            match quern::Trigger::from_code(trigger)?.resolve_counts(
                total as usize,
                done as usize,
                okc as usize,
            ) {
                Some(JobState::Queued) => {
                    let next = if run_at > tx.now {
                        JobState::Scheduled
                    } else {
                        JobState::Queued
                    };
                    set_state(tx, job, next, None)?;
                    tx.st.counts.moved(queue_id, JobState::Blocked, next, 1);
                    tx.st.wake = true;
                }
                Some(JobState::Skipped) => {
                    set_state(tx, job, JobState::Skipped, Some(tx.now))?;
                    tx.st
                        .counts
                        .moved(queue_id, JobState::Blocked, JobState::Skipped, 1);
                    work.push((job, JobState::Skipped));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Job `id` left terminal state `old` (an operator retried it): its still-waiting dependents
/// count it as pending again.
pub(crate) fn on_reopened(tx: &mut Tx<'_>, id: JobId, old: JobState) -> quern::Result<()> {
    let ok = i64::from(old == JobState::Succeeded);
    let mut stmt = tx
        .conn
        .prepare_cached(
            "UPDATE jobs SET deps_done = max(deps_done - 1, 0), deps_ok = max(deps_ok - ?2, 0) \
             WHERE state = 2 AND id IN (SELECT job_id FROM job_deps WHERE dep_id = ?1)",
        )
        .map_err(sql_err)?;
    stmt.execute(rusqlite::params![id.as_bytes(), ok])
        .map_err(sql_err)?;
    Ok(())
}

fn set_state(
    tx: &Tx<'_>,
    id: JobId,
    state: JobState,
    finished_at: Option<i64>,
) -> quern::Result<()> {
    // Only a blocked job is settled (the caller's counter update checked `state = 2`).
    let (queue_id, kind, attempt): (i64, String, i64) = tx
        .conn
        .prepare_cached(&format!(
            "UPDATE jobs SET state = ?2, finished_at = ?3, {} WHERE id = ?1 \
             RETURNING queue_id, kind, attempt",
            crate::events::timeline_sql("?4", "2", "?2", "attempt", "?5")
        ))
        .and_then(|mut s| {
            s.query_row(
                rusqlite::params![
                    id.as_bytes(),
                    state.as_i64(),
                    finished_at,
                    tx.now,
                    tx.actor_param()
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .map_err(sql_err)?;
    tx.event(
        queue_id,
        id,
        &kind,
        Some(JobState::Blocked),
        Some(state),
        attempt as u32,
    );
    Ok(())
}
