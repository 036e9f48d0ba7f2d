//! prova's JSON API under `/api/v1`, and the router that puts every part
//! together.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use futures::Stream;
use prova_core::{EventQuery, JobId, JobState};
use prova_store::JobFilter;
use serde::Deserialize;
use serde_json::{Value, json};
use tower_http::timeout::TimeoutLayer;

use crate::error::{ApiError, catch_panics};
use crate::extract::{ApiBody, ApiPath, ApiQuery};
use crate::{AppState, auth, contest};

/// Every route: `/healthz` and `/metrics` open, the rest behind the token.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
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
        .route(
            "/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        );
    // Event streams live as long as their job: no request timeout there.
    let streams = Router::new().route("/jobs/{id}/events", get(events));
    let protected = Router::new()
        .nest(
            "/api/v1",
            api.layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(30),
            ))
            .merge(streams),
        )
        .merge(contest::routes())
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

fn accepted(id: JobId, requested: &str) -> impl IntoResponse {
    (
        StatusCode::ACCEPTED,
        Json(json!({ "JobID": id, "Requested": requested })),
    )
}

#[utoipa::path(post, path = "/api/v1/jobs", tag = "jobs",
    request_body(content = String, description = "A job descriptor, JSON or YAML (ConTest's format)", content_type = "application/yaml"),
    params(("requestor" = Option<String>, Query, description = "Who asks (also the X-Prova-Requestor header)"), ("source" = Option<String>, Query, description = "The descriptor's path on the client: files it names resolve beside it when that folder is beneath the server's --files-root")),
    responses((status = 201, description = "Recorded and started: {JobID}"), (status = 422, description = "Invalid descriptor: {Error, Errors[]}, every error with file, field path, line and column"), (status = 413, description = "Body too large")))]
/// `POST /api/v1/jobs`: the descriptor (JSON or YAML) as the body.
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
    Ok((StatusCode::CREATED, Json(json!({ "JobID": id }))))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// Comma-separated states.
    pub state: Option<String>,
    /// Comma-separated tags (all must match).
    pub tag: Option<String>,
    pub requestor: Option<String>,
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

#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs",
    params(("state" = Option<String>, Query, description = "Comma-separated states (Started, Completed, ...)"), ("tag" = Option<String>, Query, description = "Comma-separated tags, all must match"), ("requestor" = Option<String>, Query), ("limit" = Option<u32>, Query, description = "At most this many, default 50"), ("before" = Option<i64>, Query, description = "Jobs older than this id: the Next of the previous page")),
    responses((status = 200, description = "{Jobs: [{JobID, JobName, Tags, Requestor, State, Verdict, CreatedAt, StateTime}], Next}; Verdict is passed, failed, error, cancelled or pending (from the state and the reports)")))]
/// `GET /api/v1/jobs`: newest first, paginated.
async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<impl IntoResponse, ApiError> {
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
            limit: Some(limit),
            before_id: q.before,
        })
        .await?;
    let next = (jobs.len() as u32 == limit)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    let verdicts = prova_engine::status::list_verdicts(&*state.store, &jobs).await?;
    let jobs: Vec<Value> = jobs
        .iter()
        .zip(verdicts)
        .map(|(j, verdict)| {
            json!({
                "JobID": j.id, "JobName": j.name, "Tags": j.tags, "Requestor": j.requestor,
                "State": j.state, "Verdict": verdict, "CreatedAt": j.created_at,
                "StateTime": j.state_time,
            })
        })
        .collect();
    Ok(Json(json!({ "Jobs": jobs, "Next": next })))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, description = "The status tree rebuilt from events (ConTest's Status fields) and its Owner"), (status = 404, description = "No such job")))]
/// `GET /api/v1/jobs/{id}`: the status tree rebuilt from events.
async fn status(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> Result<impl IntoResponse, ApiError> {
    let status = prova_engine::status::load_status(&*state.store, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))?;
    let owner = state.manager.owner(id).await?;
    let mut v = serde_json::to_value(status).map_err(|e| ApiError::Internal(e.to_string()))?;
    v["Owner"] = owner.into();
    Ok(Json(v))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/report", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, description = "{JobID, State, JobReport{RunReports, FinalReports}}"), (status = 404, description = "No such job")))]
async fn report(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> Result<impl IntoResponse, ApiError> {
    let status = prova_engine::status::load_status(&*state.store, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))?;
    Ok(Json(
        json!({ "JobID": id, "State": status.state, "JobReport": status.job_report }),
    ))
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/junit", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, description = "The job's JUnit XML, merged from its events as the junit reporter writes it: a testsuite per test and run, a testcase per step and target, and the suites' own cases", body = String, content_type = "application/xml"), (status = 404, description = "No such job")))]
/// `GET /api/v1/jobs/{id}/junit`: what `prova run --junit` would write,
/// rebuilt from the stored events (so it works for any job, ended or not).
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

#[utoipa::path(post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = i64, Path), ("requestor" = Option<String>, Query)),
    responses((status = 202, description = "Cancellation requested"), (status = 409, description = "The job is not running here")))]
async fn cancel(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    Requestor(who): Requestor,
) -> Result<impl IntoResponse, ApiError> {
    state.manager.cancel(id, &who).await?;
    Ok(accepted(id, "cancel"))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/pause", tag = "jobs", params(("id" = i64, Path), ("requestor" = Option<String>, Query)),
    responses((status = 202, description = "Pause requested: the job stops at step boundaries and ends Paused"), (status = 409, description = "The job is not running here")))]
async fn pause(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    Requestor(who): Requestor,
) -> Result<impl IntoResponse, ApiError> {
    state.manager.pause(id, &who).await?;
    Ok(accepted(id, "pause"))
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/resume", tag = "jobs", params(("id" = i64, Path), ("requestor" = Option<String>, Query)),
    responses((status = 202, description = "Resumed where it stood"), (status = 409, description = "The job is not paused, or another instance holds it")))]
async fn resume(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
    Requestor(who): Requestor,
) -> Result<impl IntoResponse, ApiError> {
    state.manager.resume(id, &who).await?;
    Ok(accepted(id, "resume"))
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
    pub job_id: JobId,
    #[serde(rename = "RetryOf")]
    pub retry_of: JobId,
    /// With `failed=true`: the tests it reruns (those whose last attempt
    /// failed), in name order.
    #[serde(rename = "Tests", skip_serializing_if = "Option::is_none")]
    pub tests: Option<Vec<String>>,
}

#[utoipa::path(post, path = "/api/v1/jobs/{id}/retry", tag = "jobs",
    params(("id" = i64, Path), ("requestor" = Option<String>, Query), ("failed" = Option<bool>, Query, description = "Only the tests whose last attempt failed (the job must have ended)")),
    responses(
        (status = 201, body = RetryAnswer, description = "A new job from the stored extended descriptor"),
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

#[utoipa::path(get, path = "/api/v1/version", tag = "server", responses((status = 200, description = "{Version, ServerID}")))]
async fn version(State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({ "Version": env!("CARGO_PKG_VERSION"), "ServerID": state.manager.server_id() }))
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

#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs",
    params(("id" = i64, Path), ("run" = Option<u32>, Query), ("test" = Option<String>, Query), ("attempt" = Option<u32>, Query), ("step" = Option<String>, Query), ("target" = Option<String>, Query), ("name" = Option<String>, Query, description = "Comma-separated event names"), ("after" = Option<i64>, Query, description = "Only events after this sequence number"), ("follow" = Option<bool>, Query, description = "Server-Sent Events: replay, then follow until the job ends (event: event, then event: end)")),
    responses((status = 200, description = "Events, oldest first, with ConTest's field names (or an SSE stream)"), (status = 404, description = "No such job")))]
/// `GET /api/v1/jobs/{id}/events`: JSON, or with `follow=true` Server-Sent
/// Events that replay what is stored and then follow until the job ends.
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
