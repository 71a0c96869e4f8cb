//! `quern cron next` through the built binary. It needs no store: the test checks that none
//! is created.

use crate::support::{Env, exists};

#[test]
fn next_prints_ticks_in_the_zone_and_in_utc() {
    let env = Env::new();
    // 02:30 does not exist in New York on 2026-03-08: that day runs at the jump, 03:00 EDT.
    let out = env.ok(&[
        "cron",
        "next",
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--from",
        "2026-03-07T12:00:00Z",
        "--count",
        "2",
    ]);
    assert_eq!(
        out,
        "2026-03-08T03:00:00-04:00  2026-03-08T07:00:00Z\n\
         2026-03-09T02:30:00-04:00  2026-03-09T06:30:00Z\n"
    );
    assert!(!exists(&env.path("quern.db")), "cron next opened a store");
}

#[test]
fn next_json_and_defaults() {
    let env = Env::new();
    // Default zone UTC, default count 5.
    let v = env.json(&[
        "cron",
        "next",
        "@every 90s",
        "--from",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(v["tz"], "UTC");
    assert_eq!(v["expression"], "@every 90s");
    let utc: Vec<&str> = v["ticks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["utc"].as_str().unwrap())
        .collect();
    assert_eq!(
        utc,
        [
            "2026-01-01T00:01:30Z",
            "2026-01-01T00:03:00Z",
            "2026-01-01T00:04:30Z",
            "2026-01-01T00:06:00Z",
            "2026-01-01T00:07:30Z",
        ]
    );
    // The repeated hour of a fall-back night: an hourly schedule runs in both halves.
    let v = env.json(&[
        "cron",
        "next",
        "@hourly",
        "--tz",
        "Europe/Berlin",
        "--from",
        "2026-10-24T23:30:00Z",
        "--count",
        "3",
    ]);
    let local: Vec<&str> = v["ticks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["local"].as_str().unwrap())
        .collect();
    assert_eq!(
        local,
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ]
    );
    // Without --from it starts now; only the count is predictable.
    let v = env.json(&["cron", "next", "* * * * *", "--count", "3"]);
    assert_eq!(v["ticks"].as_array().unwrap().len(), 3);
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let env = Env::new();
    let err = env.fails(2, &["cron", "next", "0 25 * * *"]);
    assert!(err.contains("cron: hour field \"25\""), "{err}");
    let err = env.fails(2, &["cron", "next", "@daily", "--tz", "Mars/Base"]);
    assert!(err.contains("tz: unknown time zone \"Mars/Base\""), "{err}");
    let err = env.fails(2, &["cron", "next", "@every 0s"]);
    assert!(err.contains("@every:"), "{err}");
    let err = env.fails(2, &["cron", "next", "@daily", "--from", "yesterday"]);
    assert!(err.contains("--from"), "{err}");
    let err = env.fails(2, &["--json", "cron", "next", "1 2 3"]);
    let v: serde_json::Value = serde_json::from_str(&err).expect("JSON error");
    assert_eq!(v["error"]["code"], "invalid_argument");
}
