//! Reading a `jobs` row into a [`Job`], and the small encodings the table uses.

use quern::model::{ErrorRecord, Progress};
use quern::{Job, JobId, JobState, Payload, Priority, Trigger};
use rusqlite::Row;
use std::time::Duration;

/// The column list every job query selects, in the order [`job_from_row`] reads.
/// The expression [`JOB_COLS`] uses for the queue name.
pub(crate) const QUEUE_NAME_COL: &str = "(SELECT name FROM queues WHERE queues.id = jobs.queue_id)";

pub(crate) const JOB_COLS: &str = concat!(
    "id, (SELECT name FROM queues WHERE queues.id = jobs.queue_id), state, priority, run_at, kind, payload, payload_tag, \
    attempt, max_attempts, lease_epoch, created_at, started_at, finished_at, lease_worker, \
    lease_expires_at, retry, timeout_ms, unique_key, unique_for_ms, ",
    crate::deps_expr!(),
    ", trigger_rule, \
    workflow_id, tags, meta, version, result, result_tag, result_expires_at, errors, progress, \
    checkpoint, checkpoint_tag, claimed_at, result_ttl_ms, traceparent, tracestate, grp"
);

/// The SQL expression for a job's dependency list, inline or kept in `job_dep_lists` (see
/// `ops/deplist.rs`). A macro so that [`JOB_COLS`] can include it at compile time.
#[macro_export]
#[doc(hidden)]
macro_rules! deps_expr {
    () => {
        "CASE WHEN depends_on IS NOT NULL OR deps_total IS NULL THEN depends_on \
         ELSE (SELECT ids FROM job_dep_lists WHERE job_dep_lists.job_id = jobs.id) END"
    };
}

fn conv<E: std::fmt::Display>(col: usize, e: E) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        col,
        rusqlite::types::Type::Blob,
        e.to_string().into(),
    )
}

fn json_col<T: serde::de::DeserializeOwned>(
    row: &Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<T>> {
    match row.get_ref(i)?.as_str_or_null()? {
        None => Ok(None),
        Some(s) => serde_json::from_str(s).map(Some).map_err(|e| conv(i, e)),
    }
}

fn payload_col(row: &Row<'_>, data: usize, tag: usize) -> rusqlite::Result<Option<Payload>> {
    let bytes: Option<Vec<u8>> = row.get(data)?;
    let tag: Option<i64> = row.get(tag)?;
    match (bytes, tag) {
        (Some(b), Some(t)) => Payload::from_stored(t as u8, b)
            .map(Some)
            .map_err(|e| conv(data, e)),
        _ => Ok(None),
    }
}

/// Encodes a dependency list as concatenated 16-byte ids.
pub(crate) fn encode_ids(ids: &[JobId]) -> Option<Vec<u8>> {
    if ids.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(ids.len() * 16);
    for id in ids {
        out.extend_from_slice(id.as_bytes());
    }
    Some(out)
}

/// Decodes [`encode_ids`].
pub(crate) fn decode_ids(b: &[u8]) -> Vec<JobId> {
    b.chunks_exact(16)
        .map(|c| JobId::from_bytes(c.try_into().expect("chunk of 16")))
        .collect()
}

pub(crate) fn state_from_i64(n: i64) -> rusqlite::Result<JobState> {
    JobState::from_i64(n).ok_or_else(|| conv(2, format!("unknown state {n}")))
}

/// Reads one row selected with [`JOB_COLS`].
pub(crate) fn job_from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let id_bytes: [u8; 16] = row.get(0)?;
    let lease_worker: Option<String> = row.get(14)?;
    let lease_expires_at: Option<i64> = row.get(15)?;
    let deps: Option<Vec<u8>> = row.get(20)?;
    Ok(Job {
        id: JobId::from_bytes(id_bytes),
        queue: row.get(1)?,
        state: state_from_i64(row.get(2)?)?,
        priority: Priority::new(row.get::<_, i64>(3)? as u8).unwrap_or_default(),
        run_at: row.get(4)?,
        kind: row.get(5)?,
        payload: payload_col(row, 6, 7)?.unwrap_or_default(),
        attempt: row.get::<_, i64>(8)? as u32,
        max_attempts: row.get::<_, i64>(9)? as u32,
        lease_epoch: row.get::<_, i64>(10)? as u64,
        created_at: row.get(11)?,
        started_at: row.get(12)?,
        finished_at: row.get(13)?,
        lease: match (lease_worker, lease_expires_at) {
            (Some(worker_id), Some(expires_at)) => Some(quern::model::Lease {
                worker_id,
                expires_at,
            }),
            _ => None,
        },
        retry: json_col(row, 16)?,
        timeout: row
            .get::<_, Option<i64>>(17)?
            .map(|ms| Duration::from_millis(ms as u64)),
        unique_key: row.get(18)?,
        unique_for: row
            .get::<_, Option<i64>>(19)?
            .map(|ms| Duration::from_millis(ms as u64)),
        depends_on: deps.as_deref().map(decode_ids).unwrap_or_default(),
        trigger: Trigger::from_code(row.get(21)?).map_err(|e| conv(21, e))?,
        workflow_id: row.get(22)?,
        tags: json_col(row, 23)?.unwrap_or_default(),
        meta: json_col(row, 24)?.unwrap_or(serde_json::Value::Null),
        version: row.get::<_, i64>(25)? as u32,
        result: payload_col(row, 26, 27)?,
        result_expires_at: row.get(28)?,
        errors: json_col::<Vec<ErrorRecord>>(row, 29)?.unwrap_or_default(),
        progress: json_col::<Progress>(row, 30)?,
        checkpoint: payload_col(row, 31, 32)?,
        claimed_at: row.get(33)?,
        result_ttl: row
            .get::<_, Option<i64>>(34)?
            .map(|ms| Duration::from_millis(ms as u64)),
        trace: row
            .get::<_, Option<String>>(35)?
            .map(|traceparent| -> rusqlite::Result<_> {
                Ok(quern::model::TraceContext {
                    traceparent,
                    tracestate: row.get(36)?,
                })
            })
            .transpose()?,
        // '' is the "" group of a grouped queue: a job stored without a group.
        group: row.get::<_, Option<String>>(37)?.filter(|g| !g.is_empty()),
    })
}
