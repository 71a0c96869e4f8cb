//! Outcomes per queue and minute (migration `rollups`, `Backend::stats_minutes`).
//!
//! `job_complete`, `job_fail` and `lease_rescue` tally their outcomes per queue while they
//! run and write the tally with one upsert per queue at the end of the call, in the same
//! transaction: a batch of a thousand completions costs one statement, not a thousand, and
//! the counts commit (or roll back) with the transitions they count.

use quern::backend::{MINUTE_MS, MinuteCounts, MinutesParams, ROLLUP_KEEP_MS};
use rusqlite::Connection;

use crate::error::sql_err;
use crate::writer::Tx;

const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// What one call counted, per queue id. A call touches one queue or a few, so a short list
/// searched linearly beats a map.
#[derive(Default)]
pub(crate) struct Tally {
    /// `(queue_id, [succeeded, failed, dead])`.
    queues: Vec<(i64, [i64; 3])>,
}

impl Tally {
    fn slot(&mut self, queue_id: i64) -> &mut [i64; 3] {
        let i = match self.queues.iter().position(|(q, _)| *q == queue_id) {
            Some(i) => i,
            None => {
                self.queues.push((queue_id, [0; 3]));
                self.queues.len() - 1
            }
        };
        &mut self.queues[i].1
    }

    pub(crate) fn succeeded(&mut self, queue_id: i64) {
        self.slot(queue_id)[0] += 1;
    }

    /// An attempt that ended in an error; `dead` when the job is dead after it.
    pub(crate) fn failed(&mut self, queue_id: i64, dead: bool) {
        let s = self.slot(queue_id);
        s[1] += 1;
        s[2] += i64::from(dead);
    }

    /// Adds the tally to the rows of the transaction's minute. Once per day of the store's
    /// clock (per writer) it also deletes the rows older than [`ROLLUP_KEEP_MS`].
    pub(crate) fn flush(self, tx: &mut Tx<'_>) -> quern::Result<()> {
        if self.queues.is_empty() {
            return Ok(());
        }
        let minute = MinuteCounts::minute_of(tx.now);
        let mut st = tx
            .conn
            .prepare_cached(
                "INSERT INTO rollups (minute, queue_id, succeeded, failed, dead) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (minute, queue_id) DO UPDATE SET \
                 succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed, \
                 dead = dead + excluded.dead",
            )
            .map_err(sql_err)?;
        for (queue_id, [s, f, d]) in self.queues {
            st.execute(rusqlite::params![minute, queue_id, s, f, d])
                .map_err(sql_err)?;
        }
        let day = minute.div_euclid(DAY_MS);
        if tx.st.rollups_pruned_day != Some(day) {
            tx.conn
                .prepare_cached("DELETE FROM rollups WHERE minute < ?1")
                .and_then(|mut s| s.execute([minute - ROLLUP_KEEP_MS]))
                .map_err(sql_err)?;
            tx.st.rollups_pruned_day = Some(day);
        }
        Ok(())
    }
}

/// `stats_minutes`: one range of the primary key, joined to the queue names.
pub(crate) fn minutes(conn: &Connection, p: MinutesParams) -> quern::Result<Vec<MinuteCounts>> {
    conn.prepare_cached(
        "SELECT r.minute, q.name, r.succeeded, r.failed, r.dead FROM rollups r \
         JOIN queues q ON q.id = r.queue_id \
         WHERE r.minute >= ?1 AND (?2 IS NULL OR q.name = ?2) ORDER BY r.minute, q.name",
    )
    .and_then(|mut s| {
        s.query_map(
            rusqlite::params![MinuteCounts::minute_of(p.since), p.queue],
            |r| {
                Ok(MinuteCounts {
                    at: r.get(0)?,
                    queue: r.get(1)?,
                    succeeded: r.get::<_, i64>(2)? as u64,
                    failed: r.get::<_, i64>(3)? as u64,
                    dead: r.get::<_, i64>(4)? as u64,
                })
            },
        )
        .and_then(|rows| rows.collect())
    })
    .map_err(sql_err)
}
