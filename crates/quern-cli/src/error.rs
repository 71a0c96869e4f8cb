//! The CLI's error: a stable code, one line of text, and the exit status it maps to.

use std::fmt;

/// Exit status of a failed operation (unknown job, store unreachable, job ended badly).
pub const EXIT_FAILED: u8 = 1;
/// Exit status of bad usage (unknown flag, malformed JSON, bad duration or priority).
pub const EXIT_USAGE: u8 = 2;

/// An error shown to the user as one line on stderr, or as
/// `{"error":{"code":…,"message":…}}` with `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Stable, machine-readable (`job_not_found`, `invalid_argument`, `usage`, …).
    pub code: String,
    /// One line for a person.
    pub message: String,
    /// The process exit status.
    pub exit: u8,
}

impl CliError {
    /// Bad usage: exit 2.
    pub fn usage(code: &str, message: impl Into<String>) -> Self {
        CliError {
            code: code.into(),
            message: one_line(message.into()),
            exit: EXIT_USAGE,
        }
    }

    /// A failed operation: exit 1.
    pub fn failed(code: &str, message: impl Into<String>) -> Self {
        CliError {
            code: code.into(),
            message: one_line(message.into()),
            exit: EXIT_FAILED,
        }
    }

    /// The JSON form printed with `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<quern::Error> for CliError {
    fn from(e: quern::Error) -> Self {
        use quern::Error as E;
        // Input the user can fix is "usage"; everything else is an operation that failed.
        let exit = match &e {
            E::InvalidArgument(_)
            | E::InvalidJob { .. }
            | E::PayloadTooLarge { .. }
            | E::Codec(_) => EXIT_USAGE,
            _ => EXIT_FAILED,
        };
        CliError {
            code: e.code().to_string(),
            message: one_line(e.to_string()),
            exit,
        }
    }
}

/// Folds a possibly multi-line message into one line.
fn one_line(s: String) -> String {
    if s.contains('\n') {
        s.split('\n')
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    } else {
        s
    }
}

/// Shorthand for the CLI's results.
pub type CliResult<T> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_codes_and_exits() {
        let e: CliError = quern::Error::QueueNotFound("q".into()).into();
        assert_eq!((e.code.as_str(), e.exit), ("queue_not_found", EXIT_FAILED));
        let e: CliError = quern::Error::InvalidArgument("bad".into()).into();
        assert_eq!((e.code.as_str(), e.exit), ("invalid_argument", EXIT_USAGE));
        assert_eq!(
            e.to_json(),
            serde_json::json!({"error": {"code": "invalid_argument", "message": "invalid argument: bad"}})
        );
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(CliError::failed("x", "a\n  b\n").message, "a; b");
    }
}
