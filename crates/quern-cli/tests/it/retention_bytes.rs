//! Retention by bytes through the binary: `quern prune --retain-max-bytes` (and
//! `[retention] max_bytes`) deletes the oldest finished jobs while the finished jobs take more
//! than the budget, `--dry-run` only counts, a live job stays, and a bad size is refused with
//! nothing deleted. Runs on SQLite and on Redis.

use serde_json::Value;

use crate::support::Env;

on_every_store!(prune_keeps_finished_jobs_within_the_byte_budget);

/// A JSON string payload of about 3,000 varied characters.
fn payload(seed: u64) -> String {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let text: String = (0..3000)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b"0123456789abcdef"[(x >> 60) as usize])
        })
        .collect();
    format!("\"{text}\"")
}

fn ids(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = env
        .jobs(&[])
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

fn budget(v: &Value) -> &Value {
    &v["over_budget"]
}

fn prune_keeps_finished_jobs_within_the_byte_budget(env: Env) {
    // Five jobs finished one after another (one worker run each, so finishing order is
    // enqueue order), and one live job scheduled for later.
    let mut done = Vec::new();
    for i in 0..5 {
        let p = payload(i);
        done.push(env.enqueue(&["quern.noop", "--payload", &p]));
        env.drain(&[]);
    }
    let live = env.enqueue(&["quern.noop", "--delay", "1h", "--payload", &payload(9)]);

    // A budget nothing exceeds: the total, nothing deleted.
    let all = env.json(&["prune", "--dry-run", "--retain-max-bytes", "1TB"]);
    let total = budget(&all)["finished_bytes"]
        .as_u64()
        .expect("finished_bytes");
    assert!(total > 5 * 500, "five payloads of ~3,000 characters: {all}");
    assert_eq!(budget(&all)["jobs_deleted"], 0, "{all}");
    assert_eq!(all["max_bytes"], 1_000_000_000_000u64, "{all}");

    // Half the total: the three oldest go (the five are about the same size).
    let half = (total / 2).to_string();
    let dry = env.json(&["prune", "--dry-run", "--retain-max-bytes", &half]);
    assert_eq!(budget(&dry)["jobs_deleted"], 3, "{dry}");
    assert_eq!(ids(&env).len(), 6, "a dry run deletes nothing");
    let text = env.ok(&["prune", "--dry-run", "--retain-max-bytes", &half]);
    assert!(
        text.contains(&format!("byte budget {half}")) && text.contains("would delete 3 more"),
        "{text}"
    );
    let r = env.json(&["prune", "--retain-max-bytes", &half]);
    assert_eq!(budget(&r)["jobs_deleted"], 3, "{r}");
    assert_eq!(r["jobs_deleted"], 3, "{r}");
    assert_eq!(
        budget(&r)["bytes_freed"],
        budget(&dry)["bytes_freed"],
        "{r}"
    );
    let mut want = vec![done[3].clone(), done[4].clone(), live.clone()];
    want.sort();
    assert_eq!(
        ids(&env),
        want,
        "the two newest finished jobs and the live one stay"
    );

    // Bad sizes are refused and delete nothing.
    for bad in ["0", "lots", "-5"] {
        let err = env.fails(2, &["prune", &format!("--retain-max-bytes={bad}")]);
        assert!(err.contains("size"), "{bad}: {err}");
    }
    std::fs::write(
        env.path("quern.toml"),
        "[retention]\nmax_bytes = \"lots\"\n",
    )
    .unwrap();
    let err = env.fails(2, &["prune"]);
    assert!(err.contains("retention.max_bytes"), "{err}");
    std::fs::remove_file(env.path("quern.toml")).unwrap();
    assert_eq!(ids(&env).len(), 3, "nothing deleted by refused calls");

    // From the config file: a budget of one byte leaves no finished job, only the live one.
    std::fs::write(env.path("quern.toml"), "[retention]\nmax_bytes = \"1\"\n").unwrap();
    let r = env.json(&["prune"]);
    assert_eq!(budget(&r)["jobs_deleted"], 2, "{r}");
    assert_eq!(r["max_bytes"], 1, "{r}");
    assert_eq!(ids(&env), vec![live], "only the live job stays");
    let r = env.json(&["prune", "--dry-run"]);
    assert_eq!(budget(&r)["finished_bytes"], 0, "{r}");
}
