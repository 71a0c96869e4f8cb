//! The same binary against Redis (`--store redis://…`), with a random key prefix. Skipped
//! loudly when Redis is unreachable, unless QUERN_REQUIRE_REDIS=1.

use std::net::TcpStream;
use std::process::Command;

use crate::support::{Env, state};

pub(crate) fn redis_url() -> Option<String> {
    let base =
        std::env::var("QUERN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let hostport = base
        .trim_start_matches("redis://")
        .split(['/', '?'])
        .next()
        .unwrap_or("")
        .to_string();
    if TcpStream::connect(&hostport).is_err() {
        assert!(
            std::env::var("QUERN_REQUIRE_REDIS").as_deref() != Ok("1"),
            "Redis at {base} is unreachable and QUERN_REQUIRE_REDIS=1"
        );
        eprintln!(
            "!!! SKIPPED: Redis at {base} is unreachable (set QUERN_REQUIRE_REDIS=1 to fail)"
        );
        return None;
    }
    Some(base.trim_end_matches('/').to_string())
}

/// Deletes the test's keys (best effort: needs redis-cli).
struct Cleanup {
    base: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let script = format!(
            "redis-cli -u '{}' --scan --pattern '{}*' | xargs -r redis-cli -u '{}' del > /dev/null",
            self.base, self.prefix, self.base
        );
        let _ = Command::new("sh").arg("-c").arg(script).status();
    }
}

#[test]
fn commands_work_against_redis() {
    let Some(base) = redis_url() else { return };
    let prefix = format!("quern-cli-test-{:016x}", fastrand_u64());
    let _cleanup = Cleanup {
        base: base.clone(),
        prefix: prefix.clone(),
    };
    let mut env = Env::new();
    env.var("QUERN_STORE", &format!("{base}/?prefix={prefix}"));
    let ok = env.enqueue(&[
        "shell",
        "--payload",
        r#"{"argv": ["echo", "{\"on\": \"redis\"}"]}"#,
    ]);
    let dead = env.enqueue(&[
        "quern.fail",
        "--payload",
        r#"{"fatal": true}"#,
        "--queue",
        "r2",
    ]);
    env.drain(&["--allow-shell", "--queues", "default,r2"]);
    let job = env.job(&ok);
    assert_eq!(state(&job), "succeeded");
    assert_eq!(job["result"], serde_json::json!({"on": "redis"}));
    assert_eq!(env.json(&["jobs", "wait", &ok])["state"], "succeeded");
    assert_eq!(state(&env.job(&dead)), "dead");
    assert_eq!(env.json(&["dlq", "list"])["jobs"][0]["id"], dead.as_str());
    let q = env.json(&["queues", "list"]);
    assert_eq!(q["queues"].as_array().unwrap().len(), 2, "{q}");
    // Nothing leaks into a store with another prefix, and SQLite was never touched.
    assert!(!env.path("quern.db").exists());
    let err = env.fails(1, &["--store", "redis://127.0.0.1:9", "jobs", "list"]);
    assert!(err.contains("cannot open store"), "{err}");
}

#[test]
fn bench_against_redis_reports_memory_per_queued_job() {
    let Some(base) = redis_url() else { return };
    let prefix = format!("quern-cli-bench-{:016x}", fastrand_u64());
    let _cleanup = Cleanup {
        base: base.clone(),
        prefix: prefix.clone(),
    };
    let env = Env::new();
    let r = env.json(&[
        "--store",
        &format!("{base}/?prefix={prefix}"),
        "bench",
        "--jobs",
        "400",
        "--batch-size",
        "100",
        "--concurrency",
        "4",
        "--latency-jobs",
        "50",
        "--rate",
        "500",
    ]);
    assert_eq!(r["setup"]["backend"], "redis");
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicates"], 0);
    // 800 queued jobs with ~100-byte payloads: a few hundred bytes each, never nothing.
    let b = r["bytes_per_queued_job"]
        .as_f64()
        .unwrap_or_else(|| panic!("bytes_per_queued_job missing: {r}"));
    assert!((150.0..5000.0).contains(&b), "bytes_per_queued_job = {b}");
}

/// A random number without another dependency: the std hasher is randomly seeded.
pub(crate) fn fastrand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// `quern workflow …` against a Redis store: the example workflows run to their documented
/// outcomes, and status / list / cancel / retry work on what Redis stored.
#[test]
fn workflows_work_against_redis() {
    use serde_json::{Value, json};

    let Some(base) = redis_url() else { return };
    let prefix = format!("quern-cli-wf-{:016x}", fastrand_u64());
    let _cleanup = Cleanup {
        base: base.clone(),
        prefix: prefix.clone(),
    };
    let mut env = Env::new();
    env.var("QUERN_STORE", &format!("{base}/?prefix={prefix}"));
    let example = |name: &str| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/workflows")
            .join(name)
            .display()
            .to_string()
    };
    let run = |env: &Env, file: &str, extra: &[&str]| -> (i32, Value) {
        let mut args = vec!["--json", "workflow", "run", file];
        args.extend_from_slice(extra);
        let out = env.run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let st: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "quern {args:?}: not JSON ({e}): {stdout}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), st)
    };
    let task = |st: &Value, id: &str, field: &str| -> Value {
        st["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no task {id} in {st}"))[field]
            .clone()
    };
    let result = |env: &Env, st: &Value, id: &str| -> Value {
        env.job(task(st, id, "job_id").as_str().unwrap())["result"].clone()
    };

    // The four examples, as on SQLite.
    let (code, st) = run(&env, &example("etl.yaml"), &["--var", "source=redis"]);
    assert_eq!(code, 0, "{st}");
    assert_eq!(st["record"]["state"], "succeeded");
    assert_eq!(st["counts"]["succeeded"], 6, "{st}");
    let fin = result(&env, &st, "final_output");
    assert_eq!(
        (&fin["sum"], &fin["report"]),
        (&json!(108), &json!("7 rows from redis"))
    );
    let etl_id = st["record"]["id"].as_str().unwrap().to_string();

    let (code, st) = run(&env, &example("fanout.yaml"), &[]);
    assert_eq!(code, 0, "{st}");
    assert_eq!(task(&st, "sum_chunk", "instances"), 4);
    assert_eq!(result(&env, &st, "total")["total"], 55);

    let (code, st) = run(&env, &example("conditional.yaml"), &[]);
    assert_eq!(code, 0, "{st}");
    assert_eq!(task(&st, "full_load", "state"), "succeeded");
    assert_eq!(task(&st, "incremental_load", "state"), "skipped");

    let (code, st) = run(&env, &example("saga.yaml"), &[]);
    assert_eq!(code, 1, "{st}");
    assert_eq!(st["record"]["state"], "compensated");
    let comps: Vec<&str> = st["compensations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["task"].as_str().unwrap())
        .collect();
    assert_eq!(comps, ["reserve_hotel", "reserve_flight"]);

    // Detach, status, list, cancel.
    let long = env.path("long.yaml");
    std::fs::write(
        &long,
        "name: long\ntasks:\n  - {id: wait, kind: quern.sleep, params: {ms: 60000}}\n  - {id: after, kind: quern.noop, depends_on: [wait]}\n",
    )
    .unwrap();
    let id = env
        .ok(&["workflow", "run", &long.display().to_string(), "--detach"])
        .trim()
        .to_string();
    let st = env.json(&["workflow", "status", &id]);
    assert_eq!(st["record"]["state"], "running");
    assert_eq!(task(&st, "after", "state"), "blocked");
    let graph = env.ok(&["workflow", "graph", &id, "--format", "text"]);
    assert!(graph.contains("level 1: after"), "{graph}");
    let list = env.json(&["workflow", "list", "--state", "running"]);
    assert_eq!(list["workflows"][0]["id"], id.as_str(), "{list}");
    assert_eq!(list["workflows"][0]["counts"]["blocked"], 1, "{list}");
    let all = env.json(&["workflow", "list"]);
    let listed: Vec<&str> = all["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 5, "{all}");
    assert!(listed.contains(&etl_id.as_str()), "{all}");
    let done = env.json(&["workflow", "cancel", &id, "--reason", "not today"]);
    assert_eq!(done["state"], "cancelled");
    let st = env.json(&["workflow", "status", &id]);
    assert_eq!(st["record"]["error"], "not today");
    assert_eq!(task(&st, "wait", "state"), "cancelled");
    assert_eq!(task(&st, "after", "state"), "cancelled");
    let err = env.fails(1, &["workflow", "cancel", &id]);
    assert!(err.contains("already ended"), "{err}");
    assert!(
        env.json(&["workflow", "list", "--state", "running"])["workflows"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Retry after a failure: what failed runs again, what succeeded keeps its result.
    let marker = env.path("db-is-up");
    let count = env.path("fetches.txt");
    let flaky = env.path("flaky.yaml");
    std::fs::write(
        &flaky,
        format!(
            r#"name: flaky
tasks:
  - id: fetch
    kind: shell
    params: {{argv: [sh, -c, "echo x >> {count}; echo '{{\"n\": 3}}'"]}}
  - id: load
    kind: shell
    depends_on: [fetch]
    params: {{argv: [sh, -c, "test -f {marker} && echo '{{\"loaded\": ${{fetch.result.n}}}}'"]}}
  - {{id: report, kind: quern.noop, depends_on: [load]}}
"#,
            count = count.display(),
            marker = marker.display()
        ),
    )
    .unwrap();
    let (code, st) = run(&env, &flaky.display().to_string(), &[]);
    assert_eq!(code, 1, "{st}");
    assert_eq!(st["record"]["state"], "failed");
    assert_eq!(task(&st, "report", "state"), "skipped");
    let id = st["record"]["id"].as_str().unwrap().to_string();
    std::fs::write(&marker, "").unwrap();
    let out = env.run(&["--json", "workflow", "retry", &id]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["record"]["state"], "succeeded");
    assert_eq!(result(&env, &st, "load")["loaded"], 3);
    assert_eq!(std::fs::read_to_string(&count).unwrap().lines().count(), 1);
    // Nothing went to a SQLite file.
    assert!(!env.path("quern.db").exists());
}
