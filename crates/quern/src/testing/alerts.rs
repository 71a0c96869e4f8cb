//! Alert rule states: `alert_state_put` is a compare-and-set per rule name, and
//! `alert_state_list` reads every rule's latest state back.

use super::*;
use crate::backend::{AlertStatePutParams, AlertStateRecord};

async fn put(h: &Harness, name: &str, expect: u64, state: &str) -> Option<u64> {
    h.backend
        .alert_state_put(AlertStatePutParams {
            name: name.into(),
            expect,
            state: state.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{}: alert_state_put: {e}", h.case))
}

async fn list(h: &Harness) -> Vec<AlertStateRecord> {
    let mut all = h
        .backend
        .alert_state_list()
        .await
        .unwrap_or_else(|e| panic!("{}: alert_state_list: {e}", h.case));
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

fn rec(name: &str, version: u64, state: &str) -> AlertStateRecord {
    AlertStateRecord {
        name: name.into(),
        version,
        state: state.into(),
    }
}

/// The first write expects version 0 and makes 1; each later write must name the version it
/// read: a stale one (another server wrote since) is refused and changes nothing.
pub async fn put_is_compare_and_set(h: Harness) {
    assert_eq!(
        list(&h).await,
        vec![],
        "{}: nothing stored at first",
        h.case
    );
    assert_eq!(
        put(&h, "depth", 1, "x").await,
        None,
        "{}: no record yet",
        h.case
    );
    assert_eq!(
        list(&h).await,
        vec![],
        "{}: refused write stored nothing",
        h.case
    );
    assert_eq!(
        put(&h, "depth", 0, r#"{"s":1}"#).await,
        Some(1),
        "{}",
        h.case
    );
    assert_eq!(
        put(&h, "depth", 1, r#"{"s":2}"#).await,
        Some(2),
        "{}",
        h.case
    );
    // A second server that read version 1 loses the race.
    assert_eq!(put(&h, "depth", 1, "late").await, None, "{}: stale", h.case);
    assert_eq!(put(&h, "depth", 0, "late").await, None, "{}: stale", h.case);
    assert_eq!(
        list(&h).await,
        vec![rec("depth", 2, r#"{"s":2}"#)],
        "{}: the winner's state is kept",
        h.case
    );
}

/// Names are independent, and any text (quotes, colons, non-ASCII) round-trips.
pub async fn names_are_independent(h: Harness) {
    let text = r#"{"msg":"queue \"a:b\" — 12 > 10"}"#;
    assert_eq!(put(&h, "a", 0, text).await, Some(1), "{}", h.case);
    assert_eq!(put(&h, "b:c", 0, "one").await, Some(1), "{}", h.case);
    assert_eq!(put(&h, "b:c", 1, "two").await, Some(2), "{}", h.case);
    assert_eq!(
        list(&h).await,
        vec![rec("a", 1, text), rec("b:c", 2, "two")],
        "{}",
        h.case
    );
}
