//! The Lua scripts. Each is the part of `lua/lib.lua` (shared helpers) it uses followed by its
//! own body, built into the binary; `Script::invoke_async` calls it by SHA and loads it after
//! `NOSCRIPT` (a restarted or failed-over Redis has an empty script cache).

use std::collections::HashSet;
use std::sync::LazyLock;

use redis::Script;

const LIB: &str = include_str!("../lua/lib.lua");

/// The top-level definitions of `lib.lua` that `body` uses, directly or through each other,
/// in their order, followed by `body`.
///
/// Redis runs a script's whole text on every call, so every `local function` and table of the
/// prelude is built again per call: the full prelude cost about 40k Redis instructions per
/// call (callgrind), as much as the rest of a one-job enqueue. A definition starts at a line
/// `local …` in column 0 (with the comment lines just above it) and runs to the next one; it
/// is kept when a name it defines appears as a word in the body or in a kept definition.
/// Keeping one too many costs a little time; missing one would make Redis refuse the script
/// (an undefined global), which every script's tests would show.
pub(crate) fn with_lib(body: &str) -> String {
    let defs = lib_definitions();
    let mut wanted: HashSet<&str> = words(body).collect();
    let mut keep = vec![false; defs.len()];
    // Later definitions only use earlier ones, so one pass from the end settles it.
    for (i, (names, text)) in defs.iter().enumerate().rev() {
        if names.iter().any(|n| wanted.contains(n)) {
            keep[i] = true;
            wanted.extend(words(text));
        }
    }
    let mut out = String::with_capacity(LIB.len() + body.len());
    for (i, (_, text)) in defs.iter().enumerate() {
        if keep[i] {
            out.push_str(text);
        }
    }
    out.push_str(body);
    out
}

/// `lib.lua` cut into its top-level definitions: the names each defines, and its text.
fn lib_definitions() -> Vec<(Vec<&'static str>, String)> {
    let mut defs: Vec<(Vec<&'static str>, String)> = Vec::new();
    let mut comments = String::new();
    for line in LIB.lines() {
        if let Some(rest) = line.strip_prefix("local ") {
            let names = match rest.strip_prefix("function ") {
                Some(f) => vec![f.split('(').next().unwrap_or("").trim()],
                None => rest
                    .split('=')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .map(str::trim)
                    .collect(),
            };
            let mut text = std::mem::take(&mut comments);
            text.push_str(line);
            text.push('\n');
            defs.push((names, text));
        } else if line.starts_with("--") {
            // A comment in column 0 belongs to the definition below it.
            comments.push_str(line);
            comments.push('\n');
        } else if let Some(last) = defs.last_mut() {
            last.1.push_str(&std::mem::take(&mut comments));
            last.1.push_str(line);
            last.1.push('\n');
        } else {
            // The header comment before the first definition.
            comments.clear();
        }
    }
    defs
}

/// The identifier-like words of Lua text (over-counting is harmless: see `with_lib`).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
}

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> =
            LazyLock::new(|| Script::new(&with_lib(include_str!(concat!("../lua/", $file)))));
    };
}

script!(ENQUEUE, "enqueue.lua");
script!(ENQUEUE_PLAIN, "enqueue_plain.lua");
script!(CLAIM, "claim.lua");
script!(HEARTBEAT, "heartbeat.lua");
script!(COMPLETE, "complete.lua");
script!(FAIL, "fail.lua");
script!(RELEASE, "release.lua");
script!(CANCEL, "cancel.lua");
script!(REPRIORITIZE, "reprioritize.lua");
script!(RETRY, "retry.lua");
script!(RESCUE, "rescue.lua");
script!(PRUNE, "prune.lua");
script!(DELETE, "delete.lua");
script!(ALERT_PUT, "alert_put.lua");
script!(LOG_APPEND, "log_append.lua");
script!(LOG_READ, "log_read.lua");
script!(EV_LIST, "ev_list.lua");
script!(STATS, "stats.lua");
script!(PEEK, "peek.lua");
script!(LIST, "list.lua");
script!(LEADER, "leader.lua");
script!(PAUSE, "pause.lua");
script!(QUEUE_SETTINGS, "queue_settings.lua");
script!(INDEX, "index.lua");
script!(CRON_UPSERT, "cron_upsert.lua");
script!(CRON_GET, "cron_get.lua");
script!(CRON_PAUSE, "cron_pause.lua");
script!(CRON_FENCE, "cron_fence.lua");
script!(CRON_DELETE, "cron_delete.lua");
script!(CRON_UNINDEX, "cron_unindex.lua");
script!(IMPORT_JOBS, "import_jobs.lua");
script!(IMPORT_WF, "import_wf.lua");
script!(IMPORT_CRON, "import_cron.lua");
script!(PRUNE_BYTES, "prune_bytes.lua");

/// A workflow script: what it uses of `lib.lua`, then the enqueue and retry script bodies
/// wrapped as functions (`ENQ(argv)`, `RETRY(argv)`), then `wf_lib.lua`, then its own body.
/// So a workflow's record and its jobs are stored (or a spawn's children and its parent's
/// change) in one atomic step that runs the very same enqueue and retry code as
/// `job_enqueue` and `job_retry`: no second copy to drift.
macro_rules! wf_script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(&with_lib(concat!(
                "\nlocal function ENQ(ARGV)\n",
                include_str!("../lua/enqueue.lua"),
                "\nend\nlocal function RETRY(ARGV)\n",
                include_str!("../lua/retry.lua"),
                "\nend\n",
                include_str!("../lua/wf_lib.lua"),
                include_str!(concat!("../lua/", $file))
            )))
        });
    };
}

wf_script!(WF_ENQUEUE, "wf_enqueue.lua");
wf_script!(WF_CREATE, "wf_create.lua");
wf_script!(WF_UPDATE, "wf_update.lua");
wf_script!(WF_COUNTS, "wf_counts.lua");
wf_script!(WF_LIST, "wf_list.lua");
wf_script!(WF_SKIP, "wf_skip.lua");
wf_script!(WF_SPAWN, "wf_spawn.lua");

/// `schedule_fire`: what it uses of `lib.lua`, then the enqueue script body wrapped as
/// `ENQ(argv)` (as in the workflow scripts), then `cron_fire.lua`. So a tick's job is stored
/// by the very same code as `job_enqueue` (unique keys, duplicates, the id index), in the
/// same atomic step as the schedule's check and record.
pub(crate) static CRON_FIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&with_lib(concat!(
        "\nlocal function ENQ(ARGV)\n",
        include_str!("../lua/enqueue.lua"),
        "\nend\n",
        include_str!("../lua/cron_fire.lua")
    )))
});

#[cfg(test)]
mod tests {
    use super::*;

    const BODIES: [&str; 3] = [
        include_str!("../lua/enqueue_plain.lua"),
        include_str!("../lua/complete.lua"),
        include_str!("../lua/claim.lua"),
    ];

    /// Whatever a kept text names, if `lib.lua` defines it, is kept too (else Redis would
    /// see an undefined global), in `lib.lua`'s order.
    #[test]
    fn every_used_definition_is_kept_in_order() {
        let defs = lib_definitions();
        for body in BODIES {
            let out = with_lib(body);
            let used: HashSet<&str> = words(&out).collect();
            let mut at = 0;
            for (names, text) in &defs {
                if names.iter().any(|n| used.contains(n)) {
                    let pos = out[at..]
                        .find(text.as_str())
                        .unwrap_or_else(|| panic!("{names:?} used but missing or out of order"));
                    at += pos + text.len();
                }
            }
            assert!(out.ends_with(body));
        }
    }

    /// A script carries only what it uses: the plain enqueue needs none of the settling
    /// helpers, a completion needs `finish` and what it calls.
    #[test]
    fn unused_definitions_are_left_out() {
        let plain = with_lib(include_str!("../lua/enqueue_plain.lua"));
        assert!(plain.contains("local function jk("));
        assert!(plain.contains("local function slices("));
        assert!(!plain.contains("local function finish("));
        assert!(!plain.contains("local function promote("));
        assert!(plain.len() < LIB.len() / 2 + include_str!("../lua/enqueue_plain.lua").len());
        let complete = with_lib(include_str!("../lua/complete.lua"));
        assert!(complete.contains("local function finish("));
        assert!(complete.contains("local function set_terminal("));
        // Every definition is found, with the names it defines.
        let defs = lib_definitions();
        assert!(
            defs.iter()
                .any(|(n, _)| n == &["S_SCHED", "S_QUEUED", "S_BLOCKED", "S_RUNNING"])
        );
        assert!(defs.iter().all(|(n, _)| n.iter().all(|x| !x.is_empty())));
    }
}
