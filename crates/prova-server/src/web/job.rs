//! `/jobs/{id}`: one job. Its facts and verdict, what it waits for, the
//! status tree (runs → tests → steps → targets) with progress, the suite's
//! JUnit cases (failures first, with message and output), artifacts, the
//! events (filtered, a page at a time), and the forms that stop, pause,
//! resume and retry it. `/live/jobs/{id}` streams its events so the page
//! can re-render its live parts; `/jobs/{id}/junit.xml` is the merged JUnit.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use prova_core::results::{ARTIFACTS, Artifacts, CaseStatus, TEST_CASE, TestCaseResult};
use prova_core::status::{JobStatus, TestStatus, status_event_names};
use prova_core::{Event, EventQuery, JobId, JobState};
use prova_store::{JobRecord, Store};
use serde::Deserialize;

use super::layout::{self, Chrome};
use super::login::{csrf_of, csrf_refused};
use super::session::Viewer;
use super::waits::{Plan, waits};
use super::{PageError, chrome};
use crate::AppState;

/// Suite cases shown at most (a page, not a report: the JUnit download
/// has them all).
pub const MAX_CASES: u32 = 5_000;
/// Events per page.
pub const EVENTS_PAGE: u32 = 200;
/// Payload text shown per event before it is cut.
const MAX_PAYLOAD_SHOWN: usize = 2_000;
/// Case output shown per case before it is cut.
const MAX_OUTPUT_SHOWN: usize = 16_000;

/// The events filter, in the URL (`ev_` keeps it apart from other forms).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct JobQuery {
    pub ev_name: Option<String>,
    pub ev_test: Option<String>,
    pub ev_step: Option<String>,
    pub ev_target: Option<String>,
    pub ev_run: Option<String>,
    /// Events after this sequence number (the next page).
    pub ev_after: Option<i64>,
    /// What was just done (`cancel`, `retry`, ...), for a notice.
    pub done: Option<String>,
    /// The job this one retries (after a retry).
    pub from: Option<JobId>,
}

fn filled(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl JobQuery {
    fn events_query(&self, id: JobId) -> Result<EventQuery, PageError> {
        let run_id = match filled(&self.ev_run) {
            None => None,
            Some(r) => Some(r.parse::<u32>().map_err(|_| {
                PageError::bad_request(format!("ev_run: expected a run number, found {r:?}"))
            })?),
        };
        Ok(EventQuery {
            job_id: Some(id),
            run_id,
            test_name: filled(&self.ev_test),
            step_label: filled(&self.ev_step),
            target_id: filled(&self.ev_target),
            names: filled(&self.ev_name)
                .map(|n| {
                    n.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            after_seq: self.ev_after,
            limit: Some(EVENTS_PAGE + 1),
            ..Default::default()
        })
    }

    fn link(&self, after: Option<i64>) -> String {
        layout::query(&[
            ("ev_name", filled(&self.ev_name)),
            ("ev_test", filled(&self.ev_test)),
            ("ev_step", filled(&self.ev_step)),
            ("ev_target", filled(&self.ev_target)),
            ("ev_run", filled(&self.ev_run)),
            ("ev_after", after.map(|a| a.to_string())),
        ])
    }
}

/// A suite case and where it was reported.
pub struct Case {
    pub run: u32,
    pub test: String,
    pub attempt: u32,
    pub step: String,
    pub target: String,
    pub case: TestCaseResult,
}

/// Everything the page shows.
pub struct JobView {
    pub job: JobRecord,
    pub status: JobStatus,
    pub owner: Option<String>,
    pub plan: Option<Plan>,
    pub cases: Vec<Case>,
    pub cases_cut: bool,
    pub artifacts: Vec<(String, String, Artifacts)>,
    /// The job's files: in the store, and on this server's disk only.
    pub artifact_files: crate::artifacts::ArtifactList,
    /// Tests whose last attempt failed (for "Retry failed").
    pub failed_tests: std::collections::BTreeSet<String>,
    pub events: Vec<Event>,
    pub events_next: Option<i64>,
    /// The newest status, case or artifact event read: the live stream
    /// starts after it.
    pub last_seq: i64,
}

/// Reads what the page shows: the status events (not step output), the
/// suite cases (bounded), the artifacts and one page of events.
pub async fn load(state: &AppState, id: JobId, q: &JobQuery) -> Result<Option<JobView>, PageError> {
    let store: &dyn Store = &*state.store;
    let Some(job) = store.get_job(id).await? else {
        return Ok(None);
    };
    let status_events = store
        .query_events(&EventQuery {
            job_id: Some(id),
            names: status_event_names(),
            ..Default::default()
        })
        .await?;
    let status = prova_core::status::rebuild(id, &job.name, &status_events);
    let mut last_seq = status_events.last().map(|e| e.seq).unwrap_or(0);
    drop(status_events);
    let case_events = store
        .query_events(&EventQuery {
            job_id: Some(id),
            names: vec![TEST_CASE.into()],
            limit: Some(MAX_CASES + 1),
            ..Default::default()
        })
        .await?;
    let cases_cut = case_events.len() > MAX_CASES as usize;
    let mut cases = Vec::new();
    for ev in case_events.iter().take(MAX_CASES as usize) {
        last_seq = last_seq.max(ev.seq);
        let Some(case) = ev
            .payload
            .clone()
            .and_then(|p| serde_json::from_value::<TestCaseResult>(p).ok())
        else {
            continue;
        };
        cases.push(Case {
            run: ev.run_id,
            test: ev.test_name.clone().unwrap_or_default(),
            attempt: ev.test_attempt.unwrap_or(0),
            step: ev.step_label.clone().unwrap_or_default(),
            target: ev.target.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
            case,
        });
    }
    // Failures first, then errors, then the rest, each in report order.
    cases.sort_by_key(|c| match c.case.status {
        CaseStatus::Failed => 0,
        CaseStatus::Error => 1,
        CaseStatus::Skipped => 3,
        CaseStatus::Passed => 2,
    });
    let artifact_events = store
        .query_events(&EventQuery {
            job_id: Some(id),
            names: vec![ARTIFACTS.into()],
            limit: Some(1000),
            ..Default::default()
        })
        .await?;
    let artifacts = artifact_events
        .iter()
        .filter_map(|ev| {
            last_seq = last_seq.max(ev.seq);
            let a = serde_json::from_value::<Artifacts>(ev.payload.clone()?).ok()?;
            Some((
                ev.step_label.clone().unwrap_or_default(),
                ev.target.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
                a,
            ))
        })
        .collect();
    let mut events = store.query_events(&q.events_query(id)?).await?;
    let events_next = (events.len() > EVENTS_PAGE as usize).then(|| {
        events.truncate(EVENTS_PAGE as usize);
        events.last().map(|e| e.seq)
    });
    let owner = state.manager.owner(id).await?;
    // An unreadable artifacts directory must not take the page down.
    let artifact_files = match crate::artifacts::load_list(state, id).await {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(job = id, "cannot list the job's artifacts: {e:?}");
            crate::artifacts::ArtifactList {
                job_id: id,
                ..Default::default()
            }
        }
    };
    let failed_tests = prova_engine::retry_failed::failed_tests(&status);
    let plan = Plan::from_extended(&job.extended_descriptor);
    Ok(Some(JobView {
        job,
        status,
        owner,
        plan,
        cases,
        cases_cut,
        artifacts,
        artifact_files,
        failed_tests,
        events,
        events_next: events_next.flatten(),
        last_seq,
    }))
}

/// `GET /jobs/{id}`.
pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    Query(q): Query<JobQuery>,
) -> Result<Response, PageError> {
    let csrf = viewer.csrf(&state.web);
    let title = format!("Job {id}");
    let chrome = chrome(&state, &title, csrf.as_deref());
    let id = parse_id(&id).map_err(|e| e.with(&chrome))?;
    let view = load(&state, id, &q)
        .await
        .map_err(|e| e.with(&chrome))?
        .ok_or_else(|| {
            PageError::new(
                axum::http::StatusCode::NOT_FOUND,
                format!("job {id} not found"),
            )
            .with(&chrome)
        })?;
    Ok(render(&chrome, &view, &q).into_response())
}

fn parse_id(id: &str) -> Result<JobId, PageError> {
    id.parse::<JobId>()
        .map_err(|_| PageError::bad_request(format!("{id:?} is not a job id (a number)")))
}

/// The whole page (apart from the handler, for the benchmark).
pub fn render(chrome: &Chrome<'_>, v: &JobView, q: &JobQuery) -> Markup {
    let id = v.job.id;
    let running = !v.status.state.is_some_and(JobState::is_final);
    layout::page(
        chrome,
        html! {
            @if let Some(done) = filled(&q.done) {
                p.notice role="status" id="notice" {
                    @match done.as_str() {
                        "retry" => { "Retry started: this job reruns job " a href={"/jobs/" (q.from.unwrap_or(0))} { (q.from.unwrap_or(0)) } "." },
                        "retry-failed" => { "Retry started: this job reruns the tests that failed in job " a href={"/jobs/" (q.from.unwrap_or(0))} { (q.from.unwrap_or(0)) } "." },
                        other => { "Requested: " (other) "." },
                    }
                }
            }
            @if running {
                section data-live-job={"/live/jobs/" (id) "?after=" (v.last_seq)} {
                    span.live id="live-indicator" { "not live (scripts off: reload to update)" }
                }
            }
            (header_part(chrome, v))
            (waits_part(v))
            (tree_part(v))
            (cases_part(v))
            (artifacts_part(v))
            (events_part(v, q))
        },
    )
}

fn header_part(chrome: &Chrome<'_>, v: &JobView) -> Markup {
    let job = &v.job;
    let st = &v.status;
    let state = st.state;
    html! {
        div data-live-part="header" {
            h1 { "Job " (job.id) ": " (job.name) " " (layout::state_badge(state)) " " (layout::verdict_badge(st.verdict)) }
            dl.facts {
                dt { "Tags" } dd { @if job.tags.is_empty() { span.none { "none" } } @else { (job.tags.join(", ")) } }
                dt { "Requestor" } dd { (job.requestor) }
                dt { "Started" } dd { (layout::time(st.start_time.or(Some(job.created_at)))) }
                dt { "Ended" } dd { (layout::time(st.end_time)) }
                @if let (Some(a), Some(b)) = (st.start_time, st.end_time) {
                    dt { "Duration" } dd { (layout::duration(layout::between(a, b))) }
                }
                dt { "Runs by" } dd { (v.owner.clone().unwrap_or_else(|| "nobody now".into())) }
                @if !st.state_err_msg.is_empty() { dt { "Error" } dd.error { (st.state_err_msg) } }
                dt { "JUnit" } dd { a href={"/jobs/" (job.id) "/junit.xml"} download { "merged JUnit XML" } }
            }
            div.actions {
                @if state == Some(JobState::Started) {
                    (action(chrome, job.id, "cancel", "Stop"))
                    (action(chrome, job.id, "pause", "Pause"))
                }
                @if state == Some(JobState::Paused) {
                    (action(chrome, job.id, "resume", "Resume"))
                }
                @if state.is_some_and(|s| s.is_final() || s == JobState::Paused) {
                    (action(chrome, job.id, "retry", "Retry (all tests)"))
                }
                @if state.is_some_and(JobState::is_final) && !v.failed_tests.is_empty() {
                    (action(chrome, job.id, "retry-failed", &format!("Retry failed ({})", v.failed_tests.len())))
                }
            }
        }
    }
}

fn action(chrome: &Chrome<'_>, id: JobId, what: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={"/jobs/" (id) "/" (what)} {
            (layout::csrf_field(chrome.csrf))
            button type="submit" id={"action-" (what)} { (label) }
        }
    }
}

fn waits_part(v: &JobView) -> Markup {
    let w = waits(&v.status, v.plan.as_ref());
    html! {
        div data-live-part="waits" {
            @if !w.is_empty() {
                h2 { "Waiting" }
                ul.waits { @for line in &w { li { (line) } } }
            }
        }
    }
}

/// A test's progress: target-steps done of target-steps planned (a failed
/// target counts as done: it leaves the test).
fn progress(t: &TestStatus, planned_steps: usize) -> (usize, usize) {
    let steps = planned_steps.max(t.step_statuses.len()).max(1);
    let targets = t.target_statuses.len();
    let mut done = 0;
    for target in &t.target_statuses {
        if target.failed_step.is_some() || target.error.is_some() {
            done += steps;
            continue;
        }
        done += t
            .step_statuses
            .iter()
            .filter(|s| {
                s.target_statuses
                    .iter()
                    .any(|x| x.target.id == target.target.id && x.out_time.is_some())
            })
            .count();
    }
    (done.min(steps * targets), steps * targets)
}

/// A test attempt's outcome; one that never finished in an ended job
/// (cancelled, failed) is not "running".
fn outcome(t: &TestStatus, job_ended: bool) -> Markup {
    match t.passed {
        Some(true) => layout::verdict_badge(prova_core::status::Verdict::Passed),
        Some(false) => layout::verdict_badge(prova_core::status::Verdict::Failed),
        None if job_ended => {
            html! { span.badge.cancelled { span aria-hidden="true" { "⊘" } " unfinished" } }
        }
        None => html! { span.badge.running { span aria-hidden="true" { "▶" } " running" } },
    }
}

fn tree_part(v: &JobView) -> Markup {
    let ended = v.status.state.is_some_and(JobState::is_final);
    let planned = |name: &str| {
        v.plan
            .as_ref()
            .and_then(|p| p.test(name))
            .map(|t| t.steps.len())
            .unwrap_or(0)
    };
    html! {
        div data-live-part="tree" {
            h2 { "Status" }
            @if v.status.run_statuses.is_empty() { p.none { "No run has started." } }
            @for run in &v.status.run_statuses {
                details.run open {
                    summary {
                        strong { "Run " (run.run_id) } " · started " (layout::time(run.start_time))
                        @if let Some(end) = run.end_time { " · ended " (layout::time(Some(end))) } @else if ended { " · did not finish" } @else { " · running" }
                    }
                    @for t in &run.test_statuses {
                        @let (done, total) = progress(t, planned(&t.test_name));
                        details.test open[t.passed != Some(true)] {
                            summary {
                                (outcome(t, ended)) " " strong { (t.test_name) }
                                @if t.test_attempt > 0 { " (attempt " (t.test_attempt + 1) ")" }
                                " " progress value=(done) max=(total.max(1)) {}
                                " " (done) " of " (total) " target-steps"
                            }
                            @if let Some(e) = &t.error { p.error { (e) } }
                            table.steps {
                                thead { tr { th { "Step" } th { "Target" } th { "In" } th { "Out" } th { "Result" } } }
                                tbody {
                                    @for s in &t.step_statuses {
                                        @for (i, x) in s.target_statuses.iter().enumerate() {
                                            tr {
                                                td { @if i == 0 { (s.step_label) } }
                                                td { (x.target.id) }
                                                td { (layout::time(x.in_time)) }
                                                td { (layout::time(x.out_time)) }
                                                td {
                                                    @match (&x.error, x.out_time) {
                                                        (Some(e), _) => { span.badge.fail { "✘ failed" } " " span.error { (layout::cut(e, MAX_PAYLOAD_SHOWN)) } },
                                                        (None, Some(_)) => span.badge.ok { "✔ done" },
                                                        (None, None) => span.badge.running { "▶ in step" },
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            @if !t.target_statuses.is_empty() {
                                table.targets {
                                    thead { tr { th { "Target" } th { "Acquired" } th { "Released" } th { "Failed at" } } }
                                    tbody {
                                        @for x in &t.target_statuses {
                                            tr {
                                                td { (x.target.id) }
                                                td { (layout::time(x.acquired_time)) }
                                                td { (layout::time(x.released_time)) }
                                                td {
                                                    @if let Some(s) = &x.failed_step { (s) }
                                                    @if let Some(e) = &x.error { " " span.error { (layout::cut(e, MAX_PAYLOAD_SHOWN)) } }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @let reports = &v.status.job_report;
            @if !reports.final_reports.is_empty() || reports.run_reports.iter().any(|r| !r.is_empty()) {
                h2 { "Reports" }
                table.reports {
                    thead { tr { th { "Run" } th { "Reporter" } th { "Success" } th { "Data" } } }
                    tbody {
                        @for (i, rs) in reports.run_reports.iter().enumerate() {
                            @for r in rs {
                                tr { td { (r.run_id.unwrap_or(i as u32 + 1)) } td { (r.reporter_name) }
                                     td { (report_badge(r.success)) } td { code { (layout::cut(&r.data.to_string(), MAX_PAYLOAD_SHOWN)) } } }
                            }
                        }
                        @for r in &reports.final_reports {
                            tr { td { "final" } td { (r.reporter_name) }
                                 td { (report_badge(r.success)) } td { code { (layout::cut(&r.data.to_string(), MAX_PAYLOAD_SHOWN)) } } }
                        }
                    }
                }
            }
        }
    }
}

fn report_badge(ok: bool) -> Markup {
    if ok {
        html! { span.badge.ok { "✔ success" } }
    } else {
        html! { span.badge.fail { "✘ failure" } }
    }
}

fn case_badge(s: CaseStatus) -> Markup {
    let (class, text) = match s {
        CaseStatus::Passed => ("ok", "✔ passed"),
        CaseStatus::Failed => ("fail", "✘ failed"),
        CaseStatus::Error => ("error", "⚠ error"),
        CaseStatus::Skipped => ("skipped", "↷ skipped"),
    };
    html! { span class={"badge " (class)} { (text) } }
}

fn cases_part(v: &JobView) -> Markup {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &v.cases {
        let k = match c.case.status {
            CaseStatus::Passed => "passed",
            CaseStatus::Failed => "failed",
            CaseStatus::Error => "error",
            CaseStatus::Skipped => "skipped",
        };
        *counts.entry(k).or_default() += 1;
    }
    html! {
        div data-live-part="cases" {
            h2 { "Test cases (JUnit)" }
            @if v.cases.is_empty() {
                p.none { "No suite reported test cases (steps that bring back a results directory report them)." }
            } @else {
                p {
                    @for (k, n) in &counts { (n) " " (k) "; " }
                    @if v.cases_cut { strong { "only the first " (MAX_CASES) " cases are shown; " } }
                    "the merged JUnit XML has them all."
                }
                table.cases {
                    thead { tr { th { "Result" } th { "Case" } th { "Suite" } th.num { "Time" } th { "Where" } th { "Message" } } }
                    tbody {
                        @for c in &v.cases {
                            tr.case data-status=(format!("{:?}", c.case.status).to_lowercase()) {
                                td { (case_badge(c.case.status)) }
                                td { (c.case.classname.as_deref().map(|k| format!("{k}.")).unwrap_or_default()) strong { (c.case.name) }
                                     @if c.case.flaky_failures > 0 { " " span.badge.paused { "flaky: " (c.case.flaky_failures) " failed reruns" } } }
                                td { (c.case.suite) }
                                td.num { @if let Some(t) = c.case.time_secs { (format!("{t:.2}s")) } }
                                td.muted { "run " (c.run) " · " (c.test) @if c.attempt > 0 { " #" (c.attempt + 1) } " · " (c.step) " · " (c.target) }
                                td {
                                    @if let Some(m) = &c.case.message { div.error.case-message { (layout::cut(m, MAX_PAYLOAD_SHOWN)) } }
                                    @if let Some(o) = &c.case.output {
                                        details { summary { "output" } pre { (layout::cut(o, MAX_OUTPUT_SHOWN)) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn artifacts_part(v: &JobView) -> Markup {
    html! {
        div data-live-part="artifacts" {
            @if !v.artifacts.is_empty() || !v.artifact_files.files.is_empty() {
                h2 { "Artifacts" }
                table.artifacts {
                    thead { tr { th { "Step" } th { "Target" } th { "Path" } th.num { "Files" } th.num { "Bytes" } th { "sha256" } } }
                    tbody {
                        @for (step, target, a) in &v.artifacts {
                            tr { td { (step) } td { (target) } td { code { (a.path) } } td.num { (a.files) } td.num { (a.bytes) }
                                 td { code { (a.sha256.clone().unwrap_or_default()) } } }
                        }
                    }
                }
                @if v.artifact_files.files.is_empty() {
                    p.muted { "No files of this job are in the store or on this server." }
                } @else {
                    table.artifact-files {
                        thead { tr { th { "File" } th.num { "Bytes" } th { "Where" } } }
                        tbody {
                            @for f in &v.artifact_files.files {
                                tr { td { a href=(artifact_href(v.job.id, &f.path)) download { (f.path) } } td.num { (f.bytes) }
                                     td { @if f.stored { "store" } @else { "the instance that ran the step" } } }
                            }
                        }
                    }
                    @if v.artifact_files.truncated {
                        p.muted { "Only the first " (crate::artifacts::MAX_LISTED) " files are listed." }
                    }
                }
            }
        }
    }
}

/// `/jobs/{id}/artifacts/<path>`, each segment percent-encoded (a name
/// may hold `#`, `?` or `%`).
fn artifact_href(id: JobId, path: &str) -> String {
    use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'%')
        .add(b'?')
        .add(b'<')
        .add(b'>')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'/');
    let mut href = format!("/jobs/{id}/artifacts");
    for seg in path.split('/') {
        href.push('/');
        href.extend(utf8_percent_encode(seg, SEGMENT));
    }
    href
}

fn events_part(v: &JobView, q: &JobQuery) -> Markup {
    let id = v.job.id;
    let val = |s: &Option<String>| s.clone().unwrap_or_default();
    html! {
        h2 id="events" { "Events" }
        form.filters method="get" action={"/jobs/" (id) "#events"} {
            label { "Names (comma-separated)" input type="search" name="ev_name" value=(val(&q.ev_name)); }
            label { "Run" input type="search" name="ev_run" size="4" value=(val(&q.ev_run)); }
            label { "Test" input type="search" name="ev_test" value=(val(&q.ev_test)); }
            label { "Step" input type="search" name="ev_step" value=(val(&q.ev_step)); }
            label { "Target" input type="search" name="ev_target" value=(val(&q.ev_target)); }
            button type="submit" { "Filter" }
            a href={"/jobs/" (id) "#events"} { "Clear" }
        }
        table.events {
            thead { tr { th.num { "Seq" } th { "Time" } th { "Event" } th { "Run" } th { "Test" } th { "Step" } th { "Target" } th { "Payload" } } }
            tbody {
                @for ev in &v.events {
                    tr id={"ev-" (ev.seq)} {
                        td.num { a href={"#ev-" (ev.seq)} { (ev.seq) } }
                        td { (layout::time(Some(ev.emit_time))) }
                        td { (ev.name) }
                        td { @if ev.run_id > 0 { (ev.run_id) } }
                        td { (ev.test_name.clone().unwrap_or_default()) @if let Some(a) = ev.test_attempt { @if a > 0 { " #" (a + 1) } } }
                        td { (ev.step_label.clone().unwrap_or_default()) }
                        td { (ev.target.as_ref().map(|t| t.id.as_str()).unwrap_or("")) }
                        td { @if let Some(p) = &ev.payload { code { (layout::cut(&p.to_string(), MAX_PAYLOAD_SHOWN)) } } }
                    }
                }
                @if v.events.is_empty() { tr { td colspan="8" .none { "No events match." } } }
            }
        }
        nav.pager {
            @if q.ev_after.is_some() { a href={"/jobs/" (id) (q.link(None)) "#events"} { "« First events" } }
            @if let Some(next) = v.events_next { a href={"/jobs/" (id) (q.link(Some(next))) "#events"} rel="next" { "Later events »" } }
        }
    }
}

/// `POST /jobs/{id}/{action}`: stop (`cancel`), `pause`, `resume` or
/// `retry`, with the form's CSRF token; then back to the job's page (or to
/// the new job's, after a retry).
pub async fn act(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Path((id, what)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    if !viewer.may_act(&state.web, csrf_of(&body).as_deref()) {
        tracing::warn!("refused a page action without its CSRF token: {what} on job {id}");
        return Err(csrf_refused(&state, &viewer));
    }
    let csrf = viewer.csrf(&state.web);
    let chrome = chrome(&state, "Action refused", csrf.as_deref());
    let id = parse_id(&id).map_err(|e| e.with(&chrome))?;
    let who = viewer.requestor();
    let m = &state.manager;
    let done = match what.as_str() {
        "cancel" | "stop" => m.cancel(id, who).await.map(|_| "cancel".to_string()),
        "pause" => m.pause(id, who).await.map(|_| "pause".to_string()),
        "resume" => m.resume(id, who).await.map(|_| "resume".to_string()),
        "retry" => {
            let new = m
                .retry(id, who)
                .await
                .map_err(|e| PageError::from(e).with(&chrome))?;
            return Ok(Redirect::to(&format!("/jobs/{new}?done=retry&from={id}")).into_response());
        }
        "retry-failed" => {
            let (new, _) = m
                .retry_failed(id, who)
                .await
                .map_err(|e| PageError::from(e).with(&chrome))?;
            return Ok(
                Redirect::to(&format!("/jobs/{new}?done=retry-failed&from={id}")).into_response(),
            );
        }
        other => {
            return Err(PageError::new(
                axum::http::StatusCode::NOT_FOUND,
                format!(
                    "no action {other:?}: expected cancel, pause, resume, retry or retry-failed"
                ),
            )
            .with(&chrome));
        }
    }
    .map_err(|e| PageError::from(e).with(&chrome))?;
    Ok(Redirect::to(&format!("/jobs/{id}?done={done}")).into_response())
}

/// `GET /live/jobs/{id}`: the job's status, case and artifact events after
/// `after`, as Server-Sent Events (the API's `follow` stream, under the
/// page session), ending with `end` when the job ends or pauses.
pub async fn live(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LiveQuery>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    if state.store.get_job(id).await?.is_none() {
        return Err(PageError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("job {id} not found"),
        ));
    }
    let mut names = status_event_names();
    names.push(TEST_CASE.into());
    names.push(ARTIFACTS.into());
    let events = crate::api::EventsQuery {
        name: Some(names.join(",")),
        after: q.after,
        follow: Some(true),
        ..Default::default()
    };
    Ok(crate::api::follow_response(state, id, events))
}

#[derive(Debug, Default, Deserialize)]
pub struct LiveQuery {
    pub after: Option<i64>,
}

/// `GET /jobs/{id}/junit.xml`: the merged JUnit of the job, as the API's
/// `/api/v1/jobs/{id}/junit`.
pub async fn junit(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    let xml = crate::api::merged_junit(&state, id).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/xml; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"job-{id}-junit.xml\""),
            ),
        ],
        xml,
    )
        .into_response())
}

/// `GET /jobs/{id}/artifacts/{path}`: one of the job's files, as the
/// API's `/api/v1/jobs/{id}/artifacts/{path}`.
pub async fn artifact(
    State(state): State<AppState>,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let id = parse_id(&id)?;
    Ok(crate::artifacts::file_response(&state, id, &path).await?)
}
