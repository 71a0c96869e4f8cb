//! DST matrix, the measured regression cases, a property test against a brute-force reading
//! of the rules, and refused input. Every instant is given explicitly; nothing reads a clock.
//!
//! Expected ticks are written as RFC 3339 with the zone's offset, each naming one exact UTC
//! instant (`03:00:00-04:00` is 07:00:00Z).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;

use super::{Kind, Schedule};
use crate::clock::Millis;
use crate::error::Error;

fn ms(rfc3339: &str) -> Millis {
    rfc3339
        .parse::<Timestamp>()
        .expect("a test instant")
        .as_millisecond()
}

fn local(tz: &TimeZone, at: Millis) -> String {
    Timestamp::from_millisecond(at)
        .expect("in range")
        .to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// The first `expected.len()` ticks of `expr` in `zone` strictly after `from`.
#[track_caller]
fn check(expr: &str, zone: &str, from: &str, expected: &[&str]) {
    let s = Schedule::parse(expr, Some(zone)).expect("a valid schedule");
    let got: Vec<String> = s
        .upcoming(ms(from), expected.len())
        .into_iter()
        .map(|t| local(s.time_zone(), t))
        .collect();
    assert_eq!(got, expected, "{expr:?} in {zone} after {from}");
    // The strings name instants; compare those too, so an offset typo cannot hide a mistake.
    let want: Vec<Millis> = expected.iter().map(|e| ms(e)).collect();
    assert_eq!(s.upcoming(ms(from), expected.len()), want);
}

/// How many ticks fall in `[from, to)`.
fn count(expr: &str, zone: &str, from: &str, to: &str) -> usize {
    let s = Schedule::parse(expr, Some(zone)).expect("a valid schedule");
    s.ticks_after(ms(from) - 1)
        .take_while(|&t| t < ms(to))
        .count()
}

// ---- America/New_York: 02:00 EST → 03:00 EDT; 02:00 EDT → 01:00 EST -------------------------

#[test]
fn new_york_spring_forward() {
    for (day, next) in [("2026-03-08", "2026-03-09"), ("2027-03-14", "2027-03-15")] {
        let at = |t: &str| format!("{day}T{t}");
        // Daily at 02:30, which does not exist: once, at the jump.
        check(
            "30 2 * * *",
            "America/New_York",
            &at("00:00:00-05:00"),
            &[&at("03:00:00-04:00"), &format!("{next}T02:30:00-04:00")],
        );
        // Hourly and every minute follow real time: one hour / one minute apart.
        check(
            "0 * * * *",
            "America/New_York",
            &at("00:30:00-05:00"),
            &[
                &at("01:00:00-05:00"),
                &at("03:00:00-04:00"),
                &at("04:00:00-04:00"),
            ],
        );
        check(
            "* * * * *",
            "America/New_York",
            &at("01:58:00-05:00"),
            &[
                &at("01:59:00-05:00"),
                &at("03:00:00-04:00"),
                &at("03:01:00-04:00"),
            ],
        );
        // The local day from 00:00 to 04:00 lasts three real hours.
        let (from, to) = (at("00:00:00-05:00"), at("04:00:00-04:00"));
        assert_eq!(count("* * * * *", "America/New_York", &from, &to), 180);
        // Every minute of the missing hour becomes one run at the jump.
        assert_eq!(count("* 2 * * *", "America/New_York", &from, &to), 1);
    }
}

#[test]
fn new_york_fall_back() {
    for (day, next) in [("2026-11-01", "2026-11-02"), ("2027-11-07", "2027-11-08")] {
        let at = |t: &str| format!("{day}T{t}");
        // Daily at 01:30, which happens twice: once, at the first (EDT) occurrence.
        check(
            "30 1 * * *",
            "America/New_York",
            &at("00:00:00-04:00"),
            &[&at("01:30:00-04:00"), &format!("{next}T01:30:00-05:00")],
        );
        check(
            "0 * * * *",
            "America/New_York",
            &at("00:30:00-04:00"),
            &[
                &at("01:00:00-04:00"),
                &at("01:00:00-05:00"),
                &at("02:00:00-05:00"),
            ],
        );
        check(
            "* * * * *",
            "America/New_York",
            &at("01:58:00-04:00"),
            &[
                &at("01:59:00-04:00"),
                &at("01:00:00-05:00"),
                &at("01:01:00-05:00"),
            ],
        );
        // The local day from 00:00 to 03:00 lasts four real hours.
        let (from, to) = (at("00:00:00-04:00"), at("03:00:00-05:00"));
        assert_eq!(count("* * * * *", "America/New_York", &from, &to), 240);
        // A wall-clock schedule runs the repeated hour's minutes once each.
        assert_eq!(count("* 1 * * *", "America/New_York", &from, &to), 60);
    }
}

// ---- Europe/Berlin: 02:00 CET → 03:00 CEST; 03:00 CEST → 02:00 CET --------------------------

#[test]
fn berlin_spring_forward() {
    for (day, next) in [("2026-03-29", "2026-03-30"), ("2027-03-28", "2027-03-29")] {
        let at = |t: &str| format!("{day}T{t}");
        check(
            "30 2 * * *",
            "Europe/Berlin",
            &at("00:00:00+01:00"),
            &[&at("03:00:00+02:00"), &format!("{next}T02:30:00+02:00")],
        );
        check(
            "0 * * * *",
            "Europe/Berlin",
            &at("00:30:00+01:00"),
            &[
                &at("01:00:00+01:00"),
                &at("03:00:00+02:00"),
                &at("04:00:00+02:00"),
            ],
        );
        check(
            "* * * * *",
            "Europe/Berlin",
            &at("01:58:00+01:00"),
            &[
                &at("01:59:00+01:00"),
                &at("03:00:00+02:00"),
                &at("03:01:00+02:00"),
            ],
        );
    }
}

#[test]
fn berlin_fall_back() {
    for (day, next) in [("2026-10-25", "2026-10-26"), ("2027-10-31", "2027-11-01")] {
        let at = |t: &str| format!("{day}T{t}");
        check(
            "30 2 * * *",
            "Europe/Berlin",
            &at("00:00:00+02:00"),
            &[&at("02:30:00+02:00"), &format!("{next}T02:30:00+01:00")],
        );
        check(
            "0 * * * *",
            "Europe/Berlin",
            &at("01:30:00+02:00"),
            &[
                &at("02:00:00+02:00"),
                &at("02:00:00+01:00"),
                &at("03:00:00+01:00"),
            ],
        );
        check(
            "* * * * *",
            "Europe/Berlin",
            &at("02:58:00+02:00"),
            &[
                &at("02:59:00+02:00"),
                &at("02:00:00+01:00"),
                &at("02:01:00+01:00"),
            ],
        );
    }
}

// ---- Australia/Lord_Howe: a 30-minute shift. 02:00 +10:30 → 02:30 +11:00 (October);
// ---- 02:00 +11:00 → 01:30 +10:30 (April) -------------------------------------------------------

#[test]
fn lord_howe_spring_forward() {
    for (day, next) in [("2026-10-04", "2026-10-05"), ("2027-10-03", "2027-10-04")] {
        let at = |t: &str| format!("{day}T{t}");
        check(
            "15 2 * * *",
            "Australia/Lord_Howe",
            &at("00:00:00+10:30"),
            &[&at("02:30:00+11:00"), &format!("{next}T02:15:00+11:00")],
        );
        // 02:00 does not exist: the hourly tick after 01:00 is 03:00, 1.5 real hours later.
        check(
            "0 * * * *",
            "Australia/Lord_Howe",
            &at("00:30:00+10:30"),
            &[&at("01:00:00+10:30"), &at("03:00:00+11:00")],
        );
        check(
            "30 * * * *",
            "Australia/Lord_Howe",
            &at("00:45:00+10:30"),
            &[
                &at("01:30:00+10:30"),
                &at("02:30:00+11:00"),
                &at("03:30:00+11:00"),
            ],
        );
        check(
            "* * * * *",
            "Australia/Lord_Howe",
            &at("01:58:00+10:30"),
            &[
                &at("01:59:00+10:30"),
                &at("02:30:00+11:00"),
                &at("02:31:00+11:00"),
            ],
        );
    }
}

#[test]
fn lord_howe_fall_back() {
    for (day, next) in [("2026-04-05", "2026-04-06"), ("2027-04-04", "2027-04-05")] {
        let at = |t: &str| format!("{day}T{t}");
        check(
            "45 1 * * *",
            "Australia/Lord_Howe",
            &at("00:00:00+11:00"),
            &[&at("01:45:00+11:00"), &format!("{next}T01:45:00+10:30")],
        );
        // Only 01:30–02:00 repeats, so :00 does not repeat but :30 does.
        check(
            "0 * * * *",
            "Australia/Lord_Howe",
            &at("00:30:00+11:00"),
            &[
                &at("01:00:00+11:00"),
                &at("02:00:00+10:30"),
                &at("03:00:00+10:30"),
            ],
        );
        check(
            "30 * * * *",
            "Australia/Lord_Howe",
            &at("00:45:00+11:00"),
            &[
                &at("01:30:00+11:00"),
                &at("01:30:00+10:30"),
                &at("02:30:00+10:30"),
            ],
        );
        check(
            "* * * * *",
            "Australia/Lord_Howe",
            &at("01:58:00+11:00"),
            &[
                &at("01:59:00+11:00"),
                &at("01:30:00+10:30"),
                &at("01:31:00+10:30"),
            ],
        );
    }
}

// ---- Asia/Kolkata: no DST, so the other zones' transition days are ordinary days ----------

#[test]
fn kolkata_has_no_transitions() {
    for day in [
        "2026-03-08",
        "2026-03-29",
        "2026-11-01",
        "2027-03-14",
        "2027-10-31",
    ] {
        let at = |t: &str| format!("{day}T{t}");
        check(
            "30 2 * * *",
            "Asia/Kolkata",
            &at("00:00:00+05:30"),
            &[&at("02:30:00+05:30")],
        );
        let (from, to) = (at("00:00:00+05:30"), at("23:59:59+05:30"));
        assert_eq!(count("0 * * * *", "Asia/Kolkata", &from, &to), 24);
        assert_eq!(count("* * * * *", "Asia/Kolkata", &from, &to), 1440);
        assert_eq!(count("30 2 * * *", "Asia/Kolkata", &from, &to), 1);
    }
}

// ---- The five measured cases of rust-deps.md ("Measured DST behaviour") -----------------

#[test]
fn measured_regressions() {
    // 1. 02:30 does not exist on spring-forward day: 03:00 EDT that day, then 02:30.
    check(
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00-05:00",
        &["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"],
    );
    // 2. 01:30 happens twice on fall-back day: once, 01:30 EDT.
    check(
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00-04:00",
        &["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
    );
    // 3. Hourly across fall-back: real hourly.
    check(
        "0 * * * *",
        "America/New_York",
        "2026-11-01T00:30:00-04:00",
        &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
    );
    // 4. Every 30 minutes across fall-back: both halves, in chronological order.
    check(
        "*/30 * * * *",
        "America/New_York",
        "2026-11-01T00:45:00-04:00",
        &[
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
    );
    // 5. Midnight does not exist (Sao Paulo 2018-11-04): 01:00 that day.
    check(
        "0 0 * * *",
        "America/Sao_Paulo",
        "2018-11-03T12:00:00-03:00",
        &["2018-11-04T01:00:00-02:00", "2018-11-05T00:00:00-02:00"],
    );
}

// ---- Syntax --------------------------------------------------------------------------------

#[test]
fn macros_names_seconds_and_modifiers() {
    let utc = "UTC";
    let from = "2026-01-01T00:00:00Z"; // a Thursday
    check("@yearly", utc, from, &["2027-01-01T00:00:00+00:00"]);
    check("@annually", utc, from, &["2027-01-01T00:00:00+00:00"]);
    check("@monthly", utc, from, &["2026-02-01T00:00:00+00:00"]);
    check("@weekly", utc, from, &["2026-01-04T00:00:00+00:00"]);
    check("@daily", utc, from, &["2026-01-02T00:00:00+00:00"]);
    check("@MIDNIGHT", utc, from, &["2026-01-02T00:00:00+00:00"]);
    check("@hourly", utc, from, &["2026-01-01T01:00:00+00:00"]);
    check(
        "0 9 * JAN MON-FRI",
        utc,
        from,
        &[
            "2026-01-01T09:00:00+00:00",
            "2026-01-02T09:00:00+00:00",
            "2026-01-05T09:00:00+00:00",
        ],
    );
    check(
        "*/20 0 0 * * *",
        utc,
        from,
        &["2026-01-01T00:00:20+00:00", "2026-01-01T00:00:40+00:00"],
    );
    check("0 12 L * *", utc, from, &["2026-01-31T12:00:00+00:00"]);
    check("0 12 * * 5L", utc, from, &["2026-01-30T12:00:00+00:00"]);
    check("0 12 * * 1#2", utc, from, &["2026-01-12T12:00:00+00:00"]);
    check(
        "0 0 1,15 * *",
        utc,
        from,
        &["2026-01-15T00:00:00+00:00", "2026-02-01T00:00:00+00:00"],
    );
}

#[test]
fn every_counts_from_the_epoch_in_real_time() {
    let s = Schedule::parse("@every 90s", Some("America/New_York")).unwrap();
    assert_eq!(s.next_after(0), Some(90_000));
    assert_eq!(s.next_after(89_999), Some(90_000));
    assert_eq!(s.next_after(90_000), Some(180_000));
    assert_eq!(s.next_after(-1), Some(0));
    // Across New York's fall-back hour: still exactly one hour apart.
    let h = Schedule::parse("@every 1h", Some("America/New_York")).unwrap();
    let ticks = h.upcoming(ms("2026-11-01T00:30:00-04:00"), 3);
    assert_eq!(
        ticks
            .iter()
            .map(|&t| local(h.time_zone(), t))
            .collect::<Vec<_>>(),
        [
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T02:00:00-05:00"
        ],
    );
    assert!(matches!(
        h.kind,
        Kind::Every {
            interval_ms: 3_600_000
        }
    ));
}

#[test]
fn after_is_exclusive_to_the_millisecond() {
    let s = Schedule::parse("0 * * * * *", None).unwrap();
    assert_eq!(s.next_after(60_000), Some(120_000));
    assert_eq!(s.next_after(59_999), Some(60_000));
    assert_eq!(s.next_after(60_001), Some(120_000));
    assert_eq!(s.zone_name(), "UTC");
    assert_eq!(s.expression(), "0 * * * * *");
}

#[test]
fn bad_input_is_refused_naming_the_part() {
    let refused = |expr: &str, tz: Option<&str>| match Schedule::parse(expr, tz) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("{expr:?} in {tz:?}: expected InvalidArgument, got {other:?}"),
    };
    let cases: &[(&str, Option<&str>, &[&str])] = &[
        ("0 25 * * *", None, &["cron: hour field \"25\""]),
        ("61 * * * *", None, &["cron: minute field \"61\""]),
        ("0 0 32 * *", None, &["cron: day-of-month field \"32\""]),
        ("0 0 * FOO *", None, &["cron: month field \"FOO\""]),
        ("0 0 * * 9", None, &["cron: day-of-week field \"9\""]),
        ("70 0 0 * * *", None, &["cron: second field \"70\""]),
        ("* * * *", None, &["cron: expected 5 fields", "got 4"]),
        (
            "0 0 0 1 1 * 2030",
            None,
            &["cron: expected 5 fields", "got 7"],
        ),
        ("", None, &["cron: the expression is empty"]),
        (
            "@fortnightly",
            None,
            &["cron: unknown macro \"@fortnightly\""],
        ),
        ("0 0 30 2 *", None, &["cron: \"0 0 30 2 *\" never matches"]),
        ("@every 0s", None, &["@every:", "at least 1s"]),
        (
            "@every 1500ms",
            None,
            &["@every:", "whole number of seconds"],
        ),
        ("@every soon", None, &["@every:", "not a duration"]),
        (
            "@daily",
            Some("Mars/Base"),
            &["tz: unknown time zone \"Mars/Base\""],
        ),
    ];
    for (expr, tz, parts) in cases {
        let m = refused(expr, *tz);
        for part in *parts {
            assert!(m.contains(part), "{expr:?}: {m:?} should contain {part:?}");
        }
    }
}

// ---- Property: the ticks are exactly what the rules say, instant by instant ---------------

const ZONES: &[&str] = &[
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "UTC",
];

/// Whether the rules of the module documentation make `t` (a whole minute) a tick of a
/// five-field cron schedule, decided from the zone's offsets alone, one instant at a time.
fn rule_says_tick(cron: &croner::Cron, wall_clock: bool, tz: &TimeZone, t: Timestamp) -> bool {
    let here = t.to_zoned(tz.clone());
    let matches = cron.is_time_matching(&here.datetime()).unwrap();
    if !wall_clock {
        return matches;
    }
    // Wall clock: a matching local time runs at its first occurrence only…
    let first = tz
        .to_ambiguous_timestamp(here.datetime())
        .earlier()
        .unwrap();
    if matches && first == t {
        return true;
    }
    // …and the jump of a gap runs once if any skipped local time matches.
    let just_before = (t - jiff::SignedDuration::from_secs(1)).to_zoned(tz.clone());
    let jumped = here.offset() > just_before.offset();
    if !jumped {
        return false;
    }
    let mut skipped = just_before.datetime() + jiff::SignedDuration::from_secs(1);
    while skipped < here.datetime() {
        if cron.is_time_matching(&skipped).unwrap() {
            return true;
        }
        skipped += jiff::SignedDuration::from_mins(1);
    }
    false
}

fn expression() -> impl Strategy<Value = String> {
    let minute = prop::sample::select(vec!["0", "30", "*/15", "*", "5,35", "59"]);
    let hour = prop::sample::select(vec!["*", "0", "1", "2", "3", "0-3", "*/2", "1,2,13"]);
    let dow = prop::sample::select(vec!["*", "*", "MON-FRI", "SUN"]);
    (minute, hour, dow).prop_map(|(m, h, d)| format!("{m} {h} * * {d}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn ticks_follow_the_rules_through_transitions(
        expr in expression(),
        zone in prop::sample::select(ZONES.to_vec()),
        pick in 0usize..64,
        lead_mins in 0i64..1440,
    ) {
        let s = Schedule::parse(&expr, Some(zone)).unwrap();
        let tz = s.time_zone().clone();
        // Start up to a day before one of the zone's 2026–2027 transitions (or an ordinary
        // day for a zone without any), and look 36 hours ahead.
        let year_start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let year_end: Timestamp = "2028-01-01T00:00:00Z".parse().unwrap();
        let transitions: Vec<Timestamp> = tz
            .following(year_start)
            .map(|tr| tr.timestamp())
            .take_while(|&at| at < year_end)
            .collect();
        let anchor = if transitions.is_empty() {
            "2026-03-08T07:00:00Z".parse().unwrap()
        } else {
            transitions[pick % transitions.len()]
        };
        let from = anchor.as_millisecond() - lead_mins * 60_000;
        let to = from + 36 * 3_600_000;

        let (cron, wall_clock) = match &s.kind {
            Kind::WallClock(c) => (c, true),
            Kind::RealTime(c) => (c, false),
            Kind::Every { .. } => unreachable!(),
        };
        let mut want = Vec::new();
        let mut t = from + 60_000;
        while t < to {
            if rule_says_tick(cron, wall_clock, &tz, Timestamp::from_millisecond(t).unwrap()) {
                want.push(t);
            }
            t += 60_000;
        }
        let got: Vec<Millis> = s.ticks_after(from).take_while(|&t| t < to).collect();
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "not increasing: {got:?}");
        prop_assert_eq!(got, want, "{} in {}", expr, zone);
    }

    /// `m h * * *` runs exactly once per local day, whatever the hour (a gap day included).
    #[test]
    fn a_daily_schedule_runs_once_per_local_day(
        minute in 0u8..60,
        hour in 0u8..24,
        zone in prop::sample::select(ZONES.to_vec()),
        start_day in 0i64..730,
    ) {
        let s = Schedule::parse(&format!("{minute} {hour} * * *"), Some(zone)).unwrap();
        let from = ms("2026-01-01T00:00:00Z") + start_day * 86_400_000;
        let days: Vec<jiff::civil::Date> = s
            .upcoming(from, 40)
            .into_iter()
            .map(|t| Timestamp::from_millisecond(t).unwrap().to_zoned(s.time_zone().clone()).date())
            .collect();
        for w in days.windows(2) {
            prop_assert_eq!(w[1], w[0].tomorrow().unwrap(), "{} {} in {}", minute, hour, zone);
        }
    }
}
