//! Read-only queries: listing, queue stats, and what `work_wait` needs.

use std::collections::BTreeMap;

use quern::JobState;
use quern::backend::{JobPage, ListParams, QueueInfo};
use quern::model::StateCounts;
use rusqlite::{Connection, OptionalExtension};

use crate::error::sql_err;
use crate::rows::{JOB_COLS, job_from_row};

/// A list filtered by queue or state whose `jobs_claim` ranges hold fewer rows than this
/// reads those ranges (and sorts them by id) instead of walking the whole table newest
/// first: a filter that matches few jobs or none (an empty dead-letter queue among a
/// million jobs) then answers in a few index reads, where the walk would read every row.
/// A filter that matches more than this finds its page quickly on the walk anyway.
const RANGE_ROWS: i64 = 4096;

/// The rows of `jobs_claim` ranges a queue/state filter covers, counted up to
/// [`RANGE_ROWS`]; `None` when they hold more (or the filter has neither).
fn small_ranges(conn: &Connection, p: &ListParams) -> quern::Result<Option<Vec<i64>>> {
    let f = &p.filter;
    if f.queue.is_none() && f.state.is_none() {
        return Ok(None);
    }
    let queues: Vec<i64> = conn
        .prepare_cached("SELECT id FROM queues WHERE ?1 IS NULL OR name = ?1")
        .and_then(|mut s| {
            s.query_map([&f.queue], |r| r.get(0))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_err)?;
    let sql = match f.state {
        Some(_) => {
            "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE queue_id = ?1 AND state = ?2 LIMIT ?3)"
        }
        None => {
            "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE queue_id = ?1 AND ?2 IS NULL LIMIT ?3)"
        }
    };
    let mut rows = 0;
    for q in &queues {
        let n: i64 = conn
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(
                    rusqlite::params![q, f.state.map(JobState::as_i64), RANGE_ROWS - rows],
                    |r| r.get(0),
                )
            })
            .map_err(sql_err)?;
        rows += n;
        if rows >= RANGE_ROWS {
            return Ok(None);
        }
    }
    Ok(Some(queues))
}

/// [`list`] through the small `jobs_claim` ranges of `queues`: each range's newest
/// `limit + 1` matches, merged newest first.
fn list_ranges(
    conn: &Connection,
    p: &ListParams,
    queues: &[i64],
    limit: usize,
) -> quern::Result<Vec<quern::Job>> {
    let f = &p.filter;
    let sql = format!(
        "SELECT {JOB_COLS} FROM jobs WHERE queue_id = ?1 AND {} \
         AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR workflow_id = ?4) AND (?5 IS NULL OR id < ?5) \
         ORDER BY id DESC LIMIT ?6",
        if f.state.is_some() {
            "state = ?2"
        } else {
            "?2 IS NULL"
        }
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let mut jobs = Vec::new();
    for q in queues {
        let rows: Vec<quern::Job> = stmt
            .query_map(
                rusqlite::params![
                    q,
                    f.state.map(JobState::as_i64),
                    f.kind,
                    f.workflow_id,
                    p.before.map(|id| id.as_bytes().to_vec()),
                    (limit + 1) as i64,
                ],
                job_from_row,
            )
            .and_then(|rows| rows.collect())
            .map_err(sql_err)?;
        jobs.extend(rows);
    }
    jobs.sort_by_key(|j| std::cmp::Reverse(j.id));
    jobs.truncate(limit + 1);
    Ok(jobs)
}

pub(crate) fn list(conn: &Connection, p: ListParams) -> quern::Result<JobPage> {
    let limit = p.limit.clamp(1, 10_000);
    if let Some(queues) = small_ranges(conn, &p)? {
        let mut jobs = list_ranges(conn, &p, &queues, limit)?;
        let next = if jobs.len() > limit {
            jobs.truncate(limit);
            jobs.last().map(|j| j.id)
        } else {
            None
        };
        return Ok(JobPage { jobs, next });
    }
    let f = &p.filter;
    let sql = format!(
        "SELECT {JOB_COLS} FROM jobs WHERE (?1 IS NULL OR queue_id = (SELECT id FROM queues WHERE name = ?1)) AND (?2 IS NULL OR state = ?2) \
         AND (?3 IS NULL OR kind = ?3) AND (?4 IS NULL OR workflow_id = ?4) AND (?5 IS NULL OR id < ?5) \
         ORDER BY id DESC LIMIT ?6"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
    let jobs: Vec<quern::Job> = stmt
        .query_map(
            rusqlite::params![
                f.queue,
                f.state.map(JobState::as_i64),
                f.kind,
                f.workflow_id,
                p.before.map(|id| id.as_bytes().to_vec()),
                (limit + 1) as i64,
            ],
            job_from_row,
        )
        .and_then(|rows| rows.collect())
        .map_err(sql_err)?;
    let mut jobs = jobs;
    let next = if jobs.len() > limit {
        jobs.truncate(limit);
        jobs.last().map(|j| j.id)
    } else {
        None
    };
    Ok(JobPage { jobs, next })
}

/// `queue_list` (or, with `only`, `queue_stats`): each queue's settings row, its counts from
/// `queue_counts` and, when it has queued jobs, the oldest one's `run_at` (ten index seeks).
pub(crate) fn queues(conn: &Connection, only: Option<&str>) -> quern::Result<Vec<QueueInfo>> {
    let rows: Vec<(i64, String, i64)> = conn
        .prepare_cached(
            "SELECT id, name, paused FROM queues WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
        )
        .and_then(|mut s| {
            s.query_map([only], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_err)?;
    let mut infos: BTreeMap<i64, QueueInfo> = BTreeMap::new();
    for (id, name, paused) in rows {
        let counts = StateCounts::default();
        infos.insert(
            id,
            QueueInfo {
                name,
                paused: paused != 0,
                counts,
                oldest_queued_at: None,
            },
        );
    }
    // The maintained counts (ops/counts.rs), and the oldest waiting job of each queue that
    // has one from the head of each priority level: no count over the jobs.
    for (queue, per_state) in super::counts::stored(conn, only)? {
        let Some(info) = infos.get_mut(&queue) else {
            continue;
        };
        for state in JobState::ALL {
            *info.counts.get_mut(state) = per_state[state.as_i64() as usize].max(0) as u64;
        }
        if info.counts.queued > 0 {
            info.oldest_queued_at = super::counts::oldest_queued(conn, queue)?;
        }
    }
    let mut out: Vec<QueueInfo> = infos.into_values().collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The earliest `run_at` of any scheduled job.
pub(crate) fn next_due(conn: &Connection) -> quern::Result<Option<i64>> {
    conn.prepare_cached("SELECT min(run_at) FROM jobs WHERE state = 0")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(sql_err)
}

/// What `work_wait` learns about `queues`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Readiness {
    /// A claim now would take a job.
    pub ready: bool,
    /// The earliest time a rate-limited queue with ready jobs admits one again.
    pub next_at: Option<i64>,
    /// A queue with ready jobs is at its concurrency cap (it frees when a job ends).
    pub capped: bool,
}

/// Whether any of `queues` (unpaused) has a queued job more urgent than `below` (a
/// priority bound, [`super::claim::priority_bound`]) that its limits admit now: the
/// claim's admission ([`super::limits::admit`]), as a question.
pub(crate) fn readiness(
    conn: &Connection,
    queues: &[String],
    below: i64,
    now: i64,
) -> quern::Result<Readiness> {
    let mut out = Readiness::default();
    for q in queues {
        let Some(row) = super::limits::load(conn, q)? else {
            continue;
        };
        if row.paused || !has_ready(conn, &row, below, now)? {
            continue;
        }
        let running = match row.settings.concurrency {
            Some(_) => super::limits::running(conn, row.id)?,
            None => 0,
        };
        let a = super::limits::admit(&row, running, 1, now);
        // Kind and group rates and holds (ops/gate.rs): the claim's gate, as a question.
        let mut gate = super::gate::Gate::new(&row, now);
        if a.take > 0 && row.grouped && !super::groups::any_open(conn, &row, below, gate.as_mut())?
        {
            // Every group with ready jobs is at the group cap (frees when one ends) or
            // turned away by the gate (until its next token or the end of a hold).
            match gate.and_then(|g| g.next_at) {
                Some(t) => {
                    out.next_at = Some(out.next_at.map_or(t, |n: i64| n.min(t)));
                    out.capped |= row.settings.group_concurrency.is_some();
                }
                None => out.capped = true,
            }
            continue;
        }
        if a.take > 0
            && !row.grouped
            && let Some(g) = gate.as_mut()
            && super::gate::pick(conn, &row, g, 1, below, now)?.is_empty()
        {
            if let Some(t) = g.next_at {
                out.next_at = Some(out.next_at.map_or(t, |n: i64| n.min(t)));
            }
            continue;
        }
        if a.take > 0 {
            out.ready = true;
            return Ok(out);
        }
        out.capped |= a.capped;
        if let Some(t) = a.next_at {
            out.next_at = Some(out.next_at.map_or(t, |n: i64| n.min(t)));
        }
    }
    Ok(out)
}

/// Whether the queue has a queued job whose priority (effective, with aging) is below
/// `below`: one indexed probe, or with aging and a bound, the head of each level.
pub(crate) fn has_ready(
    conn: &Connection,
    row: &super::limits::QueueRow,
    below: i64,
    now: i64,
) -> quern::Result<bool> {
    if row.settings.aging.is_some() && below < 10 {
        return Ok(!super::order::pick_ids(conn, row.id, &row.settings, 1, below, now)?.is_empty());
    }
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM jobs WHERE queue_id = ?1 AND state = 1 AND priority < ?2 LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(rusqlite::params![row.id, below], |_| Ok(()))
                .optional()
        })
        .map_err(sql_err)?
        .is_some())
}

/// `PRAGMA data_version`: changes when another connection commits.
pub(crate) fn data_version(conn: &Connection) -> quern::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(sql_err)
}

/// `job_finished`: terminal jobs with `finished_at >= since`, through the partial index
/// `jobs_finished` (migration `jobs_finished`), filtered by queue and kind on the way.
pub(crate) fn finished(
    conn: &Connection,
    p: quern::backend::FinishedParams,
) -> quern::Result<Vec<quern::backend::FinishedJob>> {
    conn.prepare_cached(
        "SELECT j.id, q.name, j.kind, j.state, j.attempt, j.created_at, j.run_at, j.started_at, \
         j.finished_at FROM jobs j INDEXED BY jobs_finished JOIN queues q ON q.id = j.queue_id \
         WHERE j.finished_at >= ?1 AND j.finished_at IS NOT NULL \
         AND (?2 IS NULL OR q.name = ?2) AND (?3 IS NULL OR j.kind = ?3)",
    )
    .and_then(|mut s| {
        s.query_map(rusqlite::params![p.since, p.queue, p.kind], |r| {
            let id: [u8; 16] = r.get(0)?;
            Ok(quern::backend::FinishedJob {
                id: quern::JobId::from_bytes(id),
                queue: r.get(1)?,
                kind: r.get(2)?,
                state: crate::rows::state_from_i64(r.get(3)?)?,
                attempt: r.get::<_, i64>(4)? as u32,
                created_at: r.get(5)?,
                run_at: r.get(6)?,
                started_at: r.get(7)?,
                finished_at: r.get(8)?,
            })
        })
        .and_then(|rows| rows.collect())
    })
    .map_err(sql_err)
}
