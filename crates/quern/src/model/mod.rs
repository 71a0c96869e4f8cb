//! The domain model: jobs, their states, priorities, retry policies and payloads, workflow
//! records, and recurring schedules.

mod bytes;
mod duration;
mod event;
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
mod timeline;
mod trace;
mod workflow;

pub use bytes::{format_bytes, parse_bytes};
pub use duration::{format_duration, parse_duration, serde_ms};
pub use event::{JobEvent, MAX_ACTOR_BYTES, current_actor, current_actor_stored, with_actor};
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
pub use queue::{
    Admitted, Keep, KindLimits, MAX_KIND_RULES, MAX_WEIGHT, QueueSettings, QueueUsage, RateLimit,
    kind_rule, validate_kind_pattern,
};
pub use retry::RetryPolicy;
pub use schedule::{
    JobTemplate, Misfire, Overlap, RunKind, ScheduleRun, ScheduleSpec, StoredSchedule,
    schedule_name_problem,
};
pub use state::{JobState, StateCounts};
pub use timeline::job_timeline;
pub use trace::{MAX_TRACESTATE_BYTES, TraceContext, traceparent_problem, tracestate_problem};
pub use workflow::{
    NewWorkflow, WorkflowPhase, WorkflowRecord, WorkflowState, validate_workflow_id,
};
