//! One error type for the API: bad input gets a 4xx with a message; an
//! internal fault gets an opaque 500 (the details go to the log with an id
//! the client can quote).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::manager::ManagerError;

/// The body of every error answer of `/api/v1` (4xx and 5xx, the
/// extractors' rejections, an unknown route and a missing token included).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    #[serde(rename = "Error")]
    pub error: String,
    /// An invalid descriptor's errors, one a line, each with file, field
    /// path, line and column.
    #[serde(rename = "Errors", skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<String>>,
}

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Unavailable(String),
    Invalid(prova_core::diag::InvalidDescriptor),
    /// A path, query or body that did not parse; the status is the
    /// extractor's (400, 413, 415).
    Rejected {
        status: StatusCode,
        message: String,
    },
    Internal(String),
}

impl From<ManagerError> for ApiError {
    fn from(e: ManagerError) -> Self {
        match e {
            ManagerError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ManagerError::WrongState { .. } | ManagerError::NothingFailed(_) => {
                ApiError::Conflict(e.to_string())
            }
            ManagerError::Invalid(d) => ApiError::Invalid(d),
            ManagerError::Stopping => ApiError::Unavailable(e.to_string()),
            ManagerError::Store(e) => ApiError::Internal(format!("store: {e:?}")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<prova_store::StoreError> for ApiError {
    fn from(e: prova_store::StoreError) -> Self {
        ApiError::Internal(format!("store: {e:?}"))
    }
}

impl ApiError {
    /// Status and message as a client may see them.
    pub fn public(&self) -> (StatusCode, String) {
        match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m.clone()),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m.clone()),
            ApiError::Invalid(d) => (StatusCode::UNPROCESSABLE_ENTITY, d.to_string()),
            ApiError::Rejected { status, message } => (*status, message.clone()),
            ApiError::Internal(detail) => {
                let id = jiff::Timestamp::now().as_microsecond();
                tracing::error!(error_id = id, "internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal error (id {id}); see the server log"),
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let errors: Vec<String> = match &self {
            ApiError::Invalid(d) => d.errors.iter().map(|e| e.to_string()).collect(),
            _ => Vec::new(),
        };
        let (status, message) = self.public();
        let body = ErrorBody {
            error: message,
            errors: (!errors.is_empty()).then_some(errors),
        };
        (status, Json(body)).into_response()
    }
}

/// Wraps `router` so that a panic in any handler or middleware answers the
/// opaque `500 {Error}` (the panic message goes to the log under the id)
/// and the server goes on serving.
pub fn catch_panics<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router.layer(tower_http::catch_panic::CatchPanicLayer::custom(
        |panic: Box<dyn std::any::Any + Send + 'static>| {
            let message = crate::validate::panic_message(&*panic);
            ApiError::Internal(format!("a request handler panicked: {message}")).into_response()
        },
    ))
}
