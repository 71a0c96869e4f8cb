//! The `shell` executor: runs one program with arguments, never through `/bin/sh`.

use std::collections::BTreeMap;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{decode_spec, output_to_result, parse_timeout, tail};
use crate::backend::{LogLevel, LogLimits};
use crate::model::{Codec, Payload, TaskError};
use crate::worker::{Context, Handler};

/// Who may run what through the `shell` executor. The default allows nothing: running
/// arbitrary programs from queue payloads must be an explicit decision.
#[derive(Clone, Debug)]
pub struct ShellConfig {
    /// Any program may run (`quern worker --allow-shell`).
    pub allow_any: bool,
    /// Programs that may run even when `allow_any` is off, matched exactly against `argv[0]`
    /// (so `"echo"` allows `echo` looked up in `PATH`, not `/tmp/x/echo`).
    pub allowed_programs: Vec<String>,
    /// Time limit when the payload sets none. The whole process group is killed after it.
    pub default_timeout: Duration,
    /// Most bytes of stdout kept as the result; more fails the attempt (fatal).
    pub max_output_bytes: usize,
}

impl Default for ShellConfig {
    fn default() -> Self {
        ShellConfig {
            allow_any: false,
            allowed_programs: Vec::new(),
            default_timeout: Duration::from_secs(300),
            max_output_bytes: Codec::DEFAULT_MAX_BYTES,
        }
    }
}

impl ShellConfig {
    /// Whether `program` (an `argv[0]`) may run.
    pub fn allows(&self, program: &str) -> bool {
        self.allow_any || self.allowed_programs.iter().any(|p| p == program)
    }
}

/// The payload of a `shell` job.
///
/// ```json
/// {"argv": ["python3", "etl.py", "--day", "2026-11-22"], "env": {"LOG": "info"},
///  "cwd": "/srv/etl", "stdin": "…", "timeout": "30s"}
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShellSpec {
    /// The program and its arguments. No shell is involved: no globbing, no `$VAR`, no pipes.
    argv: Vec<String>,
    /// Variables added to (or overriding) the worker's environment.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Working directory; the worker's when absent.
    cwd: Option<String>,
    /// Text written to the program's stdin (stdin is empty otherwise).
    stdin: Option<String>,
    /// Time limit (`"30s"` or milliseconds).
    timeout: Option<serde_json::Value>,
}

/// Bytes of stderr quoted in a failure message.
const STDERR_TAIL: usize = 2048;

/// Runs a program per job: stdout becomes the result (parsed as JSON when it is JSON); each
/// line of stderr becomes a line of the job's log (`quern jobs logs ID`); a non-zero exit is a retryable failure carrying the exit code and the end of stderr; on
/// timeout or cancellation the program's whole process group is killed.
#[derive(Debug)]
pub struct ShellExecutor {
    config: ShellConfig,
    codec: Codec,
}

impl ShellExecutor {
    /// An executor with this allow-list; results are encoded with `codec`.
    pub fn new(config: ShellConfig, codec: Codec) -> Self {
        ShellExecutor { config, codec }
    }
}

#[async_trait]
impl Handler for ShellExecutor {
    async fn run(&self, ctx: Context, payload: Payload) -> Result<Option<Payload>, TaskError> {
        let spec: ShellSpec = decode_spec("shell", &payload)?;
        let Some(program) = spec.argv.first() else {
            return Err(TaskError::fatal("bad shell payload: argv is empty"));
        };
        if !self.config.allows(program) {
            return Err(TaskError::Fatal(format!(
                "shell executor refused to run {program:?}: start the worker with --allow-shell \
                 or add the program to [shell] allow in quern.toml"
            )));
        }
        let timeout = parse_timeout(&spec.timeout)?.unwrap_or(self.config.default_timeout);

        let mut cmd = Command::new(program);
        cmd.args(&spec.argv[1..])
            .envs(&spec.env)
            .stdin(if spec.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so that a timeout can kill everything it started.
            .process_group(0);
        if let Some(cwd) = &spec.cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd.spawn().map_err(|e| spawn_error(program, &e))?;
        // Kills the group if this future is dropped (the worker gave up on the attempt) or
        // the attempt times out, whichever comes first; disarmed once the program exited.
        let mut group = GroupGuard(child.id());

        if let (Some(text), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
            // A program that does not read its stdin closes the pipe; that is not an error.
            tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let limit = self.config.max_output_bytes;
        let run = async {
            let (out, err, status) = tokio::join!(
                read_capped(stdout, limit),
                read_stderr(stderr, STDERR_TAIL * 4, &ctx),
                child.wait()
            );
            (out, err, status)
        };
        let (out, err, status) = tokio::select! {
            r = run => r,
            () = tokio::time::sleep(timeout) => {
                group.kill();
                return Err(TaskError::Retryable(format!(
                    "{program} timed out after {}; its process group was killed",
                    crate::model::format_duration(timeout)
                )));
            }
            () = ctx.cancelled() => {
                group.kill();
                return Err(TaskError::retryable(format!("{program} was stopped: the job was cancelled or its lease lost")));
            }
        };
        group.disarm();
        let status =
            status.map_err(|e| TaskError::retryable(format!("waiting for {program}: {e}")))?;
        let err = err.unwrap_or_default();
        let out =
            out.map_err(|e| TaskError::retryable(format!("reading {program} stdout: {e}")))?;
        let Some(out) = out else {
            return Err(TaskError::Fatal(format!(
                "{program} wrote more than {limit} bytes to stdout"
            )));
        };
        if !status.success() {
            return Err(TaskError::Retryable(exit_message(program, status, &err)));
        }
        output_to_result(&out, &self.codec)
    }
}

/// Why a program could not start; a missing or forbidden program will not appear by retrying.
fn spawn_error(program: &str, e: &std::io::Error) -> TaskError {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            TaskError::Fatal(format!("cannot run {program:?}: program or cwd not found"))
        }
        std::io::ErrorKind::PermissionDenied => {
            TaskError::Fatal(format!("cannot run {program:?}: permission denied"))
        }
        _ => TaskError::Retryable(format!("cannot run {program:?}: {e}")),
    }
}

fn exit_message(program: &str, status: ExitStatus, stderr: &[u8]) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => "failed".to_string(),
    };
    let err = tail(stderr, STDERR_TAIL);
    if err.is_empty() {
        format!("{program} {how}")
    } else {
        format!("{program} {how}: {err}")
    }
}

/// Reads everything, or `None` once more than `limit` bytes arrived (the rest is drained so
/// the program does not block on a full pipe).
async fn read_capped(
    mut r: impl AsyncRead + Unpin,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut over = false;
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok((!over).then_some(buf));
        }
        if !over {
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > limit {
                over = true;
                buf = Vec::new();
            }
        }
    }
}

/// Reads the program's stderr: each line goes to the job's log (`info`) as it arrives, and
/// the last `keep` bytes are returned for the failure message. A line longer than
/// [`LogLimits::MAX_LINE_BYTES`] is logged in pieces of that size; invalid UTF-8 is
/// replaced.
async fn read_stderr(
    mut r: impl AsyncRead + Unpin,
    keep: usize,
    ctx: &Context,
) -> std::io::Result<Vec<u8>> {
    let mut tail = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    let emit = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        ctx.log(LogLevel::Info, text);
        line.clear();
    };
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            if !line.is_empty() {
                emit(&mut line);
            }
            return Ok(tail);
        }
        for &b in &chunk[..n] {
            if b == b'\n' {
                emit(&mut line);
            } else {
                line.push(b);
                if line.len() >= LogLimits::MAX_LINE_BYTES {
                    emit(&mut line);
                }
            }
        }
        tail.extend_from_slice(&chunk[..n]);
        if tail.len() > keep * 2 {
            tail.drain(..tail.len() - keep);
        }
    }
}

/// Owns the right to kill a child's process group (the child leads it: `process_group(0)`).
struct GroupGuard(Option<u32>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            kill_group(pgid);
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends SIGKILL to a whole process group, so grandchildren (a script's subprocesses) die too.
#[allow(unsafe_code)]
fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: killpg only sends a signal; it reads no memory of ours. The group id is our own
    // child's pid, which the child made its group id with setpgid(0, 0) at spawn; a group that
    // has already exited makes the call fail with ESRCH, which is harmless.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_argv0_exactly() {
        let c = ShellConfig {
            allowed_programs: vec!["echo".into()],
            ..Default::default()
        };
        assert!(c.allows("echo"));
        assert!(!c.allows("/tmp/x/echo"));
        assert!(!c.allows("sh"));
        assert!(
            ShellConfig {
                allow_any: true,
                ..Default::default()
            }
            .allows("sh")
        );
    }
}
