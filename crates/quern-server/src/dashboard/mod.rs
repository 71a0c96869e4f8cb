//! The dashboard at `/`: a login page, one HTML shell, and plain JavaScript + CSS embedded
//! in the binary (`assets/`, no build step, nothing fetched from the network).
//!
//! The page's script calls the REST API (`/v1`) with the session cookie (see
//! [`session`]) and a few routes of its own under `/ui/api/` that the API does not have:
//! the overview in one answer, job search with qualifiers, bulk actions on a search
//! (`api.rs`, `search.rs`). Those go through the same authorization as `/v1` (`GET` needs
//! `read`, a change `operate`), so a `read` session's forged change is refused with 403.
//!
//! Every answer carries a `Server-Timing` header with the time spent in the server.

mod api;
mod pages;
mod rollup;
mod search;
pub mod session;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::state::AppState;
use session::{CSRF_HEADER, Session};

/// The session a request's cookie carries: `None` without a (valid) cookie, `Err` with the
/// reason when the request is a change without the session's CSRF token.
pub(crate) fn cookie_session(s: &AppState, req: &Request) -> Option<Result<Session, String>> {
    let value = session::cookie(req.headers(), session::COOKIE)?;
    let session = s.sessions.check(value, quern::clock::system_now_ms())?;
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return Some(Ok(session));
    }
    let presented = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if s.sessions.csrf_ok(value, presented) {
        Some(Ok(session))
    } else {
        Some(Err(
            "a change made with a dashboard session needs its CSRF token in X-Quern-CSRF".into(),
        ))
    }
}

async fn authorize(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let access = crate::auth::rest_access(req.method());
    crate::auth::check(&s, access, req, next).await
}

/// Adds `Server-Timing: app;dur=<ms>` to every answer.
pub async fn timing(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let mut response = next.run(req).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.2}")) {
        response.headers_mut().insert("server-timing", v);
    }
    response
}

/// The dashboard's routes: pages and assets (open; the shell itself sends a visitor without
/// a session to `/login`) and `/ui/api/` (authorized like `/v1`).
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/ui/api/overview", get(api::overview))
        .route("/ui/api/jobs", get(api::jobs))
        .route("/ui/api/jobs/bulk", post(api::bulk))
        .route("/ui/api/workflows/{id}", get(api::workflow))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/", get(pages::shell))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/assets/app.js", get(pages::script))
        .route("/assets/app.css", get(pages::style))
        .merge(api)
        .with_state(state)
}

/// Headers every page gets: no framing by other sites, no sniffing, scripts only from here.
pub(crate) fn page_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
