//! Leader leases: a named, exclusive, expiring lease for singleton services.

use std::time::Duration;

use super::*;
use crate::backend::{LeaderInfo, LeaderParams};

const TTL: Duration = Duration::from_secs(15);

fn p(name: &str, holder: &str) -> LeaderParams {
    LeaderParams {
        name: name.into(),
        holder: holder.into(),
        ttl: TTL,
    }
}

async fn acquire(h: &Harness, name: &str, holder: &str) -> bool {
    h.backend.leader_acquire(p(name, holder)).await.unwrap()
}

async fn renew(h: &Harness, name: &str, holder: &str) -> bool {
    h.backend.leader_renew(p(name, holder)).await.unwrap()
}

async fn holder(h: &Harness, name: &str) -> Option<LeaderInfo> {
    h.backend.leader_get(name.into()).await.unwrap()
}

/// One holder at a time; the other gets it only after the lease expires.
pub async fn lease_is_exclusive_until_it_expires(h: Harness) {
    assert_eq!(holder(&h, "cron").await, None, "{}: free at first", h.case);
    assert!(
        acquire(&h, "cron", "a").await,
        "{}: a takes the free lease",
        h.case
    );
    assert!(!acquire(&h, "cron", "b").await, "{}: b is refused", h.case);
    let info = holder(&h, "cron").await.expect("held");
    assert_eq!(info.holder, "a", "{}", h.case);
    assert_eq!(info.name, "cron", "{}", h.case);
    assert_eq!(info.expires_at, h.now() + ms(TTL), "{}", h.case);
    h.advance(TTL - Duration::from_secs(1));
    assert!(
        !acquire(&h, "cron", "b").await,
        "{}: not expired yet",
        h.case
    );
    h.advance(Duration::from_secs(2));
    assert_eq!(
        holder(&h, "cron").await,
        None,
        "{}: expired lease has no holder",
        h.case
    );
    assert!(
        acquire(&h, "cron", "b").await,
        "{}: b takes the expired lease",
        h.case
    );
    assert!(!renew(&h, "cron", "a").await, "{}: a lost it", h.case);
    assert_eq!(holder(&h, "cron").await.unwrap().holder, "b", "{}", h.case);
}

/// Renewing extends only the holder's lease; acquiring again as the holder extends it too;
/// releasing frees it, and only the holder can release.
pub async fn renew_and_release(h: Harness) {
    assert!(acquire(&h, "cron", "a").await, "{}", h.case);
    h.advance(Duration::from_secs(10));
    assert!(renew(&h, "cron", "a").await, "{}: holder renews", h.case);
    assert_eq!(
        holder(&h, "cron").await.unwrap().expires_at,
        h.now() + ms(TTL),
        "{}",
        h.case
    );
    assert!(
        !renew(&h, "cron", "b").await,
        "{}: non-holder cannot renew",
        h.case
    );
    h.advance(Duration::from_secs(10)); // past the first deadline
    assert!(
        acquire(&h, "cron", "a").await,
        "{}: re-acquire as holder",
        h.case
    );
    assert_eq!(
        holder(&h, "cron").await.unwrap().expires_at,
        h.now() + ms(TTL),
        "{}",
        h.case
    );
    h.backend.leader_release(p("cron", "b")).await.unwrap();
    assert_eq!(
        holder(&h, "cron").await.unwrap().holder,
        "a",
        "{}: b cannot release a's lease",
        h.case
    );
    h.backend.leader_release(p("cron", "a")).await.unwrap();
    assert_eq!(holder(&h, "cron").await, None, "{}: released", h.case);
    assert!(
        !renew(&h, "cron", "a").await,
        "{}: cannot renew a released lease",
        h.case
    );
    assert!(
        acquire(&h, "cron", "b").await,
        "{}: free for b at once",
        h.case
    );
}

/// Leases with different names do not interfere.
pub async fn names_are_independent(h: Harness) {
    assert!(acquire(&h, "cron", "a").await, "{}", h.case);
    assert!(acquire(&h, "pruner", "b").await, "{}", h.case);
    assert_eq!(holder(&h, "cron").await.unwrap().holder, "a", "{}", h.case);
    assert_eq!(
        holder(&h, "pruner").await.unwrap().holder,
        "b",
        "{}",
        h.case
    );
    h.backend.leader_release(p("cron", "a")).await.unwrap();
    assert_eq!(
        holder(&h, "pruner").await.unwrap().holder,
        "b",
        "{}",
        h.case
    );
}
