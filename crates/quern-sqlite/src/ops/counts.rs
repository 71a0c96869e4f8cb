//! The jobs of each queue in each state, kept in `queue_counts` (migration 0025), so
//! `queue_list` and `queue_stats` read a few rows instead of counting every job.
//!
//! No trigger keeps the table: SQLite runs a row trigger's program for every row a statement
//! touches, whether or not its `WHEN` holds, and that would tax every enqueue and claim
//! (docs/benchmarks.md, "Groups: the insert triggers"). Instead every writer path that
//! inserts, deletes or changes the state of a job row records the change here, in Rust, as a
//! delta per queue and state ([`Counts::add`], [`Counts::moved`]), and the writer adds the
//! deltas of a whole group of operations to the table with one upsert per queue (one row per
//! queue, a column per state, so a move is one row written) just before it commits
//! (`writer.rs`). The counts therefore commit, or roll back, with the rows they count.
//! Deltas rather than absolute values, so several processes writing one file (each with its
//! own writer, serialized by SQLite's write lock) add up.
//!
//! Until the commit the table lags the rows by the pending deltas, so no write operation
//! reads it. A read that runs on the writer (an in-memory database has no reader pool) gets
//! the pending deltas written first.
//!
//! [`check`] recomputes the counts from the rows and lists the differences: the conformance
//! suite runs it after every case against SQLite, so a path that forgets to record fails a
//! test.

use quern::JobState;
use rusqlite::Connection;

use crate::error::sql_err;

/// Jobs per state, indexed by `JobState::as_i64` (the order of `JobState::ALL` and of the
/// table's columns).
pub(crate) type PerState = [i64; 8];

/// Pending count changes, per queue id. An operation touches one queue or a few, so a short
/// list searched linearly beats a map.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts {
    queues: Vec<(i64, PerState)>,
}

impl Counts {
    fn slot(&mut self, queue_id: i64) -> &mut PerState {
        let i = match self.queues.iter().position(|(q, _)| *q == queue_id) {
            Some(i) => i,
            None => {
                self.queues.push((queue_id, [0; 8]));
                self.queues.len() - 1
            }
        };
        &mut self.queues[i].1
    }

    /// `n` more (or, negative, fewer) jobs of queue `queue_id` in `state`.
    pub(crate) fn add(&mut self, queue_id: i64, state: JobState, n: i64) {
        if n != 0 {
            self.slot(queue_id)[state.as_i64() as usize] += n;
        }
    }

    /// `n` jobs of queue `queue_id` moved from state `from` to `to`.
    pub(crate) fn moved(&mut self, queue_id: i64, from: JobState, to: JobState, n: i64) {
        if from != to && n != 0 {
            let s = self.slot(queue_id);
            s[from.as_i64() as usize] -= n;
            s[to.as_i64() as usize] += n;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queues.iter().all(|(_, d)| d.iter().all(|n| *n == 0))
    }

    pub(crate) fn clear(&mut self) {
        self.queues.clear();
    }

    /// Adds the pending changes to `queue_counts` (one upsert per queue that changed: a
    /// move between two states is one row written) and forgets them.
    pub(crate) fn flush(&mut self, conn: &Connection) -> quern::Result<()> {
        if self.queues.is_empty() {
            return Ok(());
        }
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO queue_counts (queue_id, scheduled, queued, blocked, running, \
                 succeeded, dead, cancelled, skipped) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (queue_id) DO UPDATE SET scheduled = scheduled + excluded.scheduled, \
                 queued = queued + excluded.queued, blocked = blocked + excluded.blocked, \
                 running = running + excluded.running, succeeded = succeeded + excluded.succeeded, \
                 dead = dead + excluded.dead, cancelled = cancelled + excluded.cancelled, \
                 skipped = skipped + excluded.skipped",
            )
            .map_err(sql_err)?;
        for (q, d) in self.queues.drain(..) {
            if d.iter().any(|n| *n != 0) {
                stmt.execute(rusqlite::params![
                    q, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
                ])
                .map_err(sql_err)?;
            }
        }
        Ok(())
    }
}

/// The stored counts of one queue or all: `(queue_id, jobs per state)`.
pub(crate) fn stored(conn: &Connection, only: Option<&str>) -> quern::Result<Vec<(i64, PerState)>> {
    conn.prepare_cached(
        "SELECT queue_id, scheduled, queued, blocked, running, succeeded, dead, cancelled, skipped \
         FROM queue_counts WHERE ?1 IS NULL OR queue_id = (SELECT id FROM queues WHERE name = ?1)",
    )
    .and_then(|mut s| {
        s.query_map([only], |r| {
            let mut d = [0; 8];
            for (i, n) in d.iter_mut().enumerate() {
                *n = r.get(i + 1)?;
            }
            Ok((r.get(0)?, d))
        })
        .and_then(|rows| rows.collect())
    })
    .map_err(sql_err)
}

/// [`oldest_queued`]'s statement. A plain `min(run_at) … WHERE queue_id = ?1 AND state = 1`
/// would read every queued job of the queue: `jobs_claim` orders them by priority first.
const OLDEST_QUEUED: &str = "SELECT min((SELECT min(run_at) FROM jobs WHERE queue_id = ?1 \
     AND state = 1 AND priority = p.column1)) \
     FROM (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) p";

/// The earliest `run_at` of queue `queue_id`'s queued jobs: the minimum of each priority
/// level's first entry in `jobs_claim` (queue_id, state, priority, run_at), ten index seeks,
/// however many jobs wait.
pub(crate) fn oldest_queued(conn: &Connection, queue_id: i64) -> quern::Result<Option<i64>> {
    conn.prepare_cached(OLDEST_QUEUED)
        .and_then(|mut s| s.query_row([queue_id], |r| r.get(0)))
        .map_err(sql_err)
}

/// Compares `queue_counts` with a count of the rows (a full scan of `jobs_claim`): one line
/// per queue and state where they differ, empty when they agree.
pub(crate) fn check(conn: &Connection) -> quern::Result<Vec<String>> {
    let counted: Vec<(i64, i64, i64)> = conn
        .prepare_cached("SELECT queue_id, state, count(*) FROM jobs GROUP BY queue_id, state")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_err)?;
    let mut all: std::collections::BTreeMap<i64, (PerState, PerState)> = Default::default();
    let mut out = Vec::new();
    for (q, s, n) in counted {
        match usize::try_from(s).ok().filter(|s| *s < 8) {
            Some(s) => all.entry(q).or_default().0[s] = n,
            None => out.push(format!("queue id {q}: {n} jobs in unknown state {s}")),
        }
    }
    for (q, d) in stored(conn, None)? {
        all.entry(q).or_default().1 = d;
    }
    for (q, (counted, stored)) in all {
        for state in JobState::ALL {
            let i = state.as_i64() as usize;
            if counted[i] != stored[i] {
                out.push(format!(
                    "queue id {q}, {state}: {} jobs, queue_counts says {}",
                    counted[i], stored[i]
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{MIGRATIONS, migrate, migrate_to};

    fn insert(conn: &Connection, queue_id: i64, state: JobState, priority: i64, run_at: i64) {
        conn.execute(
            "INSERT INTO jobs (id, queue_id, state, priority, run_at, kind, payload, payload_tag, \
             max_attempts, created_at) VALUES (randomblob(16), ?1, ?2, ?3, ?4, 'k', x'7b7d', 0, 3, 0)",
            rusqlite::params![queue_id, state.as_i64(), priority, run_at],
        )
        .unwrap();
    }

    /// A store written before the counts existed gets them from its rows when it upgrades.
    #[test]
    fn the_migration_counts_the_jobs_already_stored() {
        let mut conn = Connection::open_in_memory().unwrap();
        // The version just before the counts' migration (later ones may follow it).
        let before = MIGRATIONS
            .iter()
            .position(|(name, _)| *name == "queue_counts")
            .unwrap() as i64;
        migrate_to(&mut conn, before).unwrap();
        for _ in 0..3 {
            insert(&conn, 1, JobState::Queued, 5, 10);
        }
        insert(&conn, 1, JobState::Dead, 5, 10);
        insert(&conn, 2, JobState::Queued, 5, 10);
        migrate(&mut conn).unwrap();
        let mut got = stored(&conn, None).unwrap();
        got.sort();
        assert_eq!(
            got,
            vec![(1, [0, 3, 0, 0, 0, 1, 0, 0]), (2, [0, 1, 0, 0, 0, 0, 0, 0])]
        );
        assert!(check(&conn).unwrap().is_empty());
        // A count the writer failed to keep shows in the check.
        conn.execute("UPDATE queue_counts SET queued = 2 WHERE queue_id = 1", [])
            .unwrap();
        assert_eq!(
            check(&conn).unwrap(),
            vec!["queue id 1, queued: 3 jobs, queue_counts says 2".to_string()]
        );
    }

    /// The oldest waiting job comes from one seek per priority level of `jobs_claim`, the
    /// minimum over the levels.
    #[test]
    fn the_oldest_queued_job_takes_index_seeks() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        insert(&conn, 1, JobState::Queued, 2, 500);
        insert(&conn, 1, JobState::Queued, 7, 300);
        insert(&conn, 1, JobState::Queued, 7, 400);
        insert(&conn, 1, JobState::Scheduled, 0, 100);
        insert(&conn, 2, JobState::Queued, 0, 200);
        assert_eq!(oldest_queued(&conn, 1).unwrap(), Some(300));
        assert_eq!(oldest_queued(&conn, 3).unwrap(), None);
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {OLDEST_QUEUED}"))
            .unwrap()
            .query_map([1], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let on_jobs: Vec<&String> = plan.iter().filter(|l| l.contains("jobs")).collect();
        assert_eq!(
            on_jobs,
            vec![
                "SEARCH jobs USING COVERING INDEX jobs_claim (queue_id=? AND state=? AND priority=?)"
            ],
            "{plan:?}"
        );
    }
}
