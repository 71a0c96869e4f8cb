//! The router: every route, its access class, the JSON fallbacks, and the OpenAPI document
//! generated from the handlers' annotations (`utoipa`), served at `/v1/openapi.json`.

pub mod alerts;
pub mod batch;
pub mod dlq;
pub mod events;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod protocol;
pub mod queues;
pub mod schedules;
pub mod stats;
pub mod workflows;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApiVersion, RefOr};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::Access;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Quern",
        description = "Quern's REST API and HTTP worker protocol. See docs/api.md and docs/worker-protocol.md.",
    ),
    components(schemas(ErrorBody)),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// What every operation shares: the bearer scheme and the error answers any of them can
/// give (declared once here so no route forgets one).
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let common: &[(&str, &str)] = &[
            ("400", "Malformed JSON or query string"),
            ("401", "Missing or unknown token"),
            ("403", "The token's role does not allow this"),
            ("413", "The body is over the limit"),
            ("415", "The body is not JSON"),
            ("422", "Invalid input; nothing changed"),
            ("503", "The store is unavailable"),
        ];
        for (path, item) in doc.paths.paths.iter_mut() {
            let public = path == "/healthz" || path == "/readyz";
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                for (status, what) in common {
                    if public && *status != "503" {
                        continue;
                    }
                    op.responses
                        .responses
                        .entry((*status).to_string())
                        .or_insert_with(|| {
                            RefOr::T(
                                utoipa::openapi::ResponseBuilder::new()
                                    .description(*what)
                                    .content(
                                        "application/json",
                                        utoipa::openapi::ContentBuilder::new()
                                            .schema(Some(utoipa::openapi::Ref::from_schema_name(
                                                "ErrorBody",
                                            )))
                                            .build(),
                                    )
                                    .build(),
                            )
                        });
                }
            }
        }
    }
}

/// OpenAPI links from what creates a job or a workflow to what reads or changes it, so
/// clients (and schemathesis's stateful phase) can follow an id from one call to the next.
fn add_links(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    let groups: [(&str, &str, &[&str]); 2] = [
        (
            "/v1/jobs",
            "201",
            &["jobs_get", "jobs_cancel", "jobs_retry", "jobs_reprioritize"],
        ),
        (
            "/v1/workflows",
            "201",
            &[
                "workflows_get",
                "workflows_status",
                "workflows_graph",
                "workflows_cancel",
                "workflows_retry",
            ],
        ),
    ];
    for (path, status, targets) in groups {
        let Some(RefOr::T(response)) = doc
            .paths
            .paths
            .get_mut(path)
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.responses.responses.get_mut(status))
        else {
            continue;
        };
        for target in targets {
            response.links.insert(
                (*target).to_string(),
                RefOr::T(
                    LinkBuilder::new()
                        .operation_id(*target)
                        .parameter("id", "$response.body#/id")
                        .build(),
                ),
            );
        }
    }
}

/// The access a route needs: the worker protocol `work`, other `GET`s `read`, other changes
/// `operate`.
fn classify(method: &Method, path: &str) -> Access {
    const WORK: [&str; 9] = [
        "/v1/lease",
        "/v1/batch/heartbeat",
        "/v1/batch/complete",
        "/v1/batch/fail",
        "/v1/batch/release",
        "/v1/jobs/{id}/heartbeat",
        "/v1/jobs/{id}/complete",
        "/v1/jobs/{id}/fail",
        "/v1/jobs/{id}/release",
    ];
    if WORK.contains(&path) || (path == "/v1/workers" && method == Method::POST) {
        Access::Work
    } else {
        crate::auth::rest_access(method)
    }
}

async fn authorize(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let access = classify(req.method(), &path);
    crate::auth::check(&s, access, req, next).await
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method",
    )
}

/// The API's routes and the OpenAPI document describing them.
pub fn api(state: Arc<AppState>) -> (Router, utoipa::openapi::OpenApi) {
    let v1 = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(jobs::enqueue, jobs::list))
        .routes(routes!(jobs::batch))
        .routes(routes!(jobs::get))
        .routes(routes!(jobs::logs))
        .routes(routes!(jobs::cancel))
        .routes(routes!(jobs::retry))
        .routes(routes!(jobs::reprioritize))
        .routes(routes!(events::timeline))
        .routes(routes!(events::stream))
        .routes(routes!(queues::list))
        .routes(routes!(queues::get))
        .routes(routes!(queues::pause))
        .routes(routes!(queues::resume))
        .routes(routes!(schedules::settings_get, schedules::settings_patch))
        .routes(routes!(schedules::list))
        .routes(routes!(schedules::get, schedules::put, schedules::delete))
        .routes(routes!(schedules::pause))
        .routes(routes!(schedules::resume))
        .routes(routes!(schedules::trigger))
        .routes(routes!(queues::dlq_list))
        .routes(routes!(queues::dlq_replay))
        .routes(routes!(dlq::delete))
        .routes(routes!(alerts::list))
        .routes(routes!(queues::workers, protocol::register))
        .routes(routes!(workflows::submit, workflows::list))
        .routes(routes!(workflows::get))
        .routes(routes!(workflows::status))
        .routes(routes!(workflows::graph))
        .routes(routes!(workflows::cancel))
        .routes(routes!(workflows::retry))
        .routes(routes!(protocol::lease))
        .routes(routes!(protocol::heartbeat))
        .routes(routes!(protocol::complete))
        .routes(routes!(protocol::fail))
        .routes(routes!(protocol::release))
        .routes(routes!(batch::heartbeat))
        .routes(routes!(batch::complete))
        .routes(routes!(batch::fail))
        .routes(routes!(batch::release))
        .routes(routes!(stats::minutes))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    let public = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz));
    let (router, mut doc) = v1.merge(public).with_state(state.clone()).split_for_parts();
    utoipa::Modify::modify(&Conventions, &mut doc);
    add_links(&mut doc);
    doc.openapi = OpenApiVersion::Version31;
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    (router, doc)
}

/// The whole application: the API, `/v1/openapi.json`, the JSON fallbacks, the body limit
/// and a panic guard.
pub fn app(state: Arc<AppState>) -> Router {
    let limit = state.config.body_limit;
    let scrape = Router::new()
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::authorize,
        ))
        .with_state(state.clone());
    let (router, doc) = api(Arc::clone(&state));
    let doc = Arc::new(doc);
    router
        .merge(scrape)
        .merge(crate::dashboard::router(state))
        .route(
            "/v1/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&doc);
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(crate::dashboard::timing))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server failed while handling this request",
                )
                .into_response()
            },
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_protocol_needs_work_and_rest_reads_need_read() {
        assert_eq!(classify(&Method::POST, "/v1/lease"), Access::Work);
        assert_eq!(classify(&Method::POST, "/v1/workers"), Access::Work);
        assert_eq!(classify(&Method::GET, "/v1/workers"), Access::Read);
        assert_eq!(
            classify(&Method::POST, "/v1/jobs/{id}/complete"),
            Access::Work
        );
        assert_eq!(
            classify(&Method::POST, "/v1/jobs/{id}/cancel"),
            Access::Operate
        );
        assert_eq!(classify(&Method::GET, "/v1/jobs/{id}"), Access::Read);
    }
}
