//! Request extractors whose refusals are the server's JSON errors.
//!
//! - [`Body`]: a JSON body. Too large → 413 (the limit is `DefaultBodyLimit`, set from
//!   [`ServerConfig::body_limit`](crate::ServerConfig::body_limit)); not JSON → 415; not
//!   well-formed JSON → 400 `malformed_json`; well-formed but wrong (an unknown or missing
//!   field, a wrong type) → 422 `invalid_request`. An empty body reads as `{}`, so a request
//!   whose fields are all optional may send none.
//! - [`Query`]: a query string; any problem (an unknown parameter, a bad value) → 400
//!   `invalid_query`.
//! - [`parse_job_id`]: a job id from the path; one that is not an id is a job that does not
//!   exist (404).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body (see the module docs for how it is refused).
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let essence = v.split(';').next().unwrap_or("").trim();
                essence.eq_ignore_ascii_case("application/json")
                    || (essence.starts_with("application/") && essence.ends_with("+json"))
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is over the server's limit (server.body_limit)",
                )
            } else {
                ApiError::bad_request("unreadable_body", format!("cannot read the body: {e}"))
            }
        })?;
        if bytes.is_empty() {
            return parse(b"{}").map(Body);
        }
        if json_type != Some(true) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        parse(&bytes).map(Body)
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::invalid(e.to_string()),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
            }
        }
    })
}

/// A query string (see the module docs).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_from_str(q).map(Query)
    }
}

fn serde_urlencoded_from_str<T: DeserializeOwned>(q: &str) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{q}")
            .parse()
            .map_err(|_| ApiError::bad_request("invalid_query", "the query string is malformed"))?,
    )
    .map(|axum::extract::Query(t)| t)
    .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// A job id from the path; text that is no id names no job (404).
pub fn parse_job_id(s: &str) -> Result<quern::JobId, ApiError> {
    s.parse()
        .map_err(|_| ApiError::not_found("job_not_found", format!("job {s:?} not found")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        a: Option<u32>,
    }

    async fn refusal(content_type: Option<&str>, body: Vec<u8>) -> Option<(u16, &'static str)> {
        let mut b = Request::builder().method("POST").uri("/");
        if let Some(ct) = content_type {
            b = b.header(CONTENT_TYPE, ct);
        }
        let req = b.body(axum::body::Body::from(body)).unwrap();
        match Body::<Req>::from_request(req, &()).await {
            Ok(_) => None,
            Err(e) => Some((e.status.as_u16(), e.code)),
        }
    }

    #[tokio::test]
    async fn bodies_are_refused_with_the_right_status() {
        let json = Some("application/json");
        assert_eq!(refusal(json, br#"{"a":1}"#.to_vec()).await, None);
        assert_eq!(
            refusal(Some("application/json; charset=utf-8"), br#"{}"#.to_vec()).await,
            None
        );
        assert_eq!(
            refusal(None, Vec::new()).await,
            None,
            "an empty body reads as {{}}"
        );
        assert_eq!(
            refusal(json, br#"{"a":"#.to_vec()).await,
            Some((400, "malformed_json"))
        );
        assert_eq!(
            refusal(json, br#"{"b":1}"#.to_vec()).await,
            Some((422, "invalid_request"))
        );
        assert_eq!(
            refusal(json, br#"{"a":"x"}"#.to_vec()).await,
            Some((422, "invalid_request"))
        );
        assert_eq!(
            refusal(Some("text/plain"), br#"{"a":1}"#.to_vec()).await,
            Some((415, "unsupported_media_type"))
        );
        // axum's default limit (2 MB) applies when no DefaultBodyLimit layer sets another.
        let big = vec![b' '; 3 * 1024 * 1024];
        assert_eq!(refusal(json, big).await, Some((413, "body_too_large")));
    }

    #[test]
    fn a_path_id_that_is_no_uuid_is_a_missing_job() {
        let e = parse_job_id("nope").unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (404, "job_not_found"));
        assert!(parse_job_id("01900000-0000-7000-8000-000000000000").is_ok());
    }
}
