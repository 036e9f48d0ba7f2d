//! `/history?test=TEXT&job_name=NAME&last=N`: a test's (or JUnit case's)
//! outcomes over the newest N jobs of a name, from the same code as
//! `GET /api/v1/history` and `prova history` (`prova_results::history`):
//! a strip of cells linking to the jobs, the pass rate, the flaky rules
//! that held, the first failing job and the duration trend.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use prova_results::history::{
    DEFAULT_LAST, FlakyReason, History, HistoryAnswer, HistoryEntry, HistoryRequest, MAX_LAST,
    Outcome, load_history,
};
use serde::Deserialize;

use super::layout::{self, Chrome};
use super::session::Viewer;
use super::{PageError, chrome, trend};
use crate::AppState;
use crate::error::ApiError;

/// The page's query: the API's, all optional (no `test`: only the form).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryQuery {
    pub test: Option<String>,
    pub job_name: Option<String>,
    pub last: Option<u32>,
}

/// `GET /history`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, PageError> {
    let csrf = viewer.csrf(&state.web);
    let chrome = chrome(&state, "History", csrf.as_deref());
    let Some(text) = q.test.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(render(&chrome, &q, None).into_response());
    };
    let req = HistoryRequest::new(
        text,
        q.job_name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string),
        q.last.unwrap_or(DEFAULT_LAST),
    );
    let answer = load_history(state.store.as_ref(), &req)
        .await
        .map_err(|e| PageError::from(ApiError::from(e)).with(&chrome))?;
    Ok(render(&chrome, &q, Some(&answer)).into_response())
}

/// The whole page.
pub fn render(chrome: &Chrome<'_>, q: &HistoryQuery, answer: Option<&HistoryAnswer>) -> Markup {
    layout::page(
        chrome,
        html! {
            h1 { "History" }
            form.filters method="get" action="/history" {
                label { "Test or JUnit case (name, classname.name, or part of one)"
                    input type="search" name="test" required value=(q.test.clone().unwrap_or_default()); }
                label { "Job name (optional)"
                    input type="search" name="job_name" value=(q.job_name.clone().unwrap_or_default()); }
                label { "Last jobs"
                    input type="number" name="last" min="1" max=(MAX_LAST)
                        value=(q.last.unwrap_or(DEFAULT_LAST)); }
                button type="submit" { "Show" }
            }
            @if let Some(a) = answer { (answer_view(a)) }
            @else {
                p.muted { "Name a test (a TestDescriptors TestName) or a JUnit case to see how it went over the newest jobs." }
            }
            h2 { "Compare two jobs" }
            (super::compare::compare_form(None, None))
        },
    )
}

fn answer_view(a: &HistoryAnswer) -> Markup {
    html! {
        @if a.histories.is_empty() {
            p.notice role="status" { "Nothing named " code { (a.text) } " in the newest " (a.jobs_searched) " jobs." }
            @if !a.known.is_empty() {
                h2 { "What those jobs have" }
                ul { @for k in &a.known { li { (k) } } }
            }
        } @else {
            p.muted {
                (if a.exact { "Exact matches" } else { "Names containing the text" })
                " over " (a.jobs_searched) " jobs"
                @if a.truncated { " (more matched than are shown)" } "."
            }
            @for h in &a.histories { (history_view(h)) }
        }
    }
}

/// Outcome → CSS class and glyph (never colour alone).
fn cell_mark(outcome: Outcome, on_retry: bool) -> (&'static str, &'static str) {
    match outcome {
        Outcome::Passed if on_retry => ("passed retried", "✔↻"),
        Outcome::Passed => ("passed", "✔"),
        Outcome::Failed => ("failed", "✘"),
        Outcome::Error => ("error", "⚠"),
        Outcome::Skipped => ("skipped", "⤼"),
        Outcome::Incomplete => ("incomplete", "…"),
        Outcome::Absent => ("absent", "·"),
    }
}

fn history_view(h: &History) -> Markup {
    let s = &h.summary;
    // Oldest first, left to right, as a timeline reads.
    let entries: Vec<&HistoryEntry> = h.entries.iter().rev().collect();
    let first = entries.first().map(|e| e.job_id);
    let last = entries.last().map(|e| e.job_id);
    html! {
        section.history data-subject=(h.subject.full_name()) {
            h2 {
                span.muted { (h.subject.kind()) " " } (h.subject.full_name())
                span.muted { " in jobs named " } (h.job_name)
            }
            @if let prova_results::history::Subject::Case { suite, .. } = &h.subject {
                p.muted { "Suite " (suite) }
            }
            dl.facts {
                dt { "Pass rate" }
                dd {
                    @match s.pass_rate {
                        Some(r) => { strong { (format!("{:.0}%", r * 100.0)) } },
                        None => span.none { "— (no verdicts)" },
                    }
                    " · " (s.passed) " passed, " (s.failed) " failed, " (s.errors) " error, "
                    (s.skipped) " skipped, over " (s.executions) " of " (s.jobs) " jobs"
                }
                dt { "Flaky" }
                dd {
                    @if s.flaky {
                        span.badge.flaky { span aria-hidden="true" { "≈ " } "flaky" }
                        ul.reasons { @for r in &s.flaky_reasons { li { (reason(r)) } } }
                    } @else { "no" }
                }
                dt { "Failing since" }
                dd {
                    @match s.first_failing_job {
                        Some(j) => { a href={"/jobs/" (j)} { "job " (j) } " (" (s.failing_streak) " failing in a row)" },
                        None => "not failing",
                    }
                }
                @if let Some(m) = s.median_passed_secs {
                    dt { "Median passed duration" }
                    dd { (secs(m)) }
                }
            }
            div.strip role="list" aria-label="Outcomes, oldest first" {
                @for e in &entries {
                    @let (class, glyph) = cell_mark(e.execution.outcome, e.execution.passed_on_retry);
                    a role="listitem" class={"cell " (class)} href={"/jobs/" (e.job_id)}
                        title={"job " (e.job_id) ": " (e.execution.outcome.as_str())
                            @if let Some(d) = e.execution.duration_secs { ", " (secs(d)) }
                            @if let Some(m) = &e.execution.message { " — " (layout::cut(m, 200)) }} {
                        span aria-hidden="true" { (glyph) }
                        span.sr { " job " (e.job_id) " " (e.execution.outcome.as_str()) }
                    }
                }
            }
            @if let (Some(a), Some(b)) = (first, last) {
                @if a != b {
                    p { a href={"/compare/" (a) "/" (b)} { "Compare the oldest (job " (a) ") with the newest (job " (b) ")" } }
                }
            }
            h3 { "Duration" }
            (trend::svg(&entries.iter().map(|e| (e.job_id, e.execution.outcome, e.execution.duration_secs)).collect::<Vec<_>>()))
            details {
                summary { "Every job" }
                table {
                    thead { tr { th.num { "Job" } th { "Created" } th { "State" } th { "Outcome" } th.num { "Attempts" } th.num { "Duration" } th { "Message" } } }
                    tbody {
                        @for e in &h.entries {
                            tr {
                                td.num { a href={"/jobs/" (e.job_id)} { (e.job_id) } }
                                td { (layout::time(Some(e.created_at))) }
                                td { (e.job_state.clone().unwrap_or_default()) }
                                td {
                                    @let (class, glyph) = cell_mark(e.execution.outcome, e.execution.passed_on_retry);
                                    span class={"badge " (class)} { span aria-hidden="true" { (glyph) } " " (e.execution.outcome.as_str())
                                        @if e.execution.passed_on_retry { " on retry" } }
                                }
                                td.num { (e.execution.attempts) }
                                td.num { @match e.execution.duration_secs { Some(d) => (secs(d)), None => span.none { "—" } } }
                                td { @if let Some(m) = &e.execution.message { (layout::cut(m, 500)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn reason(r: &FlakyReason) -> Markup {
    let jobs = |jobs: &[i64]| {
        html! { @for (i, j) in jobs.iter().enumerate() { @if i > 0 { ", " } a href={"/jobs/" (j)} { (j) } } }
    };
    match r {
        FlakyReason::PassedOnRetry { jobs: j } => {
            html! { "passed on retry (failed, then passed on a later attempt) in jobs " (jobs(j)) }
        }
        FlakyReason::MixedOnSameInputs {
            inputs,
            switches,
            jobs: j,
        } => html! {
            "mixed outcomes on the same inputs (" code { (inputs) } "): switched between pass and fail "
            (switches) " times over jobs " (jobs(j))
        },
    }
}

/// A duration in seconds as the pages show durations.
pub fn secs(s: f64) -> String {
    if s.is_finite() && s >= 0.0 {
        layout::duration(std::time::Duration::from_secs_f64(s.min(1e9)))
    } else {
        "—".into()
    }
}
