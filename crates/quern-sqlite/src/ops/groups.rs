//! Job groups (migration 0016): round-robin between a queue's groups and the per-group
//! concurrency cap, inside the claim's transaction.
//!
//! A queue pays for groups only once it has had a grouped job (`queues.grouped`). From then
//! on every live job of it has a group ('' for the jobs without one), `queue_groups` counts
//! each group's ready jobs (set at insert by [`group_for_insert`] and [`count_inserted`],
//! then kept by the update and delete triggers on `jobs`, so no path that changes a state
//! can forget), and the
//! claim serves the groups with ready jobs least recently served first, one job per group
//! per round. Each step is an index seek: the rotation index for the next groups, then
//! `jobs_group` (queue, group, state, priority, run_at) for a group's head job and its
//! running count. No job of a group the claim does not serve is read, so a group with
//! 10,000 waiting jobs costs a claim the same as one with 10.

use quern::Result;
use rusqlite::{Connection, OptionalExtension};

use super::limits::QueueRow;
use crate::error::sql_err;
use crate::rows::{JOB_COLS, QUEUE_NAME_COL, job_from_row};
use crate::writer::Tx;

/// Most groups one claim considers (those with ready jobs, least recently served first).
/// A group at its cap or without a job under the claim's priority bound is passed over, so
/// more than 256 such groups ahead of an open one make that claim come back short; the
/// next claim rotates past them.
const GROUP_PROBE: i64 = 256;

/// The group a job row is stored with: its own (marking the queue grouped), '' when it has
/// none, is live and its queue is grouped, else none. Called by each path that inserts job
/// rows, before the insert; [`count_inserted`] after it.
pub(crate) fn group_for_insert<'g>(
    tx: &mut Tx<'_>,
    queue_id: i64,
    group: Option<&'g str>,
    state: quern::JobState,
) -> Result<Option<&'g str>> {
    if let Some(g) = group {
        mark_grouped(tx, queue_id)?;
        return Ok(Some(g));
    }
    if state.is_terminal() {
        return Ok(None);
    }
    let grouped = match tx.st.grouped.get(&queue_id) {
        Some(g) => *g,
        None => {
            let g = tx
                .conn
                .prepare_cached("SELECT grouped FROM queues WHERE id = ?1")
                .and_then(|mut s| s.query_row([queue_id], |r| r.get::<_, i64>(0)))
                .map_err(sql_err)?
                != 0;
            tx.st.grouped.insert(queue_id, g);
            g
        }
    };
    Ok(grouped.then_some(""))
}

/// Counts an inserted job row into its group's ready jobs when it is ready (the update and
/// delete triggers of migration 0016 keep the count from then on).
pub(crate) fn count_inserted(
    tx: &Tx<'_>,
    queue_id: i64,
    group: Option<&str>,
    state: quern::JobState,
) -> Result<()> {
    let Some(g) = group else { return Ok(()) };
    if state != quern::JobState::Queued {
        return Ok(());
    }
    tx.conn
        .prepare_cached(
            "INSERT INTO queue_groups (queue_id, name, ready) VALUES (?1, ?2, 1) \
             ON CONFLICT (queue_id, name) DO UPDATE SET ready = ready + 1",
        )
        .and_then(|mut s| s.execute(rusqlite::params![queue_id, g]))
        .map_err(sql_err)?;
    Ok(())
}

/// Marks queue `queue_id` as grouped, the first time one of its jobs has a group, and puts
/// its live jobs without a group in the "" group.
fn mark_grouped(tx: &mut Tx<'_>, queue_id: i64) -> Result<()> {
    if tx.st.grouped.get(&queue_id) == Some(&true) {
        return Ok(());
    }
    let flipped = tx
        .conn
        .prepare_cached("UPDATE queues SET grouped = 1 WHERE id = ?1 AND grouped = 0")
        .and_then(|mut s| s.execute([queue_id]))
        .map_err(sql_err)?;
    if flipped == 1 {
        // Once per queue; the triggers count the ready ones into the "" group.
        tx.conn
            .prepare_cached(
                "UPDATE jobs SET grp = '' WHERE queue_id = ?1 AND state IN (0, 1, 2, 3) \
                 AND grp IS NULL",
            )
            .and_then(|mut s| s.execute([queue_id]))
            .map_err(sql_err)?;
    }
    tx.st.grouped.insert(queue_id, true);
    Ok(())
}

/// The groups of the queue with ready jobs, least recently served first.
fn rotation(conn: &Connection, queue_id: i64) -> Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT name FROM queue_groups WHERE queue_id = ?1 AND ready > 0 \
         ORDER BY served, name LIMIT ?2",
    )
    .and_then(|mut s| {
        s.query_map(rusqlite::params![queue_id, GROUP_PROBE], |r| r.get(0))
            .and_then(|rows| rows.collect())
    })
    .map_err(sql_err)
}

/// Running jobs (active leases) of one group.
fn running(conn: &Connection, queue_id: i64, group: &str) -> Result<u64> {
    conn.prepare_cached("SELECT count(*) FROM jobs WHERE queue_id = ?1 AND grp = ?2 AND state = 3")
        .and_then(|mut s| s.query_row(rusqlite::params![queue_id, group], |r| r.get::<_, i64>(0)))
        .map(|n| n as u64)
        .map_err(sql_err)
}

/// Whether the group has a ready job under the priority bound.
fn has_head(conn: &Connection, queue_id: i64, group: &str, below: i64) -> Result<bool> {
    conn.prepare_cached(
        "SELECT 1 FROM jobs WHERE queue_id = ?1 AND grp = ?2 AND state = 1 AND priority < ?3 \
         LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row(rusqlite::params![queue_id, group, below], |_| Ok(()))
            .optional()
    })
    .map(|r| r.is_some())
    .map_err(sql_err)
}

/// For `work_wait`: whether some group of the grouped queue has a ready job under `below`
/// and room under the group cap (the claim's rule below, as a question).
pub(crate) fn any_open(conn: &Connection, row: &QueueRow, below: i64) -> Result<bool> {
    for g in rotation(conn, row.id)? {
        if let Some(cap) = row.settings.group_concurrency
            && running(conn, row.id, &g)? >= u64::from(cap)
        {
            continue;
        }
        if has_head(conn, row.id, &g, below)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Picks up to `n` ready jobs of grouped queue `row` round-robin over its groups (one per
/// group per round, least recently served first, each group's jobs in priority, due time,
/// id order), skipping groups at the group cap. Each job picked is leased by `lease` before
/// the next pick, so a group's next head is found by the same seek. Returns the jobs leased.
pub(crate) fn lease_round_robin(
    tx: &Tx<'_>,
    queue: &str,
    row: &QueueRow,
    n: usize,
    below: i64,
    mut lease: impl FnMut(quern::Job) -> Result<()>,
) -> Result<usize> {
    let cap = row.settings.group_concurrency.map(u64::from);
    let mut open: Vec<(String, u64)> = Vec::new();
    for g in rotation(tx.conn, row.id)? {
        let run = match cap {
            Some(_) => running(tx.conn, row.id, &g)?,
            None => 0,
        };
        open.push((g, run));
    }
    let mut head = tx
        .conn
        .prepare_cached(&format!(
            "SELECT {} FROM jobs WHERE queue_id = ?1 AND grp = ?2 AND state = 1 AND priority < ?4 \
             ORDER BY priority, run_at, id LIMIT 1",
            JOB_COLS.replacen(QUEUE_NAME_COL, "?3", 1)
        ))
        .map_err(sql_err)?;
    let mut served = tx
        .conn
        .prepare_cached("UPDATE queue_groups SET served = ?3 WHERE queue_id = ?1 AND name = ?2")
        .map_err(sql_err)?;
    let mut seq = row.group_seq;
    let mut got = 0;
    while got < n && !open.is_empty() {
        let mut i = 0;
        while i < open.len() && got < n {
            let (g, run) = &mut open[i];
            if cap.is_some_and(|c| *run >= c) {
                open.remove(i);
                continue;
            }
            let job = head
                .query_row(
                    rusqlite::params![row.id, g.as_str(), queue, below],
                    job_from_row,
                )
                .optional()
                .map_err(sql_err)?;
            let Some(job) = job else {
                open.remove(i);
                continue;
            };
            lease(job)?;
            *run += 1;
            seq += 1;
            served
                .execute(rusqlite::params![row.id, g.as_str(), seq])
                .map_err(sql_err)?;
            got += 1;
            i += 1;
        }
    }
    if seq != row.group_seq {
        tx.conn
            .prepare_cached("UPDATE queues SET group_seq = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(rusqlite::params![row.id, seq]))
            .map_err(sql_err)?;
    }
    Ok(got)
}
