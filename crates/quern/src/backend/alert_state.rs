//! `alert_state_*`: the stored state of each alert rule (`quern serve`'s alert evaluator),
//! shared by every server on the store so an episode is announced once, whoever evaluates.
//!
//! The store keeps an opaque text per rule name with a version that grows by one on every
//! write; a write names the version it read and is refused if another server wrote since
//! (compare-and-set). The store never interprets the text: the evaluator owns its format.

use serde::{Deserialize, Serialize};

/// One rule's stored state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertStateRecord {
    /// The rule's name (`[[alerts]] name`).
    pub name: String,
    /// 1 after the first write, and one more after each later one.
    pub version: u64,
    /// What the evaluator stored (JSON in practice; opaque to the store).
    pub state: String,
}

/// `alert_state_put`: store `state` for `name` if its stored version is still `expect`
/// (0: no record yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertStatePutParams {
    pub name: String,
    /// The version the caller read; the write is refused when the store holds another.
    pub expect: u64,
    pub state: String,
}
