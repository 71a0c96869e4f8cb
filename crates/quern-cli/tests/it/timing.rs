//! When jobs run: `--delay` counts from the store, a worker starts the jobs it holds in
//! priority order, and `started_at` is when the handler started. Runs on SQLite and Redis.

use serde_json::Value;

use crate::support::Env;

on_every_store!(delay_counts_from_the_store);

fn ms(job: &Value, field: &str) -> i64 {
    job[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {job}"))
}

/// `--delay 250ms` is stored as `run_at = created_at + 250 ms` exactly, however long the
/// command took to open the store (it was 212-236 ms when the CLI added the delay to its own
/// clock before opening the store).
fn delay_counts_from_the_store(env: Env) {
    for d in ["250ms", "2s"] {
        let id = env.enqueue(&["quern.noop", "--delay", d]);
        let job = env.job(&id);
        let want = if d == "2s" { 2_000 } else { 250 };
        assert_eq!(
            ms(&job, "run_at") - ms(&job, "created_at"),
            want,
            "--delay {d}: {job}"
        );
        assert_eq!(job["state"], "scheduled", "{job}");
    }
}
