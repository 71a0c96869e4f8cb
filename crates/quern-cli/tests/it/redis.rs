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
