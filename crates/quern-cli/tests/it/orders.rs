//! Claim order, aging and weight through the built binary, on both stores:
//! `quern queues set --order/--aging-*/--weight`, `[queues.NAME]` keys in `quern.toml`, the
//! refused values, and a worker process draining a `lifo` queue newest first.

use serde_json::Value;

use crate::support::Env;

on_every_store!(
    set_and_show_order_aging_and_weight,
    bad_order_settings_are_refused_and_change_nothing,
    a_worker_drains_a_lifo_queue_newest_first,
);

fn set_and_show_order_aging_and_weight(env: Env) {
    let v = env.json(&[
        "queues",
        "set",
        "mail",
        "--order",
        "fifo",
        "--weight",
        "3",
        "--aging-after",
        "30m",
        "--aging-step",
        "2",
    ]);
    let s = &v["settings"];
    assert_eq!(s["order"], "fifo", "{v}");
    assert_eq!(s["weight"], 3, "{v}");
    assert_eq!(s["aging"]["after"], 1_800_000, "{v}");
    assert_eq!(s["aging"]["step"], 2, "{v}");
    assert_eq!(s["aging"]["bound"], 0, "{v}");
    // --aging-bound alone changes the stored aging.
    let v = env.json(&["queues", "set", "mail", "--aging-bound", "normal"]);
    assert_eq!(v["settings"]["aging"]["bound"], 5, "{v}");
    assert_eq!(v["settings"]["aging"]["step"], 2, "{v}");
    let text = env.ok(&["queues", "show", "mail"]);
    assert!(
        text.contains("fifo") && text.contains("after 30m, 2 levels, up to normal"),
        "{text}"
    );
    let list = env.ok(&["queues", "list"]);
    assert!(list.contains("ORDER") && list.contains("fifo"), "{list}");
    let v = env.json(&[
        "queues",
        "set",
        "mail",
        "--aging-after",
        "none",
        "--weight",
        "none",
        "--order",
        "weighted-random",
    ]);
    assert_eq!(v["settings"]["aging"], Value::Null, "{v}");
    assert_eq!(v["settings"]["weight"], Value::Null, "{v}");
    assert_eq!(v["settings"]["order"], "weighted-random", "{v}");
    // quern.toml keys, applied by a worker on start.
    std::fs::write(
        env.path("quern.toml"),
        "[queues.batch]\norder = \"lifo\"\naging_after = \"30m\"\naging_step = 1\nweight = 3\n",
    )
    .unwrap();
    env.drain(&["--queues", "batch"]);
    let shown = env.json(&["queues", "show", "batch"]);
    let s = &shown["settings"];
    assert_eq!(
        (
            s["order"].as_str(),
            s["weight"].as_u64(),
            s["aging"]["step"].as_u64()
        ),
        (Some("lifo"), Some(3), Some(1)),
        "{shown}"
    );
}

fn bad_order_settings_are_refused_and_change_nothing(env: Env) {
    env.ok(&["queues", "set", "q", "--order", "lifo", "--weight", "2"]);
    for (args, want) in [
        (&["queues", "set", "q", "--order", "random"][..], "order"),
        (&["queues", "set", "q", "--weight=-1"][..], "weight"),
        (&["queues", "set", "q", "--weight", "2000000"][..], "weight"),
        (
            &["queues", "set", "q", "--aging-after", "soon"][..],
            "duration",
        ),
        (&["queues", "set", "q", "--aging-step", "2"][..], "no aging"),
        (
            &[
                "queues",
                "set",
                "q",
                "--aging-after",
                "none",
                "--aging-step",
                "2",
            ][..],
            "takes no",
        ),
        (
            &[
                "queues",
                "set",
                "q",
                "--aging-after",
                "1m",
                "--aging-bound",
                "urgent",
            ][..],
            "priority",
        ),
    ] {
        let err = env.fails(2, args);
        assert!(err.contains(want), "{args:?}: {want:?} not in {err:?}");
    }
    // Refused by the store's check, which names the field.
    let err = env.fails(
        2,
        &[
            "queues",
            "set",
            "q",
            "--aging-after",
            "1m",
            "--aging-step",
            "0",
            "--order",
            "fifo",
        ],
    );
    assert!(err.contains("aging.step"), "{err}");
    let s = env.json(&["queues", "show", "q"])["settings"].clone();
    assert_eq!(
        (s["order"].as_str(), s["weight"].as_u64(), &s["aging"]),
        (Some("lifo"), Some(2), &Value::Null),
        "{s}"
    );
    std::fs::write(env.path("bad.toml"), "[queues.q]\norder = \"sideways\"\n").unwrap();
    let err = env.fails(2, &["--config", "bad.toml", "worker", "--exit-when-idle"]);
    assert!(err.contains("order"), "{err}");
}

/// Three jobs enqueued one after another into a `lifo` queue; one worker slot runs them
/// newest first.
fn a_worker_drains_a_lifo_queue_newest_first(env: Env) {
    env.ok(&["queues", "set", "stack", "--order", "lifo"]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(env.enqueue(&[
            "quern.sleep",
            "--payload",
            r#"{"ms":20}"#,
            "--queue",
            "stack",
        ]));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    env.drain(&["--queues", "stack", "--concurrency", "1"]);
    let mut jobs: Vec<(i64, String)> = ids
        .iter()
        .map(|id| {
            let j = env.job(id);
            (j["started_at"].as_i64().unwrap(), id.clone())
        })
        .collect();
    jobs.sort();
    let order: Vec<&String> = jobs.iter().map(|(_, id)| id).collect();
    assert_eq!(order, [&ids[2], &ids[1], &ids[0]], "{jobs:?}");
}
