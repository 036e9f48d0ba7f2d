//! `junit`: writes a JUnit XML file at the end of the job (`File`: as
//! named by `prova run`; beneath the files root under `prova serve`, see
//! [`PrepareCtx::resolve_output`]): a `<testsuite>` per test per run, a
//! `<testcase>` per target and step, with failures, timings and the step's
//! output. A retried test shows its final attempt; earlier failed attempts
//! of a test that then passed appear as flaky reruns.
//!
//! The file is well-formed XML whatever the events hold: characters XML
//! forbids become U+FFFD; names, messages and output are cut (with a
//! marker) at the sizes in [`xml_text`](super::xml_text); a time that no
//! duration can hold is left out.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prova_core::NewEvent;
use prova_core::descriptor::check_keys;
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::event::names;
use prova_core::node::Node;
use prova_core::results::{self, CaseStatus, TestCaseResult};
use prova_core::status::{FINAL_REPORT, RUN_REPORT, Report};
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestRerun, TestSuite};

use super::xml_text::{self, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_OUTPUT_BYTES, Tail};
use crate::output_file::OutputFile;
use crate::plugin::{FinalReportInput, PrepareCtx, PreparedReporter, Reporter, ReporterRole};

/// `<flakyFailure>` elements written per case at most (the count comes
/// from an event; a forged one could ask for billions).
const MAX_RERUNS: u32 = 100;

pub struct JUnit;

/// The reporter `prova run --junit PATH` adds: writes `path` as named.
pub struct JUnitFile {
    pub path: PathBuf,
}

/// The reporter a descriptor's `junit` entry prepares to.
struct JUnitOutput {
    out: OutputFile,
}

impl Reporter for JUnit {
    fn prepare(
        &self,
        role: ReporterRole,
        params: &Node,
        path: &FieldPath,
        ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<Arc<dyn PreparedReporter>> {
        if role == ReporterRole::Run {
            diags.error(
                path,
                params.pos,
                "junit is a final reporter: list it under Reporting.FinalReporters",
            );
            return None;
        }
        if let Some(map) = params.as_map() {
            check_keys(map, path, &["File"], diags);
        }
        match params.get_ci("File").map(Node::scalar_text) {
            Some(f) if !f.trim().is_empty() => match ctx.resolve_output(&f) {
                Ok(out) => Some(Arc::new(JUnitOutput { out })),
                Err(e) => {
                    diags.error(&path.key("File"), params.pos, e);
                    None
                }
            },
            _ => {
                diags.error(
                    &path.key("File"),
                    params.pos,
                    "missing: expected the path of the JUnit XML file to write",
                );
                None
            }
        }
    }
}

#[async_trait]
impl PreparedReporter for JUnitFile {
    fn needs_events(&self) -> bool {
        true
    }

    async fn final_report(&self, input: &FinalReportInput<'_>) -> Option<Report> {
        Some(write_report(&OutputFile::ambient(&self.path), input))
    }
}

#[async_trait]
impl PreparedReporter for JUnitOutput {
    fn needs_events(&self) -> bool {
        true
    }

    async fn final_report(&self, input: &FinalReportInput<'_>) -> Option<Report> {
        Some(write_report(&self.out, input))
    }
}

fn write_report(out: &OutputFile, input: &FinalReportInput<'_>) -> Report {
    let written = render(input.job_name, input.job_id, input.events)
        .map_err(|e| format!("cannot render JUnit: {e}"))
        .and_then(|xml| out.write(xml.as_bytes()));
    match written {
        Ok(()) => Report {
            success: true,
            data: serde_json::json!({ "File": out.display_path().display().to_string() }),
            ..Default::default()
        },
        Err(e) => Report {
            success: false,
            data: serde_json::json!({ "Error": e }),
            ..Default::default()
        },
    }
}

#[derive(Default)]
struct CaseData {
    start: Option<jiff::Timestamp>,
    end: Option<jiff::Timestamp>,
    error: Option<String>,
    stdout: Tail,
    stderr: Tail,
    done: bool,
}

/// (run, test) -> attempt -> the suite's own cases as steps reported them:
/// (step label, target, case)
type SuiteCases = BTreeMap<(u32, String), BTreeMap<u32, Vec<(String, String, TestCaseResult)>>>;

/// (run, test) -> attempt -> (step order, target) -> case
type Cases = BTreeMap<(u32, String), BTreeMap<u32, BTreeMap<(usize, String, String), CaseData>>>;

/// Renders a job's events as JUnit XML.
pub fn render(
    job_name: &str,
    job_id: prova_core::JobId,
    events: &[NewEvent],
) -> Result<String, quick_junit::SerializeError> {
    let mut cases: Cases = BTreeMap::new();
    let mut suite_cases: SuiteCases = BTreeMap::new();
    let mut run_reports: Vec<Report> = Vec::new();
    let mut step_order: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut test_started: BTreeMap<(u32, String), jiff::Timestamp> = BTreeMap::new();
    for ev in events {
        if (ev.name == RUN_REPORT || ev.name == FINAL_REPORT)
            && let Some(r) = ev
                .payload
                .clone()
                .and_then(|p| serde_json::from_value::<Report>(p).ok())
        {
            run_reports.push(r);
            continue;
        }
        let (Some(test), Some(label), Some(target)) = (&ev.test_name, &ev.step_label, &ev.target)
        else {
            if let (Some(test), names::TEST_STARTED) = (&ev.test_name, ev.name.as_str()) {
                test_started
                    .entry((ev.run_id, test.clone()))
                    .or_insert(ev.emit_time);
            }
            continue;
        };
        if ev.name == results::TEST_CASE {
            if let Some(case) = ev
                .payload
                .clone()
                .and_then(|p| serde_json::from_value::<TestCaseResult>(p).ok())
            {
                suite_cases
                    .entry((ev.run_id, test.clone()))
                    .or_default()
                    .entry(ev.test_attempt.unwrap_or(0))
                    .or_default()
                    .push((label.clone(), target.id.clone(), case));
            }
            continue;
        }
        let n = step_order.len();
        let order = *step_order.entry((test.clone(), label.clone())).or_insert(n);
        let case = cases
            .entry((ev.run_id, test.clone()))
            .or_default()
            .entry(ev.test_attempt.unwrap_or(0))
            .or_default()
            .entry((order, label.clone(), target.id.clone()))
            .or_default();
        match ev.name.as_str() {
            names::TARGET_IN => case.start = Some(ev.emit_time),
            names::TARGET_OUT => {
                case.end = Some(ev.emit_time);
                case.done = true;
            }
            names::TARGET_ERR => {
                case.end = Some(ev.emit_time);
                case.done = true;
                case.error = Some(
                    prova_core::status::payload_error(&prova_core::Event {
                        seq: 0,
                        event: ev.clone(),
                    })
                    .unwrap_or_else(|| "failed".into()),
                );
            }
            "CmdStdout" => case.stdout.push(msg(ev), MAX_OUTPUT_BYTES),
            "CmdStderr" => case.stderr.push(msg(ev), MAX_OUTPUT_BYTES),
            _ => {}
        }
    }

    let mut report = quick_junit::Report::new(name(job_name));
    let _ = job_id;
    for ((run, test), mut attempts) in cases {
        let mut suite = TestSuite::new(name(&format!("{test} (run {run})")));
        if let Some(t) = test_started.get(&(run, test.clone())) {
            suite.set_timestamp(to_chrono(*t));
        }
        let last = *attempts.keys().max().unwrap_or(&0);
        let final_cases = attempts.remove(&last).unwrap_or_default();
        for ((_, label, target), data) in final_cases {
            let mut status = match &data.error {
                None if data.done => TestCaseStatus::success(),
                None => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message("the target never left this step");
                    s
                }
                Some(err) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(message(err));
                    s.set_type("TargetErr");
                    s
                }
            };
            // Earlier failed attempts of the same case become reruns.
            for earlier in attempts.values() {
                let prev = earlier
                    .iter()
                    .find(|((_, l, t), _)| *l == label && *t == target);
                if let Some((_, prev)) = prev
                    && let Some(err) = &prev.error
                {
                    // quick-junit writes reruns of a passing case as
                    // <flakyFailure>, of a failing one as <rerunFailure>.
                    let mut rerun = TestRerun::new(NonSuccessKind::Failure);
                    rerun.set_message(message(err));
                    status.add_rerun(rerun);
                }
            }
            let mut case = TestCase::new(name(&format!("{label} [{target}]")), status);
            case.set_classname(name(&test));
            if let (Some(s), Some(e)) = (data.start, data.end) {
                case.set_time(Duration::try_from(e.duration_since(s)).unwrap_or_default());
            }
            if !data.stdout.is_empty() {
                case.set_system_out(data.stdout.finish(MAX_OUTPUT_BYTES));
            }
            if !data.stderr.is_empty() {
                case.set_system_err(data.stderr.finish(MAX_OUTPUT_BYTES));
            }
            suite.add_test_case(case);
        }
        let own = suite_cases
            .remove(&(run, test.clone()))
            .and_then(|mut a| a.remove(&last))
            .unwrap_or_default();
        for (label, target, c) in own {
            suite.add_test_case(suite_case(&label, &target, c));
        }
        report.add_test_suite(suite);
    }
    if !run_reports.is_empty() {
        report.add_test_suite(reports_suite(run_reports));
    }
    report.to_string()
}

/// The reporters' verdicts, one case each: every run report, and the final
/// reports of the reporters listed before this one (`--junit` adds its
/// reporter last). The job's verdict is derived from the same reports, so
/// a CI reading this file fails the build when `prova run` exits 1 for them.
fn reports_suite(reports: Vec<Report>) -> TestSuite {
    let mut suite = TestSuite::new("prova reports");
    for r in reports {
        let status = if r.success {
            TestCaseStatus::success()
        } else {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(message(&format!(
                "{} said failure: {}",
                r.reporter_name, r.data
            )));
            s.set_type("RunReport");
            s
        };
        let run = r
            .run_id
            .map(|n| format!(" (run {n})"))
            .unwrap_or_else(|| " (final)".to_string());
        let mut case = TestCase::new(name(&format!("{}{run}", r.reporter_name)), status);
        case.set_classname("prova.reports");
        suite.add_test_case(case);
    }
    suite
}

/// A name as written: allowed characters only, at most [`MAX_NAME_BYTES`].
fn name(s: &str) -> String {
    xml_text::head(s, MAX_NAME_BYTES)
}

/// A message as written: allowed characters, at most [`MAX_MESSAGE_BYTES`].
fn message(s: &str) -> String {
    xml_text::head(s, MAX_MESSAGE_BYTES)
}

fn msg(ev: &NewEvent) -> &str {
    ev.payload
        .as_ref()
        .and_then(|p| p.get("Msg"))
        .and_then(|m| m.as_str())
        .unwrap_or("")
}

fn to_chrono(t: jiff::Timestamp) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::from_timestamp(t.as_second(), t.subsec_nanosecond() as u32)
        .unwrap_or_default()
        .fixed_offset()
}

/// A test case of the suite a step ran, under the step and target that ran
/// it (classname `label [target].<classname or suite>`).
fn suite_case(label: &str, target: &str, c: TestCaseResult) -> TestCase {
    let mut status = match c.status {
        CaseStatus::Passed => TestCaseStatus::success(),
        CaseStatus::Skipped => TestCaseStatus::skipped(),
        CaseStatus::Failed => TestCaseStatus::non_success(NonSuccessKind::Failure),
        CaseStatus::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
    };
    match &mut status {
        TestCaseStatus::NonSuccess { .. } | TestCaseStatus::Skipped { .. } => {
            if let Some(m) = &c.message {
                status.set_message(message(m));
            }
            if let (TestCaseStatus::NonSuccess { .. }, Some(out)) = (&status, &c.output) {
                status.set_description(xml_text::head(out, MAX_OUTPUT_BYTES));
            }
        }
        TestCaseStatus::Success { .. } => {
            for _ in 0..c.flaky_failures.min(MAX_RERUNS) {
                status.add_rerun(TestRerun::new(NonSuccessKind::Failure));
            }
        }
    }
    let mut case = TestCase::new(name(&c.name), status);
    let inner = c.classname.unwrap_or(c.suite);
    case.set_classname(name(&format!("{label} [{target}].{inner}")));
    // The payload may hold any number (`1e20`, a negative one): a time
    // no duration holds is left out, never a panic.
    if let Some(t) = c
        .time_secs
        .and_then(|t| Duration::try_from_secs_f64(t).ok())
    {
        case.set_time(t);
    }
    if matches!(c.status, CaseStatus::Passed)
        && let Some(out) = c.output
    {
        case.set_system_out(xml_text::head(&out, MAX_OUTPUT_BYTES));
    }
    case
}

#[cfg(test)]
mod tests {
    use crate::prepare::prepare_str_in;
    use prova_core::node::Format;

    fn descriptor(file: &str) -> String {
        format!(
            "JobName: j\nRuns: 1\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters:\n      Targets: [{{ID: a}}]\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: T\n      Steps:\n        - {{name: echo, label: e, parameters: {{text: [hi]}}}}\nReporting:\n  FinalReporters:\n    - name: junit\n      parameters: {{File: {file:?}}}\n"
        )
    }

    #[test]
    fn the_file_is_confined_to_the_files_root() {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let registry = crate::plugins::registry();
        let outside = top.path().join("escaped.xml");
        for file in ["../escaped.xml", outside.to_str().unwrap(), "/tmp/x.xml"] {
            let e = prepare_str_in(
                &descriptor(file),
                Format::Yaml,
                None,
                Some(&root),
                &registry,
            )
            .err()
            .unwrap_or_else(|| panic!("{file}: accepted"))
            .to_string();
            assert!(e.contains("File"), "{e}");
            assert!(
                e.contains("is not a writable file beneath the files root"),
                "{e}"
            );
        }
        assert!(!outside.exists());
        prepare_str_in(
            &descriptor("reports/j.xml"),
            Format::Yaml,
            None,
            Some(&root),
            &registry,
        )
        .unwrap();
        // Without a files root (`prova run`), any path is the user's own.
        prepare_str_in(&descriptor("../x.xml"), Format::Yaml, None, None, &registry).unwrap();
    }
}
