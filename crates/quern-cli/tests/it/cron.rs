//! `quern cron` through the built binary: stored schedules on both stores (add, list, show,
//! pause, resume, trigger, remove, `[[cron]]` in `quern.toml`, exactly one job per tick
//! with three workers, one of them killed), and `cron next`, which needs no store (the test
//! checks that none is created).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Env, eventually, exists, signal};

on_every_store!(
    add_list_show_pause_resume_trigger_remove,
    bad_schedules_are_refused_and_store_nothing,
    three_workers_run_each_tick_once_while_one_is_killed,
);

fn add_list_show_pause_resume_trigger_remove(env: Env) {
    let add = [
        "cron",
        "add",
        "nightly",
        "--cron",
        "0 3 * * *",
        "--tz",
        "Europe/Berlin",
        "--kind",
        "quern.noop",
        "--payload",
        r#"{"report":"sales"}"#,
        "--queue",
        "reports",
        "--misfire",
        "skip",
        "--overlap",
        "skip",
    ];
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(&add);
    let v = env.json(&with_json[1..]);
    assert_eq!(v["done"], "added", "{v}");
    assert!(v["next_run"].as_i64().is_some(), "{v}");
    let again = env.json(&with_json[1..]);
    assert_eq!(again["done"], "unchanged", "{again}");
    assert_eq!(again["revision"], 1, "{again}");

    let list = env.json(&["cron", "list"]);
    let rows = list["schedules"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    let row = &rows[0];
    assert_eq!(
        (
            row["name"].as_str(),
            row["cron"].as_str(),
            row["tz"].as_str(),
            row["queue"].as_str(),
            row["paused"].as_bool()
        ),
        (
            Some("nightly"),
            Some("0 3 * * *"),
            Some("Europe/Berlin"),
            Some("reports"),
            Some(false)
        ),
        "{row}"
    );
    // 03:00 in Berlin is 01:00 or 02:00 UTC, depending on the season.
    let next = row["next_run"].as_i64().unwrap();
    let hour_utc = (next / 3_600_000) % 24;
    assert!(
        matches!(hour_utc, 1 | 2),
        "next run {next} is not 03:00 Berlin"
    );
    assert!(env.ok(&["cron", "list"]).contains("nightly"));

    let shown = env.json(&["cron", "show", "nightly"]);
    assert_eq!(
        shown["schedule"]["spec"]["job"]["payload"]["report"],
        "sales"
    );
    assert_eq!(shown["schedule"]["spec"]["misfire"]["policy"], "skip");
    assert_eq!(shown["runs"].as_array().unwrap().len(), 0);

    let id = env.ok(&["cron", "trigger", "nightly"]).trim().to_string();
    let job = env.job(&id);
    assert_eq!(
        (job["queue"].as_str(), job["state"].as_str()),
        (Some("reports"), Some("queued"))
    );
    assert_eq!(job["meta"]["cron"]["schedule"], "nightly");
    let shown = env.json(&["cron", "show", "nightly"]);
    let runs = shown["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{shown}");
    assert_eq!(
        (runs[0]["kind"].as_str(), runs[0]["job_id"].as_str()),
        (Some("manual"), Some(id.as_str()))
    );
    assert_eq!(runs[0]["outcome"], "queued");
    let text = env.ok(&["cron", "show", "nightly"]);
    assert!(
        text.contains("misfire skip, overlap skip") && text.contains(&id),
        "{text}"
    );

    env.ok(&["cron", "pause", "nightly"]);
    let row = &env.json(&["cron", "list"])["schedules"][0];
    assert_eq!(
        (row["paused"].as_bool(), row["next_run"].as_i64()),
        (Some(true), None)
    );
    env.ok(&["cron", "resume", "nightly"]);
    assert_eq!(env.json(&["cron", "list"])["schedules"][0]["paused"], false);

    // Another expression under the same name is a change.
    let mut changed = add.to_vec();
    changed[4] = "30 4 * * *";
    let v = env.json(&changed);
    assert_eq!(v["done"], "changed", "{v}");

    env.ok(&["cron", "remove", "nightly"]);
    assert_eq!(
        env.json(&["cron", "list"])["schedules"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let err = env.fails(1, &["cron", "show", "nightly"]);
    assert!(err.contains("not found"), "{err}");
    env.fails(1, &["cron", "remove", "nightly"]);
    // The triggered job stays.
    assert_eq!(env.job(&id)["state"], "queued");
}

fn bad_schedules_are_refused_and_store_nothing(env: Env) {
    let base = ["cron", "add", "s", "--kind", "quern.noop"];
    let cases: [(&[&str], &str); 7] = [
        (&["--cron", "61 * * * *"], "minute"),
        (&["--cron", "* * * * *", "--tz", "Mars/Base"], "Mars/Base"),
        (&["--every", "soon"], "@every"),
        (&["--cron", "@daily", "--payload", "{not json"], "--payload"),
        (&["--cron", "@daily", "--misfire", "later"], "misfire"),
        (&["--cron", "@daily", "--overlap", "twice"], "overlap"),
        (&["--cron", "@daily", "--queue", "{x}"], "queue"),
    ];
    for (extra, want) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let err = env.fails(2, &args);
        assert!(
            err.contains(want),
            "{extra:?}: expected {want:?} in {err:?}"
        );
    }
    env.fails(2, &["cron", "add", "s", "--kind", "k"]); // neither --cron nor --every
    env.fails(
        2,
        &[
            "cron", "add", "s", "--kind", "k", "--cron", "@daily", "--every", "1m",
        ],
    );
    env.fails(
        2,
        &[
            "cron",
            "add",
            "no spaces",
            "--kind",
            "k",
            "--cron",
            "@daily",
        ],
    );
    env.fails(
        2,
        &[
            "cron",
            "add",
            "s",
            "--kind",
            "k",
            "--cron",
            "@daily",
            "--start",
            "2027-01-02T00:00:00Z",
            "--end",
            "2027-01-01T00:00:00Z",
        ],
    );
    // A good one, then a bad change of it: the good one stays as it was.
    env.ok(&[
        "cron",
        "add",
        "s",
        "--kind",
        "quern.noop",
        "--cron",
        "@hourly",
    ]);
    env.fails(
        2,
        &[
            "cron",
            "add",
            "s",
            "--kind",
            "quern.noop",
            "--cron",
            "0 0 30 2 *",
        ],
    );
    let list = env.json(&["cron", "list"]);
    let rows = list["schedules"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["cron"], "@hourly");
}

/// Three `quern worker` processes on one store, each declaring the same every-second
/// schedule in `quern.toml`, for 20 s; one is killed with SIGKILL halfway. Every second
/// of the run has exactly one run, each with its own job, and the jobs ran.
fn three_workers_run_each_tick_once_while_one_is_killed(mut env: Env) {
    std::fs::write(
        env.path("quern.toml"),
        r#"
[[cron]]
name = "heartbeat"
cron = "@every 1s"
misfire = "skip"

[cron.job]
kind = "quern.noop"
queue = "ticks"
payload = { source = "quern.toml" }
"#,
    )
    .unwrap();
    let worker = [
        "worker",
        "--queues",
        "ticks",
        "--lease",
        "2s",
        "--heartbeat",
        "200ms",
    ];
    let pids: Vec<u32> = (0..3).map(|_| env.spawn(&worker)).collect();
    eventually(Duration::from_secs(20), "the schedule is stored", || {
        env.run(&["--json", "cron", "list"]).status.success()
            && env.json(&["cron", "list"])["schedules"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
    });
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    signal(pids[0], libc::SIGKILL);
    let killed_at = jiff::Timestamp::now().as_millisecond();
    std::thread::sleep(Duration::from_secs(20).saturating_sub(started.elapsed()));
    let end = jiff::Timestamp::now().as_millisecond();
    // Let the last ticks' jobs finish, then stop the survivors.
    std::thread::sleep(Duration::from_secs(2));
    for pid in &pids[1..] {
        signal(*pid, libc::SIGTERM);
    }
    let shown = env.json(&["cron", "show", "heartbeat", "--runs", "100"]);
    let runs = shown["runs"].as_array().unwrap();
    let ticks: Vec<i64> = runs
        .iter()
        .map(|r| r["tick"].as_i64().unwrap())
        .rev()
        .collect();
    let distinct: BTreeSet<i64> = ticks.iter().copied().collect();
    assert_eq!(distinct.len(), ticks.len(), "a tick ran twice: {ticks:?}");
    let first = ticks[0];
    let upto: Vec<i64> = ticks.iter().copied().filter(|t| *t <= end).collect();
    let want: Vec<i64> = (0..upto.len() as i64).map(|i| first + i * 1000).collect();
    assert_eq!(upto, want, "one run per second, none missing");
    assert!(upto.len() >= 18, "20 s of ticks: {}", upto.len());
    assert!(
        upto.iter().any(|t| *t > killed_at + 2_000),
        "ticks went on after the kill"
    );
    let ids: BTreeSet<&str> = runs.iter().map(|r| r["job_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), runs.len(), "each run has its own job");
    let jobs = env.jobs(&["--queue", "ticks"]);
    assert_eq!(jobs.len(), runs.len(), "one job per run, no strays");
    let done: Vec<&Value> = runs
        .iter()
        .filter(|r| r["outcome"] == "succeeded")
        .collect();
    assert!(done.len() + 3 >= upto.len(), "the ticks' jobs ran: {shown}");
}

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
