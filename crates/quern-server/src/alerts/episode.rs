//! A rule's episode state machine: ok → (pending while `for` runs) → firing → ok, and the
//! notice each transition sends. Pure, so it is tested without a store or a clock.
//!
//! The state is stored per rule (`Backend::alert_state_put`, compare-and-set) and every
//! server reads it, so whoever evaluates continues the same episode: a new leader never
//! announces an episode the old one already announced.

use quern::Millis;
use serde::{Deserialize, Serialize};

/// Where a rule is in its episode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Ok,
    /// The condition holds, but not yet for the rule's `for`.
    Pending,
    Firing,
}

/// The last notice a rule sent (or, once its webhook gave up, tried to send).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastNotice {
    /// `firing` or `resolved`.
    pub state: NoticeKind,
    pub at: Millis,
    pub episode: u64,
}

/// Which notice a transition sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Firing,
    Resolved,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Firing => "firing",
            NoticeKind::Resolved => "resolved",
        }
    }
}

/// What is stored for a rule (as JSON in the store's alert state).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Episode {
    pub phase: Phase,
    /// Pending or firing: when the condition started to hold.
    pub since: Option<Millis>,
    /// Firing: when it fired.
    pub fired_at: Option<Millis>,
    /// The current (firing) or last episode's number: 1 for the rule's first, and so on.
    pub episode: u64,
    /// The value at the last transition.
    pub value: Option<f64>,
    pub last_notice: Option<LastNotice>,
}

/// The next state given whether the condition holds now, and the notice to send; `None`
/// when nothing changes (the common case: nothing is written).
pub fn step(
    prev: &Episode,
    breached: bool,
    value: f64,
    now: Millis,
    hold_ms: i64,
) -> Option<(Episode, Option<NoticeKind>)> {
    let fire = |since: Millis| {
        let episode = prev.episode + 1;
        Episode {
            phase: Phase::Firing,
            since: Some(since),
            fired_at: Some(now),
            episode,
            value: Some(value),
            last_notice: Some(LastNotice {
                state: NoticeKind::Firing,
                at: now,
                episode,
            }),
        }
    };
    match (prev.phase, breached) {
        (Phase::Ok, false) | (Phase::Firing, true) => None,
        (Phase::Ok, true) if hold_ms <= 0 => Some((fire(now), Some(NoticeKind::Firing))),
        (Phase::Ok, true) => Some((
            Episode {
                phase: Phase::Pending,
                since: Some(now),
                fired_at: None,
                value: Some(value),
                ..prev.clone()
            },
            None,
        )),
        (Phase::Pending, true) => {
            let since = prev.since.unwrap_or(now);
            (now - since >= hold_ms).then(|| (fire(since), Some(NoticeKind::Firing)))
        }
        (Phase::Pending, false) => Some((
            Episode {
                phase: Phase::Ok,
                since: None,
                fired_at: None,
                value: Some(value),
                ..prev.clone()
            },
            None,
        )),
        (Phase::Firing, false) => Some((
            Episode {
                phase: Phase::Ok,
                since: None,
                fired_at: None,
                value: Some(value),
                episode: prev.episode,
                last_notice: Some(LastNotice {
                    state: NoticeKind::Resolved,
                    at: now,
                    episode: prev.episode,
                }),
            },
            Some(NoticeKind::Resolved),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_once_per_episode_and_resolves_once() {
        let ok = Episode::default();
        let (firing, n) = step(&ok, true, 12.0, 1_000, 0).unwrap();
        assert_eq!(n, Some(NoticeKind::Firing));
        assert_eq!(
            (firing.phase, firing.episode, firing.since),
            (Phase::Firing, 1, Some(1_000))
        );
        assert_eq!(
            step(&firing, true, 13.0, 2_000, 0),
            None,
            "still firing: nothing new"
        );
        let (resolved, n) = step(&firing, false, 0.0, 3_000, 0).unwrap();
        assert_eq!(n, Some(NoticeKind::Resolved));
        assert_eq!((resolved.phase, resolved.episode), (Phase::Ok, 1));
        assert_eq!(step(&resolved, false, 0.0, 4_000, 0), None);
        let (again, _) = step(&resolved, true, 20.0, 5_000, 0).unwrap();
        assert_eq!(again.episode, 2, "the next episode has the next number");
    }

    #[test]
    fn for_holds_the_notice_until_the_condition_lasted() {
        let ok = Episode::default();
        let (pending, n) = step(&ok, true, 12.0, 1_000, 30_000).unwrap();
        assert_eq!((pending.phase, n), (Phase::Pending, None));
        assert_eq!(
            step(&pending, true, 12.0, 20_000, 30_000),
            None,
            "not long enough"
        );
        let (firing, n) = step(&pending, true, 12.0, 31_000, 30_000).unwrap();
        assert_eq!(
            (firing.phase, n, firing.since),
            (Phase::Firing, Some(NoticeKind::Firing), Some(1_000))
        );
        let (back, n) = step(&pending, false, 1.0, 20_000, 30_000).unwrap();
        assert_eq!(
            (back.phase, n, back.episode),
            (Phase::Ok, None, 0),
            "a blip sends nothing"
        );
    }
}
