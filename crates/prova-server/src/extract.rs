//! Extractors whose rejections answer with the API's JSON error body
//! (`{Error}`) instead of axum's plain text: a job id that is not a number,
//! a `?limit=x`, a body that is not UTF-8 or is too large.

use axum::extract::rejection::{PathRejection, QueryRejection, StringRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::response::IntoResponse;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// [`Path`] with JSON rejections.
pub struct ApiPath<T>(pub T);

/// [`Query`] with JSON rejections.
pub struct ApiQuery<T>(pub T);

/// A UTF-8 body with JSON rejections (the status stays axum's: 400, 413).
pub struct ApiBody(pub String);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(r) => Err(rejected("path", r)),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(r) => Err(rejected("query", r)),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for ApiBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match String::from_request(req, state).await {
            Ok(body) => Ok(ApiBody(body)),
            Err(r) => Err(rejected("body", r)),
        }
    }
}

/// Rejections that carry a status and a text: Path, Query and String's.
trait Rejection: IntoResponse {
    fn status(&self) -> axum::http::StatusCode;
    fn body_text(&self) -> String;
}

macro_rules! rejection {
    ($t:ty) => {
        impl Rejection for $t {
            fn status(&self) -> axum::http::StatusCode {
                <$t>::status(self)
            }
            fn body_text(&self) -> String {
                <$t>::body_text(self)
            }
        }
    };
}
rejection!(PathRejection);
rejection!(QueryRejection);
rejection!(StringRejection);

fn rejected(part: &'static str, r: impl Rejection) -> ApiError {
    let status = r.status();
    if status.is_server_error() {
        // A route whose extractor does not fit its path: our bug.
        return ApiError::Internal(format!("{part} extractor: {}", r.body_text()));
    }
    ApiError::Rejected {
        status,
        message: format!("invalid {part}: {}", r.body_text()),
    }
}
