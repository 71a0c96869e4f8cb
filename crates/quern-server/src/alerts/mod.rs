//! Alerting: `[[alerts]]` rules evaluated by `quern serve`.
//!
//! Every server runs [`AlertService`], but only the holder of the leader lease
//! `quern.alerts` evaluates (every [`ServerConfig::alert_interval`](crate::ServerConfig),
//! 250 ms by default, so a condition is reported well within a second). Each rule's episode
//! state ([`episode::Episode`]) lives in the store (`Backend::alert_state_put`, a
//! compare-and-set per rule), so a transition is recorded once whichever server evaluates,
//! and a new leader continues the episode the old one started instead of announcing it
//! again. A notice goes out only after its transition was stored, by the server that stored
//! it: at most one firing and one resolved notice per episode across all servers. (A
//! server that dies while its webhook is still retrying takes that notice with it.)
//!
//! - `rule.rs`: the config and its checks; `measure.rs`: what each condition reads;
//!   `episode.rs`: the pure state machine; `webhook.rs`: signing and delivery;
//!   `service.rs`: the loop.

pub mod episode;
pub mod measure;
pub mod rule;
pub mod service;
pub mod webhook;

pub use rule::{AlertRule, Condition, resolve_rules};
pub use service::AlertService;
