use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Where a job is in its life. See `docs/lifecycle.md` for the diagram; each variant says who
/// moves a job out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for its `run_at` (delayed at enqueue, or backing off before a retry, or
    /// snoozed). The backend's claim path moves it to `queued` once `run_at` has passed (it
    /// becomes claimable exactly at `run_at`); `cancel` moves it to `cancelled`.
    Scheduled,
    /// Ready to run. A worker's claim moves it to `running`; `cancel` moves it to `cancelled`.
    /// A paused queue keeps its jobs here.
    Queued,
    /// Waiting for the jobs in its `depends_on` (a job that spawned children waits for them
    /// this way: they replace its `depends_on`). The backend moves it, in the same
    /// transaction that finishes its last dependency, to `queued` (or `scheduled`) when its
    /// trigger is met, or to `skipped` when it can no longer be met; `cancel` moves it to
    /// `cancelled`.
    Blocked,
    /// Leased by a worker. The worker moves it to `succeeded` (complete), `scheduled` (retry
    /// or snooze), `dead` (fatal or out of attempts), `cancelled` (handler cancelled),
    /// `skipped` (a workflow condition was false), `blocked` (it spawned child jobs and waits
    /// for them) or back to `queued` (graceful give-back). The rescuer moves it to `queued` or `dead` when the
    /// lease expires; `cancel` moves it to `cancelled` and revokes the lease.
    Running,
    /// Finished successfully. Terminal; the pruner deletes it after its retention.
    Succeeded,
    /// Failed for good: the dead-letter queue. Terminal until an operator replays it (`retry`),
    /// which moves it to `queued`.
    Dead,
    /// Cancelled by a user or by its handler. Terminal until an operator retries it.
    Cancelled,
    /// Never ran, because a dependency ended dead, cancelled or skipped (or, when it came to
    /// run, a workflow condition was false). Terminal until an operator retries it.
    Skipped,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 8] = [
        JobState::Scheduled,
        JobState::Queued,
        JobState::Blocked,
        JobState::Running,
        JobState::Succeeded,
        JobState::Dead,
        JobState::Cancelled,
        JobState::Skipped,
    ];

    /// The lowercase name used in storage, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Queued => "queued",
            JobState::Blocked => "blocked",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
            JobState::Skipped => "skipped",
        }
    }

    /// A small stable number for compact storage.
    pub fn as_i64(self) -> i64 {
        match self {
            JobState::Scheduled => 0,
            JobState::Queued => 1,
            JobState::Blocked => 2,
            JobState::Running => 3,
            JobState::Succeeded => 4,
            JobState::Dead => 5,
            JobState::Cancelled => 6,
            JobState::Skipped => 7,
        }
    }

    /// The inverse of [`JobState::as_i64`].
    pub fn from_i64(n: i64) -> Option<Self> {
        JobState::ALL.get(usize::try_from(n).ok()?).copied()
    }

    /// Succeeded, dead, cancelled and skipped: nothing moves the job out without an operator.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Dead | JobState::Cancelled | JobState::Skipped
        )
    }

    /// Terminal without success: dependents waiting on `all_success` are skipped.
    pub fn is_failed_terminal(self) -> bool {
        matches!(
            self,
            JobState::Dead | JobState::Cancelled | JobState::Skipped
        )
    }

    /// Scheduled, queued and blocked: waiting to run, not yet leased. Only such a job may be
    /// given a new priority (`Backend::job_reprioritize`); a running job was already ordered
    /// by its claim.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            JobState::Scheduled | JobState::Queued | JobState::Blocked
        )
    }

    /// Every edge of the state machine (DESIGN.md §3). Backends must never make any other move;
    /// the conformance suite checks each of these.
    pub fn can_move_to(self, to: JobState) -> bool {
        use JobState::*;
        match (self, to) {
            (Scheduled, Queued) | (Blocked, Queued) | (Blocked, Scheduled) | (Blocked, Skipped) => {
                true
            }
            (Queued, Running) => true,
            (Running, Succeeded | Scheduled | Dead | Cancelled | Queued | Skipped | Blocked) => {
                true
            }
            (Scheduled | Queued | Blocked, Cancelled) => true,
            // Operator actions on terminal jobs: replay / retry.
            (Dead | Cancelled | Skipped, Queued | Blocked) => true,
            _ => false,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let t = s.trim().to_ascii_lowercase();
        JobState::ALL.into_iter().find(|st| st.as_str() == t).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{s:?} is not a job state (one of scheduled, queued, blocked, running, succeeded, dead, cancelled, skipped)"
            ))
        })
    }
}

/// Number of jobs in each state (of one queue, or of everything).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub scheduled: u64,
    pub queued: u64,
    pub blocked: u64,
    pub running: u64,
    pub succeeded: u64,
    pub dead: u64,
    pub cancelled: u64,
    pub skipped: u64,
}

impl StateCounts {
    /// The count for one state.
    pub fn get(&self, s: JobState) -> u64 {
        match s {
            JobState::Scheduled => self.scheduled,
            JobState::Queued => self.queued,
            JobState::Blocked => self.blocked,
            JobState::Running => self.running,
            JobState::Succeeded => self.succeeded,
            JobState::Dead => self.dead,
            JobState::Cancelled => self.cancelled,
            JobState::Skipped => self.skipped,
        }
    }

    /// A mutable reference to the count for one state.
    pub fn get_mut(&mut self, s: JobState) -> &mut u64 {
        match s {
            JobState::Scheduled => &mut self.scheduled,
            JobState::Queued => &mut self.queued,
            JobState::Blocked => &mut self.blocked,
            JobState::Running => &mut self.running,
            JobState::Succeeded => &mut self.succeeded,
            JobState::Dead => &mut self.dead,
            JobState::Cancelled => &mut self.cancelled,
            JobState::Skipped => &mut self.skipped,
        }
    }

    /// Sum over all states.
    pub fn total(&self) -> u64 {
        JobState::ALL.iter().map(|s| self.get(*s)).sum()
    }

    /// Adds another set of counts to this one.
    pub fn add(&mut self, other: &StateCounts) {
        for s in JobState::ALL {
            *self.get_mut(s) += other.get(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
            assert_eq!(JobState::from_i64(s.as_i64()), Some(s));
        }
        assert!("done".parse::<JobState>().is_err());
    }

    #[test]
    fn terminal_states_only_leave_by_operator_action() {
        for s in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(!s.can_move_to(JobState::Running));
            assert!(!s.can_move_to(JobState::Scheduled));
        }
        assert!(!JobState::Succeeded.can_move_to(JobState::Queued));
        assert!(JobState::Dead.can_move_to(JobState::Queued));
    }
}
