//! `/`: the jobs, newest first, filtered by state, name and tag, a page at
//! a time; `/live/jobs`: the same rows as a Server-Sent Events stream, so
//! the list updates while it is open.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use maud::{Markup, html};
use prova_core::status::Verdict;
use prova_core::{JobId, JobState};
use prova_engine::status::{list_verdict, list_verdicts};
use prova_store::{JobFilter, JobRecord, Store};
use serde::Deserialize;

use super::layout::{self, Chrome};
use super::session::Viewer;
use super::{PageError, chrome};
use crate::AppState;

/// Rows on a page, unless asked otherwise.
pub const PAGE_SIZE: u32 = 50;
/// The most rows a page may ask for.
pub const MAX_PAGE_SIZE: u32 = 500;
/// How often the live stream looks at the store.
const LIVE_POLL: Duration = Duration::from_secs(1);

/// The list's filters, all in the URL.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobsQuery {
    /// One state (`Started`, `Completed`, ...).
    pub state: Option<String>,
    /// Part of the job's name, any case.
    pub name: Option<String>,
    /// Comma-separated tags, all must be present.
    pub tag: Option<String>,
    /// Jobs older than this id (the next page).
    pub before: Option<JobId>,
    pub limit: Option<u32>,
}

impl JobsQuery {
    fn state(&self) -> Result<Option<JobState>, PageError> {
        match self
            .state
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => Ok(None),
            Some(s) => JobState::parse(s).map(Some).ok_or_else(|| {
                PageError::bad_request(format!(
                    "unknown state {s:?}: expected one of {}",
                    JobState::ALL.map(|s| s.as_str()).join(", ")
                ))
            }),
        }
    }

    fn name(&self) -> Option<String> {
        self.name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }

    fn tags(&self) -> Vec<String> {
        self.tag
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn limit(&self) -> u32 {
        self.limit.unwrap_or(PAGE_SIZE).clamp(1, MAX_PAGE_SIZE)
    }

    /// The filters as a query string, with another `before`.
    fn link(&self, before: Option<JobId>) -> String {
        layout::query(&[
            ("state", self.state.clone()),
            ("name", self.name.clone()),
            ("tag", self.tag.clone()),
            ("limit", self.limit.map(|l| l.to_string())),
            ("before", before.map(|b| b.to_string())),
        ])
    }
}

/// One page of jobs.
pub struct JobsPage {
    pub jobs: Vec<JobRecord>,
    /// The `before` of the next page, if there is one.
    pub next: Option<JobId>,
}

/// Reads one page: one store query, every filter (the name too) and the
/// page's bound in SQL. One job more than the page is asked for, to know
/// whether there is a next page.
pub async fn load_page(store: &dyn Store, q: &JobsQuery) -> Result<JobsPage, PageError> {
    let limit = q.limit();
    let filter = JobFilter {
        states: q.state()?.into_iter().collect(),
        tags: q.tags(),
        requestor: None,
        name_contains: q.name(),
        limit: Some(limit + 1),
        before_id: q.before,
    };
    let mut jobs = store.list_jobs(&filter).await?;
    let more = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let next = more.then(|| jobs.last().map(|j| j.id)).flatten();
    Ok(JobsPage { jobs, next })
}

/// One row of the table (its `id` lets the live script replace it).
pub fn row(job: &JobRecord, verdict: Verdict, now: jiff::Timestamp) -> Markup {
    let ended = job.state.is_some_and(JobState::is_final);
    let took = match (ended, job.state_time) {
        (true, Some(end)) => Some((layout::between(job.created_at, end), false)),
        (false, _) if job.state == Some(JobState::Started) => {
            Some((layout::between(job.created_at, now), true))
        }
        _ => None,
    };
    html! {
        tr id={"job-" (job.id)} data-state=(job.state.map(|s| s.as_str()).unwrap_or("")) {
            td.num { a href={"/jobs/" (job.id)} { (job.id) } }
            td { a href={"/jobs/" (job.id)} { (job.name) } }
            td {
                @for (i, t) in job.tags.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href={"/" (layout::query(&[("tag", Some(t.clone()))]))} { (t) }
                }
            }
            td { (layout::state_badge(job.state)) }
            td { (layout::verdict_badge(verdict)) }
            td { (layout::time(Some(job.created_at))) }
            td.num {
                @match took {
                    Some((d, false)) => (layout::duration(d)),
                    Some((d, true)) => { (layout::duration(d)) span.muted { " so far" } },
                    None => span.none { "—" },
                }
            }
            td { (job.requestor) }
        }
    }
}

/// `GET /`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<JobsQuery>,
) -> Result<Response, PageError> {
    let csrf = viewer.csrf(&state.web);
    let chrome = chrome(&state, "Jobs", csrf.as_deref());
    let page = load_page(&*state.store, &q)
        .await
        .map_err(|e| e.with(&chrome))?;
    let verdicts = list_verdicts(&*state.store, &page.jobs)
        .await
        .map_err(|e| PageError::from(e).with(&chrome))?;
    Ok(render(&chrome, &q, &page, &verdicts, jiff::Timestamp::now()).into_response())
}

/// The whole jobs page (apart from the handler for the benchmark).
pub fn render(
    chrome: &Chrome<'_>,
    q: &JobsQuery,
    page: &JobsPage,
    verdicts: &[Verdict],
    now: jiff::Timestamp,
) -> Markup {
    let live = format!("/live/jobs{}", q.link(q.before));
    let selected = q.state().ok().flatten();
    layout::page(
        chrome,
        html! {
            h1 { "Jobs" }
            form.filters method="get" action="/" {
                label { "State"
                    select name="state" {
                        option value="" { "any" }
                        @for s in JobState::ALL {
                            option value=(s.as_str()) selected[selected == Some(s)] { (s.as_str()) }
                        }
                    }
                }
                label { "Name contains" input type="search" name="name" value=(q.name.clone().unwrap_or_default()); }
                label { "Tags (all of, comma-separated)" input type="search" name="tag" value=(q.tag.clone().unwrap_or_default()); }
                button type="submit" { "Filter" }
                a href="/" { "Clear" }
                span.live id="live-indicator" {}
            }
            table.jobs {
                thead { tr {
                    th.num { "ID" } th { "Name" } th { "Tags" } th { "State" } th { "Verdict" }
                    th { "Started" } th.num { "Duration" } th { "Requestor" }
                } }
                tbody data-live=(live) {
                    @for (job, v) in page.jobs.iter().zip(verdicts) { (row(job, *v, now)) }
                    @if page.jobs.is_empty() {
                        tr id="no-jobs" { td colspan="8" .none { "No jobs match." } }
                    }
                }
            }
            nav.pager {
                @if q.before.is_some() { a href={"/" (q.link(None))} { "« Newest" } }
                @if let Some(next) = page.next { a href={"/" (q.link(Some(next)))} rel="next" { "Older »" } }
            }
        },
    )
}

/// `GET /live/jobs`: the page's rows as they change. The first poll sends
/// every row (the page may be older than the stream); then a `row` event
/// per row whose state changed or that is new, and a `gone` event per row
/// that no longer matches the filters (or left the page as newer jobs
/// arrived).
pub async fn live(
    State(state): State<AppState>,
    Query(q): Query<JobsQuery>,
) -> Result<Response, PageError> {
    q.state()?;
    Ok(Sse::new(live_rows(state, q))
        .keep_alive(KeepAlive::default())
        .into_response())
}

fn live_rows(state: AppState, q: JobsQuery) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    async_stream::stream! {
        let mut seen: HashMap<JobId, (Option<JobState>, Option<jiff::Timestamp>)> = HashMap::new();
        let mut first = true;
        loop {
            let page = match load_page(&*state.store, &q).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("live jobs list: {}", e.message);
                    yield Ok(SseEvent::default().event("error").data("internal error"));
                    break;
                }
            };
            let now = jiff::Timestamp::now();
            for job in &page.jobs {
                let key = (job.state, job.state_time);
                // Running rows' "so far" durations move: resend them too.
                let running = job.state == Some(JobState::Started);
                if !first && !running && seen.get(&job.id) == Some(&key) {
                    continue;
                }
                let v = match list_verdict(&*state.store, job).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::error!("live jobs list: {e}");
                        continue;
                    }
                };
                let html = row(job, v, now).into_string();
                let data = serde_json::json!({ "id": job.id, "html": html });
                yield Ok(SseEvent::default().event("row").data(data.to_string()));
            }
            let ids: std::collections::HashSet<JobId> = page.jobs.iter().map(|j| j.id).collect();
            for gone in seen.keys().filter(|id| !ids.contains(id)) {
                yield Ok(SseEvent::default().event("gone").data(gone.to_string()));
            }
            seen = page.jobs.iter().map(|j| (j.id, (j.state, j.state_time))).collect();
            first = false;
            tokio::time::sleep(LIVE_POLL).await;
        }
    }
}
