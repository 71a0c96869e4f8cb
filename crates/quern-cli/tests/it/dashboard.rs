//! The dashboard in a real browser: `quern serve` (the built binary, on an SQLite file and on
//! Redis) driven through Debian's headless Chromium by `tests/browser/dashboard.mjs`
//! (playwright-core, never a downloaded browser). The script logs in, opens every page and
//! checks it renders without console errors, pauses a queue and replays a dead job through
//! the UI and sees the store change, sees a job enqueued through the API appear on the open
//! jobs page within 2 s, checks the workflow DAG's state colours and labels, and checks that
//! a `read` session has no action buttons and that its forged POSTs get 403.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser/` (`.ci/run` installs
//! them). Without them the test fails under CI (`CI` set) and is skipped loudly elsewhere.
//! `QUERN_DASHBOARD_SHOTS=DIR` saves screenshots of every page there (SQLite run only).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Env;

on_every_store!(dashboard_in_a_browser);

const ADMIN: &str = "dash-admin-0123456789abcdef";
const READ: &str = "dash-read-0123456789abcdef";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Whether node, Chromium and the script's dependencies are here; under CI they must be.
fn browser_ready() -> bool {
    let missing: Vec<&str> = [
        (
            "node",
            Command::new("node").arg("--version").output().is_ok(),
        ),
        ("/usr/bin/chromium", Path::new("/usr/bin/chromium").exists()),
        (
            "tests/browser/node_modules (npm ci)",
            browser_dir().join("node_modules/playwright-core").exists(),
        ),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(what, _)| what)
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the browser test needs {missing:?} (.ci/run installs them)"
    );
    eprintln!("SKIPPED: the dashboard browser test needs {missing:?}");
    false
}

fn dashboard_in_a_browser(mut env: Env) {
    if !browser_ready() {
        return;
    }
    env.var(
        "QUERN_SERVER__TOKENS",
        &format!("boss:admin:{ADMIN},viewer:read:{READ}"),
    );
    let srv = env.serve(&[]);
    let mut cmd = Command::new("node");
    cmd.arg("dashboard.mjs")
        .current_dir(browser_dir())
        .env("QUERN_URL", format!("http://{}", srv.addr))
        .env("ADMIN_TOKEN", ADMIN)
        .env("READ_TOKEN", READ)
        .env_remove("SHOTS");
    if let Some(dir) = std::env::var_os("QUERN_DASHBOARD_SHOTS")
        && env.store_url().starts_with("sqlite")
    {
        cmd.env("SHOTS", dir);
    }
    let out = cmd.output().expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all browser checks passed"),
        "browser checks failed:\n{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        srv.log()
    );
    // The store itself, read by the CLI: the queue the UI paused is paused.
    let mail = env.json(&["queues", "show", "mail"]);
    assert_eq!(mail["paused"], true, "{mail}");
}
