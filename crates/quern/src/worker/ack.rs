//! The message a job task hands the acker: one outcome to acknowledge.

use crate::backend::{Completion, Failure, LeaseToken};

/// One outcome to acknowledge.
#[derive(Debug)]
pub(crate) enum Ack {
    Complete(Completion),
    Fail(Failure),
    /// Give the lease back without counting the attempt.
    Release(LeaseToken),
}

impl Ack {
    pub(crate) fn token(&self) -> &LeaseToken {
        match self {
            Ack::Complete(c) => &c.token,
            Ack::Fail(f) => &f.token,
            Ack::Release(t) => t,
        }
    }
}
