//! The audit sink over HTTP, under `/api/v1/audit` (behind the token):
//!
//! - `POST /events`: kube-apiserver's audit webhook (batch mode) posts an
//!   `audit.k8s.io/v1` `EventList`; see [`crate::audit`].
//! - `GET /hits`: the stored hits of a time window, filtered by user agent
//!   and endpoint (SQL `LIKE`), a page at a time. This is the contract the
//!   `coverage` reporter and `prova coverage live` read.
//! - `GET /report`: the coverage report (`prova coverage report --json`'s
//!   shape) over the hits of a window.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prova_coverage::live::stored::StoredTally;
use prova_coverage::report::MapContext;
use prova_store::{AuditHit, AuditHitCursor, AuditHitQuery, MAX_AUDIT_HITS_PER_QUERY};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::audit::{IngestError, Ingested};
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;

/// Hits per page unless `limit` says otherwise.
pub const DEFAULT_HITS_LIMIT: u32 = 1000;
/// The most hits per page.
pub const MAX_HITS_LIMIT: u32 = 10_000;

/// The routes, relative to `/api/v1`. `max_body` is the batch body limit.
pub fn routes(max_body: usize) -> crate::api::Routes {
    crate::api::Routes::default()
        .route(
            "/audit/events",
            post(post_events).layer(DefaultBodyLimit::max(max_body)),
        )
        .route("/audit/hits", get(hits))
        .route("/audit/report", get(report))
}

/// A refused batch: logged with its reason, answered with the API's
/// `{Error}` body (and `Retry-After` on 429).
fn refuse(state: &AppState, e: IngestError) -> Response {
    state
        .audit
        .metrics()
        .refused(crate::audit_metrics::reason(&e));
    let status = match &e {
        IngestError::NoSpec | IngestError::WriterGone => StatusCode::SERVICE_UNAVAILABLE,
        IngestError::Batch(_) | IngestError::BadTime { .. } => StatusCode::BAD_REQUEST,
        IngestError::QueueFull(_) => StatusCode::TOO_MANY_REQUESTS,
        IngestError::Store(_) | IngestError::Parse(_) => {
            tracing::warn!(status = 500, "audit batch refused: {e:?}");
            return ApiError::Internal(format!("audit sink: {e:?}")).into_response();
        }
    };
    tracing::warn!(status = status.as_u16(), "audit batch refused: {e}");
    let body = Json(serde_json::json!({ "Error": e.to_string() }));
    if status == StatusCode::TOO_MANY_REQUESTS {
        let secs = state
            .audit
            .config()
            .retry_after
            .as_secs()
            .max(1)
            .to_string();
        return (status, [(header::RETRY_AFTER, secs)], body).into_response();
    }
    (status, body).into_response()
}

/// A batch of audit events, as kube-apiserver's audit webhook sends it
/// (the fields the sink reads; the rest are ignored).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AuditEventList {
    /// `audit.k8s.io/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: Option<String>,
    /// `EventList`.
    pub kind: Option<String>,
    pub items: Vec<AuditEventIn>,
}

/// One audit event, the fields the sink reads.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AuditEventIn {
    /// Unique per request: a second stage or a retried batch is stored once.
    #[serde(rename = "auditID")]
    pub audit_id: String,
    /// `RequestReceived` events are skipped.
    pub stage: Option<String>,
    pub verb: Option<String>,
    /// Path and query.
    #[serde(rename = "requestURI")]
    pub request_uri: Option<String>,
    /// e2e tests name themselves here (`... -- <test name>`).
    #[serde(rename = "userAgent")]
    pub user_agent: Option<String>,
    /// RFC 3339, microseconds.
    #[serde(rename = "stageTimestamp")]
    pub stage_timestamp: Option<String>,
}

/// Take a batch of audit events.
///
/// kube-apiserver's audit webhook (batch mode) posts an `audit.k8s.io/v1`
/// `EventList`; each event becomes a hit mapped to its endpoint. The
/// batch is answered once it is stored: all of it, or none.
#[utoipa::path(post, path = "/api/v1/audit/events", operation_id = "postAuditEvents", tag = "audit",
    request_body(content = AuditEventList, description = "An audit.k8s.io/v1 EventList, as kube-apiserver's audit webhook backend sends it in batch mode (a plain event or a JSON array of events is read too)", content_type = "application/json"),
    responses(
        (status = 200, body = Ingested, description = "Stored. Events whose auditID is already stored are Duplicates; RequestReceived events are Skipped (every request is audited again at a later stage)"),
        (status = 400, body = ErrorBody, description = "Not an EventList, or an item that is not an audit event, has no auditID or has a bad stageTimestamp: Error names the item; nothing of the batch is stored"),
        (status = 413, body = ErrorBody, description = "Body larger than --audit-max-body"),
        (status = 429, body = ErrorBody, description = "The writer's queue is full: send the batch again after Retry-After seconds",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, body = ErrorBody, description = "The sink is off: prova serve was started without --coverage-spec")))]
async fn post_events(State(state): State<AppState>, req: Request) -> Response {
    let sink = state.audit.clone();
    // Refuse before reading the body when the answer is known.
    if let Err(e) = sink.check_room() {
        return refuse(&state, e);
    }
    let _permit = sink.parse_permit().await;
    let body = match Bytes::from_request(req, &state).await {
        Ok(b) => b,
        Err(r) => {
            let status = r.status();
            tracing::warn!(
                status = status.as_u16(),
                "audit batch refused: {}",
                r.body_text()
            );
            let too_large = status == StatusCode::PAYLOAD_TOO_LARGE;
            sink.metrics()
                .refused(if too_large { "too_large" } else { "unreadable" });
            let message = if too_large {
                format!(
                    "audit batch larger than {} bytes (--audit-max-body); lower the API server's --audit-webhook-batch-max-size",
                    sink.config().max_body
                )
            } else {
                format!("cannot read the audit batch: {}", r.body_text())
            };
            return ApiError::Rejected { status, message }.into_response();
        }
    };
    match sink.ingest(body).await {
        Ok(done) => Json::<Ingested>(done).into_response(),
        Err(e) => refuse(&state, e),
    }
}

/// Filters of `GET /hits` and `GET /report`.
#[derive(Debug, Deserialize, Default)]
pub struct HitsQuery {
    /// Hits at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Hits before this time (RFC 3339).
    pub until: Option<String>,
    /// SQL LIKE pattern on the user agent.
    pub user_agent: Option<String>,
    /// SQL LIKE pattern on the endpoint (operation id).
    pub endpoint: Option<String>,
    /// Hits per page.
    pub limit: Option<u32>,
    /// The `next` of the previous page (also accepted as `cursor`).
    #[serde(alias = "cursor")]
    pub next: Option<String>,
}

fn time(name: &str, v: &Option<String>) -> Result<Option<jiff::Timestamp>, ApiError> {
    v.as_deref()
        .map(|s| {
            s.parse::<jiff::Timestamp>().map_err(|e| {
                ApiError::BadRequest(format!(
                    "{name}={s:?}: expected an RFC 3339 time such as 2026-04-20T06:47:56Z ({e})"
                ))
            })
        })
        .transpose()
}

/// The cursor as sent: `<time in µs>.<seq>` (opaque to clients).
fn encode_cursor(h: &AuditHit) -> String {
    format!("{}.{}", h.time.as_microsecond(), h.seq)
}

fn decode_cursor(s: &str) -> Result<AuditHitCursor, ApiError> {
    let bad = || ApiError::BadRequest(format!("next={s:?}: not a cursor from a previous page"));
    let (t, seq) = s.split_once('.').ok_or_else(bad)?;
    let time = t
        .parse::<i64>()
        .ok()
        .and_then(|t| jiff::Timestamp::from_microsecond(t).ok())
        .ok_or_else(bad)?;
    Ok(AuditHitCursor {
        time,
        seq: seq.parse().map_err(|_| bad())?,
    })
}

impl HitsQuery {
    fn store_query(&self, limit: u32) -> Result<AuditHitQuery, ApiError> {
        let since = time("since", &self.since)?;
        let until = time("until", &self.until)?;
        if let (Some(s), Some(u)) = (since, until)
            && s > u
        {
            return Err(ApiError::BadRequest(format!(
                "since ({s}) is after until ({u})"
            )));
        }
        Ok(AuditHitQuery {
            since,
            until,
            user_agent: self.user_agent.clone(),
            endpoint: self.endpoint.clone(),
            after: self.next.as_deref().map(decode_cursor).transpose()?,
            limit,
        })
    }
}

/// One hit as `GET /hits` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct HitView {
    #[serde(rename = "AuditID")]
    audit_id: String,
    /// `null` when the request maps to no endpoint.
    #[schema(required = true)]
    endpoint: Option<String>,
    verb: String,
    /// The request URI's path (no query).
    path: String,
    #[schema(required = true)]
    user_agent: Option<String>,
    #[schema(required = true)]
    test_name: Option<String>,
    /// The stage timestamp, RFC 3339.
    #[schema(value_type = String, format = DateTime)]
    time: jiff::Timestamp,
}

/// Whether this server takes audit events.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SinkState {
    /// Started with `--coverage-spec`.
    On,
    /// No `--coverage-spec`: stored hits are readable, no more come.
    Off,
}

/// The answer of `GET /api/v1/audit/hits`: a page of hits, by time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HitsPage {
    pub hits: Vec<HitView>,
    /// Ask again with `next=<it>` while it is not null.
    #[schema(required = true)]
    pub next: Option<String>,
    pub sink: SinkState,
}

impl From<AuditHit> for HitView {
    fn from(h: AuditHit) -> Self {
        let mut uri = h.request_uri;
        if let Some(q) = uri.find(['?', '#']) {
            uri.truncate(q);
        }
        HitView {
            audit_id: h.audit_id,
            endpoint: h.endpoint,
            verb: h.verb,
            path: uri,
            user_agent: h.user_agent,
            test_name: h.test_name,
            time: h.time,
        }
    }
}

/// The sink's stored hits.
///
/// The hits of a time window, filtered by user agent and endpoint (SQL
/// `LIKE`), a page at a time: the contract the `coverage` reporter and
/// `prova coverage live` read.
#[utoipa::path(get, path = "/api/v1/audit/hits", operation_id = "getAuditHits", tag = "audit",
    params(
        ("since" = Option<String>, Query, description = "Hits at or after this time (RFC 3339, stage timestamp)"),
        ("until" = Option<String>, Query, description = "Hits before this time (RFC 3339)"),
        ("user_agent" = Option<String>, Query, description = "SQL LIKE pattern on the user agent, case-sensitive, e.g. e2e%should%"),
        ("endpoint" = Option<String>, Query, description = "SQL LIKE pattern on the endpoint (operation id), e.g. %JobStatus; unmapped hits never match"),
        ("limit" = Option<u32>, Query, description = "Hits per page: default 1000, at most 10000"),
        ("next" = Option<String>, Query, description = "The next of the previous page (also accepted as cursor)")),
    responses(
        (status = 200, body = HitsPage, description = "A page of hits, ordered by time; while next is not null, ask again with next=<it>. sink off: this server takes no audit events (no --coverage-spec)"),
        (status = 400, body = ErrorBody, description = "A time that is not RFC 3339, since after until, or a bad cursor")))]
async fn hits(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HitsQuery>,
) -> Result<Response, ApiError> {
    let limit = q
        .limit
        .unwrap_or(DEFAULT_HITS_LIMIT)
        .clamp(1, MAX_HITS_LIMIT);
    let hits = state.store.query_audit_hits(&q.store_query(limit)?).await?;
    let next = (hits.len() as u32 == limit)
        .then(|| hits.last().map(encode_cursor))
        .flatten();
    let hits: Vec<HitView> = hits.into_iter().map(HitView::from).collect();
    // Stored hits are readable without a spec (another instance, or an
    // earlier run, may have taken them); `sink` says whether more can come.
    let sink = if state.audit.spec().is_ok() {
        SinkState::On
    } else {
        SinkState::Off
    };
    Ok(Json(HitsPage { hits, next, sink }).into_response())
}

/// The live coverage report.
///
/// The coverage report over the sink's hits in a window: the JSON of
/// `prova coverage report --json` (APISnoop's release-file shape).
#[utoipa::path(get, path = "/api/v1/audit/report", operation_id = "getAuditReport", tag = "audit",
    params(
        ("since" = Option<String>, Query, description = "Hits at or after this time (RFC 3339)"),
        ("until" = Option<String>, Query, description = "Hits before this time (RFC 3339)"),
        ("user_agent" = Option<String>, Query, description = "SQL LIKE pattern on the user agent"),
        ("endpoint" = Option<String>, Query, description = "SQL LIKE pattern on the endpoint")),
    responses(
        (status = 200, body = prova_coverage::report::Report, description = "The coverage report over the window's hits"),
        (status = 400, body = ErrorBody, description = "A time that is not RFC 3339, or since after until"),
        (status = 503, body = ErrorBody, description = "No --coverage-spec")))]
async fn report(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HitsQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(live_report(&state, &q).await?).into_response())
}

/// The coverage report over the sink's stored hits in the query's window
/// (all of them without one): `GET /report`'s body, and the dashboard's
/// `/coverage` source when the server has a spec. `Unavailable` without
/// one.
pub async fn live_report(
    state: &AppState,
    q: &HitsQuery,
) -> Result<prova_coverage::report::Report, ApiError> {
    let spec = state
        .audit
        .spec()
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .clone();
    let mut query = q.store_query(MAX_AUDIT_HITS_PER_QUERY)?;
    query.after = None;
    let ctx = MapContext::new(&spec, &[]);
    let mut tally = StoredTally::new(&ctx);
    loop {
        let page = state.store.query_audit_hits(&query).await?;
        for h in &page {
            tally.add(&h.verb, &h.request_uri, h.user_agent.as_deref());
        }
        match page.last() {
            Some(last) if page.len() as u32 == query.limit => {
                query.after = Some(AuditHitCursor {
                    time: last.time,
                    seq: last.seq,
                });
            }
            _ => break,
        }
    }
    let source = format!(
        "prova audit sink {}..{}",
        q.since.as_deref().unwrap_or(""),
        q.until.as_deref().unwrap_or("")
    );
    Ok(tally.report(&Default::default(), &source))
}
