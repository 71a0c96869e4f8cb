//! Redis-only CLI behaviour. Everything that behaves alike on both stores is tested once per
//! store with `on_every_store!` in the other modules; this module has what only a Redis URL
//! has: its URL errors, credentials, key prefixes, `bench`, a settings file naming Redis, and
//! tours of the commands on a Redis Cluster and a TLS Redis of the test's own.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis::redis_url;
use crate::support::{Env, delete_redis_keys, state};

/// The Redis URL of `env` with `default:s3cret@` credentials (Redis's default user accepts
/// any password when none is set), or `None` when the test URL already has credentials.
fn with_password(env: &Env) -> Option<String> {
    let url = env.store_url();
    let rest = url.strip_prefix("redis://")?;
    (!rest.contains('@')).then(|| format!("redis://default:s3cret@{rest}"))
}

#[test]
fn redis_urls_that_cannot_be_opened_change_nothing() {
    let Some(env) = Env::redis() else { return };
    let id = env.enqueue(&["quern.noop", "--queue", "q"]);
    let before = env.json(&["jobs", "list"]);
    let url = env.store_url();
    let cases: Vec<(i32, String, &str)> = vec![
        // Bad usage: the URL itself is wrong (exit 2, before anything connects).
        (2, "redis://".into(), "no host"),
        (2, format!("{url}&prefix=no!"), "prefix"),
        (2, format!("{url}&durability=maybe"), "durability"),
        (2, format!("{url}&retry_ms=soon"), "retry_ms"),
        (2, "redis+cluster://".into(), "no cluster node"),
        (
            2,
            "redis+cluster://127.0.0.1:6379/0".into(),
            "database number",
        ),
        // Failed operations: nothing answers there (exit 1).
        (
            1,
            "redis://127.0.0.1:9/?retry_ms=200".into(),
            "cannot open store",
        ),
        (
            1,
            "redis+cluster://127.0.0.1:9/?retry_ms=200".into(),
            "cannot open store",
        ),
        (
            1,
            "rediss://127.0.0.1:9/?retry_ms=200".into(),
            "cannot open store",
        ),
        (
            1,
            "rediss+cluster://127.0.0.1:9/?retry_ms=200".into(),
            "cannot open store",
        ),
    ];
    for (code, store, want) in &cases {
        for args in [
            vec!["--store", store, "enqueue", "quern.noop", "--queue", "q"],
            vec!["--store", store, "jobs", "show", &id],
            vec!["--store", store, "queues", "pause", "q"],
            vec!["--store", store, "worker", "--exit-when-idle"],
        ] {
            let t0 = Instant::now();
            let err = env.fails(*code, &args);
            assert!(
                err.contains(want),
                "{args:?}: {err:?} should mention {want:?}"
            );
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "{args:?} took {:?}",
                t0.elapsed()
            );
        }
    }
    // A password is never echoed, whether the URL is malformed or the server unreachable.
    if let Some(secret) = with_password(&env) {
        for store in [
            format!("{secret}&durability=maybe"),
            "redis://default:s3cret@127.0.0.1:9/?retry_ms=200".to_string(),
            secret.replacen("redis://", "redis+cluster://", 1) + "&replicas=0",
        ] {
            let out = env.run(&["--store", &store, "jobs", "list"]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{store}");
            assert!(!err.contains("s3cret"), "password shown: {err}");
        }
    }
    // The store is as it was, and the queue is not paused.
    assert_eq!(env.json(&["jobs", "list"]), before);
    assert_eq!(env.json(&["queues", "list"])["queues"][0]["paused"], false);
}

#[test]
fn redis_prefixes_are_separate_stores() {
    let (Some(a), Some(b)) = (Env::redis(), Env::redis()) else {
        return;
    };
    let id = a.enqueue(&[
        "quern.fail",
        "--payload",
        r#"{"fatal": true}"#,
        "--queue",
        "q",
    ]);
    a.drain(&["--queues", "q"]);
    assert_eq!(state(&a.job(&id)), "dead");
    // b sees none of a's jobs, queues, dead jobs or workers, and cannot touch them.
    assert_eq!(b.json(&["jobs", "list"])["jobs"], serde_json::json!([]));
    assert_eq!(b.json(&["queues", "list"])["queues"], serde_json::json!([]));
    assert_eq!(b.json(&["dlq", "list"])["jobs"], serde_json::json!([]));
    assert_eq!(b.json(&["dlq", "replay", "--all"])["replayed"], 0);
    assert!(b.fails(1, &["jobs", "show", &id]).contains("not found"));
    assert!(b.fails(1, &["dlq", "replay", &id]).contains("not found"));
    assert!(b.fails(1, &["queues", "pause", "q"]).contains("not found"));
    assert_eq!(state(&a.job(&id)), "dead");
    assert_eq!(a.json(&["queues", "list"])["queues"][0]["paused"], false);
    // An unused prefix is an empty store, not an error (unlike a missing SQLite file).
    assert_eq!(b.ok(&["jobs", "list"]).trim(), "no jobs");
    // Dropping an Env deletes its keys: nothing is left under a's prefix afterwards.
    let url = a.store_url();
    drop(a);
    assert_eq!(delete_redis_keys(&url), 0, "keys left under {url}");
}

#[test]
fn redis_password_stays_out_of_logs_and_reports() {
    let Some(mut env) = Env::redis() else { return };
    let Some(secret) = with_password(&env) else {
        eprintln!("!!! SKIPPED: the test Redis URL already has credentials");
        return;
    };
    env.var("QUERN_STORE", &secret);
    let id = env.enqueue(&["quern.noop"]);
    // The worker logs its store at info level.
    let out = env
        .command(&["worker", "--exit-when-idle"])
        .env("QUERN_LOG", "info")
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("worker starting"), "{log}");
    assert!(!log.contains("s3cret"), "password in the log: {log}");
    assert_eq!(state(&env.job(&id)), "succeeded");
    let r = env.json(&[
        "bench",
        "--jobs",
        "20",
        "--latency-jobs",
        "10",
        "--rate",
        "200",
    ]);
    let store = r["setup"]["store"].as_str().unwrap();
    assert!(
        !store.contains("s3cret") && store.contains("127.0.0.1"),
        "{store}"
    );
    let text = env.ok(&[
        "bench",
        "--jobs",
        "20",
        "--latency-jobs",
        "10",
        "--rate",
        "200",
    ]);
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn bench_on_redis_loses_nothing_and_stays_in_its_prefix() {
    let Some(env) = Env::redis() else { return };
    let r = env.json(&[
        "bench",
        "--jobs",
        "300",
        "--batch-size",
        "100",
        "--concurrency",
        "4",
        "--latency-jobs",
        "100",
        "--rate",
        "500",
    ]);
    for key in [
        "enqueue_single_per_s",
        "enqueue_batch_per_s",
        "drain_c1_per_s",
        "drain_per_s",
        "latency_p50_ms",
    ] {
        let v = r[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {r}"));
        assert!(v > 0.0 && v.is_finite(), "{key} = {v}");
    }
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicates"], 0);
    assert_eq!(r["setup"]["backend"], "redis");
    let queues = env.json(&["queues", "list"]);
    let queues = queues["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 3, "{queues:?}");
    let done: u64 = queues
        .iter()
        .map(|q| q["counts"]["succeeded"].as_u64().unwrap())
        .sum();
    assert_eq!(done, 300 + 300 + 100);
    assert!(!env.path("quern.db").exists());
}

#[test]
fn a_settings_file_can_name_a_redis_store() {
    let Some(mut env) = Env::redis() else { return };
    let url = env.store_url();
    env.remove_var("QUERN_STORE");
    std::fs::write(
        env.path("quern.toml"),
        format!("store = \"{url}\"\n[worker]\nqueues = [\"fromfile\"]\n"),
    )
    .unwrap();
    let id = env.enqueue(&["quern.noop", "--queue", "fromfile"]);
    env.drain(&[]);
    assert_eq!(state(&env.job(&id)), "succeeded");
    assert!(
        !env.path("quern.db").exists(),
        "the file's Redis store was used"
    );
    // --store still wins over the file.
    env.enqueue(&["--store", "sqlite://other.db", "quern.noop"]);
    assert!(env.path("other.db").exists());
    assert_eq!(env.jobs(&[]).len(), 1);
}

/// A redis-server of our own on a free port, killed (by pid) on drop.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

/// A free port whose cluster-bus port (+10000) is free too.
fn free_port() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// Whether `redis-server` can be started here (skips loudly unless QUERN_REQUIRE_REDIS=1).
fn redis_server_available() -> bool {
    let ok = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("QUERN_REQUIRE_REDIS").as_deref() != Ok("1"),
            "redis-server is not installed and QUERN_REQUIRE_REDIS=1"
        );
        eprintln!("!!! SKIPPED: redis-server is not installed");
    }
    ok
}

impl Server {
    fn start(args: &[&str], ready: impl Fn(u16, &Path) -> bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .args(args.iter().map(|a| a.replace("{port}", &port.to_string())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let s = Server {
            child,
            port,
            _dir: dir,
        };
        let t0 = Instant::now();
        while !ready(port, s._dir.path()) {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "redis-server on {port} did not start: {}",
                std::fs::read_to_string(s._dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn cli(port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The commands of the CLI tour on a store that may spread queues over nodes: enqueue
/// (single, batch, dependencies, unique), worker, jobs, queues, dlq and workers. On Redis
/// Cluster a job can depend only on jobs of its own queue and an atomic batch must stay in one
/// queue (each queue is one hash slot): both are refused with a clear error, changing nothing.
fn tour(env: &Env, cluster: bool) {
    let first = env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 5}"#, "--queue", "a"]);
    let after = env.enqueue(&["quern.noop", "--queue", "a", "--depends-on", &first]);
    if cluster {
        let err = env.fails(
            2,
            &[
                "enqueue",
                "quern.noop",
                "--queue",
                "b",
                "--depends-on",
                &first,
            ],
        );
        assert!(err.contains("only on jobs in its own queue"), "{err}");
    }
    env.enqueue(&["quern.noop", "--queue", "b", "--priority", "high"]);
    let dead = env.enqueue(&[
        "quern.fail",
        "--payload",
        r#"{"fatal": true}"#,
        "--queue",
        "c",
    ]);
    let uniq = env.json(&["enqueue", "quern.noop", "--queue", "d", "--unique", "k"]);
    let again = env.json(&["enqueue", "quern.noop", "--queue", "d", "--unique", "k"]);
    assert_eq!(
        (again["id"].clone(), again["duplicate"].clone()),
        (uniq["id"].clone(), true.into())
    );
    std::fs::write(
        env.path("b.jsonl"),
        "{\"kind\": \"quern.noop\", \"queue\": \"e\"}\n{\"kind\": \"quern.noop\", \"queue\": \"f\"}\n",
    )
    .unwrap();
    if cluster {
        let err = env.fails(2, &["enqueue", "--batch", "b.jsonl", "--atomic"]);
        assert!(err.contains("one queue on Redis Cluster"), "{err}");
        assert_eq!(env.jobs(&[]).len(), 5, "the refused batch stored nothing");
    }
    let batch: &[&str] = if cluster {
        &["enqueue", "--batch", "b.jsonl"]
    } else {
        &["enqueue", "--batch", "b.jsonl", "--atomic"]
    };
    let out = env.json(batch);
    assert_eq!(out["enqueued"], 2);
    assert_eq!(state(&env.job(&after)), "blocked");
    env.ok(&["queues", "pause", "e"]);
    env.drain(&["--queues", "a,b,c,d,f"]);
    let queues = env.json(&["queues", "list"]);
    let names: Vec<&str> = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(queues["queues"][4]["paused"], true);
    assert_eq!(queues["queues"][4]["counts"]["queued"], 1);
    env.ok(&["queues", "resume", "e"]);
    env.drain(&["--queues", "e"]);
    assert_eq!(env.jobs(&["--state", "succeeded"]).len(), 6);
    assert_eq!(state(&env.job(&after)), "succeeded");
    assert_eq!(env.json(&["dlq", "list"])["jobs"][0]["id"], dead.as_str());
    assert_eq!(env.json(&["dlq", "replay", "--all"])["replayed"], 1);
    assert_eq!(state(&env.job(&dead)), "queued");
    assert_eq!(env.json(&["jobs", "cancel", &dead])["state"], "cancelled");
    assert_eq!(env.json(&["jobs", "retry", &dead])["state"], "queued");
    assert_eq!(
        env.json(&["workers", "list"])["workers"],
        serde_json::json!([])
    );
}

#[test]
fn commands_work_against_redis_cluster() {
    if redis_url().is_none() || !redis_server_available() {
        return;
    }
    let nodes: Vec<Server> = (0..3)
        .map(|_| {
            Server::start(
                &[
                    "--port",
                    "{port}",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ],
                |port, _| Server::cli(port, &["ping"]).trim() == "PONG",
            )
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli --cluster create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let t0 = Instant::now();
    while !nodes
        .iter()
        .all(|n| Server::cli(n.port, &["cluster", "info"]).contains("cluster_state:ok"))
    {
        assert!(t0.elapsed() < Duration::from_secs(30), "cluster not ok");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut env = Env::new();
    env.var(
        "QUERN_STORE",
        &format!("redis+cluster://{}/?prefix=tour", addrs.join(",")),
    );
    tour(&env, true);
    // The queues' keys are spread over more than one node.
    let holding = nodes
        .iter()
        .filter(|n| Server::cli(n.port, &["dbsize"]).trim() != "0")
        .count();
    assert!(holding >= 2, "keys on {holding} node(s)");
}

#[test]
fn commands_work_against_rediss_with_tls() {
    if redis_url().is_none() || !redis_server_available() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let p = |n: &str| certs.path().join(n).display().to_string();
    let ssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(certs.path())
            .output();
        out.is_ok_and(|o| o.status.success())
    };
    let made = ssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=quern test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]) && ssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]) && std::fs::write(
        certs.path().join("san.ext"),
        "subjectAltName=IP:127.0.0.1\n",
    )
    .is_ok()
        && ssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ]);
    if !made {
        // A missing test tool, not a missing Redis: skipped loudly even when Redis is required.
        eprintln!("!!! SKIPPED: openssl could not make test certificates (is it installed?)");
        return;
    }
    let (cert, key, ca) = (p("server.pem"), p("server.key"), p("ca.pem"));
    let server = Server::start(
        &[
            "--port",
            "0",
            "--tls-port",
            "{port}",
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ],
        |port, _| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    let mut env = Env::new();
    env.var(
        "QUERN_STORE",
        &format!("rediss://127.0.0.1:{}/?prefix=tour", server.port),
    );
    // Without the CA the certificate is refused: a failed operation, not a hang.
    let url = format!(
        "rediss://127.0.0.1:{}/?prefix=tour&retry_ms=300",
        server.port
    );
    let err = env.fails(1, &["--store", &url, "jobs", "list"]);
    assert!(err.contains("cannot open store"), "{err}");
    env.var("SSL_CERT_FILE", &ca);
    tour(&env, false);
}
