//! `job_delete`: the operator's delete of finished jobs by id (the DLQ delete), all or
//! nothing, removing what the pruner removes (the job, its logs, its unique key).

use std::time::Duration;

use super::*;
use crate::Error;
use crate::backend::{
    FailAction, JobDeleteParams, JobDeleteReport, JobLogsParams, LogAppendItem, LogAppendParams,
    LogLevel, LogLimits, NewLogLine,
};
use crate::model::{JobId, JobState};

async fn delete(h: &Harness, ids: &[JobId], dry_run: bool) -> crate::Result<JobDeleteReport> {
    h.backend
        .job_delete(JobDeleteParams {
            ids: ids.to_vec(),
            dry_run,
        })
        .await
}

async fn dead(h: &Harness, kind: &str) -> JobId {
    let id = h.enqueue(job(kind)).await.id;
    h.claim_and_fail("default", id, FailAction::Dead).await;
    id
}

/// Dead, cancelled and succeeded jobs go, with their log lines; a succeeded job's unique key
/// (held for its window) is free again; the counts follow; other jobs stay.
pub async fn deletes_finished_jobs_with_their_logs_and_keys(h: Harness) {
    let d = dead(&h, "a").await;
    // In another queue: on Cluster another slot, checked before anything is deleted.
    let c = h.enqueue(job("b").queue("other")).await.id;
    h.cancel(c).await.unwrap();
    let ok = h
        .enqueue_and_claim(job("u").unique("k1", Some(Duration::from_secs(3600))))
        .await;
    h.complete(&ok.token).await;
    let other = dead(&h, "a").await;
    if h.caps().logs {
        h.backend
            .job_log_append(LogAppendParams {
                items: vec![LogAppendItem {
                    job_id: d,
                    lines: vec![NewLogLine {
                        at: h.now(),
                        level: LogLevel::Info,
                        attempt: 1,
                        message: "bye".into(),
                    }],
                }],
                limits: LogLimits::default(),
            })
            .await
            .unwrap();
    }
    let again = h
        .enqueue(job("u").unique("k1", Some(Duration::from_secs(3600))))
        .await;
    assert!(again.duplicate, "{}: the key holds after success", h.case);

    let r = delete(&h, &[d, c, ok.job.id, d], false).await.unwrap();
    assert_eq!(r.deleted, 3, "{}: each once: {r:?}", h.case);
    h.assert_absent(&[d, c, ok.job.id], "deleted").await;
    h.assert_state(other, JobState::Dead, "not named").await;
    let counts = h.stats("default").await.counts;
    assert_eq!(
        (counts.dead, counts.cancelled, counts.succeeded),
        (1, 0, 0),
        "{}: counts follow",
        h.case
    );
    if h.caps().logs {
        let logs = h
            .backend
            .job_logs(JobLogsParams {
                id: d,
                after: 0,
                limit: 10,
            })
            .await;
        assert!(
            matches!(&logs, Err(Error::JobNotFound(_)))
                || logs.as_ref().is_ok_and(|p| p.lines.is_empty()),
            "{}: lines went with the job: {logs:?}",
            h.case
        );
    }
    let fresh = h
        .enqueue(job("u").unique("k1", Some(Duration::from_secs(3600))))
        .await;
    assert!(!fresh.duplicate, "{}: the key is free again", h.case);
}

/// A live id (queued, running) or an unknown one refuses the whole call: nothing is deleted.
pub async fn live_or_unknown_id_deletes_nothing(h: Harness) {
    let d = dead(&h, "a").await;
    let queued = h.enqueue(job("q")).await.id;
    let err = delete(&h, &[d, queued], false).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidTransition { id, from: JobState::Queued, action: "delete" } if id == queued),
        "{}: {err:?}",
        h.case
    );
    let running = h.claim_id("default", queued).await;
    let err = delete(&h, &[d, running.job.id], false).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidTransition {
                from: JobState::Running,
                ..
            }
        ),
        "{}: {err:?}",
        h.case
    );
    let unknown = JobId::new();
    let err = delete(&h, &[d, unknown], false).await.unwrap_err();
    assert!(
        matches!(err, Error::JobNotFound(id) if id == unknown),
        "{}: {err:?}",
        h.case
    );
    h.assert_state(d, JobState::Dead, "nothing deleted").await;
    h.assert_state(queued, JobState::Running, "live job untouched")
        .await;
    let elsewhere = h.enqueue(job("x").queue("other")).await.id;
    let err = delete(&h, &[d, elsewhere], false).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidTransition { id, .. } if id == elsewhere),
        "{}: a live job in another queue refuses the call: {err:?}",
        h.case
    );
    h.assert_state(d, JobState::Dead, "nothing deleted").await;
}

/// A dry run checks and counts the same way and changes nothing.
pub async fn dry_run_counts_and_changes_nothing(h: Harness) {
    let a = dead(&h, "a").await;
    let b = dead(&h, "b").await;
    let r = delete(&h, &[a, b], true).await.unwrap();
    assert_eq!(r.deleted, 2, "{}", h.case);
    h.assert_state(a, JobState::Dead, "dry run").await;
    h.assert_state(b, JobState::Dead, "dry run").await;
    let queued = h.enqueue(job("q")).await.id;
    assert!(
        delete(&h, &[a, queued], true).await.is_err(),
        "{}: a dry run refuses what the real call would",
        h.case
    );
    assert_eq!(
        delete(&h, &[a, b], false).await.unwrap().deleted,
        2,
        "{}",
        h.case
    );
    h.assert_absent(&[a, b], "deleted").await;
}
