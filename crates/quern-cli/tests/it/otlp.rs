//! OTLP export through the binary (feature `otlp`: `cargo test -p quern-cli --features otlp
//! --test it otlp`): a tiny HTTP receiver on 127.0.0.1 stands in for the collector; `quern
//! enqueue` and then `quern worker` export their spans to it as OTLP protobuf, and the
//! worker's spans carry the trace id the producer stored with the job, so the trace crosses
//! from the producer to the worker. Without the feature, the flag is refused.

#[cfg(feature = "otlp")]
mod with_otlp {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use crate::support::{Env, eventually};

    /// The requests the receiver got: path and body.
    type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

    /// Accepts OTLP/HTTP posts on a free port; answers 200 to each.
    fn receiver() -> (String, Seen) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let keep = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, len) = loop {
                    let Ok(n) = c.read(&mut chunk) else {
                        break (0, 0);
                    };
                    if n == 0 {
                        break (0, 0);
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, len);
                    }
                };
                if head_end == 0 {
                    continue;
                }
                while buf.len() < head_end + len {
                    match c.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                let ok = head
                    .to_ascii_lowercase()
                    .contains("content-type: application/x-protobuf");
                let body = buf[head_end..].to_vec();
                keep.lock()
                    .unwrap()
                    .push((if ok { path } else { format!("bad type {path}") }, body));
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        (url, seen)
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn spans_reach_the_collector_and_the_trace_crosses_to_the_worker() {
        let (url, seen) = receiver();
        let mut env = Env::new();
        let id = env.enqueue(&["--otlp-endpoint", &url, "quern.noop"]);
        eventually(Duration::from_secs(10), "the producer's spans", || {
            !seen.lock().unwrap().is_empty()
        });
        let produced: Vec<u8> = seen
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, b)| b.clone())
            .collect();
        let before = seen.lock().unwrap().len();
        assert!(
            seen.lock().unwrap().iter().all(|(p, _)| p == "/v1/traces"),
            "OTLP/HTTP protobuf posts to /v1/traces: {:?}",
            seen.lock()
                .unwrap()
                .iter()
                .map(|(p, _)| p.clone())
                .collect::<Vec<_>>()
        );
        assert!(contains(&produced, b"quern.enqueue"), "the enqueue span");
        assert!(contains(&produced, id.as_bytes()), "its job_id attribute");
        // The job stored the producer's context: its trace id is in the producer's spans.
        let job = env.job(&id);
        let tp = job["trace"]["traceparent"]
            .as_str()
            .expect("a stored traceparent");
        let trace_id = hex(&tp[3..35]);
        assert!(
            contains(&produced, &trace_id),
            "the producer's trace id {tp}"
        );

        env.ok(&["--otlp-endpoint", &url, "worker", "--exit-when-idle"]);
        eventually(Duration::from_secs(10), "the worker's spans", || {
            let s = seen.lock().unwrap();
            s[before..].iter().any(|(_, b)| contains(b, b"quern.run"))
        });
        let worked: Vec<u8> = seen.lock().unwrap()[before..]
            .iter()
            .flat_map(|(_, b)| b.clone())
            .collect();
        assert!(contains(&worked, b"quern.run"), "the run span");
        assert!(contains(&worked, id.as_bytes()), "with the job id");
        assert!(
            contains(&worked, &trace_id),
            "the worker's spans are in the producer's trace {tp}"
        );
        assert!(contains(&worked, b"service.name") && contains(&worked, b"quern"));

        // The standard variable works too; an https:// endpoint is refused.
        let n = seen.lock().unwrap().len();
        env.var("OTEL_EXPORTER_OTLP_ENDPOINT", &url);
        env.enqueue(&["quern.noop"]);
        eventually(
            Duration::from_secs(10),
            "spans sent by the variable",
            || seen.lock().unwrap().len() > n,
        );
        let err = env.fails(
            2,
            &["--otlp-endpoint", "https://127.0.0.1:1", "jobs", "list"],
        );
        assert!(err.contains("plain http://"), "{err}");
    }
}

#[cfg(not(feature = "otlp"))]
#[test]
fn otlp_endpoint_needs_the_otlp_feature() {
    let env = crate::support::Env::new();
    let err = env.fails(
        2,
        &["--otlp-endpoint", "http://127.0.0.1:4318", "jobs", "list"],
    );
    assert!(err.contains("built without otlp"), "{err}");
}
