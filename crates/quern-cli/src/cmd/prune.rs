//! `quern prune`: one pruning pass now, with the retention of `[retention]` and the flags.

use std::collections::BTreeMap;
use std::sync::Arc;

use quern::JobState;
use quern::maintenance::Pruner;

use crate::cli::{PruneArgs, RetentionArgs};
use crate::cmd::Ctx;
use crate::error::CliResult;
use crate::log::out;
use crate::settings::RetentionSettings;
use crate::store::Open;

/// The states `quern prune` reports, in this order.
const STATES: [JobState; 4] = [
    JobState::Succeeded,
    JobState::Dead,
    JobState::Cancelled,
    JobState::Skipped,
];

/// `[retention]` with the `--retain-…` flags applied (flags win).
pub fn retention(settings: &RetentionSettings, args: &RetentionArgs) -> RetentionSettings {
    let mut r = settings.clone();
    for (flag, slot) in [
        (args.retain_succeeded, &mut r.succeeded),
        (args.retain_dead, &mut r.dead),
        (args.retain_cancelled, &mut r.cancelled),
        (args.retain_skipped, &mut r.skipped),
    ] {
        if let Some(keep) = flag {
            *slot = keep.0;
        }
    }
    if let Some(n) = args.retain_max_bytes {
        r.max_bytes = Some(n.to_string());
    }
    r
}

pub async fn run(ctx: &Ctx, args: PruneArgs) -> CliResult<u8> {
    let retention = retention(&ctx.settings.retention, &args.retention);
    let config = retention.pruner();
    let backend = ctx.open(Open::Existing).await?;
    let pruner = Pruner::new(backend, Arc::new(quern::SystemClock), config.clone());
    let report = if args.dry_run {
        pruner.dry_run().await?
    } else {
        pruner.run_once().await?
    };
    let deleted: BTreeMap<&str, u64> = STATES
        .iter()
        .map(|s| {
            let n = report.deleted_by_state.get(s).copied().unwrap_or(0);
            (s.as_str(), n)
        })
        .collect();
    let kept: BTreeMap<&str, String> = STATES
        .iter()
        .map(|s| {
            let keep = config
                .retention
                .get(s)
                .map(|d| quern::model::format_duration(*d))
                .unwrap_or_else(|| "forever".into());
            (s.as_str(), keep)
        })
        .collect();
    let json = serde_json::json!({
        "dry_run": args.dry_run,
        "jobs_deleted": report.jobs_deleted,
        "deleted": deleted,
        "results_expired": report.results_expired,
        "retention": kept,
        "max_bytes": config.max_bytes,
        "over_budget": {
            "finished_bytes": report.finished_bytes,
            "jobs_deleted": report.over_budget_deleted,
            "bytes_freed": report.bytes_freed,
        },
    });
    ctx.out.emit(&json, || {
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        let per_state: Vec<String> = STATES
            .iter()
            .map(|s| {
                format!(
                    "{} {} (kept {})",
                    s.as_str(),
                    deleted[s.as_str()],
                    kept[s.as_str()]
                )
            })
            .collect();
        out!(
            "{verb} {} finished job(s): {}",
            report.jobs_deleted,
            per_state.join(", ")
        );
        let verb = if args.dry_run {
            "would drop"
        } else {
            "dropped"
        };
        out!("{verb} {} expired result(s)", report.results_expired);
        if let (Some(max), Some(had)) = (config.max_bytes, report.finished_bytes) {
            let verb = if args.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            out!(
                "byte budget {max}: finished jobs took {had} bytes; {verb} {} more (the oldest, {} bytes)",
                report.over_budget_deleted,
                report.bytes_freed
            );
        }
    });
    Ok(0)
}
