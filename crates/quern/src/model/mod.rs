//! The domain model: jobs, their states, priorities, retry policies and payloads, workflow
//! records, and recurring schedules.

mod duration;
mod id;
mod job;
mod order;
mod outcome;
mod payload;
mod priority;
mod queue;
mod retry;
mod schedule;
mod state;
mod workflow;

pub use duration::{format_duration, parse_duration, serde_ms};
pub use id::JobId;
pub use job::{
    DEFAULT_QUEUE, ErrorKind, ErrorRecord, Job, Lease, Limits, MAX_ERROR_MESSAGE_BYTES, NewJob,
    Progress, Trigger, group_name_problem, queue_name_problem, truncate_error_message,
    validate_queue_name,
};
pub use order::{Aging, Candidate, ClaimOrder, OrderRule, pick};
pub use outcome::TaskError;
pub use payload::{Codec, Format, Payload};
pub use priority::Priority;
pub use queue::{Admitted, MAX_WEIGHT, QueueSettings, QueueUsage, RateLimit};
pub use retry::RetryPolicy;
pub use schedule::{
    JobTemplate, Misfire, Overlap, RunKind, ScheduleRun, ScheduleSpec, StoredSchedule,
    schedule_name_problem,
};
pub use state::{JobState, StateCounts};
pub use workflow::{
    NewWorkflow, WorkflowPhase, WorkflowRecord, WorkflowState, validate_workflow_id,
};
