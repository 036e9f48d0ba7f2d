//! ConTest's HTTP API, at the root paths and with its shapes, so ConTest's
//! client (`contestcli`) and scripts work unchanged: form-encoded POSTs to
//! `/start` (jobDesc, requestor), `/status`, `/stop`, `/retry` (jobID),
//! `/list` (states, tags: comma-separated), `/version`; answers
//! `{ServerID, Type, Data, Error}`; failures are HTTP 400 `{Msg}`, as
//! ConTest answers them.

use std::borrow::Cow;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json};
use prova_core::status::JobStatus;
use prova_core::{JobId, JobState};
use prova_store::JobFilter;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};

use crate::AppState;
use crate::api::Routes;
use crate::error::ApiError;

/// ConTest's API version that prova speaks.
pub const CONTEST_API_VERSION: u32 = 5;

pub fn routes() -> Routes {
    Routes::default()
        .route("/start", post(start))
        .route("/status", post(status))
        .route("/stop", post(stop))
        .route("/retry", post(retry))
        .route("/list", post(list))
        .route("/version", post(version))
}

/// The form of `/start`.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct StartForm {
    /// The job descriptor, JSON or YAML.
    #[serde(rename = "jobDesc")]
    #[schema(required = true)]
    pub job_desc: String,
    /// Who asks.
    pub requestor: String,
}

/// The form of `/status`, `/stop` and `/retry`.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct JobForm {
    /// The job.
    #[serde(rename = "jobID")]
    #[schema(required = true)]
    pub job_id: String,
    /// Who asks (recorded with a stop or a retry).
    pub requestor: String,
}

/// The form of `/list`.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct ListForm {
    /// Comma-separated states (`JobStateCompleted` or `Completed`, any
    /// case); none: every state.
    pub states: String,
    /// Comma-separated tags, all must match.
    pub tags: String,
}

/// ConTest's answer envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContestReply<T> {
    /// This instance's `--server-id`.
    #[serde(rename = "ServerID")]
    pub server_id: String,
    #[serde(rename = "Type")]
    pub kind: ContestType,
    #[serde(rename = "Data")]
    pub data: T,
    /// Always null: a failure is an HTTP 400 with `{Msg}`.
    #[serde(rename = "Error")]
    #[schema(value_type = Option<String>, required = true)]
    pub error: Option<String>,
}

/// What a ConTest answer answers, by ConTest's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum ContestType {
    #[serde(rename = "ResponseTypeStart")]
    Start,
    #[serde(rename = "ResponseTypeStatus")]
    Status,
    #[serde(rename = "ResponseTypeStop")]
    Stop,
    #[serde(rename = "ResponseTypeRetry")]
    Retry,
    #[serde(rename = "ResponseTypeList")]
    List,
    #[serde(rename = "ResponseTypeVersion")]
    Version,
}

/// ConTest's failure body (HTTP 400, or an opaque 500).
#[derive(Debug, Serialize, ToSchema)]
pub struct ContestError {
    /// `<Verb> failed: <why>`.
    #[serde(rename = "Msg")]
    pub msg: String,
}

/// The `Data` of `/start`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContestStarted {
    #[serde(rename = "JobID")]
    #[schema(value_type = i64)]
    pub job_id: JobId,
}

/// The `Data` of `/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContestStatusData {
    #[serde(rename = "Status")]
    pub status: ContestJobStatus,
}

/// The `Data` of `/stop`: empty.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContestStopped {}

/// The `Data` of `/retry`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContestRetried {
    /// The new job.
    #[serde(rename = "JobID")]
    #[schema(value_type = i64)]
    pub job_id: JobId,
    #[serde(rename = "RetryOf")]
    #[schema(value_type = i64)]
    pub retry_of: JobId,
}

/// The `Data` of `/list`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContestJobIds {
    /// In ascending order.
    #[serde(rename = "JobIDs")]
    #[schema(value_type = Vec<i64>)]
    pub job_ids: Vec<JobId>,
}

/// The `Data` of `/version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContestVersion {
    /// ConTest's API version prova speaks.
    #[serde(rename = "Version")]
    pub version: u32,
}

/// A job's status as ConTest shows it: prova's status tree, its `State`
/// named by the job event (`JobStateCompleted`, ...).
#[derive(Debug)]
pub struct ContestJobStatus(pub JobStatus);

impl Serialize for ContestJobStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut v = serde_json::to_value(&self.0).map_err(serde::ser::Error::custom)?;
        v["State"] = self.0.state.map(|s| s.event_name()).into();
        v.serialize(serializer)
    }
}

// By hand: [`JobStatus`]'s schema with `State` as ConTest names it.
impl utoipa::PartialSchema for ContestJobStatus {
    fn schema() -> RefOr<Schema> {
        let mut schema = <JobStatus as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            let names = JobState::ALL
                .iter()
                .map(|s| serde_json::Value::from(s.event_name()))
                .chain([serde_json::Value::Null]);
            let state = ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .enum_values(Some(names))
                .description(Some(
                    "The newest job-state event's name; null before the job started",
                ));
            object
                .properties
                .insert("State".into(), RefOr::T(Schema::Object(state.build())));
            object.description = Some(
                "The status tree of `GET /api/v1/jobs/{id}` (without Owner), State named by its job event".into(),
            );
            if !object.required.iter().any(|r| r == "State") {
                object.required.push("State".into());
            }
        }
        schema
    }
}

impl ToSchema for ContestJobStatus {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ContestJobStatus")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <JobStatus as ToSchema>::schemas(schemas);
    }
}

fn reply<T: Serialize>(state: &AppState, kind: ContestType, data: T) -> Response {
    Json(ContestReply {
        server_id: state.manager.server_id().to_string(),
        kind,
        data,
        error: None,
    })
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
        Json(ContestError {
            msg: format!("{verb} failed: {message}"),
        }),
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

/// ConTest: start a job.
///
/// ConTest's `/start`: the descriptor in the `jobDesc` form field.
#[utoipa::path(post, path = "/start", operation_id = "contestStart", tag = "contest",
    request_body(content = StartForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = inline(ContestReply<ContestStarted>), description = "Type ResponseTypeStart: the new job"),
        (status = 400, body = ContestError, description = "No jobDesc, or an invalid descriptor: Msg says why")))]
async fn start(State(state): State<AppState>, Form(f): Form<StartForm>) -> Response {
    if f.job_desc.trim().is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(ContestError {
                msg: "Missing job description".into(),
            }),
        )
            .into_response();
    }
    match state.manager.submit(&f.job_desc, &f.requestor).await {
        Ok(id) => reply(&state, ContestType::Start, ContestStarted { job_id: id }),
        Err(e) => fail("Start", e),
    }
}

/// ConTest: a job's status.
///
/// ConTest's `/status`: the status tree, its State named by the job event
/// (`JobStateCompleted`, ...).
#[utoipa::path(post, path = "/status", operation_id = "contestStatus", tag = "contest",
    request_body(content = JobForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = inline(ContestReply<ContestStatusData>), description = "Type ResponseTypeStatus: the job's status"),
        (status = 400, body = ContestError, description = "No or a bad jobID, or no such job: Msg says why")))]
async fn status(State(state): State<AppState>, Form(f): Form<JobForm>) -> Response {
    let id = match job_id(&f.job_id) {
        Ok(id) => id,
        Err(e) => return fail("Status", e),
    };
    match prova_engine::status::load_status(&*state.store, id).await {
        Ok(Some(st)) => reply(
            &state,
            ContestType::Status,
            ContestStatusData {
                status: ContestJobStatus(st),
            },
        ),
        Ok(None) => fail("Status", ApiError::NotFound(format!("job {id} not found"))),
        Err(e) => fail("Status", e),
    }
}

/// ConTest: stop a job.
///
/// ConTest's `/stop`: cancels the job (as `POST /api/v1/jobs/{id}/cancel`).
#[utoipa::path(post, path = "/stop", operation_id = "contestStop", tag = "contest",
    request_body(content = JobForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = inline(ContestReply<ContestStopped>), description = "Type ResponseTypeStop: cancellation requested"),
        (status = 400, body = ContestError, description = "No or a bad jobID, no such job, or a job not running here: Msg says why")))]
async fn stop(State(state): State<AppState>, Form(f): Form<JobForm>) -> Response {
    let id = match job_id(&f.job_id) {
        Ok(id) => id,
        Err(e) => return fail("Stop", e),
    };
    match state.manager.cancel(id, &f.requestor).await {
        Ok(()) => reply(&state, ContestType::Stop, ContestStopped {}),
        Err(e) => fail("Stop", e),
    }
}

/// ConTest: retry a job.
///
/// ConTest's `/retry`: a new job from the stored extended descriptor.
#[utoipa::path(post, path = "/retry", operation_id = "contestRetry", tag = "contest",
    request_body(content = JobForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = inline(ContestReply<ContestRetried>), description = "Type ResponseTypeRetry: the new job"),
        (status = 400, body = ContestError, description = "No or a bad jobID, or no such job: Msg says why")))]
async fn retry(State(state): State<AppState>, Form(f): Form<JobForm>) -> Response {
    let id = match job_id(&f.job_id) {
        Ok(id) => id,
        Err(e) => return fail("Retry", e),
    };
    match state.manager.retry(id, &f.requestor).await {
        Ok(new) => reply(
            &state,
            ContestType::Retry,
            ContestRetried {
                job_id: new,
                retry_of: id,
            },
        ),
        Err(e) => fail("Retry", e),
    }
}

/// ConTest: list job ids.
///
/// ConTest's `/list`: the ids of the jobs in these states with all these
/// tags, ascending.
#[utoipa::path(post, path = "/list", operation_id = "contestList", tag = "contest",
    request_body(content = ListForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = inline(ContestReply<ContestJobIds>), description = "Type ResponseTypeList: the job ids"),
        (status = 400, body = ContestError, description = "An unknown state: Msg says which")))]
async fn list(State(state): State<AppState>, Form(f): Form<ListForm>) -> Response {
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
            reply(&state, ContestType::List, ContestJobIds { job_ids: ids })
        }
        Err(e) => fail("List", e),
    }
}

/// ConTest: the API version.
///
/// ConTest's `/version`: the ConTest API version prova speaks.
#[utoipa::path(post, path = "/version", operation_id = "contestVersion", tag = "contest",
    responses((status = 200, body = inline(ContestReply<ContestVersion>), description = "Type ResponseTypeVersion: the version")))]
async fn version(State(state): State<AppState>) -> Response {
    reply(
        &state,
        ContestType::Version,
        ContestVersion {
            version: CONTEST_API_VERSION,
        },
    )
}
