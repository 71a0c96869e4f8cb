//! The docs and doc comments promise only what exists. (`quern serve`, its HTTP API and
//! worker protocol exist since `quern-server`; stored cron schedules since `quern cron add`;
//! routing rules since `[[routes]]`; the dashboard since `quern-server`'s `dashboard`
//! module.) A phrase here fails the test wherever it appears in README.md,
//! ARCHITECTURE.md, docs/ or a crate's `src/` (the CHANGELOG may name them: it records what
//! was removed).

use std::path::{Path, PathBuf};

/// Phrases that describe something Quern does not have, each with what is true instead.
const ABSENT: &[(&str, &str)] = &[(
    "server's allow-list",
    "the allow-list belongs to a worker (workflow_env)",
)];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.md` and `.rs` file under `dir`, recursively.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "md" || x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn docs_promise_only_what_exists() {
    let root = repo_root();
    let mut paths = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    files(&root.join("docs"), &mut paths);
    for krate in std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .flatten()
    {
        files(&krate.path().join("src"), &mut paths);
    }
    assert!(paths.len() > 50, "found only {} files", paths.len());
    let mut found = Vec::new();
    for p in &paths {
        let text = std::fs::read_to_string(p).expect("read");
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            for (phrase, truth) in ABSENT {
                if lower.contains(phrase) {
                    let shown = p.strip_prefix(&root).unwrap_or(p).display();
                    found.push(format!("{shown}:{}: {phrase:?} ({truth})", n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "promises of what does not exist:\n{}",
        found.join("\n")
    );
}
