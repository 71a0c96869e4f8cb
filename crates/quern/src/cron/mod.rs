//! Recurring schedules: when a cron expression or an interval fires, as UTC instants.
//!
//! A [`Schedule`] is an expression plus an IANA time zone. It is pure computation: it stores
//! nothing and reads no clock, so every node that holds the same (expression, zone) computes
//! the same ticks. Storing schedules and enqueueing a job per tick is not part of this module.
//!
//! # Expressions
//!
//! - A cron expression with 5 fields (`minute hour day-of-month month day-of-week`) or 6
//!   (a leading `second` field). Fields take lists (`1,15`), ranges (`9-17`), steps (`*/10`,
//!   `0-30/5`), names (`MON-FRI`, `JAN`), and, where the parser supports them, `L` (last day
//!   of the month; `5L`, the last Friday), `W` (nearest weekday) and `#` (`1#2`, the second
//!   Monday). Sunday is `0` or `7`. When both day fields are restricted, a day matches if
//!   either matches (the classic cron rule). Parsing is done by the `croner` crate.
//! - The macros `@yearly` (= `@annually`), `@monthly`, `@weekly` (Sunday), `@daily`
//!   (= `@midnight`) and `@hourly`.
//! - `@every D`, an interval in whole seconds (`@every 90s`, `@every 1h30m`; the syntax of
//!   [`parse_duration`]). Its ticks are the instants `k·D` after the Unix epoch, so every node
//!   computes the same ticks without agreeing on a start time; `@every 1d` fires at 00:00 UTC
//!   whatever the zone. The zone does not change an interval's ticks.
//!
//! # Time zones and daylight saving time
//!
//! A cron expression is read on the wall clock of its zone (UTC unless one is given). Where
//! that wall clock jumps, these rules apply:
//!
//! - **A schedule whose hour field names hours** (`30 2 * * *`, `0 9-17 * * MON-FRI`,
//!   `@daily`) is a wall-clock schedule: each matching local time runs exactly once.
//!   - A local time that does not exist (spring forward) runs once, at the first valid instant
//!     after it, which is the instant the clock jumps. `30 2 * * *` in America/New_York on
//!     2026-03-08 runs at 03:00 EDT. Several such local times (`* 2 * * *` in that gap) become
//!     one run at that instant.
//!   - A local time that occurs twice (fall back) runs once, at its first occurrence.
//!     `30 1 * * *` in America/New_York on 2026-11-01 runs at 01:30 EDT, not again at 01:30 EST.
//! - **A schedule whose hour field is a wildcard** (`*` or `*/N`: `@hourly`, `*/15 * * * *`,
//!   `* * * * *`) follows real time: it runs at every instant whose local time matches. A local
//!   time that does not exist does not occur, and a repeated hour occurs twice. `0 * * * *` in
//!   America/New_York runs at 01:00 EST then 03:00 EDT on spring-forward day (one hour apart),
//!   and at 01:00 EDT, 01:00 EST, 02:00 EST on fall-back day.
//! - `@every` intervals are real time throughout.
//!
//! A zone without daylight saving time (Asia/Kolkata, UTC) has none of these cases.
//!
//! [`parse_duration`]: crate::model::parse_duration

mod parse;
mod ticks;

#[cfg(test)]
mod tests;

use jiff::tz::TimeZone;

use crate::clock::Millis;
use crate::error::Error;

/// A parsed recurring schedule: an expression and the time zone it is read in.
///
/// ```
/// use quern::cron::Schedule;
///
/// let s = Schedule::parse("30 9 * * MON-FRI", Some("Europe/Berlin")).unwrap();
/// // Monday 2026-01-05 00:00 UTC → 09:30 CET = 08:30 UTC the same day.
/// let after = 1_767_571_200_000;
/// assert_eq!(s.next_after(after), Some(1_767_601_800_000));
///
/// let err = Schedule::parse("0 25 * * *", None).unwrap_err().to_string();
/// assert!(err.contains("hour"), "{err}");
/// ```
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The expression as the caller wrote it (trimmed), kept for display and storage.
    expression: String,
    /// The zone's IANA name (`UTC` when none was given).
    zone_name: String,
    zone: TimeZone,
    kind: Kind,
}

/// How a schedule computes its ticks. The split between the two cron kinds is the DST rule
/// of the module documentation.
#[derive(Debug, Clone)]
enum Kind {
    /// The hour field names hours: walk the zone's wall clock and map each matching local
    /// time to one instant (a gap to the jump, a fold to its first occurrence).
    WallClock(croner::Cron),
    /// The hour field is a wildcard: every instant whose local time matches.
    RealTime(croner::Cron),
    /// `@every`: multiples of the interval since the Unix epoch.
    Every { interval_ms: i64 },
}

impl Schedule {
    /// Parses `expr` read in the IANA zone `tz` (UTC when `None`).
    ///
    /// Errors are [`Error::InvalidArgument`] with a message that starts with the part that is
    /// wrong: `cron: hour field "25": …`, `@every: …`, or `tz: unknown time zone "Mars/Base"`.
    pub fn parse(expr: &str, tz: Option<&str>) -> Result<Schedule, Error> {
        let zone_name = tz.map(str::trim).unwrap_or("UTC");
        let zone = TimeZone::get(zone_name)
            .map_err(|_| Error::InvalidArgument(format!("tz: unknown time zone {zone_name:?}")))?;
        let expression = expr.trim().to_string();
        let kind = parse::kind(&expression)?;
        let schedule = Schedule {
            expression,
            zone_name: zone_name.to_string(),
            zone,
            kind,
        };
        // An expression such as `0 0 30 2 *` (30 February) parses but never fires; refuse it
        // here rather than store a schedule that silently does nothing.
        if schedule.next_after(0).is_none() {
            return Err(Error::InvalidArgument(format!(
                "cron: {:?} never matches a date",
                schedule.expression
            )));
        }
        Ok(schedule)
    }

    /// The expression as given (trimmed).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The IANA name of the zone the expression is read in.
    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    /// The zone the expression is read in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The first tick strictly after `after` (ms since the Unix epoch, UTC), or `None` when
    /// the schedule has no later tick within the range of dates the parser covers.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        match &self.kind {
            Kind::WallClock(cron) => ticks::wall_clock_next(cron, &self.zone, after),
            Kind::RealTime(cron) => ticks::real_time_next(cron, &self.zone, after),
            Kind::Every { interval_ms } => ticks::every_next(*interval_ms, after),
        }
    }

    /// The ticks strictly after `after`, in order.
    pub fn ticks_after(&self, after: Millis) -> Ticks<'_> {
        Ticks {
            schedule: self,
            cursor: Some(after),
        }
    }

    /// The next `n` ticks strictly after `after` (fewer if the schedule ends).
    pub fn upcoming(&self, after: Millis, n: usize) -> Vec<Millis> {
        self.ticks_after(after).take(n).collect()
    }
}

/// The iterator of [`Schedule::ticks_after`]. Each tick is strictly later than the one before.
#[derive(Debug, Clone)]
pub struct Ticks<'a> {
    schedule: &'a Schedule,
    /// The last tick returned (or the starting point); `None` once the schedule has ended.
    cursor: Option<Millis>,
}

impl Iterator for Ticks<'_> {
    type Item = Millis;

    fn next(&mut self) -> Option<Millis> {
        let next = self.schedule.next_after(self.cursor?);
        self.cursor = next;
        next
    }
}
