//! Per-job logs: `job_log_append` stores lines in order per job, `job_logs` reads them after a
//! cursor, the caps drop the oldest lines, and lines go with their job when it is pruned.

use std::time::Duration;

use super::*;
use crate::Error;
use crate::backend::{
    JobLogPage, JobLogsParams, LogAppendItem, LogAppendParams, LogLevel, LogLimits, NewLogLine,
    PruneParams,
};
use crate::model::{JobId, JobState};

fn line(h: &Harness, message: &str) -> NewLogLine {
    NewLogLine {
        at: h.now(),
        level: LogLevel::Info,
        attempt: 1,
        message: message.to_string(),
    }
}

async fn append(h: &Harness, items: Vec<(JobId, Vec<&str>)>, limits: LogLimits) {
    let items = items
        .into_iter()
        .map(|(job_id, lines)| LogAppendItem {
            job_id,
            lines: lines.into_iter().map(|m| line(h, m)).collect(),
        })
        .collect();
    h.backend
        .job_log_append(LogAppendParams { items, limits })
        .await
        .unwrap_or_else(|e| panic!("{}: append: {e}", h.case));
}

async fn read(h: &Harness, id: JobId, after: u64, limit: usize) -> JobLogPage {
    h.backend
        .job_logs(JobLogsParams { id, after, limit })
        .await
        .unwrap_or_else(|e| panic!("{}: job_logs: {e}", h.case))
}

fn messages(p: &JobLogPage) -> Vec<&str> {
    p.lines.iter().map(|l| l.message.as_str()).collect()
}

fn seqs(p: &JobLogPage) -> Vec<u64> {
    p.lines.iter().map(|l| l.seq).collect()
}

/// Lines of several jobs in one call land in each job's log in order, numbered from 1; a
/// later call continues the numbering; reading after a cursor and with a limit pages
/// through them; every field reads back; a finished job still takes lines.
pub async fn lines_read_back_in_order_after_a_cursor(h: Harness) {
    if h.lacks("logs", h.caps().logs) {
        return;
    }
    let a = h.enqueue_and_claim(job("a")).await;
    let b = h.enqueue(job("b")).await.id;
    append(
        &h,
        vec![(a.job.id, vec!["a1", "a2"]), (b, vec!["b1"])],
        LogLimits::default(),
    )
    .await;
    h.advance(Duration::from_secs(1));
    h.complete(&a.token).await;
    h.backend
        .job_log_append(LogAppendParams {
            items: vec![LogAppendItem {
                job_id: a.job.id,
                lines: vec![NewLogLine {
                    at: h.now(),
                    level: LogLevel::Error,
                    attempt: 2,
                    message: "a3 ünïcode".into(),
                }],
            }],
            limits: LogLimits::default(),
        })
        .await
        .unwrap_or_else(|e| panic!("{}: append after the job finished: {e}", h.case));

    let all = read(&h, a.job.id, 0, 100).await;
    assert_eq!(messages(&all), ["a1", "a2", "a3 ünïcode"], "{}", h.case);
    assert_eq!(seqs(&all), [1, 2, 3], "{}: numbered from 1", h.case);
    assert_eq!(all.dropped, 0, "{}", h.case);
    let last = &all.lines[2];
    assert_eq!(
        (last.level, last.attempt, last.at),
        (LogLevel::Error, 2, h.now()),
        "{}: fields read back",
        h.case
    );
    assert_eq!(all.lines[0].level, LogLevel::Info, "{}", h.case);

    let page = read(&h, a.job.id, 1, 1).await;
    assert_eq!(messages(&page), ["a2"], "{}: after 1, limit 1", h.case);
    assert_eq!(page.next_after(1), 2, "{}", h.case);
    let rest = read(&h, a.job.id, 3, 100).await;
    assert!(rest.lines.is_empty(), "{}: nothing after the last", h.case);
    assert_eq!(rest.next_after(3), 3, "{}", h.case);
    assert_eq!(messages(&read(&h, b, 0, 100).await), ["b1"], "{}", h.case);
    let quiet = h.enqueue(job("quiet")).await.id;
    assert_eq!(
        read(&h, quiet, 0, 100).await,
        JobLogPage::default(),
        "{}: a job that never logged",
        h.case
    );
}

/// Past `max_lines`, the oldest lines are dropped and counted; the numbers of the kept lines
/// do not change.
pub async fn oldest_lines_are_dropped_past_the_line_cap(h: Harness) {
    if h.lacks("logs", h.caps().logs) {
        return;
    }
    let id = h.enqueue(job("chatty")).await.id;
    let limits = LogLimits {
        max_lines: 3,
        max_bytes: 1 << 20,
    };
    append(&h, vec![(id, vec!["1", "2"])], limits).await;
    append(&h, vec![(id, vec!["3", "4", "5"])], limits).await;
    let p = read(&h, id, 0, 100).await;
    assert_eq!(messages(&p), ["3", "4", "5"], "{}", h.case);
    assert_eq!(seqs(&p), [3, 4, 5], "{}", h.case);
    assert_eq!(p.dropped, 2, "{}", h.case);
    append(&h, vec![(id, vec!["6"])], limits).await;
    let p = read(&h, id, 0, 100).await;
    assert_eq!(messages(&p), ["4", "5", "6"], "{}", h.case);
    assert_eq!(p.dropped, 3, "{}", h.case);
}

/// Past `max_bytes` (of message text, counted in UTF-8 bytes), the oldest lines are dropped
/// until the rest fits.
pub async fn oldest_lines_are_dropped_past_the_byte_cap(h: Harness) {
    if h.lacks("logs", h.caps().logs) {
        return;
    }
    let id = h.enqueue(job("chatty")).await.id;
    let limits = LogLimits {
        max_lines: 1000,
        max_bytes: 10,
    };
    // 4 + 4 + 4 bytes: the first goes. "ééé" is 6 bytes, so two more go.
    append(&h, vec![(id, vec!["aaaa", "bbbb", "cccc"])], limits).await;
    let p = read(&h, id, 0, 100).await;
    assert_eq!(messages(&p), ["bbbb", "cccc"], "{}", h.case);
    assert_eq!(p.dropped, 1, "{}", h.case);
    append(&h, vec![(id, vec!["ééé"])], limits).await;
    let p = read(&h, id, 0, 100).await;
    assert_eq!(messages(&p), ["cccc", "ééé"], "{}", h.case);
    assert_eq!((seqs(&p), p.dropped), (vec![3, 4], 2), "{}", h.case);
}

/// Lines for a job that does not exist are dropped without an error; reading the log of an
/// unknown job is `JobNotFound`.
pub async fn unknown_jobs_drop_lines_and_are_not_found(h: Harness) {
    if h.lacks("logs", h.caps().logs) {
        return;
    }
    let known = h.enqueue(job("known")).await.id;
    let ghost = JobId::new();
    append(
        &h,
        vec![(ghost, vec!["lost"]), (known, vec!["kept"])],
        LogLimits::default(),
    )
    .await;
    assert_eq!(
        messages(&read(&h, known, 0, 10).await),
        ["kept"],
        "{}",
        h.case
    );
    expect_err!(
        h,
        h.backend
            .job_logs(JobLogsParams {
                id: ghost,
                after: 0,
                limit: 10
            })
            .await,
        Error::JobNotFound(_),
        "logs of an unknown job"
    );
}

/// Pruning a job deletes its lines: a job stored again under the same id starts with an
/// empty log numbered from 1.
pub async fn pruning_a_job_deletes_its_lines(h: Harness) {
    if h.lacks("logs", h.caps().logs) {
        return;
    }
    let first = job("logged");
    let id = first.id;
    let c = h.enqueue_and_claim(first).await;
    let keep = h.enqueue(job("kept")).await.id;
    append(
        &h,
        vec![(id, vec!["old 1", "old 2"]), (keep, vec!["stays"])],
        LogLimits {
            max_lines: 1,
            max_bytes: 1 << 20,
        },
    )
    .await;
    h.complete(&c.token).await;
    h.advance(Duration::from_secs(10));
    let r = h
        .backend
        .job_prune(PruneParams {
            finished_before: h.now(),
            states: vec![JobState::Succeeded],
            limit: 100,
            dry_run: false,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{}: prune: {e}", h.case));
    assert_eq!(r.jobs_deleted, 1, "{}", h.case);
    let mut again = job("logged");
    again.id = id;
    h.enqueue(again).await;
    assert_eq!(
        read(&h, id, 0, 10).await,
        JobLogPage::default(),
        "{}: the pruned job's lines and dropped count are gone",
        h.case
    );
    append(&h, vec![(id, vec!["new"])], LogLimits::default()).await;
    assert_eq!(seqs(&read(&h, id, 0, 10).await), [1], "{}", h.case);
    assert_eq!(
        messages(&read(&h, keep, 0, 10).await),
        ["stays"],
        "{}: other jobs keep theirs",
        h.case
    );
}
