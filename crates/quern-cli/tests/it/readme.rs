//! Every command in the ```sh blocks of the README, docs/cli.md and docs/cron.md is run here, in order, in a
//! fresh directory (with `examples/` linked in), with `quern` being the binary under test. Blocks tagged otherwise
//! (```text, ```toml) are not run. Lines starting with `cargo` are skipped: they build or
//! test the project, which CI does itself.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{bin, wait_output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The commands of every ```sh block, `\` continuations joined, comments and `cargo` lines
/// dropped.
pub fn sh_commands(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let t = line.trim_start();
        if let Some(tag) = t.strip_prefix("```") {
            in_sh = !in_sh && matches!(tag.trim(), "sh" | "bash" | "shell");
            continue;
        }
        if !in_sh {
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(line);
        let cmd = std::mem::take(&mut pending).trim().to_string();
        if cmd.is_empty() || cmd.starts_with('#') {
            continue;
        }
        let kept: Vec<String> = cmd.split(" && ").filter_map(rewrite_cargo).collect();
        if !kept.is_empty() {
            out.push(kept.join(" && "));
        }
    }
    out
}

/// `cargo run … -p quern-cli -- ARGS` becomes `quern ARGS` (the binary under test); other
/// `cargo` commands (build, install, test) are dropped because CI runs them itself.
fn rewrite_cargo(segment: &str) -> Option<String> {
    let seg = segment.trim();
    if !seg.starts_with("cargo ") {
        return Some(seg.to_string());
    }
    let (head, args) = seg.split_once(" -- ")?;
    (head.starts_with("cargo run") && head.contains("quern-cli")).then(|| format!("quern {args}"))
}

fn run_doc(name: &str) {
    let path = repo_root().join(name);
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("!!! {name} does not exist yet; nothing to run");
        return;
    };
    let cmds = sh_commands(&text);
    assert!(!cmds.is_empty(), "{name} has no ```sh commands");
    let dir = tempfile::tempdir().unwrap();
    // Commands name files under examples/ as seen from the repository root.
    std::os::unix::fs::symlink(repo_root().join("examples"), dir.path().join("examples")).unwrap();
    let bindir = Path::new(bin()).parent().unwrap();
    let script = format!("set -eu\n{}\n", cmds.join("\n"));
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(&script)
        // Its own process group, so a hung command can be killed with everything it started.
        .process_group(0)
        .current_dir(dir.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bindir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("QUERN_") {
            c.env_remove(k);
        }
    }
    let out = wait_output(c.spawn().unwrap(), Duration::from_secs(120), &[name]);
    assert!(
        out.status.success(),
        "{name} commands failed ({:?}):\n{script}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn readme_commands_run() {
    run_doc("README.md");
}

#[test]
fn cli_doc_commands_run() {
    run_doc("docs/cli.md");
}

#[test]
fn cron_doc_commands_run() {
    run_doc("docs/cron.md");
}

#[test]
fn extraction_joins_continuations_and_skips_other_blocks() {
    let md = "x\n```sh\n# note\nquern enqueue a \\\n  --queue q\ncargo test\n```\n```text\nquern worker\n```\n";
    assert_eq!(
        sh_commands(md),
        vec!["quern enqueue a    --queue q".to_string()]
    );
    let md = "```sh\ncargo install --path crates/quern-cli && quern jobs list\ncargo run --release -p quern-cli -- queues list\n```\n";
    assert_eq!(
        sh_commands(md),
        vec![
            "quern jobs list".to_string(),
            "quern queues list".to_string()
        ]
    );
}
