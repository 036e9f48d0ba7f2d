//! prova's JSON API under `/api/v1`, and the router that puts every part
//! together.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router, middleware};
use futures::Stream;
use prova_core::status::{JobReport, JobStatus, Verdict};
use prova_core::{Event, EventQuery, JobId, JobState};
use prova_store::JobFilter;
use serde::{Deserialize, Serialize};
use tower_http::timeout::TimeoutLayer;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody, catch_panics};
use crate::extract::{ApiBody, ApiPath, ApiQuery};
use crate::{AppState, auth, contest};

/// A router that keeps the paths it serves: the API's routes are built
/// with it, so [`served_paths`] lists exactly what the router answers and
/// the OpenAPI test can hold the document to every one of them.
pub struct Routes {
    router: Router<AppState>,
    paths: Vec<String>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            router: Router::new(),
            paths: Vec::new(),
        }
    }
}

impl Routes {
    /// [`Router::route`], the path kept.
    pub fn route(mut self, path: &str, handler: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, handler);
        self.paths.push(path.to_string());
        self
    }

    /// [`Router::merge`], the paths kept.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    /// These routes beneath `prefix`.
    fn nest(self, prefix: &str) -> Self {
        Routes {
            router: Router::new().nest(prefix, self.router),
            paths: self.paths.iter().map(|p| format!("{prefix}{p}")).collect(),
        }
    }

    /// The router with `f` applied (a layer): the paths stay.
    fn map(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }
}

/// The routes behind the token: prova's API under `/api/v1` and ConTest's
/// at the root.
fn protected_routes(state: &AppState) -> Routes {
    let api = Routes::default()
        .route("/jobs", post(submit).get(list))
        .route("/jobs/{id}", get(status))
        .route("/jobs/{id}/cancel", post(cancel))
        .route("/jobs/{id}/pause", post(pause))
        .route("/jobs/{id}/resume", post(resume))
        .route("/jobs/{id}/retry", post(retry))
        .route("/jobs/{id}/report", get(report))
        .route("/jobs/{id}/junit", get(junit))
        .route("/version", get(version))
        .merge(crate::audit_api::routes(state.config.audit.max_body))
        .merge(crate::history_api::routes())
        .merge(crate::artifacts::routes())
        .route("/openapi.json", get(crate::openapi::json))
        .map(|api| {
            api.layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(30),
            ))
        });
    // Event streams live as long as their job: no request timeout there.
    let streams = Routes::default().route("/jobs/{id}/events", get(events));
    api.merge(streams).nest("/api/v1").merge(contest::routes())
}

/// Every path the router serves behind the token (`/api/v1/...` and
/// ConTest's), as axum spells them (`{id}`, `{*path}`). The OpenAPI
/// document describes each one.
pub fn served_paths(state: &AppState) -> Vec<String> {
    protected_routes(state).paths
}

/// Every route: `/healthz` and `/metrics` open, the rest behind the token.
pub fn router(state: AppState) -> Router {
    let protected = protected_routes(&state)
        .router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let app = Router::new()
        .merge(crate::openapi::ui())
        .merge(crate::web::routes(state.clone()))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .merge(protected)
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::Rejected {
                status: StatusCode::METHOD_NOT_ALLOWED,
                message: "method not allowed on this route".into(),
            }
        })
        .layer(DefaultBodyLimit::max(state.config.max_body))
        .with_state(state);
    catch_panics(app)
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Who is asking: `?requestor=` or the `X-Prova-Requestor` header.
fn requestor(headers: &HeaderMap, q: Option<&str>) -> String {
    q.map(str::to_string)
        .or_else(|| {
            headers
                .get("x-prova-requestor")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "anonymous".into())
}

#[derive(Deserialize, Default)]
pub struct RequestorQuery {
    pub requestor: Option<String>,
    /// Where the client read the descriptor (`prova start FILE`): files it
    /// names resolve beside it when that folder is beneath `--files-root`
    /// on this machine.
    pub source: Option<String>,
}

/// Who is asking, from `?requestor=` or the `X-Prova-Requestor` header
/// (recorded with every start, stop, pause and resume).
pub struct Requestor(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Requestor {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let q = Query::<RequestorQuery>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| q)
            .unwrap_or_default();
        Ok(Requestor(requestor(&parts.headers, q.requestor.as_deref())))
    }
}

/// What a client asked of a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SteerRequest {
    Cancel,
    Pause,
    Resume,
}

/// The answer of `cancel`, `pause` and `resume` (202: asked, not done yet;
/// the job's state says when it is).
#[derive(Debug, Serialize, ToSchema)]
pub struct SteerAccepted {
    #[serde(rename = "JobID")]
    #[schema(value_type = i64)]
    pub job_id: JobId,
    #[serde(rename = "Requested")]
    pub requested: SteerRequest,
}

fn accepted(id: JobId, requested: SteerRequest) -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        Json(SteerAccepted {
            job_id: id,
            requested,
        }),
    )
}

/// The answer of `POST /api/v1/jobs`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobCreated {
    /// The new job.
    #[serde(rename = "JobID")]
    #[schema(value_type = i64)]
    pub job_id: JobId,
}

/// Submit a job.
///
/// The body is a job descriptor, JSON or YAML (ConTest's format, keys
/// matched case-insensitively). It is validated whole: every error is
/// answered at once, with file, field path, line and column.
#[utoipa::path(post, path = "/api/v1/jobs", operation_id = "submitJob", tag = "jobs",
    request_body(description = "A job descriptor, JSON or YAML (ConTest's format); any content type is read as text",
        content((String = "application/yaml"), (String = "application/json"), (String = "text/plain"))),
    params(("requestor" = Option<String>, Query, description = "Who asks (also the X-Prova-Requestor header; default anonymous)"), ("source" = Option<String>, Query, description = "The descriptor's path on the client: files it names resolve beside it when that folder is beneath the server's --files-root")),
    responses(
        (status = 201, body = JobCreated, description = "Recorded and started"),
        (status = 400, body = ErrorBody, description = "An empty body, a body that is not UTF-8, or a query that does not parse"),
        (status = 413, body = ErrorBody, description = "Body larger than --max-body"),
        (status = 422, body = ErrorBody, description = "Invalid descriptor: Errors lists every error, each with file, field path, line and column"),
        (status = 503, body = ErrorBody, description = "The server is stopping")))]
async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<RequestorQuery>,
    ApiBody(body): ApiBody,
) -> Result<impl IntoResponse, ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "empty body: expected a job descriptor (JSON or YAML)".into(),
        ));
    }
    let who = requestor(&headers, q.requestor.as_deref());
    let source = q.source.as_deref().map(std::path::Path::new);
    let id = state.manager.submit_from(&body, &who, source).await?;
    Ok((StatusCode::CREATED, Json(JobCreated { job_id: id })))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// Comma-separated states.
    pub state: Option<String>,
    /// Comma-separated tags (all must match).
    pub tag: Option<String>,
    pub requestor: Option<String>,
    /// Part of the job's name, any case.
    pub name: Option<String>,
    pub limit: Option<u32>,
    /// Jobs older than this id (the `Next` of the previous page).
    pub before: Option<JobId>,
}

fn split(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// One job in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobSummary {
    #[serde(rename = "JobID")]
    #[schema(value_type = i64)]
    pub job_id: JobId,
    #[serde(rename = "JobName")]
    pub job_name: String,
    #[serde(rename = "Tags")]
    pub tags: Vec<String>,
    #[serde(rename = "Requestor")]
    pub requestor: String,
    /// The newest job-state event; null before the job started.
    #[serde(rename = "State")]
    #[schema(required = true)]
    pub state: Option<JobState>,
    /// The verdict `GET /api/v1/jobs/{id}` gives (kept by the store when
    /// the job ended).
    #[serde(rename = "Verdict")]
    pub verdict: Verdict,
    #[serde(rename = "CreatedAt")]
    pub created_at: jiff::Timestamp,
    /// Time of the newest job-state event.
    #[serde(rename = "StateTime")]
    #[schema(required = true)]
    pub state_time: Option<jiff::Timestamp>,
}

/// The answer of `GET /api/v1/jobs`: a page of jobs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    #[serde(rename = "Jobs")]
    pub jobs: Vec<JobSummary>,
    /// Pass it as `before` for the next page; null on the last page.
    #[serde(rename = "Next")]
    #[schema(value_type = Option<i64>)]
    #[schema(required = true)]
    pub next: Option<JobId>,
}

/// List jobs.
///
/// Newest first, a page at a time: while `Next` is not null, ask again
/// with `before=<Next>`.
#[utoipa::path(get, path = "/api/v1/jobs", operation_id = "listJobs", tag = "jobs",
    params(("state" = Option<String>, Query, description = "Comma-separated states (Started, Completed, ..., or JobStateCompleted, ...)"), ("tag" = Option<String>, Query, description = "Comma-separated tags, all must match"), ("requestor" = Option<String>, Query, description = "Only jobs this requestor submitted"), ("name" = Option<String>, Query, description = "Only jobs whose name contains this, in any case"), ("limit" = Option<u32>, Query, description = "At most this many: 1 to 1000, default 50"), ("before" = Option<i64>, Query, description = "Jobs older than this id: the Next of the previous page")),
    responses(
        (status = 200, body = JobList, description = "A page of jobs, newest first"),
        (status = 400, body = ErrorBody, description = "An unknown state, or a query that does not parse")))]
async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<JobList>, ApiError> {
    let mut states = Vec::new();
    for s in split(&q.state) {
        states.push(
            JobState::parse(&s)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown state {s:?}")))?,
        );
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let jobs = state
        .store
        .list_jobs(&JobFilter {
            states,
            tags: split(&q.tag),
            requestor: q.requestor.clone(),
            name_contains: q.name.clone(),
            limit: Some(limit),
            before_id: q.before,
        })
        .await?;
    let next = (jobs.len() as u32 == limit)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    let verdicts = prova_engine::status::list_verdicts(&*state.store, &jobs).await?;
    let jobs = jobs
        .into_iter()
        .zip(verdicts)
        .map(|(j, verdict)| JobSummary {
            job_id: j.id,
            job_name: j.name,
            tags: j.tags,
            requestor: j.requestor,
            state: j.state,
            verdict,
            created_at: j.created_at,
            state_time: j.state_time,
        })
        .collect();
    Ok(Json(JobList { jobs, next }))
}

/// The answer of `GET /api/v1/jobs/{id}`: the status tree and who runs
/// the job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobStatusAnswer {
    #[serde(flatten)]
    pub status: JobStatus,
    /// The server id of the instance that started (or resumed) the job;
    /// null before it started.
    #[serde(rename = "Owner")]
    #[schema(required = true)]
    pub owner: Option<String>,
}

/// A job's status.
///
/// The status tree rebuilt from the job's events, with ConTest's `Status`
/// field names (a retried test appears once per attempt), its verdict and
/// the instance that owns it.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", operation_id = "getJobStatus", tag = "jobs", params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, body = JobStatusAnswer, description = "The status tree and its Owner"),
        (status = 400, body = ErrorBody, description = "A job id that is not a number"),
        (status = 404, body = ErrorBody, description = "No such job")))]
async fn status(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> Result<Json<JobStatusAnswer>, ApiError> {
    let status = prova_engine::status::load_status(&*state.store, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))?;
    let owner = state.manager.owner(id).await?;
    Ok(Json(JobStatusAnswer { status, owner }))
}

/// The answer of `GET /api/v1/jobs/{id}/report`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobReportAnswer {
    #[serde(rename = "JobID")]
    #[schema(value_type = i64)]
    pub job_id: JobId,
    /// Null before the job started.
    #[serde(rename = "State")]
    #[schema(required = true)]
    pub state: Option<JobState>,
    #[serde(rename = "JobReport")]
    pub job_report: JobReport,
}

/// A job's reports.
///
/// What its run reporters said after each run and its final reporters at
/// the end, with the job's state.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/report", operation_id = "getJobReport", tag = "jobs", params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, body = JobReportAnswer, description = "The run and final reports"),
        (status = 400, body = ErrorBody, description = "A job id that is not a number"),
        (status = 404, body = ErrorBody, description = "No such job")))]
async fn report(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> Result<Json<JobReportAnswer>, ApiError> {
    let status = prova_engine::status::load_status(&*state.store, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))?;
    Ok(Json(JobReportAnswer {
        job_id: id,
        state: status.state,
        job_report: status.job_report,
    }))
}

/// A job's JUnit XML.
///
/// What `prova run --junit` would write, rebuilt from the stored events
/// (so it works for any job, ended or not).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/junit", operation_id = "getJobJunit", tag = "jobs", params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, description = "The job's JUnit XML, merged from its events as the junit reporter writes it: a testsuite per test and run, a testcase per step and target, and the suites' own cases", body = String, content_type = "application/xml"),
        (status = 400, body = ErrorBody, description = "A job id that is not a number"),
        (status = 404, body = ErrorBody, description = "No such job")))]
async fn junit(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> Result<impl IntoResponse, ApiError> {
    let xml = merged_junit(&state, id).await?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/xml; charset=utf-8",
        )],
        xml,
    ))
}

/// The job's merged JUnit XML, from all its events.
pub(crate) async fn merged_junit(state: &AppState, id: JobId) -> Result<String, ApiError> {
    let job = state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))?;
    let events: Vec<prova_core::NewEvent> = state
        .store
        .query_events(&EventQuery::for_job(id))
        .await?
        .into_iter()
        .map(|e| e.event)
        .collect();
    prova_engine::plugins::reporters::junit::render(&job.name, id, &events)
        .map_err(|e| ApiError::Internal(format!("cannot render the JUnit of job {id}: {e}")))
}

/// Cancel a job.
///
/// Its steps are told to stop; the job ends `Cancelled`.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", operation_id = "cancelJob", tag = "jobs", params(("id" = i64, Path, description = "The job"), ("requestor" = Option<String>, Query, description = "Who asks (also the X-Prova-Requestor header)")),
    responses(
        (status = 202, body = SteerAccepted, description = "Cancellation requested: the job ends Cancelled"),
        (status = 400, body = ErrorBody, description = "A job id that is not a number"),
        (status = 404, body = ErrorBody, description = "No such job"),
        (status = 409, body = ErrorBody, description = "The job is not running on this instance")))]
async fn cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    Requestor(who): Requestor,
) -> Result<impl IntoResponse, ApiError> {
    state.manager.cancel(id, &who).await?;
    Ok(accepted(id, SteerRequest::Cancel))
}

/// Pause a job.
///
/// It stops at step boundaries and ends `Paused`; `resume` goes on from there.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/pause", operation_id = "pauseJob", tag = "jobs", params(("id" = i64, Path, description = "The job"), ("requestor" = Option<String>, Query, description = "Who asks (also the X-Prova-Requestor header)")),
    responses(
        (status = 202, body = SteerAccepted, description = "Pause requested: the job stops at step boundaries and ends Paused"),
        (status = 400, body = ErrorBody, description = "A job id that is not a number"),
        (status = 404, body = ErrorBody, description = "No such job"),
        (status = 409, body = ErrorBody, description = "The job is not running on this instance")))]
async fn pause(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    Requestor(who): Requestor,
) -> Result<impl IntoResponse, ApiError> {
    state.manager.pause(id, &who).await?;
    Ok(accepted(id, SteerRequest::Pause))
}

/// Resume a paused job.
///
/// It goes on where it stood, on this instance.
#[utoipa::path(post, path = "/api/v1/jobs/{id}/resume", operation_id = "resumeJob", tag = "jobs", params(("id" = i64, Path, description = "The job"), ("requestor" = Option<String>, Query, description = "Who asks (also the X-Prova-Requestor header)")),
    responses(
        (status = 202, body = SteerAccepted, description = "Resumed where it stood"),
        (status = 400, body = ErrorBody, description = "A job id that is not a number"),
        (status = 404, body = ErrorBody, description = "No such job"),
        (status = 409, body = ErrorBody, description = "The job is not paused, or another instance holds it")))]
async fn resume(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    Requestor(who): Requestor,
) -> Result<impl IntoResponse, ApiError> {
    state.manager.resume(id, &who).await?;
    Ok(accepted(id, SteerRequest::Resume))
}

/// The query of `POST /api/v1/jobs/{id}/retry`.
#[derive(Deserialize, Default)]
pub struct RetryQuery {
    /// Only the tests whose last attempt failed.
    pub failed: Option<bool>,
}

/// The answer of `POST /api/v1/jobs/{id}/retry`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RetryAnswer {
    /// The new job.
    #[serde(rename = "JobID")]
    #[schema(value_type = i64)]
    pub job_id: JobId,
    #[serde(rename = "RetryOf")]
    #[schema(value_type = i64)]
    pub retry_of: JobId,
    /// With `failed=true`: the tests it reruns (those whose last attempt
    /// failed), in name order.
    #[serde(rename = "Tests", skip_serializing_if = "Option::is_none")]
    pub tests: Option<Vec<String>>,
}

/// Retry a job.
///
/// A new job from the stored extended descriptor; with `failed=true`,
/// only the tests whose last attempt failed (in any run).
#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", operation_id = "retryJob", tag = "jobs",
    params(("id" = i64, Path, description = "The job to retry"), ("requestor" = Option<String>, Query), ("failed" = Option<bool>, Query, description = "Only the tests whose last attempt failed (the job must have ended)")),
    responses(
        (status = 201, body = RetryAnswer, description = "A new job from the stored extended descriptor"),
        (status = 400, body = ErrorBody, description = "A job id that is not a number, or a query that does not parse"),
        (status = 404, body = crate::error::ErrorBody, description = "No such job"),
        (status = 409, body = crate::error::ErrorBody, description = "With failed=true: the job has not ended, or no test failed")))]
async fn retry(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    ApiQuery(q): ApiQuery<RetryQuery>,
    Requestor(who): Requestor,
) -> Result<impl IntoResponse, ApiError> {
    let (new, tests) = if q.failed == Some(true) {
        let (new, tests) = state.manager.retry_failed(id, &who).await?;
        (new, Some(tests))
    } else {
        (state.manager.retry(id, &who).await?, None)
    };
    Ok((
        StatusCode::CREATED,
        Json(RetryAnswer {
            job_id: new,
            retry_of: id,
            tests,
        }),
    ))
}

/// The answer of `GET /api/v1/version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionAnswer {
    /// prova's version.
    #[serde(rename = "Version")]
    pub version: String,
    /// This instance's `--server-id`.
    #[serde(rename = "ServerID")]
    pub server_id: String,
}

/// The server's version.
///
/// prova's version and this instance's id.
#[utoipa::path(get, path = "/api/v1/version", operation_id = "getVersion", tag = "server", responses((status = 200, body = VersionAnswer, description = "prova's version and this instance's id")))]
async fn version(State(state): State<AppState>) -> Json<VersionAnswer> {
    Json(VersionAnswer {
        version: env!("CARGO_PKG_VERSION").to_string(),
        server_id: state.manager.server_id().to_string(),
    })
}

#[derive(Deserialize, Default)]
pub struct EventsQuery {
    pub run: Option<u32>,
    pub test: Option<String>,
    pub attempt: Option<u32>,
    pub step: Option<String>,
    pub target: Option<String>,
    /// Comma-separated event names.
    pub name: Option<String>,
    /// Only events after this sequence number.
    pub after: Option<i64>,
    pub follow: Option<bool>,
}

impl EventsQuery {
    fn query(&self, id: JobId) -> EventQuery {
        EventQuery {
            job_id: Some(id),
            run_id: self.run,
            test_name: self.test.clone(),
            test_attempt: self.attempt,
            step_label: self.step.clone(),
            target_id: self.target.clone(),
            names: split(&self.name),
            after_seq: self.after,
            ..Default::default()
        }
    }
}

/// A job's events.
///
/// JSON, oldest first, with ConTest's field names; or with `follow=true`
/// Server-Sent Events that replay what is stored and then follow until
/// the job ends or pauses (`event: event` per event, its `id` the
/// sequence number, then `event: end`).
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", operation_id = "getJobEvents", tag = "jobs",
    params(("id" = i64, Path, description = "The job"), ("run" = Option<u32>, Query, description = "Only this run (1-based)"), ("test" = Option<String>, Query, description = "Only this test"), ("attempt" = Option<u32>, Query, description = "Only this attempt (0 is the first)"), ("step" = Option<String>, Query, description = "Only this step label"), ("target" = Option<String>, Query, description = "Only this target id"), ("name" = Option<String>, Query, description = "Comma-separated event names"), ("after" = Option<i64>, Query, description = "Only events after this sequence number"), ("follow" = Option<bool>, Query, description = "Server-Sent Events: replay, then follow until the job ends (event: event, then event: end)")),
    responses(
        (status = 200, description = "Events, oldest first; with follow=true a text/event-stream whose event data are the same Event objects",
            content((Vec<Event> = "application/json"), (String = "text/event-stream"))),
        (status = 400, body = ErrorBody, description = "A job id that is not a number, or a query that does not parse"),
        (status = 404, body = ErrorBody, description = "No such job")))]
async fn events(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<axum::response::Response, ApiError> {
    if state.store.get_job(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("job {id} not found")));
    }
    if q.follow != Some(true) {
        let events = state.store.query_events(&q.query(id)).await?;
        return Ok(Json(events).into_response());
    }
    Ok(follow_response(state, id, q))
}

/// The SSE response of [`follow`] (the job pages' live stream too).
pub(crate) fn follow_response(
    state: AppState,
    id: JobId,
    q: EventsQuery,
) -> axum::response::Response {
    Sse::new(follow(state, id, q))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Replays, then follows: the store is read for events after the last one
/// sent, woken every 200 ms, until the job is in a final or paused state and
/// nothing is left to send. Reading the store (rather than an in-process
/// channel) lets a client follow a job run by any instance.
fn follow(
    state: AppState,
    id: JobId,
    q: EventsQuery,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    async_stream::stream! {
        let mut query = q.query(id);
        loop {
            let batch = match state.store.query_events(&query).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!("event stream of job {id}: {e}");
                    yield Ok(SseEvent::default().event("error").data("internal error"));
                    break;
                }
            };
            for ev in &batch {
                query.after_seq = Some(ev.seq);
                let data = serde_json::to_string(ev).unwrap_or_default();
                yield Ok(SseEvent::default().id(ev.seq.to_string()).event("event").data(data));
            }
            if batch.is_empty() {
                let done = match state.store.get_job(id).await {
                    Ok(Some(job)) => job.state.is_some_and(|s| s.is_final() || s == JobState::Paused),
                    _ => true,
                };
                if done {
                    // One more read: events stored with the final state.
                    if let Ok(rest) = state.store.query_events(&query).await {
                        for ev in &rest {
                            let data = serde_json::to_string(ev).unwrap_or_default();
                            yield Ok(SseEvent::default().id(ev.seq.to_string()).event("event").data(data));
                        }
                    }
                    yield Ok(SseEvent::default().event("end").data(id.to_string()));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
