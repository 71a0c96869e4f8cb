//! The server's one error type and the one place where errors become HTTP responses.
//!
//! Every error answer has the body `{"error":{"code":"…","message":"…"}}` (plus `details`
//! for a workflow file's validation problems); the status follows from the error, in
//! [`ApiError::from`] for core errors and in the constructors for the server's own.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer: status, stable code, one line of text.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra structured detail (a workflow file's problems, each with its task and line).
    pub details: Option<serde_json::Value>,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `job_not_found`, `lease_lost`, `invalid_request`, …
    pub code: String,
    /// One line for a person.
    pub message: String,
    /// Structured detail, when there is any (a workflow file's validation problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// 400: the request could not be read (malformed JSON, a bad query string).
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: the request was read but asks for something invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    /// 404 for a route or resource that does not exist.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409: the resource is not in a state that allows this.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

impl From<quern::Error> for ApiError {
    fn from(e: quern::Error) -> Self {
        use quern::Error as E;
        let status = match &e {
            E::LeaseLost { .. } | E::Conflict(_) | E::InvalidTransition { .. } => {
                StatusCode::CONFLICT
            }
            E::JobNotFound(_)
            | E::WorkflowNotFound(_)
            | E::QueueNotFound(_)
            | E::ScheduleNotFound(_) => StatusCode::NOT_FOUND,
            E::InvalidJob { .. } | E::InvalidArgument(_) | E::Codec(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            E::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            E::StoreFull { .. } => StatusCode::INSUFFICIENT_STORAGE,
            E::Unavailable(_) | E::Shutdown | E::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(code = e.code(), error = %e, "request failed");
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_statuses() {
        let id = quern::JobId::new();
        let cases = [
            (quern::Error::LeaseLost { job_id: id }, 409, "lease_lost"),
            (quern::Error::JobNotFound(id), 404, "job_not_found"),
            (
                quern::Error::ScheduleNotFound("s".into()),
                404,
                "schedule_not_found",
            ),
            (
                quern::Error::QueueNotFound("q".into()),
                404,
                "queue_not_found",
            ),
            (
                quern::Error::InvalidTransition {
                    id,
                    from: quern::JobState::Running,
                    action: "retry",
                },
                409,
                "invalid_transition",
            ),
            (
                quern::Error::PayloadTooLarge { size: 2, limit: 1 },
                413,
                "payload_too_large",
            ),
            (
                quern::Error::InvalidArgument("x".into()),
                422,
                "invalid_argument",
            ),
            (quern::Error::Unavailable("down".into()), 503, "unavailable"),
        ];
        for (e, status, code) in cases {
            let a = ApiError::from(e);
            assert_eq!((a.status.as_u16(), a.code), (status, code));
        }
    }
}
