//! `/ui/api/`: what the dashboard needs that the REST API does not answer in one call. Not
//! part of the public API (no OpenAPI entry, may change with the dashboard).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use quern::backend::{JobDeleteParams, JobFilter, ListParams, RetryParams, RetryTarget};
use quern::model::{Job, JobState};
use quern::{JobId, Priority};
use serde::{Deserialize, Serialize};

use super::search::{SCAN_BUDGET, Search};
use crate::dto::{AlertListDto, CountsDto, JobDto, MinuteDto, QueueDto, WorkerDto};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Query, parse_job_id};
use crate::state::AppState;

/// The overview page in one answer, from the store's maintained counts (never a count over
/// all jobs).
#[derive(Serialize)]
pub struct OverviewDto {
    pub now: i64,
    /// Every queue with its counts.
    pub queues: Vec<QueueDto>,
    /// The counts summed over the queues.
    pub totals: CountsDto,
    /// `run_at` of the oldest queued job over all queues, and its queue.
    pub oldest_queued_at: Option<i64>,
    pub oldest_queue: Option<String>,
    pub workers: Vec<WorkerDto>,
    pub alerts: AlertListDto,
    /// Outcomes per minute, oldest first: the last 24 hours (`GET /v1/stats/minutes`).
    pub minutes: Vec<MinuteDto>,
}

fn sum(queues: &[quern::backend::QueueInfo]) -> quern::model::StateCounts {
    let mut c = quern::model::StateCounts::default();
    for q in queues {
        c.add(&q.counts);
    }
    c
}

pub async fn overview(State(s): State<Arc<AppState>>) -> ApiResult<Json<OverviewDto>> {
    let now = quern::clock::system_now_ms();
    let (queues, workers, alerts, minutes) = tokio::join!(
        s.backend.queue_list(),
        s.backend.worker_list(),
        crate::routes::alerts::list(State(Arc::clone(&s))),
        super::rollup::minutes(&s, now),
    );
    let queues = queues?;
    let oldest = queues
        .iter()
        .filter_map(|q| q.oldest_queued_at.map(|t| (t, q.name.clone())))
        .min();
    Ok(Json(OverviewDto {
        now,
        totals: sum(&queues).into(),
        oldest_queued_at: oldest.as_ref().map(|o| o.0),
        oldest_queue: oldest.map(|o| o.1),
        queues: queues.into_iter().map(Into::into).collect(),
        workers: workers?
            .into_iter()
            .map(|w| WorkerDto::new(w, now))
            .collect(),
        alerts: alerts?.0,
        minutes: minutes?,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// The search (see `search.rs`); empty: every job.
    #[serde(default)]
    pub q: String,
    /// 1 to 200, default 50.
    pub limit: Option<usize>,
    /// The previous answer's `next_cursor`.
    pub cursor: Option<String>,
}

#[derive(Serialize)]
pub struct SearchDto {
    pub jobs: Vec<JobDto>,
    /// Pass as `cursor` for the next page; `null` when there is none.
    pub next_cursor: Option<String>,
    /// How many jobs the store yielded for this answer.
    pub scanned: usize,
    /// The answer stopped at the scan budget before filling the page: go on with the cursor.
    pub partial: bool,
}

fn parse(q: &str) -> ApiResult<Search> {
    Search::parse(q).map_err(ApiError::invalid)
}

fn filter(s: &Search) -> JobFilter {
    JobFilter {
        queue: s.queue.clone(),
        state: s.state,
        kind: s.kind.clone(),
        workflow_id: None,
    }
}

/// Reads matching jobs newest first from `before`, until `want` matched or `budget` jobs
/// were read. Returns the matches, the cursor to go on from, how many were read, and whether
/// the budget cut it short.
async fn scan(
    s: &AppState,
    search: &Search,
    mut before: Option<JobId>,
    want: usize,
    budget: usize,
) -> ApiResult<(Vec<Job>, Option<JobId>, usize, bool)> {
    if let Some(id) = search.id {
        let job = s.backend.job_get(id.into()).await?;
        let jobs: Vec<Job> = job.into_iter().filter(|j| search.matches(j)).collect();
        return Ok((jobs, None, 1, false));
    }
    let mut found = Vec::new();
    let mut scanned = 0;
    loop {
        let page_size = if search.scans() {
            500
        } else {
            want - found.len()
        };
        let page = s
            .backend
            .job_list(ListParams {
                filter: filter(search),
                limit: page_size.max(1),
                before,
            })
            .await?;
        let mut last = None;
        for j in page.jobs {
            scanned += 1;
            last = Some(j.id);
            if search.matches(&j) {
                found.push(j);
                if found.len() == want {
                    return Ok((found, last, scanned, false));
                }
            }
        }
        if page.next.is_none() {
            return Ok((found, None, scanned, false));
        }
        before = last.or(page.next);
        if scanned >= budget {
            return Ok((found, before, scanned, true));
        }
    }
}

/// Job search, newest first, a page at a time.
pub async fn jobs(
    State(s): State<Arc<AppState>>,
    Query(q): Query<SearchQuery>,
) -> ApiResult<Json<SearchDto>> {
    let search = parse(&q.q)?;
    let limit = match q.limit {
        None => 50,
        Some(n @ 1..=200) => n,
        Some(n) => return Err(ApiError::invalid(format!("limit {n} is not 1 to 200"))),
    };
    let before = q.cursor.as_deref().map(parse_job_id).transpose()?;
    let (jobs, next, scanned, partial) = scan(&s, &search, before, limit, SCAN_BUDGET).await?;
    Ok(Json(SearchDto {
        jobs: jobs.iter().map(JobDto::from).collect(),
        next_cursor: next.map(|id| id.to_string()),
        scanned,
        partial,
    }))
}

/// What a bulk action does to each job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BulkAction {
    Cancel,
    Retry,
    Delete,
    Reprioritize,
}

impl BulkAction {
    /// Whether the action applies to a job in `state` (the others are left alone).
    fn applies(self, state: JobState) -> bool {
        match self {
            BulkAction::Cancel => !state.is_terminal(),
            BulkAction::Retry => state.is_failed_terminal(),
            BulkAction::Delete => state.is_terminal(),
            BulkAction::Reprioritize => state.is_waiting(),
        }
    }
}

/// The most jobs one bulk action touches; a search matching more is cut there (and says so).
pub const BULK_MAX: usize = 10_000;
/// The most jobs a bulk action over a search reads to find its targets.
pub const BULK_SCAN: usize = 200_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    pub action: BulkAction,
    /// These jobs; without, every job matching `q`.
    pub ids: Option<Vec<String>>,
    #[serde(default)]
    pub q: String,
    /// For `reprioritize`: 0 (most urgent) to 9.
    pub priority: Option<u8>,
    /// Count only; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Serialize)]
pub struct BulkDto {
    pub dry_run: bool,
    /// Jobs selected (by ids or search).
    pub matched: usize,
    /// Of those, the ones the action applies to (and, without `dry_run`, was applied to).
    pub eligible: usize,
    /// How many were changed (0 on a dry run).
    pub done: usize,
    /// The search matched more than [`BULK_MAX`] or read [`BULK_SCAN`] jobs: only the first were taken.
    pub capped: bool,
    /// The first failure, if any job could not be changed (it changed meanwhile, say).
    pub error: Option<String>,
}

/// A bulk action on a selection or on everything a search matches, with a dry run.
pub async fn bulk(
    State(s): State<Arc<AppState>>,
    Body(req): Body<BulkRequest>,
) -> ApiResult<Json<BulkDto>> {
    let priority = match (req.action, req.priority) {
        (BulkAction::Reprioritize, Some(p)) => Some(
            Priority::new(p)
                .ok_or_else(|| ApiError::invalid(format!("priority {p} is not 0 to 9")))?,
        ),
        (BulkAction::Reprioritize, None) => {
            return Err(ApiError::invalid("reprioritize needs a priority"));
        }
        _ => None,
    };
    let (jobs, capped) = match &req.ids {
        Some(ids) => {
            if ids.len() > BULK_MAX {
                return Err(ApiError::invalid(format!(
                    "at most {BULK_MAX} ids, not {}",
                    ids.len()
                )));
            }
            let ids = ids
                .iter()
                .map(|i| parse_job_id(i))
                .collect::<Result<Vec<_>, _>>()?;
            let found = s.backend.job_get_many(ids.into()).await?;
            (found.into_iter().flatten().collect::<Vec<_>>(), false)
        }
        None => {
            let search = parse(&req.q)?;
            let (jobs, _, _, partial) = scan(&s, &search, None, BULK_MAX, BULK_SCAN).await?;
            let capped = partial || jobs.len() == BULK_MAX;
            (jobs, capped)
        }
    };
    let targets: Vec<JobId> = jobs
        .iter()
        .filter(|j| req.action.applies(j.state))
        .map(|j| j.id)
        .collect();
    let mut out = BulkDto {
        dry_run: req.dry_run,
        matched: jobs.len(),
        eligible: targets.len(),
        done: 0,
        capped,
        error: None,
    };
    if req.dry_run || targets.is_empty() {
        return Ok(Json(out));
    }
    let fail = |e: quern::Error, out: &mut BulkDto| {
        if out.error.is_none() {
            out.error = Some(e.to_string());
        }
    };
    match req.action {
        BulkAction::Cancel => {
            for id in targets {
                match s
                    .client
                    .cancel(id, Some("cancelled from the dashboard".into()))
                    .await
                {
                    Ok(_) => out.done += 1,
                    Err(e) => fail(e, &mut out),
                }
            }
        }
        BulkAction::Reprioritize => {
            let p = priority.unwrap_or_default();
            for id in targets {
                match s.client.reprioritize(id, p).await {
                    Ok(_) => out.done += 1,
                    Err(e) => fail(e, &mut out),
                }
            }
        }
        BulkAction::Retry => {
            for chunk in targets.chunks(1000) {
                match s
                    .backend
                    .job_retry(RetryParams {
                        target: RetryTarget::Ids(chunk.to_vec()),
                        limit: chunk.len(),
                    })
                    .await
                {
                    Ok(moved) => out.done += moved.len(),
                    Err(e) => fail(e, &mut out),
                }
            }
        }
        BulkAction::Delete => {
            for chunk in targets.chunks(1000) {
                match s
                    .backend
                    .job_delete(JobDeleteParams {
                        ids: chunk.to_vec(),
                        dry_run: false,
                    })
                    .await
                {
                    Ok(r) => out.done += usize::try_from(r.deleted).unwrap_or(usize::MAX),
                    Err(e) => fail(e, &mut out),
                }
            }
        }
    }
    Ok(Json(out))
}

/// A workflow for the DAG drawing: its status plus the edges between tasks.
#[derive(Serialize)]
pub struct WorkflowViewDto {
    #[serde(flatten)]
    pub status: crate::dto::WorkflowStatusDto,
    /// `[from, to]`: `to` depends on `from`.
    pub edges: Vec<(String, String)>,
}

pub async fn workflow(
    State(s): State<Arc<AppState>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Json<WorkflowViewDto>> {
    let st = quern::workflow::status(&*s.backend, &id).await?;
    let edges = st
        .plan
        .tasks()
        .iter()
        .flat_map(|t| t.depends_on.iter().map(|d| (d.clone(), t.id.clone())))
        .collect();
    Ok(Json(WorkflowViewDto {
        status: st.into(),
        edges,
    }))
}
