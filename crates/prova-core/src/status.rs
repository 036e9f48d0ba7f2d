//! The job status tree, rebuilt from events alone.
//!
//! Field names follow ConTest's `Status` so tools written for ConTest read
//! `prova status --json`. One difference: a retried test appears once per
//! attempt (with `TestAttempt`), so no attempt's outcome is hidden.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind, JobId, NewEvent, names};
use crate::state::JobState;
use crate::target::Target;

/// Job event names for reports (payload: [`Report`] fields).
pub const RUN_REPORT: &str = "RunReport";
pub const FINAL_REPORT: &str = "FinalReport";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobStatus {
    #[serde(rename = "JobID")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub job_id: JobId,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "State")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub state: Option<JobState>,
    #[serde(rename = "StateErrMsg")]
    pub state_err_msg: String,
    #[serde(rename = "StartTime")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub start_time: Option<jiff::Timestamp>,
    #[serde(rename = "EndTime")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub end_time: Option<jiff::Timestamp>,
    #[serde(rename = "RunStatuses")]
    pub run_statuses: Vec<RunStatus>,
    #[serde(rename = "JobReport")]
    pub job_report: JobReport,
    /// Derived from the state and the reports ([`Verdict::of`]).
    #[serde(rename = "Verdict", default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub verdict: Verdict,
}

/// A job's one verdict, derived from its events (its state and its
/// reporters' reports): `prova run`, `prova start --wait`, `prova status`,
/// the API and the exit code all read it from here, so they agree by
/// construction.
/// In JSON as docs/cli.md says: `passed`, `failed`, `error`, `cancelled`,
/// `pending` (as [`Verdict::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Verdict {
    /// Not ended yet (running, paused, cancelling).
    #[default]
    Pending,
    /// Completed, and every reporter said success.
    Passed,
    /// Completed, and a reporter said failure: the tests failed.
    Failed,
    /// The engine could not run the job (targets not acquired, a panic),
    /// or its tests failed because the infrastructure did (no cluster, no
    /// Docker daemon: [`Verdict::with_infra`]).
    Error,
    /// Cancelled before it ended.
    Cancelled,
}

impl Verdict {
    /// The verdict of a job in `state` with these reports.
    pub fn of(
        state: Option<JobState>,
        run_reports: &[Vec<Report>],
        final_reports: &[Report],
    ) -> Verdict {
        let reports_ok = run_reports.iter().flatten().all(|r| r.success)
            && final_reports.iter().all(|r| r.success);
        match state {
            Some(JobState::Completed) if reports_ok => Verdict::Passed,
            Some(JobState::Completed) => Verdict::Failed,
            Some(JobState::Cancelled) => Verdict::Cancelled,
            Some(JobState::Failed | JobState::PauseFailed | JobState::CancellationFailed) => {
                Verdict::Error
            }
            Some(JobState::Started | JobState::Paused | JobState::Cancelling) | None => {
                Verdict::Pending
            }
        }
    }

    /// Tests that failed because the infrastructure did (no cluster, no
    /// Docker daemon) proved nothing: the job is an [`Verdict::Error`]
    /// (exit 3), not a test failure (exit 1).
    pub fn with_infra(self, infra_failed: bool) -> Verdict {
        match self {
            Verdict::Failed if infra_failed => Verdict::Error,
            other => other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pending => "pending",
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Error => "error",
            Verdict::Cancelled => "cancelled",
        }
    }

    /// Every verdict.
    pub const ALL: [Verdict; 5] = [
        Verdict::Pending,
        Verdict::Passed,
        Verdict::Failed,
        Verdict::Error,
        Verdict::Cancelled,
    ];

    /// The verdict [`Verdict::as_str`] names; `None` for any other text.
    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// Whether the last attempt of a test failed because of the
/// infrastructure (see [`TargetStatus::infra`]); an earlier attempt that a
/// retry made good does not count.
fn infra_failed(st: &JobStatus) -> bool {
    st.run_statuses.iter().any(|run| {
        run.test_statuses.iter().any(|t| {
            let last = run
                .test_statuses
                .iter()
                .filter(|o| o.test_name == t.test_name)
                .map(|o| o.test_attempt)
                .max();
            Some(t.test_attempt) == last && t.target_statuses.iter().any(|ts| ts.infra)
        })
    })
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunStatus {
    #[serde(rename = "RunID")]
    pub run_id: u32,
    #[serde(rename = "StartTime")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub start_time: Option<jiff::Timestamp>,
    #[serde(rename = "EndTime")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub end_time: Option<jiff::Timestamp>,
    #[serde(rename = "TestStatuses")]
    pub test_statuses: Vec<TestStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestStatus {
    #[serde(rename = "TestName")]
    pub test_name: String,
    #[serde(rename = "TestAttempt")]
    pub test_attempt: u32,
    /// `Some` once the attempt finished.
    #[serde(rename = "Passed")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub passed: Option<bool>,
    #[serde(rename = "Error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(rename = "TestStepStatuses")]
    pub step_statuses: Vec<TestStepStatus>,
    #[serde(rename = "TargetStatuses")]
    pub target_statuses: Vec<TargetStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestStepStatus {
    #[serde(rename = "TestStepLabel")]
    pub step_label: String,
    #[serde(rename = "TargetStatuses")]
    pub target_statuses: Vec<StepTargetStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepTargetStatus {
    #[serde(rename = "Target")]
    pub target: Target,
    #[serde(rename = "InTime")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub in_time: Option<jiff::Timestamp>,
    #[serde(rename = "OutTime")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub out_time: Option<jiff::Timestamp>,
    #[serde(rename = "Error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TargetStatus {
    #[serde(rename = "Target")]
    pub target: Target,
    #[serde(rename = "AcquiredTime")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub acquired_time: Option<jiff::Timestamp>,
    #[serde(rename = "ReleasedTime")]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub released_time: Option<jiff::Timestamp>,
    /// The step the target failed at, if it failed.
    #[serde(
        rename = "FailedStep",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failed_step: Option<String>,
    #[serde(rename = "Error", default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The failure was the infrastructure's (a step could not do its work:
    /// no cluster, no Docker daemon), not the target's (`TargetErr` with
    /// `Infra: true`).
    #[serde(rename = "Infra", default, skip_serializing_if = "std::ops::Not::not")]
    pub infra: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobReport {
    #[serde(rename = "RunReports")]
    pub run_reports: Vec<Vec<Report>>,
    #[serde(rename = "FinalReports")]
    pub final_reports: Vec<Report>,
}

/// A reporter's verdict; the payload of `RunReport`/`FinalReport` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    #[serde(rename = "RunID", default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<u32>,
    #[serde(rename = "ReporterName")]
    pub reporter_name: String,
    #[serde(rename = "Success")]
    pub success: bool,
    #[serde(rename = "Data")]
    pub data: serde_json::Value,
    #[serde(
        rename = "ReportTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub report_time: Option<jiff::Timestamp>,
}

/// Every event name [`rebuild`] reads; the rest (step output) does not
/// change a status, so a store query can leave it out.
pub fn status_event_names() -> Vec<String> {
    let mut v: Vec<String> = [
        names::RUN_STARTED,
        names::RUN_FINISHED,
        names::TEST_STARTED,
        names::TEST_FINISHED,
        names::TEST_ERROR,
        names::TARGET_ACQUIRED,
        names::TARGET_RELEASED,
        names::TARGET_IN,
        names::TARGET_OUT,
        names::TARGET_ERR,
        RUN_REPORT,
        FINAL_REPORT,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(JobState::ALL.iter().map(|s| s.event_name().to_string()));
    v
}

/// The `Error` string of an event payload (`{"Error": "..."}`), if any.
pub fn payload_error(ev: &NewEvent) -> Option<String> {
    ev.payload
        .as_ref()
        .and_then(|p| p.get("Error"))
        .and_then(|e| e.as_str())
        .map(str::to_string)
}

/// Rebuilds a job's status from all its events, ordered by sequence.
pub fn rebuild(job_id: JobId, name: &str, events: &[Event]) -> JobStatus {
    let mut b = StatusBuilder::new(job_id, name);
    for ev in events {
        b.apply(ev);
    }
    b.finish()
}

/// A status built event by event: [`rebuild`] in steps. The store keeps
/// one per running job and saves its status now and then, so a status is
/// read as that saved status plus the events after it
/// ([`StatusBuilder::resume`]), not rebuilt from every event.
#[derive(Debug, Clone)]
pub struct StatusBuilder {
    status: JobStatus,
    /// run id -> index in `status.run_statuses`
    runs: HashMap<u32, usize>,
    /// (run, test, attempt) -> index in the run's `test_statuses`
    tests: HashMap<(u32, String, u32), usize>,
}

impl StatusBuilder {
    /// A job with no events yet.
    pub fn new(job_id: JobId, name: &str) -> Self {
        StatusBuilder::resume(JobStatus {
            job_id,
            name: name.to_string(),
            ..Default::default()
        })
    }

    /// Continues from a status built from a job's first events: applying
    /// the events after them gives what [`rebuild`] gives from all.
    pub fn resume(status: JobStatus) -> Self {
        let mut runs = HashMap::new();
        let mut tests = HashMap::new();
        for (ri, run) in status.run_statuses.iter().enumerate() {
            runs.insert(run.run_id, ri);
            for (ti, t) in run.test_statuses.iter().enumerate() {
                tests.insert((run.run_id, t.test_name.clone(), t.test_attempt), ti);
            }
        }
        StatusBuilder {
            status,
            runs,
            tests,
        }
    }

    /// Applies the job's next event (events of other jobs must not come
    /// here; step output is skipped).
    pub fn apply(&mut self, ev: &NewEvent) {
        if ev.kind == EventKind::Job {
            self.apply_job(ev);
        } else {
            self.apply_test(ev);
        }
    }

    /// The status so far, its verdict derived.
    pub fn status(&self) -> JobStatus {
        self.clone().finish()
    }

    /// The status, its verdict derived.
    pub fn finish(mut self) -> JobStatus {
        let st = &mut self.status;
        st.verdict = Verdict::of(
            st.state,
            &st.job_report.run_reports,
            &st.job_report.final_reports,
        )
        .with_infra(infra_failed(st));
        self.status
    }
}

impl StatusBuilder {
    fn apply_job(&mut self, ev: &NewEvent) {
        if let Some(state) = JobState::parse(&ev.name)
            && ev.name.starts_with("JobState")
        {
            if state == JobState::Started && self.status.start_time.is_none() {
                self.status.start_time = Some(ev.emit_time);
            }
            self.status.state = Some(state);
            self.status.state_err_msg = payload_error(ev).unwrap_or_default();
            self.status.end_time = state.is_final().then_some(ev.emit_time);
            return;
        }
        match ev.name.as_str() {
            names::RUN_STARTED => {
                let run = self.run(ev.run_id);
                run.start_time.get_or_insert(ev.emit_time);
            }
            names::RUN_FINISHED => self.run(ev.run_id).end_time = Some(ev.emit_time),
            RUN_REPORT | FINAL_REPORT => {
                let Some(mut report) = ev
                    .payload
                    .clone()
                    .and_then(|p| serde_json::from_value::<Report>(p).ok())
                else {
                    return;
                };
                report.report_time.get_or_insert(ev.emit_time);
                let reports = &mut self.status.job_report;
                if ev.name == FINAL_REPORT {
                    reports.final_reports.push(report);
                } else {
                    let idx = ev.run_id.saturating_sub(1) as usize;
                    if reports.run_reports.len() <= idx {
                        reports.run_reports.resize(idx + 1, Vec::new());
                    }
                    report.run_id = Some(ev.run_id);
                    reports.run_reports[idx].push(report);
                }
            }
            _ => {}
        }
    }

    fn run(&mut self, run_id: u32) -> &mut RunStatus {
        let runs = &mut self.status.run_statuses;
        let idx = *self.runs.entry(run_id).or_insert_with(|| {
            runs.push(RunStatus {
                run_id,
                ..Default::default()
            });
            runs.len() - 1
        });
        &mut self.status.run_statuses[idx]
    }

    fn test(&mut self, run_id: u32, name: &str, attempt: u32) -> &mut TestStatus {
        let run_idx = {
            self.run(run_id);
            self.runs[&run_id]
        };
        let tests = &mut self.status.run_statuses[run_idx].test_statuses;
        let key = (run_id, name.to_string(), attempt);
        let idx = *self.tests.entry(key).or_insert_with(|| {
            tests.push(TestStatus {
                test_name: name.to_string(),
                test_attempt: attempt,
                ..Default::default()
            });
            tests.len() - 1
        });
        &mut self.status.run_statuses[run_idx].test_statuses[idx]
    }

    fn apply_test(&mut self, ev: &NewEvent) {
        let Some(test_name) = ev.test_name.as_deref() else {
            return;
        };
        let attempt = ev.test_attempt.unwrap_or(0);
        let name = ev.name.as_str();
        // Step output events are the bulk of a big job; skip them early.
        if !matches!(
            name,
            names::TEST_STARTED
                | names::TEST_FINISHED
                | names::TEST_ERROR
                | names::TARGET_ACQUIRED
                | names::TARGET_RELEASED
                | names::TARGET_IN
                | names::TARGET_OUT
                | names::TARGET_ERR
        ) {
            return;
        }
        let test = self.test(ev.run_id, test_name, attempt);
        match name {
            names::TEST_FINISHED => {
                test.passed = ev
                    .payload
                    .as_ref()
                    .and_then(|p| p.get("Success"))
                    .and_then(|s| s.as_bool());
            }
            names::TEST_ERROR => test.error = payload_error(ev),
            names::TARGET_ACQUIRED => {
                if let Some(t) = &ev.target {
                    test.target_statuses.push(TargetStatus {
                        target: t.clone(),
                        acquired_time: Some(ev.emit_time),
                        ..Default::default()
                    });
                }
            }
            names::TARGET_RELEASED => {
                if let Some(t) = &ev.target
                    && let Some(ts) = test
                        .target_statuses
                        .iter_mut()
                        .rev()
                        .find(|s| s.target.id == t.id)
                {
                    ts.released_time = Some(ev.emit_time);
                }
            }
            names::TARGET_IN | names::TARGET_OUT | names::TARGET_ERR => {
                let (Some(label), Some(target)) = (ev.step_label.as_deref(), ev.target.as_ref())
                else {
                    return;
                };
                let step_idx = match test
                    .step_statuses
                    .iter()
                    .position(|s| s.step_label == label)
                {
                    Some(i) => i,
                    None => {
                        test.step_statuses.push(TestStepStatus {
                            step_label: label.to_string(),
                            target_statuses: Vec::new(),
                        });
                        test.step_statuses.len() - 1
                    }
                };
                let step = &mut test.step_statuses[step_idx];
                if name == names::TARGET_IN {
                    step.target_statuses.push(StepTargetStatus {
                        target: target.clone(),
                        in_time: Some(ev.emit_time),
                        ..Default::default()
                    });
                    return;
                }
                let error = (name == names::TARGET_ERR)
                    .then(|| payload_error(ev).unwrap_or_else(|| "failed".into()));
                if let Some(st) = step
                    .target_statuses
                    .iter_mut()
                    .rev()
                    .find(|s| s.target.id == target.id)
                {
                    st.out_time = Some(ev.emit_time);
                    st.error.clone_from(&error);
                }
                if let Some(err) = error
                    && let Some(ts) = test
                        .target_statuses
                        .iter_mut()
                        .rev()
                        .find(|s| s.target.id == target.id)
                {
                    ts.failed_step = Some(label.to_string());
                    ts.error = Some(err);
                    ts.infra = ev
                        .payload
                        .as_ref()
                        .and_then(|p| p.get("Infra"))
                        .and_then(|i| i.as_bool())
                        == Some(true);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_parses_from_its_name_and_nothing_else() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(v));
        }
        assert_eq!(Verdict::parse("Passed"), None);
        assert_eq!(Verdict::parse(""), None);
    }

    #[allow(clippy::too_many_arguments)]
    fn ev(
        seq: i64,
        kind: EventKind,
        run: u32,
        test: Option<&str>,
        step: Option<&str>,
        target: Option<&str>,
        name: &str,
        payload: Option<serde_json::Value>,
    ) -> Event {
        Event {
            seq,
            event: NewEvent {
                kind,
                job_id: 1,
                run_id: run,
                test_name: test.map(str::to_string),
                test_attempt: test.map(|_| 0),
                step_label: step.map(str::to_string),
                target: target.map(Target::with_id),
                name: name.to_string(),
                payload,
                emit_time: jiff::Timestamp::from_second(1_700_000_000 + seq).unwrap(),
            },
        }
    }

    #[test]
    fn rebuilds_a_failed_target_and_the_job_state() {
        use EventKind::*;
        let events = vec![
            ev(1, Job, 0, None, None, None, "JobStateStarted", None),
            ev(2, Job, 1, None, None, None, names::RUN_STARTED, None),
            ev(
                3,
                Test,
                1,
                Some("T"),
                None,
                Some("a"),
                names::TARGET_ACQUIRED,
                None,
            ),
            ev(
                4,
                Test,
                1,
                Some("T"),
                Some("s1"),
                Some("a"),
                names::TARGET_IN,
                None,
            ),
            ev(
                5,
                Test,
                1,
                Some("T"),
                Some("s1"),
                Some("a"),
                names::TARGET_ERR,
                Some(serde_json::json!({"Error": "exit 3"})),
            ),
            ev(
                6,
                Test,
                1,
                Some("T"),
                None,
                Some("a"),
                names::TARGET_RELEASED,
                None,
            ),
            ev(
                7,
                Test,
                1,
                Some("T"),
                None,
                None,
                names::TEST_FINISHED,
                Some(serde_json::json!({"Success": false})),
            ),
            ev(
                8,
                Job,
                1,
                None,
                None,
                None,
                RUN_REPORT,
                Some(
                    serde_json::json!({"ReporterName": "TargetSuccess", "Success": false, "Data": "0/1"}),
                ),
            ),
            ev(
                9,
                Job,
                0,
                None,
                None,
                None,
                "JobStateFailed",
                Some(serde_json::json!({"Error": "boom"})),
            ),
        ];
        let st = rebuild(1, "job", &events);
        assert_eq!(st.state, Some(JobState::Failed));
        assert_eq!(st.state_err_msg, "boom");
        assert!(st.end_time.is_some());
        let test = &st.run_statuses[0].test_statuses[0];
        assert_eq!(test.passed, Some(false));
        assert_eq!(test.target_statuses[0].failed_step.as_deref(), Some("s1"));
        assert_eq!(test.target_statuses[0].error.as_deref(), Some("exit 3"));
        assert!(test.target_statuses[0].released_time.is_some());
        assert_eq!(
            test.step_statuses[0].target_statuses[0].error.as_deref(),
            Some("exit 3")
        );
        assert_eq!(
            st.job_report.run_reports[0][0].reporter_name,
            "TargetSuccess"
        );
        assert!(!st.job_report.run_reports[0][0].success);
    }

    #[test]
    fn resuming_from_any_prefix_gives_the_full_rebuild() {
        use EventKind::*;
        let events = vec![
            ev(1, Job, 0, None, None, None, "JobStateStarted", None),
            ev(2, Job, 1, None, None, None, names::RUN_STARTED, None),
            ev(
                3,
                Test,
                1,
                Some("T"),
                None,
                Some("a"),
                names::TARGET_ACQUIRED,
                None,
            ),
            ev(
                4,
                Test,
                1,
                Some("T"),
                Some("s1"),
                Some("a"),
                names::TARGET_IN,
                None,
            ),
            ev(
                5,
                Test,
                1,
                Some("U"),
                Some("s1"),
                Some("b"),
                names::TARGET_IN,
                None,
            ),
            ev(
                6,
                Test,
                1,
                Some("T"),
                Some("s1"),
                Some("a"),
                names::TARGET_ERR,
                Some(serde_json::json!({"Error": "exit 3"})),
            ),
            ev(
                7,
                Test,
                1,
                Some("U"),
                Some("s1"),
                Some("b"),
                names::TARGET_OUT,
                None,
            ),
            ev(
                8,
                Test,
                1,
                Some("T"),
                None,
                Some("a"),
                names::TARGET_RELEASED,
                None,
            ),
            ev(
                9,
                Job,
                1,
                None,
                None,
                None,
                RUN_REPORT,
                Some(serde_json::json!({"ReporterName": "R", "Success": true, "Data": 1})),
            ),
            ev(10, Job, 0, None, None, None, "JobStateCompleted", None),
        ];
        let full = rebuild(1, "job", &events);
        for cut in 0..=events.len() {
            let mut b = StatusBuilder::new(1, "job");
            for e in &events[..cut] {
                b.apply(e);
            }
            // Through JSON, as the store saves it.
            let saved: JobStatus =
                serde_json::from_str(&serde_json::to_string(&b.status()).unwrap()).unwrap();
            let mut resumed = StatusBuilder::resume(saved);
            for e in &events[cut..] {
                resumed.apply(e);
            }
            assert_eq!(resumed.finish(), full, "resumed after {cut} events");
        }
    }
}
