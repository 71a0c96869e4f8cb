//! Redis and Redis Cluster backend for Quern.
//!
//! Select it with a URL: `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS, with the
//! `tls` feature) or `redis+cluster://host:port[,host:port…]`. Query options: `prefix`
//! (key namespace, default `quern`), `durability=replicated` (enqueue, complete and fail
//! wait for a replica), `replicas`, `wait_timeout_ms`, `retry_ms`.
//!
//! Every state transition is one Lua script (see `lua/`), called by SHA and reloaded after
//! `NOSCRIPT`. All keys of one queue share the hash tag `{<queue>}`, so each script touches
//! one slot on Cluster. The layout and the reasons for it are in ARCHITECTURE.md
//! ("Redis backend").
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

mod admin;
mod backend;
mod codec;
mod config;
mod conn;
mod jobs;
mod packed;
mod scripts;
mod wait;
mod workflows;

use async_trait::async_trait;
pub use backend::RedisBackend;
pub use config::{Durability, RedisConfig};
pub use quern;
use quern::backend::*;
use quern::model::{StateCounts, WorkflowRecord};
use quern::{Backend, Job, JobId, Result};

#[async_trait]
impl Backend for RedisBackend {
    fn capabilities(&self) -> Capabilities {
        self.capabilities_impl()
    }

    async fn job_enqueue(&self, params: EnqueueParams) -> Result<EnqueueResults> {
        self.enqueue_impl(params).await
    }

    async fn job_claim(&self, params: ClaimParams) -> Result<Vec<ClaimedJob>> {
        self.claim_impl(params).await
    }

    async fn job_heartbeat(&self, params: HeartbeatParams) -> Result<Vec<Result<quern::Millis>>> {
        self.heartbeat_impl(params).await
    }

    async fn job_complete(&self, params: CompleteParams) -> Result<Vec<Result<()>>> {
        self.complete_impl(params).await
    }

    async fn job_fail(&self, params: FailParams) -> Result<Vec<Result<()>>> {
        self.fail_impl(params).await
    }

    async fn job_release(&self, params: ReleaseParams) -> Result<Vec<Result<()>>> {
        self.release_impl(params).await
    }

    async fn job_cancel(&self, params: CancelParams) -> Result<Job> {
        self.cancel_impl(params).await
    }

    async fn job_get(&self, params: JobGetParams) -> Result<Option<Job>> {
        let id = params.id;
        self.get_impl(id).await
    }

    async fn job_get_many(&self, params: JobGetManyParams) -> Result<Vec<Option<Job>>> {
        let ids = params.ids.as_slice();
        self.get_many_impl(ids).await
    }

    async fn job_list(&self, params: ListParams) -> Result<JobPage> {
        self.list_impl(params).await
    }

    async fn job_retry(&self, params: RetryParams) -> Result<Vec<JobId>> {
        self.retry_impl(params).await
    }

    async fn job_prune(&self, params: PruneParams) -> Result<PruneReport> {
        self.prune_impl(params).await
    }

    async fn lease_rescue(&self, params: RescueParams) -> Result<RescueReport> {
        self.rescue_impl(params).await
    }

    async fn work_wait(&self, params: WaitParams) -> Result<()> {
        self.wait_impl(params).await
    }

    async fn workflow_create(&self, params: WorkflowCreateParams) -> Result<WorkflowRecord> {
        self.workflow_create_impl(params).await
    }

    async fn workflow_get(&self, params: WorkflowParams) -> Result<Option<WorkflowRecord>> {
        let id = params.id.as_str();
        self.workflow_get_impl(id).await
    }

    async fn workflow_list(&self, params: WorkflowListParams) -> Result<WorkflowPage> {
        self.workflow_list_impl(params).await
    }

    async fn workflow_update(&self, params: WorkflowUpdateParams) -> Result<WorkflowRecord> {
        self.workflow_update_impl(params).await
    }

    async fn workflow_counts(&self, params: WorkflowParams) -> Result<StateCounts> {
        let id = params.id.as_str();
        self.workflow_counts_impl(id).await
    }

    async fn queue_list(&self) -> Result<Vec<QueueInfo>> {
        self.queue_list_impl().await
    }

    async fn queue_stats(&self, params: QueueParams) -> Result<QueueInfo> {
        let queue = params.queue.as_str();
        self.queue_stats_impl(queue).await
    }

    async fn queue_pause(&self, params: QueueParams) -> Result<()> {
        let queue = params.queue.as_str();
        self.queue_pause_impl(queue, true).await
    }

    async fn queue_resume(&self, params: QueueParams) -> Result<()> {
        let queue = params.queue.as_str();
        self.queue_pause_impl(queue, false).await
    }

    async fn worker_register(&self, info: WorkerInfo) -> Result<()> {
        self.worker_register_impl(info).await
    }

    async fn worker_heartbeat(&self, params: WorkerHeartbeatParams) -> Result<()> {
        self.worker_heartbeat_impl(params).await
    }

    async fn worker_deregister(&self, params: WorkerDeregisterParams) -> Result<()> {
        let id = params.id.as_str();
        self.worker_deregister_impl(id).await
    }

    async fn worker_list(&self) -> Result<Vec<WorkerInfo>> {
        self.worker_list_impl().await
    }

    async fn leader_acquire(&self, params: LeaderParams) -> Result<bool> {
        self.leader_acquire_impl(params).await
    }

    async fn leader_renew(&self, params: LeaderParams) -> Result<bool> {
        self.leader_renew_impl(params).await
    }

    async fn leader_release(&self, params: LeaderParams) -> Result<()> {
        self.leader_release_impl(params).await
    }

    async fn leader_get(&self, params: LeaderGetParams) -> Result<Option<LeaderInfo>> {
        let name = params.name.as_str();
        self.leader_get_impl(name).await
    }
}
