//! A queue's own retention and default retry through the built binary, on both stores:
//! `quern queues set --retain-*/--retry`, `[queues.NAME.retention]`, `quern prune` applying
//! them, refused values; and the Redis memory budget: `store_full` from `quern enqueue` and
//! the `store memory` line of `quern queues list`.

use serde_json::Value;

use crate::support::Env;

on_every_store!(
    queue_retention_is_set_shown_and_applied_by_prune,
    bad_queue_retention_is_refused_and_changes_nothing,
);

fn queue_retention_is_set_shown_and_applied_by_prune(env: Env) {
    let v = env.json(&[
        "queues",
        "set",
        "short",
        "--retain-succeeded",
        "1ms",
        "--retain-dead",
        "forever",
        "--retry",
        "fixed:5s",
    ]);
    let s = &v["settings"];
    assert_eq!(s["retention"]["succeeded"], 1, "{v}");
    assert_eq!(s["retention"]["dead"], "forever", "{v}");
    assert_eq!(s["retry"]["type"], "fixed", "{v}");
    let text = env.ok(&["queues", "show", "short"]);
    assert!(
        text.contains("retention:    succeeded 1ms, dead forever") && text.contains("fixed:5s"),
        "{text}"
    );
    let short = env.enqueue(&["quern.noop", "--queue", "short"]);
    let plain = env.enqueue(&["quern.noop"]);
    env.drain(&["--queues", "short,default"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    // The worker's own pruner may already have taken it; `quern prune` does otherwise.
    env.json(&["prune"]);
    assert!(
        env.run(&["jobs", "show", &short]).status.code() != Some(0),
        "pruned after the queue's 1ms"
    );
    assert_eq!(env.job(&plain)["state"], "succeeded", "kept 24h store-wide");

    let v = env.json(&[
        "queues",
        "set",
        "short",
        "--retain-succeeded",
        "default",
        "--retry",
        "default",
    ]);
    assert_eq!(v["settings"]["retention"]["dead"], "forever", "{v}");
    assert!(v["settings"]["retention"].get("succeeded").is_none(), "{v}");
    assert_eq!(v["settings"]["retry"], Value::Null, "{v}");

    // quern.toml, applied by a worker on start.
    std::fs::write(
        env.path("quern.toml"),
        "[queues.mail]\nretry = \"none\"\n[queues.mail.retention]\ncancelled = \"2d\"\n",
    )
    .unwrap();
    env.drain(&["--queues", "mail"]);
    let s = env.json(&["queues", "show", "mail"]);
    assert_eq!(s["settings"]["retention"]["cancelled"], 172_800_000, "{s}");
    assert_eq!(s["settings"]["retry"]["type"], "none", "{s}");
}

fn bad_queue_retention_is_refused_and_changes_nothing(env: Env) {
    env.ok(&["queues", "set", "q", "--retain-dead", "3d"]);
    for (args, want) in [
        (
            &["queues", "set", "q", "--retain-dead", "soon"][..],
            "forever",
        ),
        (
            &["queues", "set", "q", "--retry", "sometimes"][..],
            "default",
        ),
    ] {
        let err = env.fails(2, args);
        assert!(err.contains(want), "{args:?}: {want:?} not in {err:?}");
    }
    let s = env.json(&["queues", "show", "q"]);
    assert_eq!(s["settings"]["retention"]["dead"], 259_200_000, "{s}");
}

#[test]
fn redis_over_its_memory_budget_refuses_enqueue_with_store_full() {
    let Some(mut env) = Env::redis() else {
        return;
    };
    env.enqueue(&["quern.noop"]);
    env.var("QUERN_REDIS__MAX_MEMORY", "1");
    let err = env.fails(1, &["enqueue", "quern.noop"]);
    assert!(err.contains("store full"), "{err}");
    let list = env.ok(&["queues", "list"]);
    assert!(
        list.contains("store memory:") && list.contains("FULL"),
        "{list}"
    );
    let v = env.json(&["queues", "list"]);
    assert_eq!(v["store_budget"]["full"], true, "{v}");
    assert_eq!(v["store_budget"]["budget_bytes"], 1, "{v}");
    env.var("QUERN_REDIS__MAX_MEMORY", "1TiB");
    env.enqueue(&["quern.noop"]);
    let v = env.json(&["queues", "list"]);
    assert_eq!(v["store_budget"]["full"], false, "{v}");
}

/// `[redis] max_memory` is Redis-only: on an SQLite store the command works and says on
/// stderr that the setting does not apply.
#[test]
fn redis_memory_budget_on_sqlite_is_said_not_to_apply() {
    let mut env = Env::new();
    env.var("QUERN_REDIS__MAX_MEMORY", "1");
    let out = env.run(&["enqueue", "quern.noop"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("applies to Redis stores only"),
        "stderr: {err}"
    );
}
