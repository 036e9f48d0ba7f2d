//! What happened to each ConTest test and each JUnit case in one job.
//!
//! A **test** (a `TestDescriptors[]` entry, by its name) runs once per run,
//! with retries as further attempts (`TestAttempt` 1, 2, ...). In each run
//! its last attempt counts; across runs the most severe outcome counts
//! (error, then failed, then incomplete, then passed, then skipped).
//! An attempt passed when its `TestFinished` says `Success: true`; it is an
//! error (Allure's "broken": the test could not run as written: targets not
//! acquired, a step that could not start) when it failed with a
//! `TestError`, and failed (a target failed a step: an assertion) when it
//! failed without one.
//!
//! A JUnit **case** (suite, classname, name) is reported by a step for a
//! target in an attempt of a test in a run. For each (run, test, step,
//! target) the last attempt that reported the case counts; across those the
//! most severe outcome counts. A case counts as skipped only when every
//! final result skipped it.
//!
//! A subject **passed on retry** in a job when, in some run (and, for a
//! case, the same step and target), an attempt did not pass and a later one
//! passed; or, for a case, when its JUnit file recorded failed reruns
//! before a pass (Surefire's `flakyFailure`, `FlakyFailures` here).

use std::collections::BTreeMap;

use prova_core::event::names;
use prova_core::results::{CaseStatus, TEST_CASE, TestCaseResult};
use prova_core::{Event, JobId};
use serde::{Deserialize, Serialize};

use super::inputs::TestInputs;

/// The longest failure message kept per execution, in bytes.
pub const MAX_MESSAGE: usize = 2048;

/// How a subject ended in one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Passed (maybe after retries).
    Passed,
    /// An assertion failed: a target failed a step, or a JUnit `<failure>`.
    Failed,
    /// Could not run as written: a `TestError`, or a JUnit `<error>`.
    Error,
    /// Skipped (JUnit `<skipped>`).
    Skipped,
    /// Started and never finished: the job was cancelled, or still runs.
    Incomplete,
    /// Not part of that job.
    Absent,
}

impl Outcome {
    /// Failed or error: what a failing streak and a regression count.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Error)
    }

    /// Passed, failed or error: what a pass rate counts.
    pub fn is_verdict(self) -> bool {
        matches!(self, Outcome::Passed | Outcome::Failed | Outcome::Error)
    }

    /// Severity for combining runs and targets: the larger wins.
    fn severity(self) -> u8 {
        match self {
            Outcome::Absent => 0,
            Outcome::Skipped => 1,
            Outcome::Passed => 2,
            Outcome::Incomplete => 3,
            Outcome::Failed => 4,
            Outcome::Error => 5,
        }
    }

    fn worst(self, other: Outcome) -> Outcome {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
            Outcome::Incomplete => "incomplete",
            Outcome::Absent => "absent",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a history follows: a ConTest test by name, or a JUnit case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "Kind")]
pub enum Subject {
    /// A test of the job descriptor (`TestDescriptors[].TestName`).
    #[serde(rename = "test")]
    Test {
        #[serde(rename = "Name")]
        name: String,
    },
    /// A JUnit test case a step brought back.
    #[serde(rename = "case")]
    Case {
        #[serde(rename = "Suite")]
        suite: String,
        #[serde(rename = "Classname", default, skip_serializing_if = "Option::is_none")]
        classname: Option<String>,
        #[serde(rename = "Name")]
        name: String,
    },
}

/// How well a subject matches what a user typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    No,
    /// The text is part of the name (or, for a case, of `classname.name`).
    Partial,
    /// The text is the name (or, for a case, `classname.name`).
    Exact,
}

impl Subject {
    /// A case's `classname.name` (its name alone without a classname); a
    /// test's name.
    pub fn full_name(&self) -> String {
        match self {
            Subject::Test { name } => name.clone(),
            Subject::Case {
                classname: Some(c),
                name,
                ..
            } if !c.is_empty() => format!("{c}.{name}"),
            Subject::Case { name, .. } => name.clone(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Test { .. } => "test",
            Subject::Case { .. } => "case",
        }
    }

    /// Case-sensitive: exact on the name or full name, else a substring of
    /// the full name.
    pub fn matches(&self, text: &str) -> Match {
        let full = self.full_name();
        let name = match self {
            Subject::Test { name } | Subject::Case { name, .. } => name,
        };
        if name == text || full == text {
            Match::Exact
        } else if full.contains(text) {
            Match::Partial
        } else {
            Match::No
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Test { name } => write!(f, "test {name:?}"),
            Subject::Case { suite, .. } => {
                write!(f, "case {:?} (suite {suite:?})", self.full_name())
            }
        }
    }
}

/// One subject in one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Execution {
    #[serde(rename = "Outcome")]
    pub outcome: Outcome,
    /// The most attempts of any run (1 without retries).
    #[serde(rename = "Attempts")]
    pub attempts: u32,
    /// An attempt did not pass and a later one did (see the module docs).
    #[serde(rename = "PassedOnRetry")]
    pub passed_on_retry: bool,
    /// A test: the time from its start to its end, summed over runs. A
    /// case: the longest time of its final results.
    #[serde(
        rename = "DurationSecs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_secs: Option<f64>,
    /// Why it failed (the first failure of its final attempts), bounded.
    #[serde(rename = "Message", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Fingerprint of the inputs it ran with (see [`super::inputs`]).
    #[serde(rename = "Inputs", default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

/// Every subject of one job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobOutcomes {
    pub job_id: JobId,
    pub subjects: BTreeMap<Subject, Execution>,
}

/// A case's results in one job: the test that first reported it, and per
/// (run, test, step, target) its results by attempt.
type CaseSlots<'a> = (
    Option<&'a str>,
    BTreeMap<(u32, &'a str, &'a str, &'a str), BTreeMap<u32, Vec<TestCaseResult>>>,
);

/// One attempt of a test in a run.
#[derive(Default)]
struct AttemptState {
    started: Option<jiff::Timestamp>,
    finished: Option<(jiff::Timestamp, bool)>,
    error: Option<String>,
    target_error: Option<String>,
}

impl AttemptState {
    fn outcome(&self) -> Outcome {
        match self.finished {
            Some((_, true)) => Outcome::Passed,
            Some((_, false)) if self.error.is_some() => Outcome::Error,
            Some((_, false)) => Outcome::Failed,
            None => Outcome::Incomplete,
        }
    }

    fn message(&self) -> Option<String> {
        self.error.clone().or_else(|| self.target_error.clone())
    }
}

/// A case result's outcome.
fn case_outcome(s: CaseStatus) -> Outcome {
    match s {
        CaseStatus::Passed => Outcome::Passed,
        CaseStatus::Failed => Outcome::Failed,
        CaseStatus::Error => Outcome::Error,
        CaseStatus::Skipped => Outcome::Skipped,
    }
}

fn bounded(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Combines the final attempts of several runs (or slots) into one
/// execution.
#[derive(Default)]
struct Combined {
    outcome: Option<Outcome>,
    attempts: u32,
    passed_on_retry: bool,
    message: Option<String>,
    inputs: Option<String>,
}

impl Combined {
    fn add(&mut self, outcome: Outcome, message: Option<String>) {
        let before = self.outcome.unwrap_or(Outcome::Absent);
        self.outcome = Some(before.worst(outcome));
        if outcome.is_failure() && self.message.is_none() {
            self.message = message.map(bounded);
        }
    }

    fn finish(self, duration_secs: Option<f64>) -> Execution {
        Execution {
            outcome: self.outcome.unwrap_or(Outcome::Absent),
            attempts: self.attempts.max(1),
            passed_on_retry: self.passed_on_retry,
            duration_secs,
            message: self.message,
            inputs: self.inputs,
        }
    }
}

/// What happened to every test and case of a job, from its history events
/// (any order; other events are ignored). `extended_descriptor` gives the
/// tests' inputs.
pub fn job_outcomes(job_id: JobId, extended_descriptor: &str, events: &[Event]) -> JobOutcomes {
    let inputs = TestInputs::from_extended_descriptor(extended_descriptor);
    // test -> run -> attempt -> state
    let mut tests: BTreeMap<&str, BTreeMap<u32, BTreeMap<u32, AttemptState>>> = BTreeMap::new();
    let mut cases: BTreeMap<Subject, CaseSlots<'_>> = BTreeMap::new();
    for ev in events.iter().filter(|e| e.job_id == job_id) {
        let Some(test) = ev.test_name.as_deref() else {
            continue;
        };
        let attempt = ev.test_attempt.unwrap_or(0);
        if ev.name == TEST_CASE {
            let Some(case) = ev
                .payload
                .as_ref()
                .and_then(|p| TestCaseResult::deserialize(p).ok())
            else {
                continue;
            };
            let subject = Subject::Case {
                suite: case.suite.clone(),
                classname: case.classname.clone(),
                name: case.name.clone(),
            };
            let slot = (
                ev.run_id,
                test,
                ev.step_label.as_deref().unwrap_or(""),
                ev.target.as_ref().map(|t| t.id.as_str()).unwrap_or(""),
            );
            let entry = cases.entry(subject).or_default();
            entry.0.get_or_insert(test);
            entry
                .1
                .entry(slot)
                .or_default()
                .entry(attempt)
                .or_default()
                .push(case);
            continue;
        }
        let state = tests
            .entry(test)
            .or_default()
            .entry(ev.run_id)
            .or_default()
            .entry(attempt)
            .or_default();
        match ev.name.as_str() {
            names::TEST_STARTED => {
                state.started.get_or_insert(ev.emit_time);
            }
            names::TEST_FINISHED => {
                let ok = ev
                    .payload
                    .as_ref()
                    .and_then(|p| p.get("Success"))
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false);
                state.finished = Some((ev.emit_time, ok));
            }
            names::TEST_ERROR if state.error.is_none() => {
                state.error = prova_core::status::payload_error(ev);
            }
            names::TARGET_ERR if state.target_error.is_none() => {
                let target = ev.target.as_ref().map(|t| t.id.as_str()).unwrap_or("?");
                let step = ev.step_label.as_deref().unwrap_or("?");
                let err = prova_core::status::payload_error(ev).unwrap_or_else(|| "failed".into());
                state.target_error = Some(format!("target {target} failed at step {step}: {err}"));
            }
            _ => {}
        }
    }

    let mut subjects = BTreeMap::new();
    for (name, runs) in tests {
        let mut c = Combined {
            inputs: inputs.of(name).map(str::to_string),
            ..Default::default()
        };
        let mut duration: Option<f64> = None;
        for attempts in runs.values() {
            c.attempts = c.attempts.max(attempts.keys().max().map_or(0, |a| a + 1));
            let Some((_, last)) = attempts.iter().next_back() else {
                continue;
            };
            let outcome = last.outcome();
            if outcome == Outcome::Passed
                && attempts
                    .values()
                    .rev()
                    .skip(1)
                    .any(|a| a.outcome() != Outcome::Passed)
            {
                c.passed_on_retry = true;
            }
            c.add(outcome, last.message());
            let start = attempts.values().find_map(|a| a.started);
            let end = attempts
                .values()
                .rev()
                .find_map(|a| a.finished.map(|f| f.0));
            if let (Some(s), Some(e)) = (start, end) {
                let secs = e.duration_since(s).as_secs_f64().max(0.0);
                *duration.get_or_insert(0.0) += secs;
            }
        }
        subjects.insert(
            Subject::Test {
                name: name.to_string(),
            },
            c.finish(duration),
        );
    }
    for (subject, (test, slots)) in cases {
        let mut c = Combined {
            inputs: test.and_then(|t| inputs.of(t)).map(str::to_string),
            ..Default::default()
        };
        let mut duration: Option<f64> = None;
        for attempts in slots.values() {
            c.attempts = c.attempts.max(attempts.len() as u32);
            let Some((_, last)) = attempts.iter().next_back() else {
                continue;
            };
            let outcome = last
                .iter()
                .map(|r| case_outcome(r.status))
                .fold(Outcome::Absent, Outcome::worst);
            let earlier_failed = attempts
                .values()
                .rev()
                .skip(1)
                .flatten()
                .any(|r| case_outcome(r.status).is_failure());
            if outcome == Outcome::Passed
                && (earlier_failed || last.iter().any(|r| r.flaky_failures > 0))
            {
                c.passed_on_retry = true;
            }
            let message = last
                .iter()
                .find(|r| case_outcome(r.status).is_failure())
                .and_then(|r| r.message.clone().or_else(|| r.output.clone()));
            c.add(outcome, message);
            for r in last {
                if let Some(t) = r.time_secs.filter(|t| t.is_finite() && *t >= 0.0) {
                    duration = Some(duration.map_or(t, |d: f64| d.max(t)));
                }
            }
        }
        subjects.insert(subject, c.finish(duration));
    }
    JobOutcomes { job_id, subjects }
}
