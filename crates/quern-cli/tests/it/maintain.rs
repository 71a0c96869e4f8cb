//! `quern maintain` through the built binary: each subcommand on an SQLite store, in words
//! and with `--json`, and the refusal on Redis.

use serde_json::Value;

use crate::support::Env;

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

/// A store with two queued jobs, one scheduled and one succeeded.
fn store_with_jobs() -> Env {
    let env = Env::new();
    env.enqueue(&["quern.noop"]);
    env.drain(&[]);
    env.enqueue(&["quern.noop"]);
    env.enqueue(&["quern.noop"]);
    env.enqueue(&["quern.noop", "--delay", "1h"]);
    env
}

#[test]
fn stats_show_sizes_and_jobs_per_state() {
    let env = store_with_jobs();
    let v = env.json(&["maintain", "stats"]);
    assert_eq!(
        keys(&v),
        [
            "file_bytes",
            "free_bytes",
            "free_pages",
            "jobs",
            "page_count",
            "page_size",
            "path",
            "schema_version",
            "wal_bytes"
        ]
    );
    assert_eq!(v["path"], "quern.db");
    assert_eq!(v["jobs"]["queued"], 2);
    assert_eq!(v["jobs"]["scheduled"], 1);
    assert_eq!(v["jobs"]["succeeded"], 1);
    assert_eq!(v["jobs"]["running"], 0);
    assert!(v["page_size"].as_u64().unwrap() >= 512);
    assert!(v["schema_version"].as_i64().unwrap() >= 1);

    let out = env.ok(&["maintain", "stats"]);
    for label in [
        "file size:",
        "wal size:",
        "page size:",
        "free pages:",
        "schema version:",
    ] {
        assert!(out.contains(label), "no {label:?} in:\n{out}");
    }
    assert!(out.contains("jobs:           4"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().eq(["queued", "2"])),
        "{out}"
    );
}

#[test]
fn checkpoints_in_each_mode() {
    let env = store_with_jobs();
    let v = env.json(&["maintain", "checkpoint"]);
    assert_eq!(
        keys(&v),
        ["busy", "checkpointed_frames", "log_frames", "mode"]
    );
    assert_eq!(
        (v["mode"].as_str(), v["busy"].as_bool()),
        (Some("passive"), Some(false))
    );
    let v = env.json(&["maintain", "checkpoint", "full"]);
    assert_eq!(v["mode"], "full");
    assert_eq!(v["log_frames"], v["checkpointed_frames"]);

    env.enqueue(&["quern.noop"]);
    let out = env.ok(&["maintain", "checkpoint", "truncate"]);
    assert_eq!(
        out,
        "checkpoint (truncate): every WAL frame copied into the file; the WAL file is empty\n"
    );
    assert_eq!(env.json(&["maintain", "stats"])["wal_bytes"], 0);

    let err = env.fails(2, &["maintain", "checkpoint", "restart"]);
    assert!(err.contains("passive, full or truncate"), "{err}");
}

#[test]
fn analyze_vacuum_and_integrity() {
    let env = store_with_jobs();
    assert_eq!(
        env.ok(&["maintain", "analyze"]),
        "analyzed: the query planner's statistics are up to date\n"
    );
    assert_eq!(
        env.json(&["maintain", "analyze"]),
        serde_json::json!({"analyzed": true})
    );

    let out = env.ok(&["maintain", "vacuum"]);
    assert!(out.starts_with("vacuumed: file "), "{out}");
    let v = env.json(&["maintain", "vacuum"]);
    assert_eq!(
        keys(&v),
        [
            "checkpoint",
            "file_bytes_after",
            "file_bytes_before",
            "free_pages_after",
            "free_pages_before"
        ]
    );
    assert_eq!(v["free_pages_after"], 0);
    assert_eq!(v["checkpoint"]["busy"], false);

    assert_eq!(env.ok(&["maintain", "integrity"]), "ok\n");
    assert_eq!(
        env.json(&["maintain", "integrity"]),
        serde_json::json!({"ok": true, "problems": []})
    );
    // The store still works and kept its jobs.
    assert_eq!(env.json(&["maintain", "stats"])["jobs"]["queued"], 2);
}

#[test]
fn a_missing_store_is_not_created() {
    let env = Env::new();
    let err = env.fails(1, &["maintain", "stats"]);
    assert!(err.contains("no store at"), "{err}");
    assert!(!env.path("quern.db").exists());
}

#[test]
fn every_subcommand_is_refused_on_redis() {
    let Some(env) = Env::redis() else { return };
    for args in [
        &["maintain", "checkpoint", "truncate"][..],
        &["maintain", "analyze"],
        &["maintain", "vacuum"],
        &["maintain", "integrity"],
        &["maintain", "stats"],
    ] {
        let err = env.fails(2, args);
        assert!(
            err.contains("SQLite stores only") && err.contains("Redis's own tools"),
            "{args:?}: {err}"
        );
        let mut json = vec!["--json"];
        json.extend_from_slice(args);
        let err = env.fails(2, &json);
        let v: Value = serde_json::from_str(&err).unwrap();
        assert_eq!(v["error"]["code"], "sqlite_only", "{args:?}");
    }
}
