//! Per-job logs: the params and answers of `job_log_append` and `job_logs`, and the caps
//! every backend applies to what it keeps.
//!
//! A job's log is an ordered list of lines, each numbered by a per-job sequence that starts
//! at 1 and only grows. The caps are per job: when an append takes a job past
//! [`LogLimits::max_lines`] or [`LogLimits::max_bytes`], its **oldest** lines are dropped
//! (the end of a log, where a failure is, matters most) and the job's `dropped` count
//! grows. Lines are stored with the job and deleted with it (pruning, deletion).

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::model::JobId;

/// How serious a log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// The stored code (0 debug … 3 error).
    pub fn as_i64(self) -> i64 {
        match self {
            LogLevel::Debug => 0,
            LogLevel::Info => 1,
            LogLevel::Warn => 2,
            LogLevel::Error => 3,
        }
    }

    /// The level of a stored code; an unknown code reads as `Info`.
    pub fn from_i64(n: i64) -> LogLevel {
        match n {
            0 => LogLevel::Debug,
            2 => LogLevel::Warn,
            3 => LogLevel::Error,
            _ => LogLevel::Info,
        }
    }

    /// `debug`, `info`, `warn`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// The per-job caps. Backends apply them on every append; the defaults are what the worker
/// uses unless configured otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimits {
    /// Most lines kept per job. Default 1,000.
    pub max_lines: u32,
    /// Most bytes of message text kept per job. Default 256 KiB.
    pub max_bytes: u64,
}

impl LogLimits {
    /// Longest message stored; the writer ([`Context::log`](crate::Context::log)) cuts longer
    /// ones at a character boundary.
    pub const MAX_LINE_BYTES: usize = 8 * 1024;
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            max_lines: 1_000,
            max_bytes: 256 * 1024,
        }
    }
}

/// Cuts `message` to at most [`LogLimits::MAX_LINE_BYTES`] bytes at a character boundary.
pub fn truncate_log_message(mut message: String) -> String {
    if message.len() > LogLimits::MAX_LINE_BYTES {
        let mut end = LogLimits::MAX_LINE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

/// A line to append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewLogLine {
    /// When it was written (the writer's clock).
    pub at: Millis,
    pub level: LogLevel,
    /// The attempt that wrote it.
    pub attempt: u32,
    pub message: String,
}

/// A stored line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Position in the job's log: 1 for the first line ever appended, one more per line;
    /// dropped lines leave their numbers unused.
    pub seq: u64,
    pub at: Millis,
    pub level: LogLevel,
    pub attempt: u32,
    pub message: String,
}

/// One job's lines in a [`LogAppendParams`], in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAppendItem {
    pub job_id: JobId,
    pub lines: Vec<NewLogLine>,
}

/// `job_log_append`: lines for several jobs in one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogAppendParams {
    pub items: Vec<LogAppendItem>,
    /// The caps applied after appending.
    pub limits: LogLimits,
}

/// `job_logs`: a job's lines after a cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobLogsParams {
    pub id: JobId,
    /// Only lines with a larger `seq` (0: from the oldest kept line).
    pub after: u64,
    /// Most lines returned.
    pub limit: usize,
}

/// The answer of `job_logs`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLogPage {
    /// Lines in `seq` order.
    pub lines: Vec<LogLine>,
    /// Lines of this job dropped by the caps so far (always the oldest).
    pub dropped: u64,
}

impl JobLogPage {
    /// The cursor for the next call: the last line's `seq`, or `after` when none came back.
    pub fn next_after(&self, after: u64) -> u64 {
        self.lines.last().map_or(after, |l| l.seq)
    }
}
