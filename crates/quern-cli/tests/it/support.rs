//! Running the built `quern` binary in a private directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The backends a test can run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `quern.db` in the test's directory (the default store).
    Sqlite,
    /// The test Redis (`QUERN_TEST_REDIS_URL`) under a random `?prefix=`, deleted afterwards.
    Redis,
}

/// A temp dir with its own store (`quern.db`, the default, or a private Redis prefix) and
/// environment.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Store,
    vars: Vec<(String, String)>,
    children: Vec<Child>,
    /// The Redis store URL whose keys are deleted on drop.
    redis: Option<String>,
}

/// Defines, for each named `fn NAME(env: Env)`, a module `NAME` with two tests, `sqlite` and
/// `redis`, that run it against a fresh store of each kind (the Redis one is skipped loudly
/// when Redis is unreachable, unless QUERN_REQUIRE_REDIS=1).
macro_rules! on_every_store {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(crate::support::Env::new())
            }
            #[test]
            fn redis() {
                if let Some(env) = crate::support::Env::redis() {
                    super::$name(env)
                }
            }
        }
    )+};
}

/// The binary under test: the one cargo built, or `QUERN_TEST_BIN` (to run a test against
/// an older build, for example to see it fail without a fix).
pub fn bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("QUERN_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_quern").into())
    })
}

impl Env {
    /// On SQLite (`quern.db` in a fresh directory).
    pub fn new() -> Env {
        Env {
            dir: tempfile::Builder::new()
                .prefix("quern-cli-test-")
                .tempdir()
                .expect("temp dir"),
            store: Store::Sqlite,
            vars: Vec::new(),
            children: Vec::new(),
            redis: None,
        }
    }

    /// On the test Redis under a fresh random prefix (set as `QUERN_STORE`), or `None` after
    /// saying so loudly when Redis is unreachable and not required.
    pub fn redis() -> Option<Env> {
        let base = crate::redis::redis_url()?;
        let prefix = format!("quern-cli-test-{:016x}", crate::redis::fastrand_u64());
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}prefix={prefix}");
        let mut env = Env::new();
        env.store = Store::Redis;
        env.var("QUERN_STORE", &url);
        env.redis = Some(url);
        Some(env)
    }

    /// The store URL commands use (as `QUERN_STORE` for Redis; the default for SQLite).
    pub fn store_url(&self) -> String {
        match &self.redis {
            Some(url) => url.clone(),
            None => "sqlite://quern.db".into(),
        }
    }

    /// Sets an environment variable for every later command.
    pub fn var(&mut self, k: &str, v: &str) -> &mut Self {
        self.vars.push((k.into(), v.into()));
        self
    }

    /// Stops setting an environment variable set earlier.
    pub fn remove_var(&mut self, k: &str) -> &mut Self {
        self.vars.retain(|(name, _)| name != k);
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).current_dir(self.dir.path());
        // Nothing from the developer's own environment leaks into a test.
        for (k, _) in std::env::vars() {
            if k.starts_with("QUERN_") || k == "RUST_LOG" {
                c.env_remove(k);
            }
        }
        // Quiet workers; otherwise the default of every other command.
        c.env("QUERN_LOG", "warn,redis=error");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Runs to completion with a time limit.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.command(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn quern");
        if let Some(text) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write stdin");
        }
        wait_output(child, Duration::from_secs(60), args)
    }

    /// Runs and expects exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "quern {args:?} failed ({:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs with `--json` and expects exit 0; returns the parsed stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let s = self.ok(&a);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("quern {a:?}: not JSON ({e}): {s}"))
    }

    /// Runs and expects failure with `code`; returns stderr, checked to be one line.
    pub fn fails(&self, code: i32, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(
            out.status.code(),
            Some(code),
            "quern {args:?}: stdout {} stderr {err}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
        err.trim_end().to_string()
    }

    /// Enqueues and returns the id.
    pub fn enqueue(&self, args: &[&str]) -> String {
        let mut a = vec!["enqueue"];
        a.extend_from_slice(args);
        let id = self.ok(&a).trim().to_string();
        assert_eq!(id.len(), 36, "not a job id: {id:?}");
        id
    }

    /// The job as `jobs show --json` prints it.
    pub fn job(&self, id: &str) -> Value {
        self.json(&["jobs", "show", id])
    }

    /// Runs a worker until its queues are idle.
    pub fn drain(&self, extra: &[&str]) {
        let mut a = vec!["worker", "--exit-when-idle"];
        a.extend_from_slice(extra);
        self.ok(&a);
    }

    /// Starts a long-running command (a worker); it is killed when the `Env` drops.
    pub fn spawn(&mut self, args: &[&str]) -> u32 {
        self.spawn_with_stderr(args, Stdio::piped())
    }

    /// [`Env::spawn`] with stderr going to `stderr`.
    pub fn spawn_with_stderr(&mut self, args: &[&str], stderr: Stdio) -> u32 {
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("spawn quern");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Reads a spawned child's stderr up to the first line containing `line`, then drops our
    /// read end of the pipe, as `| head` does: the child's later writes fail with EPIPE.
    pub fn close_stderr_after(&mut self, pid: u32, line: &str) {
        use std::io::BufRead;
        let child = self
            .children
            .iter_mut()
            .find(|c| c.id() == pid)
            .expect("our child");
        let stderr = child.stderr.take().expect("stderr is a pipe");
        let mut seen = Vec::new();
        for l in std::io::BufReader::new(stderr).lines() {
            let l = l.expect("read stderr");
            if l.contains(line) {
                return;
            }
            seen.push(l);
        }
        panic!("stderr ended before a line with {line:?}: {seen:?}");
    }

    /// Takes back a spawned child (to wait for it).
    pub fn take_child(&mut self, pid: u32) -> Child {
        let i = self
            .children
            .iter()
            .position(|c| c.id() == pid)
            .expect("our child");
        self.children.remove(i)
    }

    /// Starts `quern serve` on a free loopback port (unless `args` give an `--addr`) and
    /// waits until it listens. It is killed when the `Env` drops; its stderr is kept.
    pub fn serve(&mut self, args: &[&str]) -> Server {
        use std::io::BufRead;
        let mut a = vec!["serve"];
        if !args.contains(&"--addr") {
            a.extend(["--addr", "127.0.0.1:0"]);
        }
        a.extend_from_slice(args);
        let mut child = self
            .command(&a)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn quern serve");
        let pid = child.id();
        let stderr = child.stderr.take().expect("stderr");
        self.children.push(child);
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let keep = std::sync::Arc::clone(&log);
        // Reads stderr to the end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
                let mut l = keep.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("quern serve did not start: {}", log.lock().unwrap()));
        Server { pid, addr, log }
    }

    /// Every job, newest first.
    pub fn jobs(&self, extra: &[&str]) -> Vec<Value> {
        let mut a = vec!["jobs", "list", "--limit", "1000"];
        a.extend_from_slice(extra);
        self.json(&a)["jobs"].as_array().expect("jobs").clone()
    }
}

/// A running `quern serve`.
pub struct Server {
    pub pid: u32,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its stderr so far.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    pub fn http(&self) -> crate::http::Http {
        crate::http::Http::new(&self.addr)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Only once no worker of ours can write any more.
        if let Some(url) = &self.redis {
            delete_redis_keys(url);
        }
    }
}

/// Deletes every key under the prefix of the Redis store `url`, returning how many there were.
pub fn delete_redis_keys(url: &str) -> u64 {
    let url = url.to_string();
    // On a thread of its own: the caller may be a panicking test or inside another runtime.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let clock: quern::SharedClock = std::sync::Arc::new(quern::SystemClock);
            match quern_redis::RedisBackend::connect(&url, clock).await {
                Ok(b) => b.destroy_all_keys().await.unwrap_or(0),
                Err(_) => 0,
            }
        })
    })
    .join()
    .unwrap_or(0)
}

/// Waits for a child with a time limit, killing it (by its own pid) when over. Its output
/// is read while it runs, so a child writing more than a pipe holds does not stall.
pub fn wait_output(mut child: Child, limit: Duration, what: &[&str]) -> Output {
    fn drain(
        pipe: Option<impl std::io::Read + Send + 'static>,
    ) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    }
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let start = Instant::now();
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break status,
            None if start.elapsed() > limit => {
                // A script's own children would keep the output pipes open: when the child
                // leads a process group (the README runner), kill the whole group.
                kill_group(child.id());
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err.join().unwrap_or_default();
                panic!(
                    "quern {what:?} did not finish in {limit:?}; stderr: {}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Polls `f` until it returns true, panicking with `what` after `limit`.
pub fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a signal to one of our own children.
#[allow(unsafe_code)]
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill only sends a signal; the pid is a child this test spawned and has not
    // reaped, so it cannot name another process.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// SIGKILL to the process group led by our child `pid` (nothing happens if it leads none).
#[allow(unsafe_code)]
pub fn kill_group(pid: u32) {
    // SAFETY: killpg only sends a signal. The group id is our own child's pid; if that child
    // does not lead a group the call fails with ESRCH and does nothing.
    unsafe {
        libc::killpg(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Whether a process exists (signal 0).
#[allow(unsafe_code)]
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 checks for existence and delivers nothing.
    unsafe { libc::kill(pid, 0) == 0 }
}

pub fn state(job: &Value) -> &str {
    job["state"].as_str().unwrap_or("?")
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
