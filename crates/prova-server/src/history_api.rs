//! A test's history and two jobs compared, under `/api/v1` (behind the
//! token): the answers of `prova history --json` and `prova diff --json`,
//! from the same code (`prova_results::history`).
//!
//! - `GET /history?test=TEXT&job_name=NAME&last=N`: every test or JUnit
//!   case named TEXT (exact matches win, else those containing it) over
//!   the newest N jobs of the name. Nothing matching is a 200 with no
//!   `Histories` and, in `Known`, what the newest jobs do have.
//! - `GET /compare/{a}/{b}`: job b compared with job a.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use prova_core::JobId;
use prova_results::history::{
    Comparison, DEFAULT_LAST, HistoryAnswer, HistoryError, HistoryRequest, load_comparison,
    load_history,
};
use serde::Deserialize;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, ApiQuery};

/// The routes, relative to `/api/v1`.
pub fn routes() -> crate::api::Routes {
    crate::api::Routes::default()
        .route("/history", get(history))
        .route("/compare/{a}/{b}", get(compare))
}

/// The query of `GET /history`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// A ConTest test name, a JUnit case name or `classname.name`, or part
    /// of one (case-sensitive).
    pub test: String,
    /// Only jobs of this name; without it, every name the test turns up in
    /// among the newest `last` jobs.
    pub job_name: Option<String>,
    /// Newest jobs per name: 1 to 10000, default 30.
    pub last: Option<u32>,
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Store(e) => e.into(),
            HistoryError::JobNotFound(_) => ApiError::NotFound(e.to_string()),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

/// A test's history.
///
/// Every test or JUnit case named `test` (exact matches win, else those
/// containing it) over the newest `last` jobs of a name, as `prova history
/// --json` answers.
#[utoipa::path(get, path = "/api/v1/history", operation_id = "getHistory", tag = "history",
    params(HistoryParams),
    responses(
        (status = 200, body = HistoryAnswer, description = "The histories found, newest job first in each; none (and Known listing what exists) when nothing matched"),
        (status = 400, body = ErrorBody, description = "An empty or too long test, or last out of range")))]
pub async fn history(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HistoryParams>,
) -> Result<Json<HistoryAnswer>, ApiError> {
    let req = HistoryRequest::new(q.test, q.job_name, q.last.unwrap_or(DEFAULT_LAST));
    Ok(Json(load_history(state.store.as_ref(), &req).await?))
}

/// Two jobs compared.
///
/// Job b compared with job a, as `prova diff --json` answers.
#[utoipa::path(get, path = "/api/v1/compare/{a}/{b}", operation_id = "compareJobs", tag = "history",
    params(("a" = i64, Path, description = "The base job (before)"), ("b" = i64, Path, description = "The job compared with it (after)")),
    responses(
        (status = 200, body = Comparison, description = "Tests and JUnit cases newly failing, newly passing, still failing, added, removed, slower and faster (durations: at least 1 s and 25% together)"),
        (status = 400, body = ErrorBody, description = "A job id that is not a number"),
        (status = 404, body = ErrorBody, description = "A job is not in the store")))]
pub async fn compare(
    State(state): State<AppState>,
    ApiPath((a, b)): ApiPath<(JobId, JobId)>,
) -> Result<Json<Comparison>, ApiError> {
    Ok(Json(load_comparison(state.store.as_ref(), a, b).await?))
}
