//! Queue weights: claims across queues follow the configured split among queues that have
//! ready jobs.

use super::*;
use crate::backend::QueueWeight;

/// With weights 3:1 and both queues always holding ready jobs, 4,000 single-job claims split
/// 3,000 : 1,000 within ±10% (binomial spread is about ±27, so the bound is far outside
/// noise but catches "always the first queue" or an even split).
pub async fn three_to_one_weights_split_three_to_one(h: Harness) {
    const CLAIMS: usize = 4_000;
    h.enqueue_many("heavy", CLAIMS).await;
    h.enqueue_many("light", CLAIMS).await;
    let queues = vec![QueueWeight::new("heavy", 3), QueueWeight::new("light", 1)];
    let (mut heavy, mut light) = (0usize, 0usize);
    for _ in 0..CLAIMS {
        let got = h.claim_from(queues.clone(), 1).await;
        assert_eq!(got.len(), 1, "{}: both queues still have work", h.case);
        match got[0].job.queue.as_str() {
            "heavy" => heavy += 1,
            "light" => light += 1,
            other => panic!("{}: claimed from unlisted queue {other:?}", h.case),
        }
    }
    eprintln!("{}: heavy {heavy}, light {light}", h.case);
    assert!(
        (2_700..=3_300).contains(&heavy) && (900..=1_100).contains(&light),
        "{}: expected about 3000:1000, got {heavy}:{light}",
        h.case
    );
}

/// A queue with a large weight but no ready jobs does not starve the others: every claim
/// goes to the queue that has work, up to the limit.
pub async fn empty_queue_does_not_starve_the_others(h: Harness) {
    // "big" has only a job that is not due yet.
    h.enqueue(job("later").queue("big").run_at(h.now() + 60_000))
        .await;
    h.enqueue_many("small", 5).await;
    let got = h
        .claim_from(
            vec![QueueWeight::new("big", 100), QueueWeight::new("small", 1)],
            5,
        )
        .await;
    assert_eq!(got.len(), 5, "{}: all five from the small queue", h.case);
    assert!(got.iter().all(|c| c.job.queue == "small"), "{}", h.case);
}

/// A queue listed with weight 0 is never claimed from, even when it is the only one with
/// ready jobs (the rule of `ClaimSplit`); the other listed queues are served as usual.
pub async fn weight_zero_queue_is_never_claimed(h: Harness) {
    h.enqueue_many("off", 5).await;
    h.enqueue_many("on", 2).await;
    let queues = vec![QueueWeight::new("off", 0), QueueWeight::new("on", 1)];
    let got = h.claim_from(queues.clone(), 10).await;
    assert_eq!(got.len(), 2, "{}: only the weighted queue's jobs", h.case);
    assert!(got.iter().all(|c| c.job.queue == "on"), "{}", h.case);
    let got = h.claim_from(queues, 10).await;
    assert!(
        got.is_empty(),
        "{}: the weight-0 queue stays unclaimed",
        h.case
    );
    assert_eq!(
        h.claim("off", 10).await.len(),
        5,
        "{}: listed with a weight, it is",
        h.case
    );
}

/// A claim whose queues all weigh 0 takes nothing (it does not fall back to an even split).
pub async fn all_weights_zero_claim_nothing(h: Harness) {
    h.enqueue_many("a", 3).await;
    h.enqueue_many("b", 3).await;
    let got = h
        .claim_from(vec![QueueWeight::new("a", 0), QueueWeight::new("b", 0)], 10)
        .await;
    assert!(got.is_empty(), "{}: claimed {} jobs", h.case, got.len());
}

/// A queue named twice counts once, with its first weight: with `a` listed as 1 then 9 and
/// `b` as 1, claims split about 1:1, not 10:1.
pub async fn queue_named_twice_counts_once(h: Harness) {
    const CLAIMS: usize = 1_000;
    h.enqueue_many("a", CLAIMS).await;
    h.enqueue_many("b", CLAIMS).await;
    let queues = vec![
        QueueWeight::new("a", 1),
        QueueWeight::new("b", 1),
        QueueWeight::new("a", 9),
    ];
    let mut a = 0usize;
    for _ in 0..CLAIMS {
        let got = h.claim_from(queues.clone(), 1).await;
        assert_eq!(got.len(), 1, "{}", h.case);
        if got[0].job.queue == "a" {
            a += 1;
        }
    }
    // 1:1 gives 500 ± about 16 (one sigma); 10:1 would give about 910, 1:1 summed 2:1 about 667.
    assert!(
        (420..=580).contains(&a),
        "{}: {a} of {CLAIMS} from a, expected about half",
        h.case
    );
    // A claim of many in one call stays within the two queues and takes each job once.
    let got = h.claim_from(queues, 2 * CLAIMS).await;
    let ids: std::collections::HashSet<_> = got.iter().map(|c| c.job.id).collect();
    assert_eq!(ids.len(), got.len(), "{}: no job twice", h.case);
    assert_eq!(got.len(), CLAIMS, "{}: the rest of both queues", h.case);
}
