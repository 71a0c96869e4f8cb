//! Redis and Redis Cluster backend for Quern.
//!
//! Select it with a URL: `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS, with the
//! `tls` feature) or `redis+cluster://host:port[,host:port…]`. Query options: `prefix`
//! (key namespace, default `quern`), `durability=replicated` (enqueue, complete and fail
//! wait for a replica), `replicas`, `wait_timeout_ms`, `retry_ms`.
//!
//! Every state transition is one Lua script (see `lua/`), called by SHA and reloaded after
//! `NOSCRIPT`. All keys of one queue share the hash tag `{<queue>}`, so each script touches
//! one slot on Cluster. The layout and the reasons for it are in this crate's README.md;
//! the operations are in `ops/`, one file per area.
//!
//! ```no_run
//! # async fn demo() -> Result<(), quern::Error> {
//! let backend = quern_redis::RedisBackend::connect(
//!     "redis://127.0.0.1:6379/?prefix=myapp",
//!     std::sync::Arc::new(quern::SystemClock),
//! )
//! .await?;
//! # let _ = backend; Ok(()) }
//! ```

mod backend;
mod codec;
mod config;
mod conn;
mod destroy;
mod eval;
mod ops;
mod packed;
mod reply;
mod scripts;

use async_trait::async_trait;
pub use backend::RedisBackend;
pub use config::{Durability, RedisConfig};
pub use quern;
use quern::backend::*;
use quern::model::{ScheduleRun, StateCounts, StoredSchedule, WorkflowRecord};
use quern::{Backend, Job, JobId, Result};

use ops::admin::Pause;

#[async_trait]
impl Backend for RedisBackend {
    fn capabilities(&self) -> Capabilities {
        self.capabilities_impl()
    }

    async fn job_enqueue(&self, params: EnqueueParams) -> Result<EnqueueResults> {
        self.check_memory().await?;
        ops::enqueue::enqueue(self, params).await
    }

    async fn store_budget(&self) -> Result<Option<quern::backend::StoreBudget>> {
        self.memory_budget().await
    }

    async fn job_claim(&self, params: ClaimParams) -> Result<Vec<ClaimedJob>> {
        Ok(ops::claim::claim(self, params).await?.jobs)
    }

    async fn job_claim_outcome(&self, params: ClaimParams) -> Result<ClaimOutcome> {
        ops::claim::claim(self, params).await
    }

    async fn job_heartbeat(&self, params: HeartbeatParams) -> Result<Vec<Result<quern::Millis>>> {
        ops::lease::heartbeat(self, params).await
    }

    async fn job_complete(&self, params: CompleteParams) -> Result<Vec<Result<()>>> {
        ops::lease::complete(self, params).await
    }

    async fn job_fail(&self, params: FailParams) -> Result<Vec<Result<()>>> {
        ops::fail::fail(self, params).await
    }

    async fn job_release(&self, params: ReleaseParams) -> Result<Vec<Result<()>>> {
        ops::lease::release(self, params).await
    }

    async fn job_cancel(&self, params: CancelParams) -> Result<Job> {
        ops::admin::cancel(self, params).await
    }

    async fn job_reprioritize(&self, params: JobReprioritizeParams) -> Result<Job> {
        ops::admin::reprioritize(self, params).await
    }

    async fn job_get(&self, params: JobGetParams) -> Result<Option<Job>> {
        ops::read::get(self, params.id).await
    }

    async fn job_get_many(&self, params: JobGetManyParams) -> Result<Vec<Option<Job>>> {
        ops::read::get_many(self, params.ids.as_slice()).await
    }

    async fn job_list(&self, params: ListParams) -> Result<JobPage> {
        ops::read::list(self, params).await
    }

    async fn job_retry(&self, params: RetryParams) -> Result<Vec<JobId>> {
        ops::admin::retry(self, params).await
    }

    async fn job_delete(&self, params: JobDeleteParams) -> Result<JobDeleteReport> {
        ops::alerts::job_delete(self, params).await
    }

    async fn alert_state_list(&self) -> Result<Vec<AlertStateRecord>> {
        ops::alerts::alert_state_list(self).await
    }

    async fn alert_state_put(&self, params: AlertStatePutParams) -> Result<Option<u64>> {
        ops::alerts::alert_state_put(self, params).await
    }

    async fn job_prune(&self, params: PruneParams) -> Result<PruneReport> {
        ops::admin::prune(self, params).await
    }

    async fn job_prune_bytes(&self, params: PruneBytesParams) -> Result<PruneBytesReport> {
        ops::prune_bytes::prune_bytes(self, params).await
    }

    async fn lease_rescue(&self, params: RescueParams) -> Result<RescueReport> {
        ops::admin::rescue(self, params).await
    }

    async fn work_wait(&self, params: WaitParams) -> Result<()> {
        ops::wait::wait(self, params).await
    }

    async fn job_log_append(&self, params: LogAppendParams) -> Result<()> {
        ops::logs::append(self, params).await
    }

    async fn job_logs(&self, params: JobLogsParams) -> Result<JobLogPage> {
        ops::logs::read(self, params).await
    }

    async fn event_list(&self, params: EventListParams) -> Result<Vec<quern::model::JobEvent>> {
        ops::events::list(self, params).await
    }

    async fn event_read(&self, params: EventReadParams) -> Result<EventPage> {
        ops::events::read(self, params).await
    }

    async fn event_prune(&self, params: EventPruneParams) -> Result<u64> {
        ops::events::prune(self, params).await
    }

    async fn job_finished(&self, params: FinishedParams) -> Result<Vec<FinishedJob>> {
        ops::read::finished(self, params).await
    }

    async fn stats_minutes(&self, params: MinutesParams) -> Result<Vec<MinuteCounts>> {
        ops::rollup::minutes(self, params).await
    }

    async fn workflow_create(&self, params: WorkflowCreateParams) -> Result<WorkflowRecord> {
        self.check_memory().await?;
        ops::workflow::create(self, params).await
    }

    async fn workflow_get(&self, params: WorkflowParams) -> Result<Option<WorkflowRecord>> {
        ops::workflow::get(self, params.id.as_str()).await
    }

    async fn workflow_list(&self, params: WorkflowListParams) -> Result<WorkflowPage> {
        ops::workflow::list(self, params).await
    }

    async fn workflow_update(&self, params: WorkflowUpdateParams) -> Result<WorkflowRecord> {
        ops::workflow::update(self, params).await
    }

    async fn workflow_counts(&self, params: WorkflowParams) -> Result<StateCounts> {
        ops::workflow::counts(self, params.id.as_str()).await
    }

    async fn schedule_upsert(&self, params: ScheduleUpsertParams) -> Result<ScheduleUpserted> {
        ops::schedule::upsert(self, params).await
    }

    async fn schedule_get(&self, params: ScheduleParams) -> Result<Option<StoredSchedule>> {
        ops::schedule::get(self, params.name.as_str()).await
    }

    async fn schedule_list(&self) -> Result<Vec<StoredSchedule>> {
        ops::schedule::list(self).await
    }

    async fn schedule_delete(&self, params: ScheduleParams) -> Result<Option<StoredSchedule>> {
        ops::schedule::delete(self, params.name.as_str()).await
    }

    async fn schedule_pause(&self, params: ScheduleParams) -> Result<StoredSchedule> {
        ops::schedule::pause(self, params.name.as_str(), true).await
    }

    async fn schedule_resume(&self, params: ScheduleParams) -> Result<StoredSchedule> {
        ops::schedule::pause(self, params.name.as_str(), false).await
    }

    async fn schedule_fire(&self, params: ScheduleFireParams) -> Result<FireOutcome> {
        ops::schedule::fire(self, params).await
    }

    async fn schedule_runs(&self, params: ScheduleRunsParams) -> Result<Vec<ScheduleRun>> {
        ops::schedule::runs(self, params).await
    }

    // --- import (backup, restore, migrate) -------------------------------------------------

    async fn store_import(&self, params: ImportParams) -> Result<ImportReport> {
        ops::import::import(self, params).await
    }

    async fn queue_list(&self) -> Result<Vec<QueueInfo>> {
        ops::admin::queue_list(self).await
    }

    async fn queue_stats(&self, params: QueueParams) -> Result<QueueInfo> {
        ops::admin::queue_stats(self, params.queue.as_str()).await
    }

    async fn queue_get(&self, params: QueueParams) -> Result<quern::model::QueueUsage> {
        ops::limits::get(self, &params.queue).await
    }

    async fn queue_update(&self, params: QueueUpdateParams) -> Result<quern::model::QueueSettings> {
        ops::limits::update(self, params).await
    }

    async fn queue_pause(&self, params: QueueParams) -> Result<()> {
        ops::admin::queue_pause(self, params.queue.as_str(), Pause::Pause).await
    }

    async fn queue_resume(&self, params: QueueParams) -> Result<()> {
        ops::admin::queue_pause(self, params.queue.as_str(), Pause::Resume).await
    }

    async fn worker_register(&self, info: WorkerInfo) -> Result<()> {
        ops::coord::worker_register(self, info).await
    }

    async fn worker_heartbeat(&self, params: WorkerHeartbeatParams) -> Result<()> {
        ops::coord::worker_heartbeat(self, params).await
    }

    async fn worker_deregister(&self, params: WorkerDeregisterParams) -> Result<()> {
        ops::coord::worker_deregister(self, params.id.as_str()).await
    }

    async fn worker_list(&self) -> Result<Vec<WorkerInfo>> {
        ops::coord::worker_list(self).await
    }

    async fn leader_acquire(&self, params: LeaderParams) -> Result<bool> {
        ops::coord::leader_acquire(self, params).await
    }

    async fn leader_renew(&self, params: LeaderParams) -> Result<bool> {
        ops::coord::leader_renew(self, params).await
    }

    async fn leader_release(&self, params: LeaderParams) -> Result<()> {
        ops::coord::leader_release(self, params).await
    }

    async fn leader_get(&self, params: LeaderGetParams) -> Result<Option<LeaderInfo>> {
        ops::coord::leader_get(self, params.name.as_str()).await
    }
}
