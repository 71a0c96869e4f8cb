//! `GET /v1/stats/minutes`: outcomes per minute, from the store's rollups.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The window and scope of `GET /v1/stats/minutes`.
#[derive(Clone, Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MinutesQuery {
    /// How many minutes, ending with the current one: 1 to 11520 (eight days, what the
    /// store keeps), default 60.
    #[param(minimum = 1, maximum = 11520)]
    pub minutes: Option<i64>,
    /// Only this queue (default: summed over every queue).
    pub queue: Option<String>,
}

/// One minute's outcomes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct MinuteDto {
    /// The minute's start, ms since the epoch.
    pub at: i64,
    /// Jobs completed.
    pub succeeded: u64,
    /// Attempts that ended in an error (a failure with a retry left, a failure to dead, a
    /// lease the rescuer took back).
    pub failed: u64,
    /// Of those, the ones after which the job was dead.
    pub dead: u64,
}

/// Every minute of the window, oldest first, the current (still counting) minute last;
/// minutes with no outcome are there with zeros.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MinutesDto {
    /// The server's clock when answering, ms since the epoch.
    pub now: i64,
    pub minutes: Vec<MinuteDto>,
}
