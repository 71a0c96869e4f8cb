//! The maintained queue counts (`queue_counts`, migration 0025) that `queue_list` and
//! `queue_stats` read stay equal to the rows through every kind of write: enqueue (batches
//! that commit, partly commit, roll back), claim with promotion of due jobs, complete, fail
//! (retry, dead), unblocking and skipping of dependents, release, cancel, retry, rescue,
//! prune, delete and import. Each step checks the figures `queue_stats` gives against the
//! expected ones and `queue_counts_check` (the counts recomputed from the rows); on a file
//! and in memory, where reads run on the writer in the middle of a group.

use std::sync::Arc;
use std::time::Duration;

use quern::backend::*;
use quern::testing::{Harness, job_n};
use quern::{Backend, JobState, ManualClock};
use quern_sqlite::{SqliteBackend, SqliteOptions};

struct Store {
    b: SqliteBackend,
    h: Harness,
}

async fn open(url: &str) -> Store {
    let clock = ManualClock::at_fixed_start();
    let opts = SqliteOptions::new(url).unwrap().clock(clock.clone());
    let b = SqliteBackend::open_with(opts).await.unwrap();
    let h = Harness::new("counts", Arc::new(b.clone()), clock);
    Store { b, h }
}

impl Store {
    /// Queue `q`'s counts are `want` (every state not named: zero), and the stored counts
    /// of every queue agree with the rows.
    async fn expect(&self, q: &str, want: &[(JobState, u64)], step: &str) {
        let diffs = self.b.queue_counts_check().await.unwrap();
        assert!(diffs.is_empty(), "{step}: {}", diffs.join("; "));
        let info = self.h.stats(q).await;
        for s in JobState::ALL {
            let n = want.iter().find(|(w, _)| *w == s).map_or(0, |(_, n)| *n);
            assert_eq!(info.counts.get(s), n, "{step}: {s} jobs of {q}");
        }
    }
}

async fn walk(url: &str) {
    let s = open(url).await;
    let h = &s.h;
    use JobState::*;

    let start = h.now();
    let first = h.enqueue(job_n("c", 0)).await.id;
    let first = h.claim_id("c", first).await;
    // At the lowest priority, so it waits behind every other job from here on (and the
    // succeeded job it depends on is kept by the pruners).
    let blocked = h
        .enqueue(
            job_n("c", 1)
                .depends_on([first.job.id])
                .priority(quern::Priority::LOW),
        )
        .await
        .id;
    h.enqueue(job_n("c", 2).delay(Duration::from_secs(60)))
        .await;
    h.enqueue_many("c", 4).await;
    s.expect(
        "c",
        &[(Running, 1), (Blocked, 1), (Scheduled, 1), (Queued, 4)],
        "enqueue",
    )
    .await;
    let info = h.stats("c").await;
    assert_eq!(info.oldest_queued_at, Some(start), "the oldest waiting job");

    h.complete(&first.token).await;
    s.expect(
        "c",
        &[(Succeeded, 1), (Scheduled, 1), (Queued, 5)],
        "complete unblocks the dependent",
    )
    .await;

    let two = h.claim("c", 2).await;
    assert_eq!(two.len(), 2);
    h.fail(
        &two[0].token,
        FailAction::Retry {
            retry_at: Some(h.now() + 10_000),
        },
    )
    .await;
    h.fail(&two[1].token, FailAction::Dead).await;
    s.expect(
        "c",
        &[(Succeeded, 1), (Scheduled, 2), (Queued, 3), (Dead, 1)],
        "fail: retry and dead",
    )
    .await;

    // A dependent of a running job that dies is skipped by the dependency bookkeeping.
    let running = h.claim_one("c").await;
    h.enqueue(job_n("c", 3).depends_on([running.job.id])).await;
    h.fail(&running.token, FailAction::Dead).await;
    s.expect(
        "c",
        &[
            (Succeeded, 1),
            (Scheduled, 2),
            (Queued, 2),
            (Dead, 2),
            (Skipped, 1),
        ],
        "fail to dead skips a dependent",
    )
    .await;

    let gave_back = h.claim_one("c").await;
    h.try_release(&gave_back.token).await.unwrap();
    let cancelled = h.claim_one("c").await.job.id;
    h.cancel(cancelled).await.unwrap();
    h.retry_ids(vec![two[1].job.id]).await.unwrap();
    s.expect(
        "c",
        &[
            (Succeeded, 1),
            (Scheduled, 2),
            (Queued, 2),
            (Dead, 1),
            (Skipped, 1),
            (Cancelled, 1),
        ],
        "release, cancel a running job, retry a dead one",
    )
    .await;

    // Promotion of due scheduled jobs by the claim, then a lease that runs out.
    h.advance(Duration::from_secs(61));
    let lapsed = h.claim("c", 1).await;
    assert_eq!(lapsed.len(), 1);
    s.expect(
        "c",
        &[
            (Succeeded, 1),
            (Queued, 3),
            (Running, 1),
            (Dead, 1),
            (Skipped, 1),
            (Cancelled, 1),
        ],
        "claim promotes due jobs",
    )
    .await;
    let info = h.stats("c").await;
    assert_eq!(
        info.oldest_queued_at,
        Some(start),
        "the oldest waiting job, at another priority level"
    );
    h.advance(quern::testing::LEASE + Duration::from_secs(1));
    let report = h.rescue().await;
    assert_eq!(report.requeued.len(), 1);
    s.expect(
        "c",
        &[
            (Succeeded, 1),
            (Queued, 4),
            (Dead, 1),
            (Skipped, 1),
            (Cancelled, 1),
        ],
        "rescue",
    )
    .await;

    // Batches: best effort keeps the good items only; atomic keeps nothing.
    let dup = quern::JobId::new();
    let res = h
        .try_enqueue(
            vec![
                job_n("c", 10).id(dup),
                job_n("c", 11).id(dup),
                job_n("c", 12),
            ],
            BatchMode::BestEffort,
        )
        .await
        .unwrap();
    assert!(res[0].is_ok() && res[1].is_err() && res[2].is_ok());
    let res = h
        .try_enqueue(
            vec![
                job_n("c", 13),
                job_n("c", 14).depends_on([quern::JobId::new()]),
            ],
            BatchMode::Atomic,
        )
        .await;
    assert!(res.is_err(), "an unknown dependency refuses the batch");
    s.expect(
        "c",
        &[
            (Succeeded, 1),
            (Queued, 6),
            (Dead, 1),
            (Skipped, 1),
            (Cancelled, 1),
        ],
        "batches",
    )
    .await;

    // Prune the finished jobs, then delete what is left of them.
    h.advance(Duration::from_secs(1));
    let pruned =
        s.b.job_prune(PruneParams {
            finished_before: h.now(),
            states: vec![Succeeded, Skipped],
            limit: 100,
            dry_run: false,
            queues: vec![],
            except_queues: vec![],
        })
        .await
        .unwrap();
    assert_eq!(pruned.jobs_deleted, 1, "the skipped job");
    let deleted =
        s.b.job_delete(JobDeleteParams {
            ids: vec![cancelled],
            dry_run: false,
        })
        .await
        .unwrap();
    assert_eq!(deleted.deleted, 1);
    let pruned =
        s.b.job_prune_bytes(PruneBytesParams {
            max_bytes: 0,
            limit: 100,
            dry_run: false,
        })
        .await
        .unwrap();
    assert_eq!(pruned.jobs_deleted, 1, "the dead job");
    s.expect(
        "c",
        &[(Succeeded, 1), (Queued, 6)],
        "prune, delete, prune by bytes",
    )
    .await;
    assert!(h.find(blocked).await.is_some());

    // A restore into an empty store counts what it writes.
    let jobs =
        s.b.job_list(ListParams {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .jobs;
    let copy = open("sqlite::memory:").await;
    copy.b
        .store_import(ImportParams {
            mode: ImportMode::Refuse,
            queues: vec![],
            jobs,
            workflows: vec![],
            schedules: vec![],
        })
        .await
        .unwrap();
    copy.expect("c", &[(Succeeded, 1), (Queued, 6)], "import")
        .await;
}

#[tokio::test]
async fn counts_follow_every_write_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    walk(&format!("sqlite://{}", dir.path().join("q.db").display())).await;
}

#[tokio::test]
async fn counts_follow_every_write_in_memory() {
    walk("sqlite::memory:").await;
}
