//! `job_list`: newest first (by id), every set filter must match, paged by a `before` cursor.

use std::collections::BTreeSet;

use super::*;
use crate::backend::{FailAction, JobFilter, ListParams};
use crate::model::{JobId, JobState, Priority};

async fn ids(h: &Harness, filter: JobFilter) -> Vec<JobId> {
    h.backend
        .job_list(ListParams {
            filter,
            limit: 1000,
            before: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{}: job_list: {e}", h.case))
        .jobs
        .into_iter()
        .map(|j| j.id)
        .collect()
}

/// Jobs come newest first, whatever order they were enqueued in.
pub async fn newest_first(h: Harness) {
    let sorted = sorted_ids(5);
    for i in [3usize, 0, 4, 1, 2] {
        h.enqueue(job_n("default", i).id(sorted[i])).await;
    }
    let mut want = sorted.clone();
    want.reverse();
    assert_eq!(ids(&h, JobFilter::default()).await, want, "{}", h.case);
}

/// Each filter field, alone and combined, returns exactly the matching jobs.
pub async fn filters(h: Harness) {
    let a1 = h.enqueue(job("resize").queue("img")).await.id;
    let a2 = h
        .enqueue(job("resize").queue("img").workflow("wf"))
        .await
        .id;
    let b1 = h
        .enqueue(job("email").queue("mail").workflow("wf"))
        .await
        .id;
    let b2 = h
        .enqueue(job("email").queue("mail").priority(Priority::LOW))
        .await
        .id;
    h.claim_and_fail("mail", b1, FailAction::Dead).await;
    let set = |v: Vec<JobId>| v.into_iter().collect::<BTreeSet<_>>();
    let want = |v: &[JobId]| v.iter().copied().collect::<BTreeSet<_>>();
    let f = |queue: Option<&str>, state: Option<JobState>, kind: Option<&str>, wf: Option<&str>| {
        JobFilter {
            queue: queue.map(Into::into),
            state,
            kind: kind.map(Into::into),
            workflow_id: wf.map(Into::into),
        }
    };
    let checks: Vec<(&str, JobFilter, BTreeSet<JobId>)> = vec![
        (
            "no filter",
            f(None, None, None, None),
            want(&[a1, a2, b1, b2]),
        ),
        ("queue", f(Some("img"), None, None, None), want(&[a1, a2])),
        (
            "state",
            f(None, Some(JobState::Dead), None, None),
            want(&[b1]),
        ),
        ("kind", f(None, None, Some("email"), None), want(&[b1, b2])),
        ("workflow", f(None, None, None, Some("wf")), want(&[a2, b1])),
        (
            "queue+state",
            f(Some("mail"), Some(JobState::Queued), None, None),
            want(&[b2]),
        ),
        (
            "kind+workflow",
            f(None, None, Some("resize"), Some("wf")),
            want(&[a2]),
        ),
        (
            "no match",
            f(Some("img"), Some(JobState::Dead), None, None),
            want(&[]),
        ),
        (
            "unknown queue",
            f(Some("nope"), None, None, None),
            want(&[]),
        ),
    ];
    for (what, filter, expected) in checks {
        assert_eq!(
            set(ids(&h, filter).await),
            expected,
            "{}: filter {what}",
            h.case
        );
    }
}

/// Following `next` as `before` visits every matching job exactly once, newest first.
pub async fn paging_by_before(h: Harness) {
    let all = sorted_ids(10);
    for (i, id) in all.iter().enumerate() {
        h.enqueue(job_n("default", i).id(*id)).await;
    }
    h.enqueue(job("other").queue("elsewhere")).await;
    let filter = JobFilter {
        queue: Some("default".into()),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut before = None;
    for page_no in 0.. {
        assert!(page_no <= 10, "{}: paging does not end", h.case);
        let page = h
            .backend
            .job_list(ListParams {
                filter: filter.clone(),
                limit: 3,
                before,
            })
            .await
            .unwrap();
        assert!(page.jobs.len() <= 3, "{}: page over the limit", h.case);
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next {
            Some(n) => {
                assert!(
                    !page.jobs.is_empty(),
                    "{}: an empty page has no next",
                    h.case
                );
                before = Some(n);
            }
            None => break,
        }
    }
    let mut want = all;
    want.reverse();
    assert_eq!(seen, want, "{}: every job once, newest first", h.case);
}

/// A state filter pages like any other: each job of that state once, newest first, across
/// pages, whatever order the jobs reached it in (the DLQ, the running and the queued jobs).
pub async fn paging_by_state(h: Harness) {
    let all = sorted_ids(12);
    // Dead in an order unlike their ids (their priorities set the claim order), then two
    // more claimed and left running.
    let dead = [7usize, 2, 10, 0, 5];
    let running = [1usize, 11];
    for (i, id) in all.iter().enumerate() {
        let p = match dead.iter().position(|d| *d == i) {
            Some(n) => n as u8,
            None if running.contains(&i) => 6,
            None => 8,
        };
        let j = job_n("default", i)
            .id(*id)
            .priority(Priority::new(p).unwrap());
        h.enqueue(j).await;
    }
    for i in dead {
        h.claim_and_fail("default", all[i], FailAction::Dead).await;
    }
    for i in running {
        h.claim_id("default", all[i]).await;
    }
    let page_all = |state: JobState| {
        let h = &h;
        async move {
            let mut seen = Vec::new();
            let mut before = None;
            for page_no in 0.. {
                assert!(page_no <= 12, "{}: paging {state:?} does not end", h.case);
                let page = h
                    .backend
                    .job_list(ListParams {
                        filter: JobFilter {
                            queue: Some("default".into()),
                            state: Some(state),
                            ..Default::default()
                        },
                        limit: 2,
                        before,
                    })
                    .await
                    .unwrap();
                assert!(page.jobs.iter().all(|j| j.state == state), "{}", h.case);
                seen.extend(page.jobs.iter().map(|j| j.id));
                match page.next {
                    Some(n) => before = Some(n),
                    None => break,
                }
            }
            seen
        }
    };
    let mut want: Vec<JobId> = dead.iter().map(|i| all[*i]).collect();
    want.sort();
    want.reverse();
    assert_eq!(page_all(JobState::Dead).await, want, "{}: dead", h.case);
    let mut queued: Vec<JobId> = (0..12)
        .filter(|i| !dead.contains(i) && !running.contains(i))
        .map(|i| all[i])
        .collect();
    queued.sort();
    queued.reverse();
    assert_eq!(
        page_all(JobState::Queued).await,
        queued,
        "{}: queued",
        h.case
    );
    assert_eq!(
        page_all(JobState::Running).await,
        vec![all[11], all[1]],
        "{}: running",
        h.case
    );
}
