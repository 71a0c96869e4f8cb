//! Calls fenced by a lease token: heartbeat, complete, fail, release.
//!
//! Each checks `state = running AND lease_epoch = token.epoch` in the same statement that
//! changes the row, so a stale token changes nothing and gets `LeaseLost`.

use quern::backend::{
    CompleteParams, Completion, FailAction, FailParams, Failure, HeartbeatParams, LeaseToken,
    ReleaseParams,
};
use quern::model::{ErrorKind, ErrorRecord};
use quern::{Error, JobState, Millis};
use rusqlite::OptionalExtension;

use super::rollup::Tally;
use super::{deps, spawn};
use crate::error::sql_err;
use crate::writer::Tx;

fn lost(t: &LeaseToken) -> Error {
    Error::LeaseLost { job_id: t.job_id }
}

pub(crate) fn heartbeat(
    tx: &mut Tx<'_>,
    p: HeartbeatParams,
) -> quern::Result<Vec<quern::Result<Millis>>> {
    let deadline = tx.now + p.lease.as_millis() as i64;
    let mut out = Vec::with_capacity(p.items.len());
    for item in p.items {
        if let Err(e) = tx.st.limits.check_stored(item.checkpoint.as_ref()) {
            out.push(Err(e));
            continue;
        }
        let progress = item
            .progress
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| Error::Codec(e.to_string()))?;
        let n = tx
            .conn
            .prepare_cached(
                "UPDATE jobs SET lease_expires_at = ?3, progress = coalesce(?4, progress), \
                 checkpoint = CASE WHEN ?5 IS NULL THEN checkpoint ELSE ?5 END, \
                 checkpoint_tag = coalesce(?6, checkpoint_tag) \
                 WHERE id = ?1 AND state = 3 AND lease_epoch = ?2",
            )
            .and_then(|mut s| {
                s.execute(rusqlite::params![
                    item.token.job_id.as_bytes(),
                    item.token.epoch as i64,
                    deadline,
                    progress,
                    item.checkpoint.as_ref().map(|c| c.stored_bytes()),
                    item.checkpoint.as_ref().map(|c| c.tag() as i64),
                ])
            })
            .map_err(sql_err)?;
        out.push(if n == 1 {
            Ok(deadline)
        } else {
            Err(lost(&item.token))
        });
    }
    Ok(out)
}

pub(crate) fn complete(
    tx: &mut Tx<'_>,
    p: CompleteParams,
) -> quern::Result<Vec<quern::Result<()>>> {
    let mut out = Vec::with_capacity(p.items.len());
    let mut tally = Tally::default();
    for c in p.items {
        out.push(complete_one(tx, c, &mut tally)?);
    }
    tally.flush(tx)?;
    Ok(out)
}

/// Outer `Err` aborts the whole call (a storage failure); inner `Err` is this item's answer.
fn complete_one(
    tx: &mut Tx<'_>,
    c: Completion,
    tally: &mut Tally,
) -> quern::Result<quern::Result<()>> {
    if let Err(e) = tx.st.limits.check_stored(c.result.as_ref()) {
        return Ok(Err(e));
    }
    let expires = c
        .result
        .as_ref()
        .and(c.result_ttl)
        .map(|ttl| tx.now + ttl.as_millis() as i64);
    // The completion is derived from `finished_at` at read time: no timeline line, unless
    // an actor asked for it. Both statements bind the same parameters (the plain one checks
    // that `?8`, the actor, is empty), so one call serves both.
    let actor = tx.actor_param();
    const PLAIN: &str = "UPDATE jobs SET state = 4, finished_at = ?3, result = ?4, result_tag = ?5, \
             result_expires_at = ?6, lease_worker = NULL, lease_expires_at = NULL, \
             started_at = coalesce(max(min(?7, ?3), coalesce(claimed_at, 0)), started_at) \
             WHERE id = ?1 AND state = 3 AND lease_epoch = ?2 AND ?8 = '' \
             RETURNING queue_id, kind, attempt";
    let audited;
    let sql = if tx.st.actor.is_none() {
        PLAIN
    } else {
        audited = format!(
            "UPDATE jobs SET state = 4, finished_at = ?3, result = ?4, result_tag = ?5, \
             result_expires_at = ?6, lease_worker = NULL, lease_expires_at = NULL, \
             started_at = coalesce(max(min(?7, ?3), coalesce(claimed_at, 0)), started_at), {} \
             WHERE id = ?1 AND state = 3 AND lease_epoch = ?2 RETURNING queue_id, kind, attempt",
            crate::events::timeline_sql("?3", "3", "4", "attempt", "?8")
        );
        audited.as_str()
    };
    let moved: Option<(i64, String, i64)> = tx
        .conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_row(
                rusqlite::params![
                    c.token.job_id.as_bytes(),
                    c.token.epoch as i64,
                    tx.now,
                    c.result.as_ref().map(|r| r.stored_bytes()),
                    c.result.as_ref().map(|r| r.tag() as i64),
                    expires,
                    c.started_at,
                    actor,
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
        })
        .map_err(sql_err)?;
    let Some((queue_id, kind, attempt)) = moved else {
        return Ok(Err(lost(&c.token)));
    };
    tally.succeeded(queue_id);
    tx.event(
        queue_id,
        c.token.job_id,
        &kind,
        Some(JobState::Running),
        Some(JobState::Succeeded),
        attempt as u32,
    );
    tx.st
        .counts
        .moved(queue_id, JobState::Running, JobState::Succeeded, 1);
    deps::on_terminal(tx, c.token.job_id, JobState::Succeeded)?;
    Ok(Ok(()))
}

pub(crate) fn fail(tx: &mut Tx<'_>, p: FailParams) -> quern::Result<Vec<quern::Result<()>>> {
    let mut out = Vec::with_capacity(p.items.len());
    let mut tally = Tally::default();
    for f in p.items {
        out.push(fail_one(tx, f, &mut tally)?);
    }
    tally.flush(tx)?;
    Ok(out)
}

fn fail_one(tx: &mut Tx<'_>, f: Failure, tally: &mut Tally) -> quern::Result<quern::Result<()>> {
    if let FailAction::Spawn {
        children,
        checkpoint,
    } = f.action
    {
        return spawn::spawn(tx, &f.token, children, checkpoint);
    }
    type Row = (i64, i64, i64, String, i64, Option<i64>);
    let row: Option<Row> = tx
        .conn
        .prepare_cached(
            "SELECT attempt, max_attempts, queue_id, kind, run_at, claimed_at FROM jobs \
             WHERE id = ?1 AND state = 3 AND lease_epoch = ?2",
        )
        .and_then(|mut s| {
            s.query_row(
                rusqlite::params![f.token.job_id.as_bytes(), f.token.epoch as i64],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .optional()
        })
        .map_err(sql_err)?;
    let Some((attempt, max_attempts, queue_id, kind, due_at, claimed_at)) = row else {
        return Ok(Err(lost(&f.token)));
    };
    let id = f.token.job_id;
    // The record carries the attempt's claim and due times and the retry time, from which
    // the timeline is derived at read time (quern::model::job_timeline): the hot outcomes
    // write no timeline line of their own.
    let record = ErrorRecord {
        attempt: attempt as u32,
        at: tx.now,
        kind: f.error_kind,
        message: quern::model::truncate_error_message(&f.message),
        claimed_at,
        due_at: Some(due_at),
        retry_at: None,
    };
    let (state, run_at, attempt_delta, record) = match f.action {
        FailAction::Retry { retry_at: Some(at) } if attempt < max_attempts => (
            JobState::Scheduled,
            Some(at),
            0,
            Some(ErrorRecord {
                retry_at: Some(at),
                ..record
            }),
        ),
        FailAction::Retry { .. } | FailAction::Dead => (JobState::Dead, None, 0, Some(record)),
        FailAction::Snooze { run_at } => (JobState::Scheduled, Some(run_at), -1, None),
        FailAction::RateLimited { run_at } => {
            super::gate::hold(tx, id, run_at)?;
            (JobState::Scheduled, Some(run_at), -1, None)
        }
        FailAction::Cancel => (JobState::Cancelled, None, 0, Some(record)),
        FailAction::Skip => (
            JobState::Skipped,
            None,
            -1,
            Some(ErrorRecord {
                kind: ErrorKind::Skipped,
                ..record
            }),
        ),
        FailAction::Spawn { .. } => unreachable!("handled above"),
    };
    if matches!(f.action, FailAction::Retry { .. } | FailAction::Dead) {
        tally.failed(queue_id, state == JobState::Dead);
    }
    let record = record
        .map(|r| serde_json::to_string(&r))
        .transpose()
        .map_err(|e| Error::Codec(e.to_string()))?;
    let finished = state.is_terminal().then_some(tx.now);
    let new_attempt = (attempt + attempt_delta).max(0) as u32;
    // A stored timeline line only where the record cannot tell the move (a snooze records
    // no error: its claim and its move are kept as lines) or an actor asked for it.
    let mut line = String::new();
    if record.is_none()
        && let Some(c) = claimed_at
    {
        line = crate::events::timeline_line(
            c,
            Some(JobState::Queued),
            Some(JobState::Running),
            attempt as u32,
            None,
        );
    }
    if record.is_none() || tx.st.actor.is_some() {
        line.push_str(&crate::events::timeline_line(
            tx.now,
            Some(JobState::Running),
            Some(state),
            new_attempt,
            tx.st.actor.as_deref(),
        ));
    }
    let line = (!line.is_empty()).then_some(line);
    tx.conn
        .prepare_cached(
            "UPDATE jobs SET state = ?2, run_at = coalesce(?3, run_at), attempt = attempt + ?4, \
             finished_at = ?5, lease_worker = NULL, lease_expires_at = NULL, \
             started_at = coalesce(max(min(?7, ?8), coalesce(claimed_at, 0)), started_at), \
             errors = CASE WHEN ?6 IS NULL THEN errors \
                           ELSE json_insert(coalesce(errors, '[]'), '$[#]', json(?6)) END, \
             events = CASE WHEN ?9 IS NULL THEN events ELSE coalesce(events, '') || ?9 END \
             WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(rusqlite::params![
                id.as_bytes(),
                state.as_i64(),
                run_at,
                attempt_delta,
                finished,
                record,
                f.started_at,
                tx.now,
                line,
            ])
        })
        .map_err(sql_err)?;
    tx.event(
        queue_id,
        id,
        &kind,
        Some(JobState::Running),
        Some(state),
        new_attempt,
    );
    tx.st.counts.moved(queue_id, JobState::Running, state, 1);
    if state.is_terminal() {
        deps::on_terminal(tx, id, state)?;
    } else {
        tx.st.wake = true;
    }
    Ok(Ok(()))
}

pub(crate) fn release(tx: &mut Tx<'_>, p: ReleaseParams) -> quern::Result<Vec<quern::Result<()>>> {
    let mut out = Vec::with_capacity(p.tokens.len());
    let actor = tx.actor_param();
    for t in p.tokens {
        let n = tx
            .conn
            // Two lines: the claim being given back (the next claim overwrites `claimed_at`,
            // which the timeline derives claims from) and the release itself.
            .prepare_cached(
                "UPDATE jobs SET state = 1, attempt = max(attempt - 1, 0), lease_worker = NULL, \
                 lease_expires_at = NULL, events = coalesce(events, '') || \
                 CASE WHEN claimed_at IS NULL THEN '' \
                      ELSE claimed_at || ',1,3,' || attempt || ',' || char(10) END || \
                 (?3 || ',3,1,' || max(attempt - 1, 0) || ',' || ?4 || char(10)) \
                 WHERE id = ?1 AND state = 3 AND lease_epoch = ?2 \
                 RETURNING queue_id, kind, attempt",
            )
            .and_then(|mut s| {
                s.query_row(
                    rusqlite::params![t.job_id.as_bytes(), t.epoch as i64, tx.now, actor],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    },
                )
                .optional()
            })
            .map_err(sql_err)?;
        if let Some((queue_id, kind, attempt)) = n {
            tx.event(
                queue_id,
                t.job_id,
                &kind,
                Some(JobState::Running),
                Some(JobState::Queued),
                attempt as u32,
            );
            tx.st
                .counts
                .moved(queue_id, JobState::Running, JobState::Queued, 1);
            tx.st.wake = true;
            out.push(Ok(()));
        } else {
            out.push(Err(lost(&t)));
        }
    }
    Ok(out)
}
