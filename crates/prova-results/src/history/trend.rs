//! One subject over the newest jobs of a name.
//!
//! - **Pass rate**: passed ÷ (passed + failed + error) over the jobs the
//!   subject ran in to the end; skipped, incomplete and absent executions
//!   do not count. A pass on retry counts as a pass (nextest's "flaky but
//!   successful").
//! - **Flaky** when either rule holds in the window:
//!   1. *passed on retry*: in some job an attempt did not pass and a later
//!      one did (or the JUnit file recorded failed reruns); see
//!      [`super::outcome`].
//!   2. *mixed outcomes on the same inputs*: among the jobs whose inputs
//!      (see [`super::inputs`]) are the same, oldest to newest, the final
//!      outcome switches between pass and fail (failed or error) at least
//!      twice. One switch is a regression (pass → fail: see the first
//!      failing job) or a fix (fail → pass), not flakiness; two (pass, fail,
//!      pass or fail, pass, fail) on unchanged inputs is. ReportPortal's
//!      flaky table counts switches the same way, over final attempts.
//! - **First failing job**: when the newest execution that reached a
//!   verdict failed, the oldest job of the unbroken run of failures that
//!   ends there (jobs where the subject was skipped, incomplete or absent
//!   neither break nor extend the run). `None` when the newest passed.

use std::collections::BTreeMap;

use prova_core::JobId;
use serde::{Deserialize, Serialize};

use super::outcome::{Execution, JobOutcomes, Outcome, Subject};

/// A job as a history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    #[serde(rename = "JobID")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub job_id: JobId,
    /// When the job was created.
    #[serde(rename = "CreatedAt")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: jiff::Timestamp,
    /// The job's state (`Completed`, ...), if it has one.
    #[serde(rename = "JobState", default, skip_serializing_if = "Option::is_none")]
    pub job_state: Option<String>,
    /// The subject in that job; `Outcome: absent` when it did not run there.
    #[serde(flatten)]
    pub execution: Execution,
}

/// Why a subject counts as flaky.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "Rule")]
pub enum FlakyReason {
    /// Failed, then passed on a retry in these jobs.
    #[serde(rename = "passed-on-retry")]
    PassedOnRetry {
        #[serde(rename = "Jobs")]
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<i64>))]
        jobs: Vec<JobId>,
    },
    /// Switched between pass and fail at least twice over these jobs, which
    /// all ran with the same inputs.
    #[serde(rename = "mixed-on-same-inputs")]
    MixedOnSameInputs {
        #[serde(rename = "Inputs")]
        inputs: String,
        #[serde(rename = "Switches")]
        switches: u32,
        #[serde(rename = "Jobs")]
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<i64>))]
        jobs: Vec<JobId>,
    },
}

/// What a history says in a line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistorySummary {
    /// Jobs in the window (the subject ran in `Executions` of them).
    #[serde(rename = "Jobs")]
    pub jobs: u32,
    #[serde(rename = "Executions")]
    pub executions: u32,
    #[serde(rename = "Passed")]
    pub passed: u32,
    #[serde(rename = "Failed")]
    pub failed: u32,
    #[serde(rename = "Errors")]
    pub errors: u32,
    #[serde(rename = "Skipped")]
    pub skipped: u32,
    /// passed ÷ (passed + failed + errors); `None` when that is 0 ÷ 0.
    #[serde(rename = "PassRate", default, skip_serializing_if = "Option::is_none")]
    pub pass_rate: Option<f64>,
    #[serde(rename = "Flaky")]
    pub flaky: bool,
    #[serde(
        rename = "FlakyReasons",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub flaky_reasons: Vec<FlakyReason>,
    /// The first job of the current failing streak.
    #[serde(
        rename = "FirstFailingJob",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub first_failing_job: Option<JobId>,
    /// Jobs in the current failing streak.
    #[serde(rename = "FailingStreak")]
    pub failing_streak: u32,
    /// Median duration of the passed executions, seconds.
    #[serde(
        rename = "MedianPassedSecs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub median_passed_secs: Option<f64>,
}

/// A subject over the newest jobs of a name, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct History {
    #[serde(rename = "Subject")]
    pub subject: Subject,
    #[serde(rename = "JobName")]
    pub job_name: String,
    #[serde(rename = "Summary")]
    pub summary: HistorySummary,
    /// Newest first: one entry per job of the window.
    #[serde(rename = "Entries")]
    pub entries: Vec<HistoryEntry>,
}

/// A job of the window: when it was made, its state and its outcomes.
#[derive(Debug, Clone)]
pub struct WindowJob<'a> {
    pub created_at: jiff::Timestamp,
    pub state: Option<String>,
    pub outcomes: &'a JobOutcomes,
}

/// The history of `subject` over `jobs` (newest first).
pub fn history_of(subject: &Subject, job_name: &str, jobs: &[WindowJob<'_>]) -> History {
    let entries: Vec<HistoryEntry> = jobs
        .iter()
        .map(|j| HistoryEntry {
            job_id: j.outcomes.job_id,
            created_at: j.created_at,
            job_state: j.state.clone(),
            execution: j
                .outcomes
                .subjects
                .get(subject)
                .cloned()
                .unwrap_or(Execution {
                    outcome: Outcome::Absent,
                    attempts: 0,
                    passed_on_retry: false,
                    duration_secs: None,
                    message: None,
                    inputs: None,
                }),
        })
        .collect();
    History {
        subject: subject.clone(),
        job_name: job_name.to_string(),
        summary: summarize(&entries),
        entries,
    }
}

/// The summary of entries ordered newest first.
pub fn summarize(entries: &[HistoryEntry]) -> HistorySummary {
    let mut s = HistorySummary {
        jobs: entries.len() as u32,
        ..Default::default()
    };
    let mut passed_secs = Vec::new();
    let mut retried = Vec::new();
    for e in entries {
        let x = &e.execution;
        if x.outcome != Outcome::Absent {
            s.executions += 1;
        }
        match x.outcome {
            Outcome::Passed => {
                s.passed += 1;
                passed_secs.extend(x.duration_secs);
            }
            Outcome::Failed => s.failed += 1,
            Outcome::Error => s.errors += 1,
            Outcome::Skipped => s.skipped += 1,
            Outcome::Incomplete | Outcome::Absent => {}
        }
        if x.passed_on_retry {
            retried.push(e.job_id);
        }
    }
    let verdicts = s.passed + s.failed + s.errors;
    s.pass_rate = (verdicts > 0).then(|| f64::from(s.passed) / f64::from(verdicts));
    if !retried.is_empty() {
        s.flaky_reasons
            .push(FlakyReason::PassedOnRetry { jobs: retried });
    }
    s.flaky_reasons.extend(mixed_on_same_inputs(entries));
    s.flaky = !s.flaky_reasons.is_empty();
    let streak: Vec<&HistoryEntry> = entries
        .iter()
        .filter(|e| e.execution.outcome.is_verdict())
        .take_while(|e| e.execution.outcome.is_failure())
        .collect();
    s.failing_streak = streak.len() as u32;
    s.first_failing_job = streak.last().map(|e| e.job_id);
    passed_secs.sort_by(f64::total_cmp);
    s.median_passed_secs = median(&passed_secs);
    s
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Rule 2 of the module docs, per inputs fingerprint.
fn mixed_on_same_inputs(entries: &[HistoryEntry]) -> Vec<FlakyReason> {
    // inputs -> (job, passed) oldest first
    let mut groups: BTreeMap<&str, Vec<(JobId, bool)>> = BTreeMap::new();
    for e in entries.iter().rev() {
        let x = &e.execution;
        if let (true, Some(inputs)) = (x.outcome.is_verdict(), x.inputs.as_deref()) {
            groups
                .entry(inputs)
                .or_default()
                .push((e.job_id, x.outcome == Outcome::Passed));
        }
    }
    groups
        .into_iter()
        .filter_map(|(inputs, runs)| {
            let switches = runs.windows(2).filter(|w| w[0].1 != w[1].1).count() as u32;
            (switches >= 2).then(|| FlakyReason::MixedOnSameInputs {
                inputs: inputs.to_string(),
                switches,
                jobs: runs.iter().map(|r| r.0).collect(),
            })
        })
        .collect()
}
