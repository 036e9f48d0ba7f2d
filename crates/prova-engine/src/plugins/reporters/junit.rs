//! `junit`: writes a JUnit XML file at the end of the job (`File`, relative
//! to the current directory): a `<testsuite>` per test per run, a
//! `<testcase>` per target and step, with failures, timings and the step's
//! output. A retried test shows its final attempt; earlier failed attempts
//! of a test that then passed appear as flaky reruns.

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
use prova_core::status::Report;
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestRerun, TestSuite};

use crate::plugin::{FinalReportInput, PrepareCtx, PreparedReporter, Reporter, ReporterRole};

pub struct JUnit;

/// The prepared reporter; also used directly by `prova run --junit PATH`.
pub struct JUnitFile {
    pub path: PathBuf,
}

impl Reporter for JUnit {
    fn prepare(
        &self,
        role: ReporterRole,
        params: &Node,
        path: &FieldPath,
        _ctx: &PrepareCtx<'_>,
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
            Some(f) if !f.trim().is_empty() => Some(Arc::new(JUnitFile { path: f.into() })),
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
        let xml = render(input.job_name, input.job_id, input.events);
        let written = match xml {
            Ok(xml) => {
                if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    let _ = std::fs::create_dir_all(dir);
                }
                std::fs::write(&self.path, xml)
                    .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
            }
            Err(e) => Err(format!("cannot render JUnit: {e}")),
        };
        Some(match written {
            Ok(()) => Report {
                success: true,
                data: serde_json::json!({ "File": self.path.display().to_string() }),
                ..Default::default()
            },
            Err(e) => Report {
                success: false,
                data: serde_json::json!({ "Error": e }),
                ..Default::default()
            },
        })
    }
}

#[derive(Default)]
struct CaseData {
    start: Option<jiff::Timestamp>,
    end: Option<jiff::Timestamp>,
    error: Option<String>,
    stdout: String,
    stderr: String,
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
    let mut step_order: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut test_started: BTreeMap<(u32, String), jiff::Timestamp> = BTreeMap::new();
    for ev in events {
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
            "CmdStdout" => case.stdout.push_str(msg(ev)),
            "CmdStderr" => case.stderr.push_str(msg(ev)),
            _ => {}
        }
    }

    let mut report = quick_junit::Report::new(job_name);
    let _ = job_id;
    for ((run, test), attempts) in cases {
        let mut suite = TestSuite::new(format!("{test} (run {run})"));
        if let Some(t) = test_started.get(&(run, test.clone())) {
            suite.set_timestamp(to_chrono(*t));
        }
        let last = *attempts.keys().max().unwrap_or(&0);
        for ((_, label, target), data) in &attempts[&last] {
            let mut status = match &data.error {
                None if data.done => TestCaseStatus::success(),
                None => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message("the target never left this step");
                    s
                }
                Some(err) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(err.clone());
                    s.set_type("TargetErr");
                    s
                }
            };
            // Earlier failed attempts of the same case become reruns.
            for attempt in attempts.keys().filter(|a| **a < last) {
                let key = attempts[attempt]
                    .keys()
                    .find(|(_, l, t)| l == label && t == target)
                    .cloned();
                if let Some(prev) = key.and_then(|k| attempts[attempt].get(&k))
                    && let Some(err) = &prev.error
                {
                    // quick-junit writes reruns of a passing case as
                    // <flakyFailure>, of a failing one as <rerunFailure>.
                    let mut rerun = TestRerun::new(NonSuccessKind::Failure);
                    rerun.set_message(err.clone());
                    status.add_rerun(rerun);
                }
            }
            let mut case = TestCase::new(format!("{label} [{target}]"), status);
            case.set_classname(test.clone());
            if let (Some(s), Some(e)) = (data.start, data.end) {
                case.set_time(Duration::try_from(e.duration_since(s)).unwrap_or_default());
            }
            if !data.stdout.is_empty() {
                case.set_system_out(data.stdout.clone());
            }
            if !data.stderr.is_empty() {
                case.set_system_err(data.stderr.clone());
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
    report.to_string()
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
                status.set_message(m.clone());
            }
            if let (TestCaseStatus::NonSuccess { .. }, Some(out)) = (&status, &c.output) {
                status.set_description(out.clone());
            }
        }
        TestCaseStatus::Success { .. } => {
            for _ in 0..c.flaky_failures {
                status.add_rerun(TestRerun::new(NonSuccessKind::Failure));
            }
        }
    }
    let mut case = TestCase::new(c.name, status);
    let inner = c.classname.unwrap_or(c.suite);
    case.set_classname(format!("{label} [{target}].{inner}"));
    if let Some(t) = c.time_secs.filter(|t| t.is_finite() && *t >= 0.0) {
        case.set_time(Duration::from_secs_f64(t));
    }
    if matches!(c.status, CaseStatus::Passed)
        && let Some(out) = c.output
    {
        case.set_system_out(out);
    }
    case
}
