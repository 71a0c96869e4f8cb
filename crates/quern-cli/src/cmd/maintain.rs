//! `quern maintain`: checkpoint, analyze, vacuum, integrity and stats on an SQLite store's
//! file, through the backend's own writer so that running workers are not disturbed. Any
//! other store is refused with exit 2 (`store::open_sqlite`).

use quern_sqlite::{CheckpointMode, CheckpointReport, SqliteBackend, SqliteStats};

use crate::cli::MaintainCmd;
use crate::cmd::Ctx;
use crate::error::CliResult;
use crate::log::out;
use crate::store::{self, Open};

pub async fn run(ctx: &Ctx, cmd: MaintainCmd) -> CliResult<u8> {
    let b = store::open_sqlite(
        ctx.settings.store_url(),
        Open::Existing,
        ctx.store_options(),
    )
    .await?;
    match cmd {
        MaintainCmd::Checkpoint { mode } => {
            let r = b.checkpoint(mode).await?;
            let json = serde_json::json!({
                "mode": mode.as_str(),
                "busy": r.busy,
                "log_frames": r.log_frames,
                "checkpointed_frames": r.checkpointed_frames,
            });
            ctx.out.emit(&json, || {
                out!("checkpoint ({}): {}", mode.as_str(), frames(mode, &r))
            });
        }
        MaintainCmd::Analyze => {
            b.analyze().await?;
            ctx.out.emit(&serde_json::json!({"analyzed": true}), || {
                out!("analyzed: the query planner's statistics are up to date")
            });
        }
        MaintainCmd::Vacuum => vacuum(ctx, &b).await?,
        MaintainCmd::Integrity => {
            let problems = b.integrity_check().await?;
            let ok = problems.is_empty();
            let json = serde_json::json!({"ok": ok, "problems": problems});
            ctx.out.emit(&json, || {
                if ok {
                    out!("ok");
                }
                for line in &problems {
                    out!("{line}");
                }
            });
            if !ok {
                crate::log::say!(
                    "error: the integrity check found {} problem(s)",
                    problems.len()
                );
                return Ok(crate::error::EXIT_FAILED);
            }
        }
        MaintainCmd::Stats => {
            let s = b.stats().await?;
            let path = b.path().map(|p| p.display().to_string());
            let mut json = serde_json::to_value(&s).map_err(|e| {
                crate::error::CliError::failed("encode", format!("cannot encode stats: {e}"))
            })?;
            json["path"] = path.clone().into();
            ctx.out.emit(&json, || print_stats(path.as_deref(), &s));
        }
    }
    Ok(0)
}

async fn vacuum(ctx: &Ctx, b: &SqliteBackend) -> CliResult<()> {
    let before = b.stats().await?;
    let r = b.vacuum().await?;
    let after = b.stats().await?;
    let json = serde_json::json!({
        "file_bytes_before": before.file_bytes,
        "file_bytes_after": after.file_bytes,
        "free_pages_before": before.free_pages,
        "free_pages_after": after.free_pages,
        "checkpoint": r,
    });
    ctx.out.emit(&json, || {
        out!(
            "vacuumed: file {} -> {}, free pages {} -> {}",
            bytes(before.file_bytes),
            bytes(after.file_bytes),
            before.free_pages,
            after.free_pages
        );
        if r.busy {
            out!(
                "a reader holds an old snapshot: the WAL is emptied and the file shrinks at the next checkpoint"
            );
        }
    });
    Ok(())
}

/// A checkpoint's outcome in words.
fn frames(mode: CheckpointMode, r: &CheckpointReport) -> String {
    if r.log_frames < 0 {
        return "not in WAL mode (an in-memory store); nothing to do".into();
    }
    // SQLite reports 0 of 0 after a truncate that finished: the log is gone.
    if mode == CheckpointMode::Truncate && !r.busy {
        return "every WAL frame copied into the file; the WAL file is empty".into();
    }
    let done = format!(
        "{} of {} WAL frame(s) copied into the file",
        r.checkpointed_frames, r.log_frames
    );
    if r.busy {
        format!("{done}; a reader or writer held on, so it did not finish")
    } else {
        done
    }
}

fn print_stats(path: Option<&str>, s: &SqliteStats) {
    out!("file:           {}", path.unwrap_or("(in memory)"));
    out!("file size:      {}", bytes(s.file_bytes));
    out!("wal size:       {}", bytes(s.wal_bytes));
    out!("page size:      {} B", s.page_size);
    out!("pages:          {}", s.page_count);
    out!("free pages:     {} ({})", s.free_pages, bytes(s.free_bytes));
    out!("schema version: {}", s.schema_version);
    out!("jobs:           {}", s.jobs.total());
    for state in quern::JobState::ALL {
        out!("  {:<13} {}", state.as_str(), s.jobs.get(state));
    }
}

/// A byte count for people: `12.3 MiB (12902400 B)`, or just `512 B`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = None;
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = Some(u);
    }
    match unit {
        Some(u) => format!("{value:.1} {u} ({n} B)"),
        None => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_for_people() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB (1536 B)");
        assert_eq!(bytes(5 * 1024 * 1024), "5.0 MiB (5242880 B)");
    }

    #[test]
    fn checkpoint_outcomes_read_for_people() {
        let r = |busy, log_frames, checkpointed_frames| CheckpointReport {
            busy,
            log_frames,
            checkpointed_frames,
        };
        use CheckpointMode::*;
        assert_eq!(
            frames(Passive, &r(false, 4, 4)),
            "4 of 4 WAL frame(s) copied into the file"
        );
        assert!(frames(Full, &r(true, 4, 1)).ends_with("did not finish"));
        assert!(frames(Truncate, &r(false, 0, 0)).ends_with("the WAL file is empty"));
        assert!(frames(Truncate, &r(true, 4, 1)).ends_with("did not finish"));
        assert!(frames(Passive, &r(false, -1, -1)).starts_with("not in WAL mode"));
    }
}
