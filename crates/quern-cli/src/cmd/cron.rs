//! `quern cron next`: when an expression fires, computed by `quern::cron::Schedule`. No store
//! is opened; the only input besides the arguments is the system clock when `--from` is absent.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use quern::Millis;
use quern::cron::Schedule;

use crate::cli::{CronCmd, CronNextArgs};
use crate::cmd::Ctx;
use crate::error::{CliError, CliResult};
use crate::log::out;

/// More ticks than anyone reads in a preview; a typo such as `--count 1m` stops here.
const MAX_COUNT: usize = 1_000;

pub fn run(ctx: &Ctx, cmd: CronCmd) -> CliResult<u8> {
    match cmd {
        CronCmd::Next(args) => next(ctx, args),
    }
}

fn next(ctx: &Ctx, args: CronNextArgs) -> CliResult<u8> {
    if args.count > MAX_COUNT {
        return Err(CliError::usage(
            "usage",
            format!("--count {} is over the limit of {MAX_COUNT}", args.count),
        ));
    }
    let schedule = Schedule::parse(&args.expr, args.tz.as_deref())?;
    let from = args.from.unwrap_or_else(quern::clock::system_now_ms);
    let zone = schedule.time_zone();
    let ticks: Vec<(String, String)> = schedule
        .upcoming(from, args.count)
        .into_iter()
        .map(|t| (in_zone(t, zone), in_zone(t, &TimeZone::UTC)))
        .collect();
    let json = serde_json::json!({
        "expression": schedule.expression(),
        "tz": schedule.zone_name(),
        "from": in_zone(from, &TimeZone::UTC),
        "ticks": ticks
            .iter()
            .map(|(local, utc)| serde_json::json!({"local": local, "utc": utc}))
            .collect::<Vec<_>>(),
    });
    ctx.out.emit(&json, || {
        for (local, utc) in &ticks {
            out!("{local}  {utc}");
        }
    });
    Ok(0)
}

/// RFC 3339 with the zone's offset (`2026-03-08T03:00:00-04:00`; `Z` for UTC).
fn in_zone(at: Millis, zone: &TimeZone) -> String {
    let Ok(ts) = Timestamp::from_millisecond(at) else {
        return at.to_string();
    };
    if zone == &TimeZone::UTC {
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    }
    ts.to_zoned(zone.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}
