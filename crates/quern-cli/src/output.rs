//! How results reach the user: a table or lines for people, JSON for scripts.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};
use quern::Millis;
use serde::Serialize;

use crate::error::CliError;
use crate::log::out;

/// Output mode of this invocation.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    /// `--json`: one JSON document on stdout per command.
    pub json: bool,
}

impl Out {
    /// Prints `value` as JSON (with `--json`) or runs `human` to print it for people.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce()) {
        if self.json {
            match serde_json::to_string(value) {
                Ok(s) => out!("{s}"),
                Err(e) => crate::log::say!("error: cannot encode output as JSON: {e}"),
            }
        } else {
            human();
        }
    }

    /// Prints an error on stderr as one line (or the JSON error shape).
    pub fn error(&self, e: &CliError) {
        if self.json {
            crate::log::say!("{}", e.to_json());
        } else {
            crate::log::say!("error: {}", e.message);
        }
    }
}

/// A table with a header row, sized to the terminal.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().copied());
    t
}

/// A Unix-millisecond time as RFC 3339 UTC with milliseconds.
pub fn time(ms: Millis) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.round(jiff::Unit::Millisecond).unwrap_or(t).to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// An optional time, `-` when absent.
pub fn opt_time(ms: Option<Millis>) -> String {
    ms.map(time).unwrap_or_else(|| "-".into())
}

/// A short relative age ("3s ago", "in 2m") against `now`.
pub fn age(ms: Millis, now: Millis) -> String {
    let d = std::time::Duration::from_millis(now.abs_diff(ms));
    let mut s = quern::model::format_duration(std::time::Duration::from_secs(d.as_secs()));
    if d.as_secs() == 0 {
        s = format!("{}ms", d.as_millis());
    }
    if ms <= now {
        format!("{s} ago")
    } else {
        format!("in {s}")
    }
}

/// Text shortened to `max` characters for a table cell.
pub fn short_text(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        s.to_string()
    }
}
