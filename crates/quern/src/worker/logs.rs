//! The log writer: sends the lines handlers write with [`Context::log`](super::Context::log)
//! to the backend in batches, the way the acker sends outcomes.
//!
//! `Context::log` never waits: it queues the line here. The writer takes everything queued
//! (up to [`BATCH`] lines, many jobs), sends one `job_log_append`, and while that call is in
//! flight the next batch accumulates. A handler that logs nothing costs nothing: no line, no
//! call. Before a job's outcome goes to the acker, the job task waits for a [`LogMsg::Flush`]
//! marker queued behind its lines (only if it logged), so a reader that sees the job
//! finished has all its lines.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::backend::{Backend, LogAppendItem, LogAppendParams, LogLimits, NewLogLine};
use crate::clock::SharedClock;
use crate::model::JobId;

/// Most lines sent in one `job_log_append`.
const BATCH: usize = 2048;

/// What job tasks send to the writer.
pub(crate) enum LogMsg {
    Line(JobId, NewLogLine),
    /// Answered once every line queued before it has been sent (or given up on).
    Flush(oneshot::Sender<()>),
}

/// Where a [`Context`](super::Context) sends its lines: the writer's queue and the clock
/// that stamps them.
#[derive(Clone)]
pub(crate) struct LogSink {
    pub(crate) tx: mpsc::UnboundedSender<LogMsg>,
    pub(crate) clock: SharedClock,
}

impl LogSink {
    /// Waits until every line queued so far has been written. Returns at once if the writer
    /// has stopped.
    pub(crate) async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(LogMsg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

/// Runs until `close` is cancelled and every queued line has been sent.
pub(super) async fn run(
    backend: Arc<dyn Backend>,
    limits: LogLimits,
    mut rx: mpsc::UnboundedReceiver<LogMsg>,
    close: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            biased;
            m = rx.recv() => m,
            _ = close.cancelled() => rx.try_recv().ok(),
        };
        let Some(first) = first else { break };
        let mut items = Items::default();
        let mut flushes = Vec::new();
        let mut lines = 0;
        lines += take(&mut items, &mut flushes, first);
        while lines < BATCH {
            match rx.try_recv() {
                Ok(m) => lines += take(&mut items, &mut flushes, m),
                Err(_) => break,
            }
        }
        let items = items.list;
        if !items.is_empty() {
            let n: usize = items.iter().map(|i| i.lines.len()).sum();
            if let Err(e) = backend
                .job_log_append(LogAppendParams { items, limits })
                .await
            {
                // Logs are a record for people, not job state: a failed write loses these
                // lines and says so, it never fails the job.
                tracing::warn!(error = %e, lines = n, "could not store job log lines; dropped");
            }
        }
        for f in flushes {
            let _ = f.send(());
        }
    }
    tracing::debug!("log writer stopped");
}

/// Adds one message to the batch; returns the lines it added (0 or 1).
fn take(items: &mut Items, flushes: &mut Vec<oneshot::Sender<()>>, m: LogMsg) -> usize {
    match m {
        LogMsg::Line(id, line) => {
            // Lines of one job share an item; their order is kept.
            match items.index.get(&id) {
                Some(&i) => items.list[i].lines.push(line),
                None => {
                    items.index.insert(id, items.list.len());
                    items.list.push(LogAppendItem {
                        job_id: id,
                        lines: vec![line],
                    });
                }
            }
            1
        }
        LogMsg::Flush(tx) => {
            flushes.push(tx);
            0
        }
    }
}

/// A batch's items, one per job, with the position of each job's item.
#[derive(Default)]
struct Items {
    list: Vec<LogAppendItem>,
    index: std::collections::HashMap<JobId, usize>,
}
