use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Error;

/// A job's identity: a UUIDv7, so ids sort roughly by creation time. They are never used as
/// the queue order (that is priority, then due time, then id as the last tie-breaker).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        JobId(Uuid::now_v7())
    }

    /// The id's 16 bytes (big-endian, so byte order equals time order).
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// Rebuilds an id from its 16 bytes.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        JobId(Uuid::from_bytes(b))
    }

    /// Rebuilds an id from a byte slice, which must be 16 bytes long.
    pub fn from_slice(b: &[u8]) -> Result<Self, Error> {
        Uuid::from_slice(b)
            .map(JobId)
            .map_err(|e| Error::Storage(format!("bad job id bytes: {e}")))
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0.hyphenated())
    }
}

impl FromStr for JobId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Uuid::parse_str(s.trim())
            .map(JobId)
            .map_err(|_| Error::InvalidArgument(format!("{s:?} is not a job id (expected a UUID)")))
    }
}
