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
    // The refused commands come in groups that share their first words and exit code; each
    // group lists only what differs, and `cases` puts the words back together.
    // `quern enqueue quern.noop` with a bad option or combination: a usage error.
    let noop: &[(&[&str], &str)] = &[
        (&["--payload", "{not json"], "not valid JSON"),
        (&["--payload", &big], "over the limit"),
        (&["--delay", "10x"], "not a duration"),
        (&["--priority", "urgent"], "not a priority"),
        (&["--priority", "10"], "not a priority"),
        (&["--at", "tomorrow"], "RFC 3339"),
        (&["--queue", "bad queue"], "queue name"),
        (&["--max-attempts", "0"], "at least 1"),
        (&["--depends-on", "nope"], "not a job id"),
        (&["--depends-on", missing], "error: invalid job: "),
        (&["--unique-for", "1h"], "--unique"),
        (
            &["--delay", "1h", "--at", "2030-01-01T00:00:00Z"],
            "cannot be used with",
        ),
        (
            &["--payload", "{}", "--payload-file", "p.json"],
            "cannot be used with",
        ),
        (
            &["--payload-file", "missing.json"],
            "cannot read missing.json",
        ),
        (&["--retry", "sometimes"], "unknown policy \"sometimes\""),
        (&["--retry", "linear:1s"], "linear needs BASE..MAX"),
        (
            &["--retry", "exponential:1s..1m~2"],
            "jitter must be between 0 and 1",
        ),
        (
            &["--retry", "fixed:soon"],
            "delay \"soon\" is not a duration",
        ),
        (&["--result-ttl", "soon"], "not a duration"),
        (
            &["--result-ttl", "0s"],
            "result_ttl must be between 1ms and 100 years",
        ),
    ];
    // `quern enqueue --batch FILE` with a file it cannot read or refuses: a usage error.
    let batch = [
        ("missing.jsonl", "cannot read"),
        ("unknown.jsonl", "line 1: unknown field `colour`"),
        ("big.jsonl", "over the limit"),
        ("badqueue.jsonl", "queue name"),
        ("empty.jsonl", "has no jobs"),
        (
            "badretry.jsonl",
            "line 2: retry policy \"exponential:1s\": exponential needs BASE..MAX",
        ),
        ("badttl.jsonl", "line 1: invalid job: result_ttl must be"),
    ];
    // A job or queue that does not exist: exit 1, "not found".
    let not_found: [&[&str]; 7] = [
        &["jobs", "show", missing],
        &["jobs", "cancel", missing],
        &["jobs", "retry", missing],
        &["jobs", "wait", missing],
        &["dlq", "replay", missing],
        &["queues", "pause", "nosuchqueue"],
        &["queues", "resume", "nosuchqueue"],
    ];
    // The rest, usage errors but for `jobs retry` of a job that is already queued.
    let others: &[(i32, &[&str], &str)] = &[
        (
            2,
            &["jobs", "wait", &id, "--timeout", "soon"],
            "not a duration",
        ),
        (
            2,
            &["jobs", "list", "--state", "finished"],
            "not a job state",
        ),
        (2, &["jobs", "frobnicate"], "unrecognized subcommand"),
        (
            2,
            &["enqueue", "--batch", "both.jsonl", "--atomic"],
            "line 2: give either delay or at",
        ),
        (2, &["enqueue", "--atomic"], "required"),
        (2, &["enqueue"], "required"),
        (1, &["jobs", "retry", &id], "queued"),
        (2, &["jobs", "list", "--limit", "0"], "positive count"),
        (2, &["jobs", "show", "nope"], "not a job id"),
        (2, &["queues", "pause", "bad queue"], "queue name"),
        (
            2,
            &["dlq", "replay", missing, "--all"],
            "cannot be used with",
        ),
        (2, &["worker", "--lease", "50ms"], "at least 100ms"),
        (2, &["worker", "--concurrency", "0"], "at least 1"),
        (2, &["bench", "--jobs", "0"], "positive count"),
    ];
    let mut cases: Vec<(i32, Vec<&str>, &str)> = Vec::new();
    for &(opts, want) in noop {
        cases.push((2, [&["enqueue", "quern.noop"], opts].concat(), want));
    }
    for (file, want) in batch {
        cases.push((2, vec!["enqueue", "--batch", file], want));
    }
    for args in not_found {
        cases.push((1, args.to_vec(), "not found"));
    }
    for &(code, args, want) in others {
        cases.push((code, args.to_vec(), want));
    }
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
