//! Job groups through the built binary, on both stores: `--group` and batch lines, the
//! group shown by `quern jobs show`, and `quern queues set --group-concurrency`.

use serde_json::Value;

use crate::support::Env;

on_every_store!(group_flags_are_stored_shown_and_checked);

fn group_flags_are_stored_shown_and_checked(env: Env) {
    let id = env.enqueue(&["quern.noop", "--queue", "t", "--group", "acme"]);
    assert_eq!(env.job(&id)["group"], "acme");
    assert!(env.ok(&["jobs", "show", &id]).contains("acme"));
    let err = env.fails(
        2,
        &["enqueue", "quern.noop", "--queue", "t", "--group", "a b"],
    );
    assert!(err.contains("group"), "{err}");
    std::fs::write(
        env.path("b.jsonl"),
        "{\"kind\":\"quern.noop\",\"queue\":\"t\",\"group\":\"globex\"}\n",
    )
    .unwrap();
    env.ok(&["enqueue", "--batch", "b.jsonl"]);
    let groups: Vec<String> = env
        .jobs(&["--queue", "t"])
        .iter()
        .map(|j| j["group"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(groups.len(), 2, "the bad one stored nothing: {groups:?}");
    assert!(groups.contains(&"globex".to_string()), "{groups:?}");
    let v = env.json(&["queues", "set", "t", "--group-concurrency", "3"]);
    assert_eq!(v["settings"]["group_concurrency"], 3, "{v}");
    assert!(env.ok(&["queues", "show", "t"]).contains("group cap:    3"));
    let err = env.fails(2, &["queues", "set", "t", "--group-concurrency", "0"]);
    assert!(err.contains("at least 1"), "{err}");
    let v = env.json(&["queues", "set", "t", "--group-concurrency", "none"]);
    assert_eq!(v["settings"]["group_concurrency"], Value::Null, "{v}");
}
