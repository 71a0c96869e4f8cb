//! `quern backup --sqlite FILE [--keep N]`: an online copy of an SQLite store's file
//! (`SqliteBackend::copy_to`: `VACUUM INTO` on the writer, then `PRAGMA integrity_check`
//! on the copy). FILE may be a folder: the copy is then `quern-<UTC time>.db` in it, and
//! `--keep N` deletes all but the newest N such copies there (files of other names are never
//! touched). Any other store is refused with exit 2 (`store::open_sqlite`).

use std::path::{Path, PathBuf};

use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::out;
use crate::store::{self, Open};

const PREFIX: &str = "quern-";
const SUFFIX: &str = ".db";

pub async fn run(ctx: &Ctx, file: &Path, keep: Option<usize>) -> CliResult<u8> {
    let b = store::open_sqlite(
        ctx.settings.store_url(),
        Open::Existing,
        ctx.store_options(),
    )
    .await
    .map_err(|e| {
        if e.code == "sqlite_only" {
            CliError::usage(
                "sqlite_only",
                "quern backup --sqlite copies an SQLite store's file; for any store, write a portable archive with quern backup FILE",
            )
        } else {
            e
        }
    })?;
    let folder = file.is_dir();
    if keep.is_some() && !folder {
        return Err(CliError::usage(
            "usage",
            "--keep needs a folder as the target (the copies are kept there)",
        ));
    }
    if keep == Some(0) {
        return Err(CliError::usage("usage", "--keep must be at least 1"));
    }
    let target: PathBuf = if folder {
        // Sortable by name; the milliseconds keep two copies within a second apart.
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%S%.3fZ")
            .to_string();
        file.join(format!("{PREFIX}{stamp}{SUFFIX}"))
    } else {
        file.to_path_buf()
    };
    let problems = b
        .copy_to(&target)
        .await
        .map_err(|e| CliError::failed("copy_failed", e.to_string()))?;
    if !problems.is_empty() {
        return Err(CliError::failed(
            "integrity",
            format!(
                "the copy {} failed PRAGMA integrity_check: {}",
                target.display(),
                problems.join("; ")
            ),
        ));
    }
    let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    if folder {
        let mut copies = copies_in(file)?;
        copies.sort();
        let n = keep.unwrap_or(usize::MAX);
        let cut = copies.len().saturating_sub(n);
        for old in &copies[..cut] {
            std::fs::remove_file(old).map_err(|e| {
                CliError::failed("io", format!("cannot remove {}: {e}", old.display()))
            })?;
            removed.push(old.clone());
        }
        kept = copies[cut..].to_vec();
    }
    let json = serde_json::json!({
        "file": target, "bytes": bytes, "integrity": "ok", "kept": kept, "removed": removed,
    });
    ctx.out.emit(&json, || {
        out!("copied: {} ({bytes} bytes, integrity ok)", target.display());
        if folder {
            out!("{} copies kept in {}", kept.len(), file.display());
            for k in &kept {
                out!("  {}", k.display());
            }
            for r in &removed {
                out!("removed {}", r.display());
            }
        }
    });
    Ok(0)
}

/// The copies `--sqlite` wrote into `dir` (by their name pattern).
fn copies_in(dir: &Path) -> CliResult<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| CliError::failed("io", format!("{}: {e}", dir.display())))?;
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(PREFIX) && name.ends_with(SUFFIX) && entry.path().is_file() {
            out.push(entry.path());
        }
    }
    Ok(out)
}
