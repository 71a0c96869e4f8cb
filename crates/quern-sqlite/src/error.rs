//! Mapping SQLite errors into `quern::Error`.

use rusqlite::ErrorCode;

/// Converts a rusqlite error: lock contention past the busy timeout is transient
/// (`Unavailable`); everything else is a storage error.
pub(crate) fn sql_err(e: rusqlite::Error) -> quern::Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            quern::Error::Unavailable(format!("sqlite: {e}"))
        }
        _ => quern::Error::Storage(format!("sqlite: {e}")),
    }
}
