//! Everything the CLI writes to stderr (the tracing logs and its own one-line messages),
//! and its writes to stdout.
//!
//! Stdout may be closed by its reader (`quern jobs list | head -1`): `println!` panics then,
//! with a backtrace. Here the command stops quietly instead, with exit status 141 (128 +
//! SIGPIPE, what a Unix tool killed by SIGPIPE reports), which `set -o pipefail` scripts
//! recognise; whatever the command did before writing (an enqueue, a retry) is already done.
//!
//! Stderr may be broken: a closed pipe (`quern worker 2>&1 | head -3`), a full disk
//! (`2>/dev/full`). Rust's `eprintln!` panics then, and tracing-subscriber reports a failed
//! write with `eprintln!` too, so a single log line could kill a worker mid-job or, written
//! from the signal task, stop it from ever shutting down. Here a write that fails is dropped
//! and counted instead; stderr is a diagnostic channel, never a reason to stop.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use tracing_subscriber::fmt::MakeWriter;

/// Lines (log events or messages) that could not be written to stderr.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Writes one line to stderr; if that fails, the line is dropped and counted.
pub fn stderr_line(line: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    if writeln!(err, "{line}").is_err() {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// `eprintln!` that never panics: see [`stderr_line`].
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::log::stderr_line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Exit status when stdout was closed by its reader (128 + SIGPIPE).
pub const EXIT_STDOUT_CLOSED: i32 = 141;

/// Writes one line to stdout. If the reader has gone (a broken pipe), the process exits at
/// once with [`EXIT_STDOUT_CLOSED`]; any other write error is dropped like a stderr line.
pub fn stdout_line(line: fmt::Arguments<'_>) {
    stdout_text(format_args!("{line}\n"));
}

/// Writes text to stdout as it is (no newline added), like [`stdout_line`].
pub fn stdout_text(text: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    match out.write_fmt(text).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(EXIT_STDOUT_CLOSED),
        Err(_) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `println!` that never panics: see [`stdout_line`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::log::stdout_line(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// At exit: says how many lines were lost, if any, in case stderr works again.
pub fn report_dropped() {
    let n = DROPPED.load(Ordering::Relaxed);
    if n > 0 {
        // If stderr is still broken this is lost as well; nothing more to do about it.
        let _ = writeln!(
            io::stderr(),
            "note: {n} log line(s) could not be written to stderr and were dropped"
        );
    }
}

/// The tracing writer: stderr, with failed writes dropped and counted. The fmt layer formats
/// an event into a buffer and hands it over in one `write_all`, so one failure is one event.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    /// Always `Ok`: an error here would make tracing-subscriber print (and panic on) its
    /// own complaint through `eprintln!`.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if io::stderr().lock().write_all(buf).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Stderr is unbuffered; a failure would already have been counted by the write.
        let _ = io::stderr().flush();
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for QuietStderr {
    type Writer = QuietStderr;

    fn make_writer(&'a self) -> Self::Writer {
        QuietStderr
    }
}

/// Logs go to stderr. `QUERN_LOG` (or `RUST_LOG`) sets the filter; the worker logs at info by
/// default, other commands only warnings, and not the Redis client's own (a command that
/// cannot reach its store says so in its one-line error). `format` picks text or JSON lines.
pub fn init(worker: bool, format: crate::cli::LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(worker))
        .with_writer(QuietStderr)
        // Belt and braces: the writer never fails, but a formatting error would otherwise be
        // reported through `eprintln!`.
        .log_internal_errors(false)
        .with_target(false);
    let _ = match format {
        crate::cli::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        crate::cli::LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

fn filter(worker: bool) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    let default = if worker { "info" } else { "warn,redis=error" };
    std::env::var("QUERN_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default))
}

/// As [`init`], and the spans of Quern (at info and above, whatever the log filter) also go
/// to an OTLP collector. The guard flushes them when dropped.
#[cfg(feature = "otlp")]
pub fn init_with_otlp(
    worker: bool,
    format: crate::cli::LogFormat,
    endpoint: &str,
) -> Result<crate::otlp::Guard, String> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (otel, guard) = crate::otlp::layer(endpoint)?;
    let spans = tracing_subscriber::filter::Targets::new()
        .with_target("quern", tracing::Level::INFO)
        .with_target("quern_cli", tracing::Level::INFO);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(QuietStderr)
        .log_internal_errors(false)
        .with_target(false);
    let fmt = match format {
        crate::cli::LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter(worker))
            .boxed(),
        crate::cli::LogFormat::Json => fmt
            .json()
            .with_ansi(false)
            .with_filter(filter(worker))
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(fmt)
        .with(otel.with_filter(spans))
        .try_init();
    Ok(guard)
}
