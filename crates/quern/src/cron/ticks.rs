//! The next tick of each kind of schedule. Every function takes `after` in ms and returns the
//! first tick strictly later. Cron ticks fall on whole seconds, so "later than `after`" is the
//! same as "later than the whole second `after` falls in", which is where the searches start.

use croner::Cron;
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::clock::Millis;

/// A wall-clock schedule: croner walks civil (zone-less) time, where every local time exists
/// once, and [`wall_clock_instant`] maps each match to its one instant.
///
/// That map never goes backwards as local time goes forwards (a gap's times all map to the
/// jump, a fold's to its first half), so a match before the local time of `after` cannot map
/// past `after`: the walk starts there and steps over the few matches that map to `after` or
/// earlier (the rest of a fold's first half when `after` lies in its second half, or a gap's
/// other times once its jump has run).
pub(super) fn wall_clock_next(cron: &Cron, zone: &TimeZone, after: Millis) -> Option<Millis> {
    let start = Timestamp::from_second(after.div_euclid(1_000)).ok()?;
    let mut local = zone.to_datetime(start);
    loop {
        local = cron.find_next_occurrence(&local, false).ok()?;
        let at = wall_clock_instant(zone, local)?;
        if at > after {
            return Some(at);
        }
    }
}

/// The one instant a wall-clock schedule runs for the local time `local`: the instant itself
/// when it exists once, its first occurrence when the clock falls back over it, and the
/// instant of the jump when the clock springs forward over it.
fn wall_clock_instant(zone: &TimeZone, local: DateTime) -> Option<Millis> {
    let at = match zone.to_ambiguous_timestamp(local).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok()?,
        // `before` is the offset in force before the clock fell back, so it names the first
        // of the two instants.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local).ok()?,
        // Read with the later (larger) offset, the local time names an instant before the
        // jump; the next transition from there is the jump itself.
        AmbiguousOffset::Gap { after, .. } => {
            let before_jump = after.to_timestamp(local).ok()?;
            zone.following(before_jump).next()?.timestamp()
        }
    };
    Some(at.as_millisecond())
}

/// A real-time schedule: croner's own zoned search, which runs a wildcard-hour pattern at
/// every instant whose local time matches (both halves of a fold, nothing inside a gap).
pub(super) fn real_time_next(cron: &Cron, zone: &TimeZone, after: Millis) -> Option<Millis> {
    let start = Timestamp::from_second(after.div_euclid(1_000))
        .ok()?
        .to_zoned(zone.clone());
    let next = cron.find_next_occurrence(&start, false).ok()?;
    Some(next.timestamp().as_millisecond())
}

/// `@every`: the next multiple of the interval since the Unix epoch.
pub(super) fn every_next(interval_ms: i64, after: Millis) -> Option<Millis> {
    after
        .div_euclid(interval_ms)
        .checked_add(1)?
        .checked_mul(interval_ms)
}
