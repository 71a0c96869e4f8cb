//! An online copy of the database file (`quern backup --sqlite`): `VACUUM INTO` a new file,
//! run alone on the writer thread between two write transactions (as `VACUUM` is, see
//! `maintain.rs` and [`crate::writer::Writer::write_alone`]), so the copy is one consistent
//! snapshot that includes every committed write, WAL included. Workers keep running; their
//! writes wait while the copy is written. The copy is then checked with
//! `PRAGMA integrity_check` on a connection of its own.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use crate::SqliteBackend;
use crate::error::sql_err;

impl SqliteBackend {
    /// Writes a copy of the database to `to` (which must not exist) and checks it. Returns
    /// the problems `PRAGMA integrity_check` found in the copy (empty: it is sound).
    pub async fn copy_to(&self, to: &Path) -> quern::Result<Vec<String>> {
        if to.exists() {
            return Err(quern::Error::InvalidArgument(format!(
                "{} already exists",
                to.display()
            )));
        }
        let target = to
            .to_str()
            .ok_or_else(|| quern::Error::InvalidArgument("the copy's path is not UTF-8".into()))?
            .to_string();
        self.shared
            .writer
            .write_alone(move |tx| {
                tx.conn
                    .execute("VACUUM INTO ?1", [&target])
                    .map(|_| ())
                    .map_err(sql_err)
            })
            .await?;
        let path: PathBuf = to.to_path_buf();
        tokio::task::spawn_blocking(move || check(&path))
            .await
            .map_err(|e| quern::Error::Storage(format!("integrity check task: {e}")))?
    }
}

fn check(path: &Path) -> quern::Result<Vec<String>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err)?;
    crate::maintain::integrity_check(&conn)
}
