//! `/coverage`: API coverage, as APISnoop shows it and more: the sunburst
//! (level → category → endpoint) with server-side zoom (`?focus=PATH`,
//! every arc a link), an endpoint's details and the tests that hit it
//! (`?endpoint=OPID`, or a focused endpoint), the untested stable eligible
//! endpoints, and the endpoints a test hit (`?test=NAME`).
//!
//! The report comes from, in order: the live audit sink's stored hits
//! when the server has `--coverage-spec` (the report of
//! `GET /api/v1/audit/report`, from the same code), else the saved report
//! given to `prova serve --coverage-report` (prova's `report --json` or an
//! APISnoop release file); else the page says how to get one.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, PreEscaped, html};
use prova_coverage::report::{EndpointCoverage, Report};
use prova_coverage::spec::Level;
use prova_coverage::sunburst::{Node, Status, SunburstOptions, sunburst_svg};
use serde::Deserialize;

use super::layout::{self, Chrome};
use super::session::Viewer;
use super::{PageError, chrome};
use crate::AppState;
use crate::audit_api::{HitsQuery, live_report};

/// Rows of a list shown before it is cut (the page says how many more).
pub const MAX_ROWS: usize = 2000;
/// Longest query value read (a focus, endpoint or test name).
const MAX_PARAM: usize = 1024;

/// The page's query.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CoverageQuery {
    /// `LEVEL`, `LEVEL/CATEGORY` or `LEVEL/CATEGORY/ENDPOINT`.
    pub focus: Option<String>,
    /// An operation id: its details.
    pub endpoint: Option<String>,
    /// A test name (as in the user agent): the endpoints it hit.
    pub test: Option<String>,
}

fn param(v: &Option<String>, name: &str) -> Result<Option<String>, PageError> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.len() > MAX_PARAM => Err(PageError::bad_request(format!(
            "{name} is {} bytes: at most {MAX_PARAM}",
            s.len()
        ))),
        Some(s) => Ok(Some(s.to_string())),
    }
}

/// Where the report came from.
enum Source {
    Live,
    Saved,
}

/// `GET /coverage`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Query(q): Query<CoverageQuery>,
) -> Result<Response, PageError> {
    let csrf = viewer.csrf(&state.web);
    let chrome = chrome(&state, "Coverage", csrf.as_deref());
    let focus = param(&q.focus, "focus").map_err(|e| e.with(&chrome))?;
    let endpoint = param(&q.endpoint, "endpoint").map_err(|e| e.with(&chrome))?;
    let test = param(&q.test, "test").map_err(|e| e.with(&chrome))?;
    let (report, source) = if state.audit.spec().is_ok() {
        let r = live_report(&state, &HitsQuery::default())
            .await
            .map_err(|e| PageError::from(e).with(&chrome))?;
        (std::borrow::Cow::Owned(r), Source::Live)
    } else if let Some(r) = &state.config.coverage_report {
        (std::borrow::Cow::Borrowed(r.as_ref()), Source::Saved)
    } else {
        return Ok(layout::page(&chrome, no_source()).into_response());
    };
    let opts = SunburstOptions {
        focus: focus.clone(),
        size: 560,
        link_base: "/coverage".into(),
    };
    let svg = sunburst_svg(&report, &opts)
        .map_err(|e| PageError::bad_request(e.to_string()).with(&chrome))?;
    // A focused endpoint shows its details as `?endpoint=` does.
    let endpoint = endpoint.or_else(|| {
        focus
            .as_deref()
            .filter(|f| f.matches('/').count() == 2)
            .and_then(|f| f.rsplit('/').next())
            .map(str::to_string)
    });
    let view = View {
        report: &report,
        source,
        svg,
        focus: focus.as_deref(),
        endpoint: endpoint.as_deref(),
        test: test.as_deref(),
    };
    Ok(render(&chrome, &view).into_response())
}

struct View<'a> {
    report: &'a Report,
    source: Source,
    svg: String,
    focus: Option<&'a str>,
    endpoint: Option<&'a str>,
    test: Option<&'a str>,
}

fn no_source() -> Markup {
    html! {
        h1 { "Coverage" }
        p.notice role="status" { "This server has no coverage to show." }
        p { "Either:" }
        ul {
            li { "start " code { "prova serve --coverage-spec swagger.json" } " (the cluster's OpenAPI v2 document) and point the API server's audit webhook at " code { "/api/v1/audit/events" } ": the page then shows what the stored hits cover (see docs/apisnoop.md); or" }
            li { "start " code { "prova serve --coverage-report report.json" } " with a saved report: the output of " code { "prova coverage report --json" } " or an APISnoop release file (" code { "resources/coverage/<release>.json" } ")." }
        }
    }
}

fn percent(n: u64, of: u64) -> String {
    if of == 0 {
        "—".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / of as f64)
    }
}

fn render(chrome: &Chrome<'_>, v: &View<'_>) -> Markup {
    let r = v.report;
    layout::page(
        chrome,
        html! {
            h1 { "Coverage" @if !r.release.is_empty() { " · release " (r.release) } }
            p.muted {
                @match v.source {
                    Source::Live => "From the live audit sink: every hit this server's store holds.",
                    Source::Saved => "From the saved report given to prova serve --coverage-report.",
                }
                @if !r.sources.is_empty() { " Sources: " (layout::cut(&r.sources.join(", "), 300)) }
            }
            dl.facts {
                dt { "Endpoints" } dd { (r.total_endpoints) }
                dt { "Tested" } dd { (r.tested_endpoints) " (" (percent(r.tested_endpoints, r.total_endpoints)) ")" }
                dt { "Conformance tested" } dd { (r.conformance_tested_endpoints) " (" (percent(r.conformance_tested_endpoints, r.total_endpoints)) ")" }
                dt { "Eligible, conformance tested" } dd { (r.tested_eligible) " of " (r.total_eligible) " (" (percent(r.tested_eligible, r.total_eligible)) ")" }
            }
            div.coverage {
                figure.sunburst {
                    (breadcrumb(v.focus))
                    (PreEscaped(&v.svg))
                    figcaption.muted { "Rings: level, category (API group), endpoint. Click an arc to zoom in, the centre to zoom out. Solid: conformance tested; hatched, dashed outline: tested; pale grey: untested." }
                }
                div.side {
                    (focus_stats(r, v.focus))
                    @if let Some(id) = v.endpoint { (endpoint_view(r, id)) }
                    @if let Some(t) = v.test { (test_view(r, t)) }
                    form.filters method="get" action="/coverage" {
                        label { "Endpoint (operation id)" input type="search" name="endpoint" value=(v.endpoint.unwrap_or("")); }
                        label { "Test" input type="search" name="test" value=(v.test.unwrap_or("")); }
                        @if let Some(f) = v.focus { input type="hidden" name="focus" value=(f); }
                        button type="submit" { "Show" }
                    }
                }
            }
            (untested_eligible(r))
        },
    )
}

fn breadcrumb(focus: Option<&str>) -> Markup {
    let parts: Vec<&str> = focus
        .unwrap_or("")
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    html! {
        nav.breadcrumb aria-label="Zoom" {
            a href="/coverage" { "all" }
            @for i in 0..parts.len() {
                " / "
                a href={"/coverage" (layout::query(&[("focus", Some(parts[..=i].join("/")))]))} { (parts[i]) }
            }
        }
    }
}

/// The focus's counts, as APISnoop's side panel at a level or category.
fn focus_stats(r: &Report, focus: Option<&str>) -> Markup {
    let root = prova_coverage::sunburst::tree(r);
    let path = focus.unwrap_or("").trim_matches('/');
    let Some(n): Option<&Node> = root.find(path) else {
        return layout::nothing();
    };
    if n.status.is_some() {
        return layout::nothing();
    }
    html! {
        section.stats {
            h2 { @if path.is_empty() { "Everything" } @else { (path) } }
            p {
                (n.endpoints) " endpoints · " (n.tested) " tested (" (percent(n.tested.into(), n.endpoints.into())) ") · "
                (n.conformance_tested) " conformance tested (" (percent(n.conformance_tested.into(), n.endpoints.into())) ")"
            }
        }
    }
}

fn status_of(e: &EndpointCoverage) -> Markup {
    let (class, glyph, word) = match Status::of(e) {
        Status::ConformanceTested => ("passed", "✔✔", "Conformance tested"),
        Status::Tested => ("passed", "✔", "Tested, no conformance test"),
        Status::Untested => ("skipped", "✘", "Untested"),
    };
    html! { span class={"badge " (class)} { span aria-hidden="true" { (glyph) } " " (word) } }
}

fn endpoint_view(r: &Report, id: &str) -> Markup {
    let Some(e) = r.endpoint(id) else {
        return html! { p.notice role="status" { "No endpoint " code { (id) } " in this report." } };
    };
    let level = match e.level {
        Level::Stable => "stable",
        Level::Beta => "beta",
        Level::Alpha => "alpha",
    };
    let gvk = [e.group.as_deref(), e.version.as_deref(), e.kind.as_deref()]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>()
        .join("/");
    html! {
        section.endpoint id="endpoint" {
            h2 { code { (e.endpoint) } }
            p { (status_of(e)) }
            dl.facts {
                dt { "Path" } dd { code { (e.path) } }
                dt { "Level, category" } dd {
                    a href={"/coverage" (layout::query(&[("focus", Some(format!("{level}/{}", e.category)))]))} { (level) " / " (e.category) }
                }
                @if !gvk.is_empty() { dt { "Group/version/kind" } dd { (gvk) } }
                @if let Some(a) = &e.action { dt { "Action" } dd { (a) } }
                dt { "Hits" } dd { (e.hits) " (" (e.test_hits) " by tests, " (e.conf_hits) " by conformance tests)" }
                dt { "Eligible" } dd {
                    @if e.eligible { "yes" } @else { "no" }
                    @if e.pending { " (pending)" }
                    @if let Some(why) = &e.ineligible_reason { " — " (why) }
                }
                @if let Some(d) = &e.description { dt { "Description" } dd { (layout::cut(d, 1000)) } }
            }
            h3 { "Tests that hit it (" (e.tests.len()) ")" }
            @if e.tests.is_empty() { p.none { "None." } }
            ul.tests {
                @for t in e.tests.iter().take(MAX_ROWS) {
                    li { a href={"/coverage" (layout::query(&[("test", Some(t.clone()))]))} { (t) }
                         " · " a href={"/history" (layout::query(&[("test", Some(t.clone()))]))} { "history" } }
                }
            }
            @if e.tests.len() > MAX_ROWS { p.muted { (e.tests.len() - MAX_ROWS) " more not shown." } }
        }
    }
}

fn test_view(r: &Report, name: &str) -> Markup {
    // prova's reports list each test's endpoints; an APISnoop file lists
    // only each endpoint's tests, so fall back to those.
    let listed = r.tests.iter().find(|t| t.test == name);
    let endpoints: Vec<&str> = match listed {
        Some(t) if !t.endpoints.is_empty() => t.endpoints.iter().map(String::as_str).collect(),
        _ => r
            .endpoints
            .iter()
            .filter(|e| e.tests.iter().any(|t| t == name))
            .map(|e| e.endpoint.as_str())
            .collect(),
    };
    html! {
        section.test id="test" {
            h2 { "Test " q { (name) } }
            @if let Some(t) = listed {
                p {
                    @if t.conformance_test { span.badge.passed { "conformance test" } " " }
                    @if let Some(rel) = &t.promotion_release { "promoted in " (rel) ". " }
                    (t.hits) " mapped hits. "
                    a href={"/history" (layout::query(&[("test", Some(name.to_string()))]))} { "Its history" }
                }
            }
            h3 { "Endpoints it hit (" (endpoints.len()) ")" }
            @if endpoints.is_empty() { p.none { "None in this report." } }
            ul {
                @for id in endpoints.iter().take(MAX_ROWS) {
                    li { a href={"/coverage" (layout::query(&[("endpoint", Some(id.to_string()))]))} { code { (id) } } }
                }
            }
            @if endpoints.len() > MAX_ROWS { p.muted { (endpoints.len() - MAX_ROWS) " more not shown." } }
        }
    }
}

fn untested_eligible(r: &Report) -> Markup {
    let known = r.eligibility_known;
    let list: Vec<&EndpointCoverage> = r
        .endpoints
        .iter()
        .filter(|e| !e.conf_tested)
        .filter(|e| {
            if known {
                e.eligible
            } else {
                e.level == Level::Stable
            }
        })
        .collect();
    html! {
        section id="untested" {
            h2 {
                @if known { "Untested stable eligible endpoints" } @else { "Stable endpoints without a conformance test" }
                " " span.muted { "(" (list.len()) ")" }
            }
            @if !known {
                p.muted { "This report does not say which endpoints are eligible (an APISnoop release file), so this lists every stable one." }
            }
            @if list.is_empty() { p.none { "None." } }
            @else {
                table {
                    thead { tr { th { "Endpoint" } th { "Category" } th { "Path" } th { "Status" } th { "Pending" } } }
                    tbody {
                        @for e in list.iter().take(MAX_ROWS) {
                            tr {
                                td { a href={"/coverage" (layout::query(&[("endpoint", Some(e.endpoint.clone()))]))} { code { (e.endpoint) } } }
                                td { (e.category) }
                                td { code { (e.path) } }
                                td { (status_of(e)) }
                                td { @if e.pending { "pending" } }
                            }
                        }
                    }
                }
                @if list.len() > MAX_ROWS { p.muted { (list.len() - MAX_ROWS) " more not shown." } }
            }
        }
    }
}
