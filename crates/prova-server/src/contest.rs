//! ConTest's HTTP API, at the root paths and with its shapes, so ConTest's
//! client (`contestcli`) and scripts work unchanged: form-encoded POSTs to
//! `/start` (jobDesc, requestor), `/status`, `/stop`, `/retry` (jobID),
//! `/list` (states, tags: comma-separated), `/version`; answers
//! `{ServerID, Type, Data, Error}`; failures are HTTP 400 `{Msg}`, as
//! ConTest answers them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use prova_core::{JobId, JobState};
use prova_store::JobFilter;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// ConTest's API version that prova speaks.
pub const CONTEST_API_VERSION: u32 = 5;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/start", post(start))
        .route("/status", post(status))
        .route("/stop", post(stop))
        .route("/retry", post(retry))
        .route("/list", post(list))
        .route("/version", post(version))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ContestForm {
    #[serde(rename = "jobID")]
    job_id: String,
    #[serde(rename = "jobDesc")]
    job_desc: String,
    requestor: String,
    states: String,
    tags: String,
}

fn reply(state: &AppState, kind: &str, data: Value) -> Response {
    Json(json!({
        "ServerID": state.manager.server_id(),
        "Type": kind,
        "Data": data,
        "Error": Value::Null,
    }))
    .into_response()
}

/// ConTest's failure shape: 400 `{Msg}` (an internal fault stays opaque).
fn fail(verb: &str, e: impl Into<ApiError>) -> Response {
    let e = e.into();
    let (status, message) = e.public();
    let status = if status == StatusCode::INTERNAL_SERVER_ERROR {
        status
    } else {
        StatusCode::BAD_REQUEST
    };
    (
        status,
        Json(json!({ "Msg": format!("{verb} failed: {message}") })),
    )
        .into_response()
}

fn job_id(s: &str) -> Result<JobId, ApiError> {
    if s.trim().is_empty() {
        return Err(ApiError::BadRequest("job ID cannot be empty".into()));
    }
    s.trim()
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("invalid job ID {s:?}")))
}

async fn start(State(state): State<AppState>, Form(f): Form<ContestForm>) -> Response {
    if f.job_desc.trim().is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "Msg": "Missing job description" })),
        )
            .into_response();
    }
    match state.manager.submit(&f.job_desc, &f.requestor).await {
        Ok(id) => reply(&state, "ResponseTypeStart", json!({ "JobID": id })),
        Err(e) => fail("Start", e),
    }
}

async fn status(State(state): State<AppState>, Form(f): Form<ContestForm>) -> Response {
    let id = match job_id(&f.job_id) {
        Ok(id) => id,
        Err(e) => return fail("Status", e),
    };
    match prova_engine::status::load_status(&*state.store, id).await {
        Ok(Some(st)) => {
            let mut v = serde_json::to_value(&st).unwrap_or_default();
            // ConTest reports the state by its event name.
            v["State"] = st.state.map(|s| s.event_name()).into();
            reply(&state, "ResponseTypeStatus", json!({ "Status": v }))
        }
        Ok(None) => fail("Status", ApiError::NotFound(format!("job {id} not found"))),
        Err(e) => fail("Status", e),
    }
}

async fn stop(State(state): State<AppState>, Form(f): Form<ContestForm>) -> Response {
    let id = match job_id(&f.job_id) {
        Ok(id) => id,
        Err(e) => return fail("Stop", e),
    };
    match state.manager.cancel(id, &f.requestor).await {
        Ok(()) => reply(&state, "ResponseTypeStop", json!({})),
        Err(e) => fail("Stop", e),
    }
}

async fn retry(State(state): State<AppState>, Form(f): Form<ContestForm>) -> Response {
    let id = match job_id(&f.job_id) {
        Ok(id) => id,
        Err(e) => return fail("Retry", e),
    };
    match state.manager.retry(id, &f.requestor).await {
        Ok(new) => reply(
            &state,
            "ResponseTypeRetry",
            json!({ "JobID": new, "RetryOf": id }),
        ),
        Err(e) => fail("Retry", e),
    }
}

async fn list(State(state): State<AppState>, Form(f): Form<ContestForm>) -> Response {
    let mut states = Vec::new();
    for s in f.states.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match JobState::parse(s) {
            Some(st) => states.push(st),
            None => {
                return fail(
                    "List",
                    ApiError::BadRequest(format!("invalid job state {s:?}")),
                );
            }
        }
    }
    let tags = f
        .tags
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    match state
        .store
        .list_jobs(&JobFilter {
            states,
            tags,
            ..Default::default()
        })
        .await
    {
        Ok(jobs) => {
            let mut ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            ids.sort_unstable();
            reply(&state, "ResponseTypeList", json!({ "JobIDs": ids }))
        }
        Err(e) => fail("List", e),
    }
}

async fn version(State(state): State<AppState>) -> Response {
    reply(
        &state,
        "ResponseTypeVersion",
        json!({ "Version": CONTEST_API_VERSION }),
    )
}
