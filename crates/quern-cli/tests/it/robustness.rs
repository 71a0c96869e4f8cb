//! Bad input: one clear line on stderr, a non-zero exit, and an unchanged store.

use crate::support::{Env, exists};

on_every_store!(bad_input_is_refused_and_changes_nothing,);

/// The store's jobs and queues, to compare before and after a refused command.
fn snapshot(env: &Env) -> (serde_json::Value, serde_json::Value) {
    (env.json(&["jobs", "list"]), env.json(&["queues", "list"]))
}

fn bad_input_is_refused_and_changes_nothing(mut env: Env) {
    env.var("QUERN_MAX_PAYLOAD_BYTES", "200");
    let id = env.enqueue(&["quern.noop", "--queue", "q"]);
    let before = snapshot(&env);
    let missing = "01a205ab-0000-7000-8000-000000000000";
    let big = format!("{{\"data\": \"{}\"}}", "x".repeat(300));
    std::fs::write(env.path("p.json"), "{}").unwrap();
    for (name, text) in [
        ("unknown.jsonl", "{\"kind\": \"quern.noop\", \"colour\": \"red\"}\n".to_string()),
        (
            "both.jsonl",
            "{\"kind\": \"quern.noop\"}\n{\"kind\": \"quern.noop\", \"delay\": \"1h\", \"at\": \"2030-01-01T00:00:00Z\"}\n".to_string(),
        ),
        ("big.jsonl", format!("{{\"kind\": \"quern.noop\", \"payload\": {big}}}\n")),
        ("badqueue.jsonl", "{\"kind\": \"quern.noop\", \"queue\": \"a b\"}\n".to_string()),
        ("empty.jsonl", "\n\n".to_string()),
        (
            "badretry.jsonl",
            "{\"kind\": \"quern.noop\"}\n{\"kind\": \"quern.noop\", \"retry\": \"exponential:1s\"}\n".to_string(),
        ),
        (
            "badttl.jsonl",
            "{\"kind\": \"quern.noop\", \"result_ttl\": \"0s\"}\n".to_string(),
        ),
    ] {
        std::fs::write(env.path(name), text).unwrap();
    }
    let cases: Vec<(i32, Vec<&str>, &str)> = vec![
        (
            2,
            vec!["enqueue", "quern.noop", "--payload", "{not json"],
            "not valid JSON",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--payload", &big],
            "over the limit",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--delay", "10x"],
            "not a duration",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--priority", "urgent"],
            "not a priority",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--priority", "10"],
            "not a priority",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--at", "tomorrow"],
            "RFC 3339",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--queue", "bad queue"],
            "queue name",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--max-attempts", "0"],
            "at least 1",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--depends-on", "nope"],
            "not a job id",
        ),
        (
            2,
            vec!["jobs", "wait", &id, "--timeout", "soon"],
            "not a duration",
        ),
        (
            2,
            vec!["jobs", "list", "--state", "finished"],
            "not a job state",
        ),
        (2, vec!["jobs", "frobnicate"], "unrecognized subcommand"),
        (1, vec!["jobs", "show", missing], "not found"),
        (1, vec!["jobs", "cancel", missing], "not found"),
        (1, vec!["jobs", "retry", missing], "not found"),
        (1, vec!["jobs", "wait", missing], "not found"),
        (1, vec!["dlq", "replay", missing], "not found"),
        (1, vec!["queues", "pause", "nosuchqueue"], "not found"),
        (1, vec!["queues", "resume", "nosuchqueue"], "not found"),
        (
            2,
            vec!["enqueue", "quern.noop", "--depends-on", missing],
            "error: invalid job: ",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--unique-for", "1h"],
            "--unique",
        ),
        (
            2,
            vec![
                "enqueue",
                "quern.noop",
                "--delay",
                "1h",
                "--at",
                "2030-01-01T00:00:00Z",
            ],
            "cannot be used with",
        ),
        (
            2,
            vec![
                "enqueue",
                "quern.noop",
                "--payload",
                "{}",
                "--payload-file",
                "p.json",
            ],
            "cannot be used with",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--payload-file", "missing.json"],
            "cannot read missing.json",
        ),
        (
            2,
            vec!["enqueue", "--batch", "missing.jsonl"],
            "cannot read",
        ),
        (
            2,
            vec!["enqueue", "--batch", "unknown.jsonl"],
            "line 1: unknown field `colour`",
        ),
        (
            2,
            vec!["enqueue", "--batch", "both.jsonl", "--atomic"],
            "line 2: give either delay or at",
        ),
        (2, vec!["enqueue", "--batch", "big.jsonl"], "over the limit"),
        (
            2,
            vec!["enqueue", "--batch", "badqueue.jsonl"],
            "queue name",
        ),
        (2, vec!["enqueue", "--batch", "empty.jsonl"], "has no jobs"),
        (
            2,
            vec!["enqueue", "quern.noop", "--retry", "sometimes"],
            "unknown policy \"sometimes\"",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--retry", "linear:1s"],
            "linear needs BASE..MAX",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--retry", "exponential:1s..1m~2"],
            "jitter must be between 0 and 1",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--retry", "fixed:soon"],
            "delay \"soon\" is not a duration",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--result-ttl", "soon"],
            "not a duration",
        ),
        (
            2,
            vec!["enqueue", "quern.noop", "--result-ttl", "0s"],
            "result_ttl must be between 1ms and 100 years",
        ),
        (
            2,
            vec!["enqueue", "--batch", "badretry.jsonl"],
            "line 2: retry policy \"exponential:1s\": exponential needs BASE..MAX",
        ),
        (
            2,
            vec!["enqueue", "--batch", "badttl.jsonl"],
            "line 1: invalid job: result_ttl must be",
        ),
        (2, vec!["enqueue", "--atomic"], "required"),
        (2, vec!["enqueue"], "required"),
        (1, vec!["jobs", "retry", &id], "queued"),
        (2, vec!["jobs", "list", "--limit", "0"], "positive count"),
        (2, vec!["jobs", "show", "nope"], "not a job id"),
        (2, vec!["queues", "pause", "bad queue"], "queue name"),
        (
            2,
            vec!["dlq", "replay", missing, "--all"],
            "cannot be used with",
        ),
        (2, vec!["worker", "--lease", "50ms"], "at least 100ms"),
        (2, vec!["worker", "--concurrency", "0"], "at least 1"),
        (2, vec!["bench", "--jobs", "0"], "positive count"),
    ];
    for (code, args, want) in &cases {
        let err = env.fails(*code, args);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(
            err.contains(want),
            "{args:?}: {err:?} should mention {want:?}"
        );
        assert_eq!(snapshot(&env), before, "{args:?} changed the store");
    }
    // The same errors in JSON.
    let out = env.run(&["--json", "queues", "pause", "nosuchqueue"]);
    assert_eq!(out.status.code(), Some(1));
    let e: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "queue_not_found");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nosuchqueue")
    );
    let out = env.run(&["--json", "enqueue", "quern.noop", "--delay", "10x"]);
    assert_eq!(out.status.code(), Some(2));
    let e: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(e["error"]["code"], "usage");
    // A bad batch file stores nothing, not even its good lines.
    std::fs::write(
        env.path("b.jsonl"),
        "{\"kind\":\"quern.noop\"}\n{\"kind\":\n",
    )
    .unwrap();
    let err = env.fails(2, &["enqueue", "--batch", "b.jsonl"]);
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(snapshot(&env), before);
}

#[test]
fn stores_that_cannot_be_opened() {
    let env = Env::new();
    // Bad usage: no scheme, unknown scheme.
    let err = env.fails(2, &["--store", "quern.db", "enqueue", "quern.noop"]);
    assert!(err.contains("no scheme"), "{err}");
    let err = env.fails(2, &["--store", "mysql://x", "enqueue", "quern.noop"]);
    assert!(err.contains("unknown scheme"), "{err}");
    let err = env.fails(
        2,
        &[
            "--store",
            "sqlite://x.db?durability=maybe",
            "enqueue",
            "quern.noop",
        ],
    );
    assert!(err.contains("durability"), "{err}");
    // Failed operations: a missing directory, a file that is not a database, a store that
    // does not exist for a read.
    let err = env.fails(
        1,
        &[
            "--store",
            "sqlite://no/such/dir/q.db",
            "enqueue",
            "quern.noop",
        ],
    );
    assert!(err.contains("does not exist"), "{err}");
    std::fs::write(
        env.path("junk.db"),
        "this is not a database, just some text".repeat(100),
    )
    .unwrap();
    let err = env.fails(1, &["--store", "sqlite://junk.db", "enqueue", "quern.noop"]);
    assert!(err.contains("cannot open store"), "{err}");
    let err = env.fails(1, &["jobs", "list"]);
    assert!(err.contains("no store at quern.db"), "{err}");
    let err = env.fails(
        1,
        &[
            "--json",
            "--store",
            "sqlite://no/such/dir/q.db",
            "jobs",
            "list",
        ],
    );
    assert!(err.contains("\"code\":\"store_not_found\""), "{err}");
    // None of that created a store.
    assert!(!exists(&env.path("quern.db")));
    assert!(!exists(&env.path("x.db")));
    assert_eq!(
        std::fs::read_to_string(env.path("junk.db")).unwrap(),
        "this is not a database, just some text".repeat(100)
    );
}
