//! Maintenance of the database file: WAL checkpoints, `ANALYZE`, `VACUUM`, the integrity
//! check and the file's numbers (`quern maintain`).
//!
//! Everything that writes goes through the one writer thread, so it never competes with the
//! queue's own writes for the write lock: `ANALYZE` runs as an ordinary operation in a group
//! transaction; a checkpoint and `VACUUM`, which cannot run inside a transaction, run alone
//! between two groups ([`crate::writer::Writer::write_alone`]). The integrity check and the
//! numbers are reads on a read-only connection. Workers in this and other processes keep
//! running throughout; while the writer vacuums, their writes wait for it.

use std::path::Path;

use quern::JobState;
use quern::model::StateCounts;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::SqliteBackend;
use crate::error::sql_err;

/// What a WAL checkpoint does about readers and the log (`PRAGMA wal_checkpoint(MODE)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointMode {
    /// Copies as many frames as it can without waiting for any reader or writer.
    #[default]
    Passive,
    /// Waits (up to the busy timeout) until no reader holds an old snapshot, then copies
    /// every frame.
    Full,
    /// Like `Full`, then truncates the WAL file to zero bytes.
    Truncate,
}

impl CheckpointMode {
    /// The name SQLite and the CLI use: `passive`, `full` or `truncate`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointMode::Passive => "passive",
            CheckpointMode::Full => "full",
            CheckpointMode::Truncate => "truncate",
        }
    }
}

impl std::str::FromStr for CheckpointMode {
    type Err = quern::Error;

    fn from_str(s: &str) -> quern::Result<Self> {
        [
            CheckpointMode::Passive,
            CheckpointMode::Full,
            CheckpointMode::Truncate,
        ]
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(s))
        .ok_or_else(|| {
            quern::Error::InvalidArgument(format!(
                "unknown checkpoint mode {s:?} (expected passive, full or truncate)"
            ))
        })
    }
}

/// What a checkpoint reported (the three numbers `PRAGMA wal_checkpoint` returns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointReport {
    /// A `full` or `truncate` checkpoint could not finish because a reader or writer held
    /// on past the busy timeout.
    pub busy: bool,
    /// Frames in the WAL when the checkpoint ended; -1 when the database is not in WAL mode
    /// (in memory). A `truncate` checkpoint that succeeded empties the WAL, so it reports 0
    /// here and in `checkpointed_frames`.
    pub log_frames: i64,
    /// Frames copied into the database file (all of them when it equals `log_frames`); -1
    /// when not in WAL mode.
    pub checkpointed_frames: i64,
}

/// The database file's numbers ([`SqliteBackend::stats`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqliteStats {
    /// Bytes of the main database file on disk (0 in memory). Pages still in the WAL are not
    /// in it yet.
    pub file_bytes: u64,
    /// Bytes of the `-wal` file (0 when absent or in memory).
    pub wal_bytes: u64,
    pub page_size: u64,
    /// Pages in the database, as of the newest commit.
    pub page_count: u64,
    /// Pages on the free list: space a `VACUUM` would give back to the file system.
    pub free_pages: u64,
    /// `free_pages × page_size`.
    pub free_bytes: u64,
    /// `PRAGMA user_version`: the last migration applied.
    pub schema_version: i64,
    /// Jobs in each state.
    pub jobs: StateCounts,
}

impl SqliteBackend {
    /// Runs a WAL checkpoint in `mode` on the writer's connection, between two write
    /// transactions. `Truncate` with no reader in the way leaves a WAL of zero bytes.
    pub async fn checkpoint(&self, mode: CheckpointMode) -> quern::Result<CheckpointReport> {
        self.shared
            .writer
            .write_alone(move |tx| checkpoint(tx.conn, mode))
            .await
    }

    /// Runs `ANALYZE`, refreshing the statistics the query planner uses. It holds the
    /// writer for as long as it reads every index.
    pub async fn analyze(&self) -> quern::Result<()> {
        self.write(|tx| tx.conn.execute_batch("ANALYZE").map_err(sql_err))
            .await
    }

    /// `Backend::store_maintain`, what the supervisor's periodic upkeep asks for: `ANALYZE`
    /// and a `passive` checkpoint (which never waits for readers), each when asked.
    pub(crate) async fn maintain(
        &self,
        p: quern::backend::StoreMaintainParams,
    ) -> quern::Result<quern::backend::StoreMaintainReport> {
        if p.analyze {
            self.analyze().await?;
        }
        if p.checkpoint {
            self.checkpoint(CheckpointMode::Passive).await?;
        }
        Ok(quern::backend::StoreMaintainReport {
            analyzed: p.analyze,
            checkpointed: p.checkpoint,
        })
    }

    /// Runs `VACUUM`, which rewrites the whole database into a new file without free pages,
    /// then a `Truncate` checkpoint so that the main file shrinks and the WAL the rewrite
    /// filled is emptied (unless a reader holds an old snapshot; the report says so). It
    /// needs free disk space about the database's size, and every write waits for it.
    pub async fn vacuum(&self) -> quern::Result<CheckpointReport> {
        self.shared
            .writer
            .write_alone(|tx| {
                tx.conn.execute_batch("VACUUM").map_err(sql_err)?;
                checkpoint(tx.conn, CheckpointMode::Truncate)
            })
            .await
    }

    /// Runs `PRAGMA integrity_check` and returns the problems it found, one per line; empty
    /// when the database is healthy. A page so damaged that SQLite stops reading
    /// ("database disk image is malformed") is reported as a line too, not as an error.
    pub async fn integrity_check(&self) -> quern::Result<Vec<String>> {
        self.read(integrity_check).await
    }

    /// Recomputes every queue's jobs per state from the rows (a scan of all jobs) and
    /// compares them with the maintained counts `queue_list` reads (`queue_counts`, see
    /// ARCHITECTURE.md). Returns one line per queue and state where they differ; empty when
    /// they agree. The conformance suite runs it after every case against SQLite.
    pub async fn queue_counts_check(&self) -> quern::Result<Vec<String>> {
        self.read(crate::ops::counts::check).await
    }

    /// The file's sizes, its pages, the schema version and the jobs in each state.
    pub async fn stats(&self) -> quern::Result<SqliteStats> {
        let path = self.shared.path.clone();
        self.read(move |c| stats(c, path.as_deref())).await
    }
}

fn checkpoint(conn: &Connection, mode: CheckpointMode) -> quern::Result<CheckpointReport> {
    let sql = format!("PRAGMA wal_checkpoint({})", mode.as_str().to_uppercase());
    let once = || {
        conn.query_row(&sql, [], |r| {
            Ok(CheckpointReport {
                busy: r.get::<_, i64>(0)? != 0,
                log_frames: r.get(1)?,
                checkpointed_frames: r.get(2)?,
            })
        })
        .map_err(sql_err)
    };
    // The store's own checkpointer thread may hold the checkpoint lock for a moment (a
    // second checkpoint then reports busy at once, whatever the busy timeout): try again
    // briefly before saying busy.
    let mut report = once()?;
    for _ in 0..20 {
        if !report.busy {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        report = once()?;
    }
    Ok(report)
}

pub(crate) fn integrity_check(conn: &Connection) -> quern::Result<Vec<String>> {
    let mut lines = Vec::new();
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(sql_err)?;
    let outcome = stmt.query([]).and_then(|mut rows| {
        while let Some(row) = rows.next()? {
            // A row may hold several lines ("*** in database main ***\nTree 2 page …").
            let text = row.get::<_, String>(0)?;
            lines.extend(text.lines().map(str::to_string));
        }
        Ok(())
    });
    match outcome {
        Ok(()) => {}
        Err(e) if is_corruption(&e) => lines.push(e.to_string()),
        Err(e) => return Err(sql_err(e)),
    }
    Ok(if lines == ["ok"] { Vec::new() } else { lines })
}

/// Whether SQLite stopped because the file is damaged (rather than busy or unreadable).
fn is_corruption(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

fn stats(conn: &Connection, path: Option<&Path>) -> quern::Result<SqliteStats> {
    let pragma = |name: &str| -> quern::Result<i64> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(sql_err)
    };
    let page_size = pragma("page_size")? as u64;
    let free_pages = pragma("freelist_count")? as u64;
    let mut jobs = StateCounts::default();
    let rows: Vec<(i64, i64)> = conn
        .prepare_cached("SELECT state, count(*) FROM jobs GROUP BY state")
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
        })
        .map_err(sql_err)?;
    for (state, n) in rows {
        if let Some(s) = JobState::from_i64(state) {
            *jobs.get_mut(s) += n as u64;
        }
    }
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (file_bytes, wal_bytes) = match path {
        Some(p) => {
            let mut wal = p.as_os_str().to_owned();
            wal.push("-wal");
            (size(p), size(Path::new(&wal)))
        }
        None => (0, 0),
    };
    Ok(SqliteStats {
        file_bytes,
        wal_bytes,
        page_size,
        page_count: pragma("page_count")? as u64,
        free_pages,
        free_bytes: free_pages * page_size,
        schema_version: pragma("user_version")?,
        jobs,
    })
}
