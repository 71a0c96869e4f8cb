//! The HTML the server renders itself: the login page and the shell the script fills in,
//! and the embedded assets.

use std::sync::Arc;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::page_headers;
use super::session::{self, Session};
use crate::config::Role;
use crate::state::AppState;

const SCRIPT: &str = include_str!("../../assets/app.js");
const STYLE: &str = include_str!("../../assets/app.css");

/// Escapes text for HTML.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn asset(body: &'static str, mime: &'static str) -> Response {
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

fn now() -> i64 {
    quern::clock::system_now_ms()
}

/// The shell: a session (or, with no tokens configured, a fresh `admin` session for the
/// loopback developer) gets the page; anyone else goes to `/login`.
pub async fn shell(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let existing = session::cookie(&headers, session::COOKIE)
        .and_then(|v| s.sessions.check(v, now()).map(|sess| (v.to_string(), sess)));
    let (cookie, sess, fresh) = match existing {
        Some((c, sess)) => (c, sess, false),
        None if s.config.tokens.is_empty() => {
            let sess = Session {
                name: "local".into(),
                role: Role::Admin,
                expires_at: now() + session::LIFETIME_MS,
            };
            (s.sessions.issue(&sess), sess, true)
        }
        None => return Redirect::to("/login").into_response(),
    };
    let csrf = s.sessions.csrf(&cookie);
    let open = s.config.tokens.is_empty();
    let body = format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="quern-csrf" content="{csrf}">
<meta name="quern-role" content="{role}">
<meta name="quern-user" content="{user}">
<title>Quern</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <span class="brand">Quern</span>
  <nav aria-label="Sections" id="nav"></nav>
  <span class="who">{user} <span class="role">({role})</span>
  {logout}</span>
</header>
<p id="live" class="live" role="status" aria-live="polite"></p>
<main id="main" tabindex="-1"><p>Loading…</p></main>
<script src="/assets/app.js"></script>
</body>
</html>"##,
        role = sess.role.as_str(),
        user = esc(&sess.name),
        logout = if open {
            String::new()
        } else {
            format!(
                r#"<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Log out</button></form>"#
            )
        },
    );
    let mut r = Html(body).into_response();
    page_headers(&mut r);
    if fresh && let Ok(v) = HeaderValue::from_str(&session::set_cookie(&cookie)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Quern</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
</head>
<body class="login">
<main id="main">
<h1>Quern</h1>
<form method="post" action="/login" class="card">
  {error}
  <label for="token">API token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
  <p class="hint">A token from <code>[[server.tokens]]</code>. A <code>read</code> token sees everything and changes nothing.</p>
  <button type="submit">Log in</button>
</form>
</main>
</body>
</html>"#
    );
    let mut r = (status, Html(body)).into_response();
    page_headers(&mut r);
    r
}

pub async fn login_form(State(s): State<Arc<AppState>>) -> Response {
    if s.config.tokens.is_empty() {
        return Redirect::to("/").into_response();
    }
    login_page(StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    token: String,
}

/// Checks the pasted token; a good one gets a session cookie carrying its name and role.
pub async fn login(State(s): State<Arc<AppState>>, Form(f): Form<LoginForm>) -> Response {
    let Some(token) = crate::auth::find(&s.config.tokens, f.token.trim()) else {
        tracing::info!(target: "quern_audit", "dashboard login refused");
        return login_page(StatusCode::UNAUTHORIZED, Some("That token is not valid."));
    };
    if token.role == Role::Work {
        return login_page(
            StatusCode::FORBIDDEN,
            Some("A work token is for workers; the dashboard needs read, operate or admin."),
        );
    }
    let sess = Session {
        name: token.name.clone(),
        role: token.role,
        expires_at: now() + session::LIFETIME_MS,
    };
    tracing::info!(target: "quern_audit", token = %sess.name, "dashboard login");
    let cookie = s.sessions.issue(&sess);
    let mut r = Redirect::to("/").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&cookie)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: String,
}

/// Ends the session (the form carries the session's CSRF token).
pub async fn logout(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    let ok =
        session::cookie(&headers, session::COOKIE).is_some_and(|c| s.sessions.csrf_ok(c, &f.csrf));
    if !ok {
        return (
            StatusCode::FORBIDDEN,
            "the logout form's CSRF token is wrong",
        )
            .into_response();
    }
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
