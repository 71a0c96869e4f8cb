//! Crash safety: a process enqueuing in a loop is killed with SIGKILL; the file it leaves
//! behind passes `PRAGMA integrity_check` and holds every enqueue that was acknowledged.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use quern::backend::{BatchMode, EnqueueParams, ListParams};
use quern::{Backend, JobId, NewJob};
use quern_sqlite::SqliteBackend;

const CHILD_ENV: &str = "QUERN_SQLITE_CRASH_CHILD_DB";

/// The child: enqueues forever, printing each acknowledged id. Only runs when re-invoked by
/// the parent test with the env var set.
#[tokio::test]
#[ignore = "child process of enqueue_loop_killed_with_sigkill_loses_nothing_acknowledged"]
async fn crash_child_enqueue_loop() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let b = SqliteBackend::open(&format!("sqlite://{path}"))
        .await
        .unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        // Mix single enqueues and small batches, from several tasks at once, so the kill
        // lands while group commits are in flight.
        let jobs: Vec<NewJob> = (0..(1 + i % 4))
            .map(|_| NewJob::json("crash", serde_json::json!({"i": i})).unwrap())
            .collect();
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        b.job_enqueue(EnqueueParams {
            jobs,
            mode: BatchMode::Atomic,
        })
        .await
        .unwrap();
        for id in ids {
            writeln!(out, "ACK {id}").unwrap();
        }
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn enqueue_loop_killed_with_sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash::crash_child_enqueue_loop",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked: Vec<JobId> = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acked.len() < 3000 {
        let line = lines.next().expect("child exited early").unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.parse().unwrap());
        }
    }
    // SIGKILL: no destructors, no final commit.
    let pid = child.id() as libc::pid_t;
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(rc, 0);
    // Read whatever acks were already written before the kill took effect.
    for line in lines.map_while(Result::ok) {
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.parse().unwrap());
        }
    }
    child.wait().unwrap();

    let b = SqliteBackend::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    assert_eq!(b.integrity_check().await.unwrap(), Vec::<String>::new());
    let mut stored = std::collections::HashSet::new();
    let mut before = None;
    loop {
        let page = b
            .job_list(ListParams {
                limit: 10_000,
                before,
                ..Default::default()
            })
            .await
            .unwrap();
        stored.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(n) => before = Some(n),
            None => break,
        }
    }
    let missing: Vec<_> = acked.iter().filter(|id| !stored.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged jobs lost: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(stored.len() >= acked.len());
}
