//! `/compare/{a}/{b}`: job b (head) against job a (base), from the same
//! code as `GET /api/v1/compare/{a}/{b}` and `prova diff`: newly failing,
//! newly passing, still failing, added, removed, slower and faster, each a
//! section whose rows link to the subject's history and to both jobs.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use prova_core::JobId;
use prova_results::history::{Change, Comparison, Execution, load_comparison};
use serde::Deserialize;

use super::layout::{self, Chrome};
use super::session::Viewer;
use super::{PageError, chrome};
use crate::AppState;
use crate::error::ApiError;

fn parse_id(s: &str) -> Result<JobId, PageError> {
    s.trim()
        .parse::<JobId>()
        .map_err(|_| PageError::bad_request(format!("{s:?} is not a job id (a number)")))
}

/// `GET /compare/{a}/{b}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((a, b)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let csrf = viewer.csrf(&state.web);
    let title = format!("Compare {a} → {b}");
    let chrome = chrome(&state, &title, csrf.as_deref());
    let (a, b) = (
        parse_id(&a).map_err(|e| e.with(&chrome))?,
        parse_id(&b).map_err(|e| e.with(&chrome))?,
    );
    let cmp = load_comparison(state.store.as_ref(), a, b)
        .await
        .map_err(|e| PageError::from(ApiError::from(e)).with(&chrome))?;
    Ok(render(&chrome, &cmp).into_response())
}

/// The form's query (`/compare?a=1&b=2`).
#[derive(Debug, Deserialize)]
pub struct CompareForm {
    pub a: Option<String>,
    pub b: Option<String>,
}

/// `GET /compare?a=A&b=B`: the form; with both ids, a redirect to the page.
pub async fn form(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(f): Query<CompareForm>,
) -> Result<Response, PageError> {
    let csrf = viewer.csrf(&state.web);
    let chrome = chrome(&state, "Compare", csrf.as_deref());
    let a = f.a.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let b = f.b.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let (Some(a), Some(b)) = (a, b) {
        let (a, b) = (
            parse_id(a).map_err(|e| e.with(&chrome))?,
            parse_id(b).map_err(|e| e.with(&chrome))?,
        );
        return Ok(Redirect::to(&format!("/compare/{a}/{b}")).into_response());
    }
    Ok(layout::page(
        &chrome,
        html! { h1 { "Compare two jobs" } (compare_form(None, None)) },
    )
    .into_response())
}

/// A small form to compare two jobs (also on the history page).
pub fn compare_form(a: Option<JobId>, b: Option<JobId>) -> Markup {
    html! {
        form.filters method="get" action="/compare" {
            label { "Base job (before)" input type="number" name="a" min="1" required value=[a]; }
            label { "Head job (after)" input type="number" name="b" min="1" required value=[b]; }
            button type="submit" { "Compare" }
        }
    }
}

/// The whole page.
pub fn render(chrome: &Chrome<'_>, c: &Comparison) -> Markup {
    let (a, b) = (c.base.id, c.head.id);
    let sections: [(&str, &str, &[Change]); 7] = [
        (
            "newly-failing",
            "Newly failing (passed → failed or error)",
            &c.newly_failing,
        ),
        (
            "newly-passing",
            "Newly passing (failed or error → passed)",
            &c.newly_passing,
        ),
        ("still-failing", "Still failing", &c.still_failing),
        ("added", "Added (not in the base job)", &c.added),
        ("removed", "Removed (not in the head job)", &c.removed),
        ("slower", "Slower", &c.slower),
        ("faster", "Faster", &c.faster),
    ];
    layout::page(
        chrome,
        html! {
            h1 {
                "Job " a href={"/jobs/" (b)} { (b) } " compared with job " a href={"/jobs/" (a)} { (a) }
            }
            p {
                "Base: " a href={"/jobs/" (a)} { (a) " " (c.base.name) } " · Head: " a href={"/jobs/" (b)} { (b) " " (c.head.name) }
                @if c.base.name != c.head.name { span.notice { " The jobs have different names." } }
            }
            p.muted {
                (c.unchanged) " unchanged. Durations count as changed when they moved by at least "
                (c.duration_threshold.min_secs) " s and " (format!("{:.0}%", c.duration_threshold.min_ratio * 100.0)) "."
                " " a href={"/compare/" (b) "/" (a)} { "Swap" }
            }
            nav.toc {
                @for (id, title, list) in &sections {
                    a href={"#" (id)} { (title.split(" (").next().unwrap_or(title)) " (" (list.len()) ")" }
                }
            }
            @for (id, title, list) in &sections {
                section id=(id) {
                    h2 { (title) " " span.muted { "(" (list.len()) ")" } }
                    @if list.is_empty() { p.none { "None." } }
                    @else { (changes(list, a, b)) }
                }
            }
            h2 { "Another pair" }
            (compare_form(Some(a), Some(b)))
        },
    )
}

fn execution(e: Option<&Execution>, job: JobId) -> Markup {
    match e {
        None => html! { span.none { "absent" } },
        Some(e) => html! {
            a href={"/jobs/" (job)} {
                span class={"badge " (e.outcome.as_str())} { (e.outcome.as_str()) }
            }
            @if let Some(d) = e.duration_secs { " " (super::history::secs(d)) }
            @if let Some(m) = &e.message { div.message { (layout::cut(m, 400)) } }
        },
    }
}

fn changes(list: &[Change], a: JobId, b: JobId) -> Markup {
    html! {
        table {
            thead { tr { th { "Kind" } th { "Name" } th { "Base (job " (a) ")" } th { "Head (job " (b) ")" } th.num { "Δ duration" } } }
            tbody {
                @for c in list {
                    tr {
                        td { (c.subject.kind()) }
                        td {
                            a href={"/history" (layout::query(&[("test", Some(c.subject.full_name()))]))} { (c.subject.full_name()) }
                        }
                        td { (execution(c.base.as_ref(), a)) }
                        td { (execution(c.head.as_ref(), b)) }
                        td.num {
                            @match c.duration_delta_secs {
                                Some(d) => (format!("{}{}", if d >= 0.0 { "+" } else { "−" }, super::history::secs(d.abs()))),
                                None => span.none { "—" },
                            }
                        }
                    }
                }
            }
        }
    }
}
