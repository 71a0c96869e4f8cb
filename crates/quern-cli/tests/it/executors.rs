//! The built-in executors, run by a real worker process.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::support::{Env, alive, eventually, state};

on_every_store!(
    shell_passes_stdin_env_and_cwd_and_reports_failures,
    http_classifies_responses,
    smoke_executors,
);

fn shell_passes_stdin_env_and_cwd_and_reports_failures(env: Env) {
    std::fs::create_dir(env.path("sub")).unwrap();
    let sub = env.path("sub").canonicalize().unwrap();
    let payload = json!({
        "argv": ["sh", "-c", "cat; echo \"$GREETING\"; pwd"],
        "stdin": "in\n",
        "env": {"GREETING": "hello"},
        "cwd": sub,
    });
    let ok = env.enqueue(&["shell", "--payload", &payload.to_string()]);
    let failing = json!({"argv": ["sh", "-c", "echo partial; echo 'disk full' >&2; exit 3"]});
    let bad = env.enqueue(&[
        "shell",
        "--payload",
        &failing.to_string(),
        "--max-attempts",
        "1",
    ]);
    let missing = env.enqueue(&[
        "shell",
        "--payload",
        r#"{"argv": ["no-such-program-quern"]}"#,
    ]);
    env.drain(&["--allow-shell"]);

    assert_eq!(
        env.job(&ok)["result"],
        format!("in\nhello\n{}\n", sub.display())
    );
    let job = env.job(&bad);
    assert_eq!(state(&job), "dead");
    let err = &job["errors"][0];
    assert_eq!(err["kind"], "retryable", "a non-zero exit is retryable");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("exited with code 3") && msg.contains("disk full"),
        "{msg}"
    );
    let job = env.job(&missing);
    assert_eq!(state(&job), "dead");
    assert_eq!(job["errors"][0]["kind"], "fatal");
}

#[test]
fn shell_timeout_kills_the_whole_process_group() {
    let env = Env::new();
    // The shell starts a grandchild and waits; the timeout must kill both.
    let payload = json!({
        "argv": ["sh", "-c", "sleep 30 & echo $! > grandchild.pid; wait"],
        "timeout": "1s",
    });
    let id = env.enqueue(&[
        "shell",
        "--payload",
        &payload.to_string(),
        "--max-attempts",
        "1",
    ]);
    env.drain(&["--allow-shell"]);
    let job = env.job(&id);
    assert_eq!(state(&job), "dead");
    let msg = job["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("timed out after 1s"), "{msg}");
    let pid: i32 = std::fs::read_to_string(env.path("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eventually(Duration::from_secs(5), "the grandchild to die", || {
        !alive(pid) || is_zombie(pid)
    });
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that answers by path and records requests.
struct Server {
    url: String,
    requests: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let body = String::from_utf8(body).unwrap();
                log.lock()
                    .unwrap()
                    .push((method.clone(), path.clone(), body.clone()));
                let (status, ctype, text) = match path.as_str() {
                    "/json" => (
                        "200 OK",
                        "application/json",
                        json!({"method": method, "got": body}).to_string(),
                    ),
                    "/text" => ("200 OK", "text/plain", "plain words".to_string()),
                    "/busy" => (
                        "503 Service Unavailable",
                        "text/plain",
                        "try later".to_string(),
                    ),
                    "/slow" => {
                        std::thread::sleep(std::time::Duration::from_millis(1500));
                        ("200 OK", "text/plain", "too late".to_string())
                    }
                    _ => ("404 Not Found", "text/plain", "no such hook".to_string()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        Server { url, requests }
    }
}

fn http_classifies_responses(env: Env) {
    let srv = Server::start();
    let u = |p: &str| format!("{}{p}", srv.url);
    let enqueue = |payload: serde_json::Value| {
        env.enqueue(&[
            "http",
            "--payload",
            &payload.to_string(),
            "--max-attempts",
            "1",
        ])
    };
    let json_ok = enqueue(json!({"url": u("/json"), "body": {"n": 1}, "headers": {"x-test": "1"}}));
    let text_ok = enqueue(json!({"method": "get", "url": u("/text")}));
    let busy = enqueue(json!({"method": "POST", "url": u("/busy"), "body": "raw"}));
    let missing = enqueue(json!({"url": u("/nope")}));
    // Nothing listens on port 9 of 127.0.0.1 here: connection refused.
    let refused = enqueue(json!({"url": "http://127.0.0.1:9/x", "timeout": "2s"}));
    let bad = enqueue(json!({"url": "ftp://127.0.0.1/x"}));
    let slow = enqueue(json!({"url": u("/slow"), "timeout": "200ms"}));
    env.drain(&[]);

    let job = env.job(&json_ok);
    assert_eq!(state(&job), "succeeded", "{job}");
    assert_eq!(job["result"], json!({"method": "POST", "got": "{\"n\":1}"}));
    assert_eq!(env.job(&text_ok)["result"], "plain words");

    let kind = |id: &str| {
        let j = env.job(id);
        assert_eq!(state(&j), "dead", "{j}");
        (
            j["errors"][0]["kind"].as_str().unwrap().to_string(),
            j["errors"][0]["message"].as_str().unwrap().to_string(),
        )
    };
    let (k, m) = kind(&busy);
    assert_eq!(k, "retryable", "5xx is retryable: {m}");
    assert!(m.contains("503") && m.contains("try later"), "{m}");
    let (k, m) = kind(&missing);
    assert_eq!(k, "fatal", "4xx is fatal: {m}");
    assert!(m.contains("404"), "{m}");
    let (k, m) = kind(&refused);
    assert_eq!(k, "retryable", "connect errors are retryable: {m}");
    let (k, _) = kind(&bad);
    assert_eq!(k, "fatal");
    let (k, m) = kind(&slow);
    assert_eq!(k, "retryable", "timeouts are retryable: {m}");
    assert!(m.contains("timed out"), "{m}");

    let reqs = srv.requests.lock().unwrap();
    assert!(
        reqs.contains(&("POST".into(), "/busy".into(), "raw".into())),
        "{reqs:?}"
    );
    assert!(
        reqs.contains(&("GET".into(), "/text".into(), String::new())),
        "{reqs:?}"
    );
}

fn smoke_executors(env: Env) {
    let noop = env.enqueue(&["quern.noop"]);
    let sleep = env.enqueue(&["quern.sleep", "--payload", r#"{"ms": 50}"#]);
    let retry = env.enqueue(&["quern.fail", "--max-attempts", "1"]);
    let bad = env.enqueue(&["quern.sleep", "--payload", r#"{"seconds": 1}"#]);
    // The job's own time limit (--timeout) stops an attempt that runs too long.
    let slow = env.enqueue(&[
        "quern.sleep",
        "--payload",
        r#"{"ms": 20000}"#,
        "--timeout",
        "300ms",
        "--max-attempts",
        "1",
    ]);
    let t0 = std::time::Instant::now();
    env.drain(&[]);
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    let j = env.job(&slow);
    assert_eq!(state(&j), "dead", "{j}");
    let msg = j["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("timed out") || msg.contains("timeout"),
        "{msg}"
    );
    assert_eq!(state(&env.job(&noop)), "succeeded");
    assert_eq!(state(&env.job(&sleep)), "succeeded");
    let j = env.job(&retry);
    assert_eq!(
        (state(&j), j["errors"][0]["kind"].as_str()),
        ("dead", Some("retryable"))
    );
    let j = env.job(&bad);
    assert_eq!(
        (state(&j), j["errors"][0]["kind"].as_str()),
        ("dead", Some("fatal"))
    );
}
