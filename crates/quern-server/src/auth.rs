//! Bearer tokens and roles.
//!
//! [`check`] lets a request through when its token allows the [`Access`] its route needs (`routes::classify`): the worker
//! protocol needs `work`, every other `GET` `read`, every other change `operate`. With no
//! token configured every request is let through (the CLI refuses to start that way on a
//! non-loopback address). A request without a bearer token may carry the dashboard's session
//! cookie instead (`dashboard::session`); a change made that way also needs the session's
//! CSRF header. Tokens are compared in constant time, and neither a token nor the
//! `Authorization` header is ever logged: a refusal logs the token's name at most.
//!
//! The audit log: every change (a request other than `GET` / `HEAD`) and every refusal is
//! logged on the `quern_audit` target (info) with the token's name, the peer address, the
//! method, the path and the status.

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::{Access, Role, Token};
use crate::error::ApiError;
use crate::state::AppState;

/// Whether the configured secret `a` equals the presented `b`, in time that depends only on
/// the length of `a` (never on where they differ, nor on how long `b` is).
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for (i, x) in a.iter().enumerate() {
        diff |= x ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// The configured token matching `presented`, comparing every token in constant time.
pub(crate) fn find<'a>(tokens: &'a [Token], presented: &str) -> Option<&'a Token> {
    let mut found = None;
    for t in tokens {
        if same(t.token.as_bytes(), presented.as_bytes()) && found.is_none() {
            found = Some(t);
        }
    }
    found
}

/// What a request of this method needs on a REST route.
pub fn rest_access(method: &Method) -> Access {
    if method == Method::GET || method == Method::HEAD {
        Access::Read
    } else {
        Access::Operate
    }
}

/// Lets the request through if its token's role allows `access`, else answers 401 (no or
/// unknown token) or 403 (wrong role).
pub async fn check(state: &AppState, access: Access, req: Request, next: Next) -> Response {
    let tokens = &state.config.tokens;
    if tokens.is_empty() {
        return audited(None, req, next).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    let Some(presented) = presented else {
        // No bearer token: a dashboard session cookie (with its CSRF header on a change).
        return match crate::dashboard::cookie_session(state, &req) {
            Some(Ok(session)) => allow(&session.name, session.role, access, req, next).await,
            Some(Err(why)) => {
                refused(None, &req, StatusCode::FORBIDDEN);
                ApiError::new(StatusCode::FORBIDDEN, "csrf", why).into_response()
            }
            None => {
                refused(None, &req, StatusCode::UNAUTHORIZED);
                unauthorized("send a token as Authorization: Bearer <token>")
            }
        };
    };
    let Some(token) = find(tokens, presented) else {
        refused(None, &req, StatusCode::UNAUTHORIZED);
        return unauthorized("the token is not valid");
    };
    allow(&token.name, token.role, access, req, next).await
}

/// The token `name` with `role` is known: lets the request through if the role allows
/// `access`, else answers 403.
async fn allow(name: &str, role: Role, access: Access, req: Request, next: Next) -> Response {
    if !role.allows(access) {
        refused(Some(name), &req, StatusCode::FORBIDDEN);
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token {:?} has role {}, which may not {}",
                name,
                role.as_str(),
                match access {
                    Access::Read => "read",
                    Access::Operate => "make changes",
                    Access::Work => "use the worker protocol",
                }
            ),
        )
        .into_response();
    }
    audited(Some(name), req, next).await
}

fn peer(req: &Request) -> String {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default()
}

/// Logs a refused request on the `quern_audit` target (never the presented secret).
fn refused(token: Option<&str>, req: &Request, status: StatusCode) {
    tracing::info!(
        target: "quern_audit",
        token = token.unwrap_or("-"),
        peer = %peer(req),
        method = %req.method(),
        path = %req.uri().path(),
        status = status.as_u16(),
        "request refused"
    );
}

/// Runs the request; a change (anything but `GET` / `HEAD`) is logged on the `quern_audit`
/// target with its outcome, the token's name and the peer address.
async fn audited(token: Option<&str>, req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let peer = peer(&req);
    // Recorded on the job events the change appends (`quern::model::with_actor`).
    let actor = match token {
        Some(t) => format!("{t}@{peer}"),
        None => peer.clone(),
    };
    let response = quern::model::with_actor(Some(actor), next.run(req)).await;
    tracing::info!(
        target: "quern_audit",
        token = token.unwrap_or("-"),
        peer = %peer,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        "request"
    );
    response
}

fn unauthorized(message: &str) -> Response {
    let mut r = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;

    #[test]
    fn tokens_match_exactly() {
        let t = |s: &str| Token {
            name: s.into(),
            role: Role::Read,
            token: s.into(),
        };
        let tokens = [t("alpha-secret"), t("beta-secret")];
        assert_eq!(
            find(&tokens, "beta-secret").map(|t| t.name.as_str()),
            Some("beta-secret")
        );
        for wrong in ["", "alpha", "alpha-secret2", "alpha-secreT", "beta-secre"] {
            assert!(find(&tokens, wrong).is_none(), "{wrong:?}");
        }
    }
}
