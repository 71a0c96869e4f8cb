//! Job events: every transition appends one (`event_list` is a job's timeline, oldest
//! first), `event_read` streams them after a cursor with filters, the actor set with
//! `with_actor` is recorded, and `event_prune` applies the retention caps.

use std::time::Duration;

use super::*;
use crate::backend::{EventListParams, EventPruneParams, EventReadParams, FailAction};
use crate::model::{JobEvent, JobId, JobState, with_actor};

async fn timeline(h: &Harness, id: JobId) -> Vec<JobEvent> {
    h.backend
        .event_list(EventListParams { job: id })
        .await
        .unwrap_or_else(|e| panic!("{}: event_list: {e}", h.case))
}

fn moves(events: &[JobEvent]) -> Vec<(Option<JobState>, Option<JobState>, u32)> {
    events.iter().map(|e| (e.from, e.to, e.attempt)).collect()
}

async fn read_all(h: &Harness, p: EventReadParams) -> (Vec<JobEvent>, Option<String>) {
    let page = h
        .backend
        .event_read(p)
        .await
        .unwrap_or_else(|e| panic!("{}: event_read: {e}", h.case));
    (page.events, page.cursor)
}

/// Enqueued, claimed, failed (retry), promoted when due, claimed again, completed: six
/// events in order, each with the job's queue and kind, its attempt after the move and the
/// store's time; no actor for the system's own work.
pub async fn timeline_of_a_retried_job(h: Harness) {
    let id = h.enqueue(job("ev.kind")).await.id;
    let t0 = h.now();
    let c = h.claim_one("default").await;
    assert_eq!(c.job.id, id);
    h.advance(Duration::from_millis(5));
    let retry_at = h.now() + 1_000;
    h.fail(
        &c.token,
        FailAction::Retry {
            retry_at: Some(retry_at),
        },
    )
    .await;
    h.advance_to(retry_at + 1);
    let c = h.claim_one("default").await;
    h.complete(&c.token).await;
    use JobState::*;
    let ev = timeline(&h, id).await;
    assert_eq!(
        moves(&ev),
        vec![
            (None, Some(Queued), 0),
            (Some(Queued), Some(Running), 1),
            (Some(Running), Some(Scheduled), 1),
            (Some(Scheduled), Some(Queued), 1),
            (Some(Queued), Some(Running), 2),
            (Some(Running), Some(Succeeded), 2),
        ],
        "{}",
        h.case
    );
    for e in &ev {
        assert_eq!(
            (e.job, e.queue.as_str(), e.kind.as_str()),
            (id, "default", "ev.kind")
        );
        assert_eq!(
            e.actor, None,
            "{}: the system's own work has no actor",
            h.case
        );
    }
    assert_eq!(ev[0].at, t0, "{}: enqueue time", h.case);
    assert_eq!(ev[5].at, h.now(), "{}: completion time", h.case);
    assert!(ev.windows(2).all(|w| w[0].at <= w[1].at));
    // Another job's events are not in this timeline; an unknown job has none.
    h.enqueue(job("other")).await;
    assert_eq!(timeline(&h, id).await.len(), 6, "{}", h.case);
    assert!(timeline(&h, JobId::new()).await.is_empty(), "{}", h.case);
}

/// The stream: events after a cursor, oldest first, each cursor resuming exactly after its
/// event; filters by queue, kind and `to` state; the page cursor skips what the filter left
/// out; a cursor of another kind is refused.
pub async fn stream_resumes_after_a_cursor_and_filters(h: Harness) {
    let (_, start) = read_all(
        &h,
        EventReadParams {
            limit: 1000,
            ..Default::default()
        },
    )
    .await;
    let a = h.enqueue(job("ka").queue("qa")).await.id;
    let b = h.enqueue(job("kb").queue("qb")).await.id;
    let c = h.claim_one("qa").await;
    assert_eq!(c.job.id, a);
    let all = |after: Option<String>| EventReadParams {
        after,
        limit: 1000,
        ..Default::default()
    };
    let (ev, end) = read_all(&h, all(start.clone())).await;
    let seen: Vec<_> = ev.iter().map(|e| (e.job, e.to)).collect();
    assert_eq!(seen.len(), 3, "{}: {seen:?}", h.case);
    for want in [
        (a, Some(JobState::Queued)),
        (b, Some(JobState::Queued)),
        (a, Some(JobState::Running)),
    ] {
        assert!(seen.contains(&want), "{}: {want:?} in {seen:?}", h.case);
    }
    // Within one queue, in order.
    let qa: Vec<_> = ev
        .iter()
        .filter(|e| e.queue == "qa")
        .map(|e| e.to)
        .collect();
    assert_eq!(
        qa,
        vec![Some(JobState::Queued), Some(JobState::Running)],
        "{}",
        h.case
    );
    // Resuming after the first event gives exactly the other two.
    let (rest, _) = read_all(&h, all(Some(ev[0].cursor.clone()))).await;
    assert_eq!(
        rest.iter().map(|e| (e.job, e.to)).collect::<Vec<_>>(),
        ev[1..].iter().map(|e| (e.job, e.to)).collect::<Vec<_>>(),
        "{}",
        h.case
    );
    // Nothing after the end; a new event after it is the only one.
    assert!(
        read_all(&h, all(end.clone())).await.0.is_empty(),
        "{}",
        h.case
    );
    h.complete(&c.token).await;
    let (new, _) = read_all(&h, all(end.clone())).await;
    assert_eq!(
        moves(&new),
        vec![(Some(JobState::Running), Some(JobState::Succeeded), 1)]
    );
    // A limit pages.
    let (one, next) = read_all(
        &h,
        EventReadParams {
            after: start.clone(),
            limit: 1,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(one.len(), 1);
    assert_eq!(next.as_deref(), Some(one[0].cursor.as_str()), "{}", h.case);
    // Filters.
    let f = |queue: Option<&str>, kind: Option<&str>, state: Option<JobState>| EventReadParams {
        after: start.clone(),
        queue: queue.map(str::to_string),
        kind: kind.map(str::to_string),
        state,
        limit: 1000,
    };
    let (by_q, qcur) = read_all(&h, f(Some("qb"), None, None)).await;
    assert_eq!(
        moves(&by_q),
        vec![(None, Some(JobState::Queued), 0)],
        "{}",
        h.case
    );
    assert_eq!(by_q[0].job, b);
    let (by_k, _) = read_all(&h, f(None, Some("ka"), None)).await;
    assert_eq!(by_k.len(), 3, "{}: enqueue, claim, complete of a", h.case);
    assert!(by_k.iter().all(|e| e.job == a));
    let (by_s, _) = read_all(&h, f(None, None, Some(JobState::Running))).await;
    assert_eq!(
        by_s.iter().map(|e| e.job).collect::<Vec<_>>(),
        vec![a],
        "{}",
        h.case
    );
    // The filtered page's cursor is past what it skipped: reading on gives nothing new.
    let mut p = f(Some("qb"), None, None);
    p.after = qcur;
    assert!(read_all(&h, p).await.0.is_empty(), "{}", h.case);
    let bad = h
        .backend
        .event_read(EventReadParams {
            after: Some("not a cursor".into()),
            limit: 10,
            ..Default::default()
        })
        .await;
    assert!(
        matches!(bad, Err(crate::Error::InvalidArgument(_))),
        "{}: {bad:?}",
        h.case
    );
}

/// An operator's change records the actor it ran under; cancel, retry and deletion each
/// append their event, deletion with `to = None`.
pub async fn operator_changes_record_the_actor(h: Harness) {
    let id = with_actor(Some("ops@127.0.0.1:9".into()), h.enqueue(job("audited")))
        .await
        .id;
    with_actor(Some("ops@127.0.0.1:9".into()), h.cancel(id))
        .await
        .unwrap();
    with_actor(Some("cli".into()), h.retry_ids(vec![id]))
        .await
        .unwrap();
    let c = h.claim_one("default").await;
    h.complete(&c.token).await;
    use JobState::*;
    let ev = timeline(&h, id).await;
    let got: Vec<_> = ev
        .iter()
        .map(|e| (e.from, e.to, e.actor.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, Some(Queued), Some("ops@127.0.0.1:9")),
            (Some(Queued), Some(Cancelled), Some("ops@127.0.0.1:9")),
            (Some(Cancelled), Some(Queued), Some("cli")),
            (Some(Queued), Some(Running), None),
            (Some(Running), Some(Succeeded), None),
        ],
        "{}",
        h.case
    );
    let (before, cursor) = read_all(
        &h,
        EventReadParams {
            limit: 10_000,
            ..Default::default()
        },
    )
    .await;
    assert!(!before.is_empty());
    with_actor(
        Some("ops@127.0.0.1:9".into()),
        h.backend.job_delete(crate::backend::JobDeleteParams {
            ids: vec![id],
            dry_run: false,
        }),
    )
    .await
    .unwrap_or_else(|e| panic!("{}: delete: {e}", h.case));
    let (gone, _) = read_all(
        &h,
        EventReadParams {
            after: cursor,
            limit: 10,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        gone.iter()
            .map(|e| (e.job, e.from, e.to, e.actor.as_deref()))
            .collect::<Vec<_>>(),
        vec![(id, Some(Succeeded), None, Some("ops@127.0.0.1:9"))],
        "{}",
        h.case
    );
}

/// Retention: a count cap keeps about the newest N (Redis trims whole stream nodes, so
/// "about"), an age cap drops every event older than it, and the newest is kept.
pub async fn retention_drops_the_oldest(h: Harness) {
    let first = h.enqueue_many("default", 200).await;
    h.advance(Duration::from_secs(3600));
    let young = h.enqueue(job("young")).await.id;
    let dropped = h
        .backend
        .event_prune(EventPruneParams {
            max_events: None,
            max_age: Some(Duration::from_secs(60)),
        })
        .await
        .unwrap_or_else(|e| panic!("{}: event_prune: {e}", h.case));
    assert_eq!(dropped, 200, "{}", h.case);
    let (left, _) = read_all(
        &h,
        EventReadParams {
            limit: 10_000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        left.iter().map(|e| e.job).collect::<Vec<_>>(),
        vec![young],
        "{}",
        h.case
    );
    // The timeline is kept with the job, not in the stream: it outlives the stream's
    // retention and goes with the job.
    assert_eq!(
        moves(&timeline(&h, first[0]).await),
        vec![(None, Some(JobState::Queued), 0)],
        "{}: the timeline stays with the job",
        h.case
    );
    // A count cap of 1 keeps the newest.
    h.enqueue_many("default", 5).await;
    h.backend
        .event_prune(EventPruneParams {
            max_events: Some(1),
            max_age: None,
        })
        .await
        .unwrap();
    let (left, _) = read_all(
        &h,
        EventReadParams {
            limit: 10_000,
            ..Default::default()
        },
    )
    .await;
    assert!(
        !left.is_empty() && left.len() <= 6,
        "{}: {} kept",
        h.case,
        left.len()
    );
}

/// The paths around a job's run: a dependent unblocked (blocked → queued) or skipped
/// (blocked → skipped) by its dependency's outcome, a lease released (running → queued, the
/// attempt uncounted) and an expired lease rescued (running → queued), each in the
/// timeline and, with the job's queue and kind, in the stream.
pub async fn dependencies_release_and_rescue_are_recorded(h: Harness) {
    use JobState::*;
    let (_, start) = read_all(
        &h,
        EventReadParams {
            limit: 10_000,
            ..Default::default()
        },
    )
    .await;
    let a = job("ev.a").max_attempts(1);
    let ok = job("ev.ok").depends_on([a.id]);
    let a_id = a.id;
    let ok_id = ok.id;
    h.enqueue_all(vec![a, ok]).await;
    let c = h.claim_id("default", a_id).await;
    h.complete(&c.token).await;
    assert_eq!(
        moves(&timeline(&h, ok_id).await),
        vec![(None, Some(Blocked), 0), (Some(Blocked), Some(Queued), 0)],
        "{}: unblocked",
        h.case
    );
    // Released, then claimed again and left to expire: rescued.
    let c = h.claim_id("default", ok_id).await;
    h.try_release(&c.token).await.unwrap();
    let _c = h.claim_id("default", ok_id).await;
    h.advance(Duration::from_secs(3600));
    h.rescue().await;
    assert_eq!(
        moves(&timeline(&h, ok_id).await)[2..].to_vec(),
        vec![
            (Some(Queued), Some(Running), 1),
            (Some(Running), Some(Queued), 0),
            (Some(Queued), Some(Running), 1),
            (Some(Running), Some(Queued), 1),
        ],
        "{}: released and rescued",
        h.case
    );
    // A dependency that dies skips its dependent.
    let d = job("ev.d").queue("evq").max_attempts(1);
    let s = job("ev.s").queue("evq").depends_on([d.id]);
    let (d_id, s_id) = (d.id, s.id);
    h.enqueue_all(vec![d, s]).await;
    h.claim_and_fail("evq", d_id, FailAction::Dead).await;
    assert_eq!(
        moves(&timeline(&h, s_id).await),
        vec![(None, Some(Blocked), 0), (Some(Blocked), Some(Skipped), 0)],
        "{}: skipped",
        h.case
    );
    // The stream has each of them too.
    let (ev, _) = read_all(
        &h,
        EventReadParams {
            after: start,
            limit: 10_000,
            ..Default::default()
        },
    )
    .await;
    let of = |id: JobId| -> Vec<_> {
        ev.iter()
            .filter(|e| e.job == id)
            .map(|e| (e.from, e.to, e.kind.as_str()))
            .collect()
    };
    assert_eq!(
        of(s_id),
        vec![
            (None, Some(Blocked), "ev.s"),
            (Some(Blocked), Some(Skipped), "ev.s")
        ],
        "{}",
        h.case
    );
    assert_eq!(of(ok_id).len(), 6, "{}: {:?}", h.case, of(ok_id));
    assert!(
        ev.iter().all(|e| e.queue
            == if e.job == s_id || e.job == d_id {
                "evq"
            } else {
                "default"
            }),
        "{}",
        h.case
    );
    assert_eq!(
        of(a_id).last().map(|e| e.1),
        Some(Some(Succeeded)),
        "{}",
        h.case
    );
}

/// The derived timeline (nothing of it stored by the hot paths): a job that failed twice
/// and then completed shows every move in order, at the times they happened — enqueue,
/// each claim, each retry and its promotion when due, the completion — with the attempt
/// after each move and the error history carrying each failed attempt's claim time.
pub async fn derived_timeline_of_a_job_failed_twice_then_completed(h: Harness) {
    use JobState::*;
    let id = h.enqueue(job("ev.twice")).await.id;
    let t0 = h.now();
    let mut claims = Vec::new();
    let mut fails = Vec::new();
    let mut dues = Vec::new();
    for _ in 0..2 {
        h.advance(Duration::from_millis(10));
        let c = h.claim_one("default").await;
        assert_eq!(c.job.id, id);
        claims.push(h.now());
        h.advance(Duration::from_millis(10));
        fails.push(h.now());
        let retry_at = h.now() + 500;
        dues.push(retry_at);
        h.fail(
            &c.token,
            FailAction::Retry {
                retry_at: Some(retry_at),
            },
        )
        .await;
        h.advance_to(retry_at + 5);
    }
    let c = h.claim_one("default").await;
    claims.push(h.now());
    h.advance(Duration::from_millis(10));
    h.complete(&c.token).await;
    let done = h.now();
    let ev = timeline(&h, id).await;
    let got: Vec<_> = ev.iter().map(|e| (e.from, e.to, e.attempt, e.at)).collect();
    assert_eq!(
        got,
        vec![
            (None, Some(Queued), 0, t0),
            (Some(Queued), Some(Running), 1, claims[0]),
            (Some(Running), Some(Scheduled), 1, fails[0]),
            (Some(Scheduled), Some(Queued), 1, dues[0]),
            (Some(Queued), Some(Running), 2, claims[1]),
            (Some(Running), Some(Scheduled), 2, fails[1]),
            (Some(Scheduled), Some(Queued), 2, dues[1]),
            (Some(Queued), Some(Running), 3, claims[2]),
            (Some(Running), Some(Succeeded), 3, done),
        ],
        "{}",
        h.case
    );
    assert!(ev.iter().all(|e| e.actor.is_none() && e.kind == "ev.twice"));
    let j = h.get(id).await;
    assert_eq!(
        j.errors
            .iter()
            .map(|e| (e.claimed_at, e.retry_at))
            .collect::<Vec<_>>(),
        vec![
            (Some(claims[0]), Some(dues[0])),
            (Some(claims[1]), Some(dues[1]))
        ],
        "{}: the error records carry what the timeline is derived from",
        h.case
    );
}

/// An operator's cancel of a running job is stored with its actor, after the derived
/// claim; a job that failed for good ends `dead` from its error record.
pub async fn audited_cancel_shows_its_actor(h: Harness) {
    use JobState::*;
    let id = h.enqueue(job("ev.cancel")).await.id;
    h.advance(Duration::from_millis(3));
    let _c = h.claim_one("default").await;
    let claimed = h.now();
    h.advance(Duration::from_millis(3));
    with_actor(Some("ops@10.0.0.7:41000".into()), h.cancel(id))
        .await
        .unwrap();
    let ev = timeline(&h, id).await;
    let got: Vec<_> = ev
        .iter()
        .map(|e| (e.from, e.to, e.at, e.actor.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, Some(Queued), claimed - 3, None),
            (Some(Queued), Some(Running), claimed, None),
            (
                Some(Running),
                Some(Cancelled),
                h.now(),
                Some("ops@10.0.0.7:41000")
            ),
        ],
        "{}",
        h.case
    );
    // A reprioritize under an actor keeps the state and is recorded with `from` = `to`.
    let r = h.enqueue(job("ev.prio").queue("evp")).await.id;
    with_actor(
        Some("ops@10.0.0.7:41000".into()),
        h.reprioritize(r, crate::model::Priority::HIGH),
    )
    .await
    .unwrap();
    let ev = timeline(&h, r).await;
    assert_eq!(
        ev.iter()
            .map(|e| (e.from, e.to, e.actor.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            (None, Some(Queued), None),
            (Some(Queued), Some(Queued), Some("ops@10.0.0.7:41000")),
        ],
        "{}",
        h.case
    );
    // Dead after its last attempt: derived from the error record alone.
    let d = h.enqueue(job("ev.dead").max_attempts(1)).await.id;
    h.claim_and_fail("default", d, FailAction::Dead).await;
    assert_eq!(
        moves(&timeline(&h, d).await),
        vec![
            (None, Some(Queued), 0),
            (Some(Queued), Some(Running), 1),
            (Some(Running), Some(Dead), 1),
        ],
        "{}",
        h.case
    );
}
