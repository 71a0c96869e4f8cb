//! Settings precedence: quern.toml < QUERN_* environment < flags.

use crate::support::{Env, exists};

#[test]
fn file_then_env_then_flags() {
    let mut env = Env::new();
    std::fs::write(
        env.path("quern.toml"),
        "store = \"sqlite://from-file.db\"\n",
    )
    .unwrap();
    env.enqueue(&["quern.noop"]);
    assert!(exists(&env.path("from-file.db")));

    env.var("QUERN_STORE", "sqlite://from-env.db");
    env.enqueue(&["quern.noop"]);
    assert!(exists(&env.path("from-env.db")));

    env.enqueue(&["--store", "sqlite://from-flag.db", "quern.noop"]);
    assert!(exists(&env.path("from-flag.db")));
    assert!(!exists(&env.path("quern.db")));

    // An explicit --config elsewhere wins over ./quern.toml (and the env var still wins).
    std::fs::write(env.path("other.toml"), "json = true\n").unwrap();
    let out = env.ok(&["--config", "other.toml", "enqueue", "quern.noop"]);
    assert!(
        out.starts_with("{\"id\":"),
        "json = true from the file: {out}"
    );
}

#[test]
fn bad_config_is_a_usage_error() {
    let env = Env::new();
    std::fs::write(env.path("quern.toml"), "[worker]\nconcurency = 4\n").unwrap();
    let err = env.fails(2, &["jobs", "list"]);
    assert!(err.contains("concurency"), "{err}");
    let err = env.fails(2, &["--config", "missing.toml", "jobs", "list"]);
    assert!(err.contains("does not exist"), "{err}");
}
