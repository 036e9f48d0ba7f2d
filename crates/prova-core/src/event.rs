//! Events: the one contract between the engine, the store and the reporters.
//!
//! Every event belongs to a job. Job events carry state transitions (their
//! name is a [`crate::JobState::event_name`]) and job-level notices; test
//! events carry the run, test, attempt, step and target they happened to.
//! Field names in JSON are ConTest's, so tools written for ConTest read them.

use serde::{Deserialize, Serialize};

use crate::target::Target;

/// Jobs are numbered by the store, as ConTest numbers them.
pub type JobId = i64;

/// Whether an event is about the job as a whole or about a test in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventKind {
    Job,
    Test,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Job => "job",
            EventKind::Test => "test",
        }
    }
}

/// Names of the events the engine and the CLI emit. Steps add their own
/// (`CmdStdout`, ...).
pub mod names {
    pub const RUN_STARTED: &str = "RunStarted";
    pub const RUN_FINISHED: &str = "RunFinished";
    pub const TEST_STARTED: &str = "TestStarted";
    pub const TEST_FINISHED: &str = "TestFinished";
    pub const TEST_ERROR: &str = "TestError";
    pub const TARGET_ACQUIRED: &str = "TargetAcquired";
    pub const TARGET_ACQUIRE_FAILED: &str = "TargetAcquireFailed";
    pub const TARGET_RELEASED: &str = "TargetReleased";
    pub const TARGET_IN: &str = "TargetIn";
    pub const TARGET_OUT: &str = "TargetOut";
    pub const TARGET_ERR: &str = "TargetErr";
    /// A job event whose payload is an API coverage report
    /// (`prova coverage report --job ID`).
    pub const COVERAGE_REPORT: &str = "CoverageReport";
    /// The job waits, and says for what: `{For: "RunInterval" |
    /// "RetryInterval", Seconds}` (a job event before a run; a test event
    /// before the next attempt) or `{For: "Targets", HeldBy: [{Job,
    /// Targets}]}` (a test event while other jobs hold its targets), so
    /// progress can name every wait.
    pub const WAITING: &str = "Waiting";
}

/// An event as the engine emits it, before the store numbers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEvent {
    #[serde(rename = "Kind")]
    pub kind: EventKind,
    #[serde(rename = "JobID")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub job_id: JobId,
    /// 1-based run number; 0 for job events outside any run.
    #[serde(rename = "RunID")]
    pub run_id: u32,
    #[serde(rename = "TestName", default, skip_serializing_if = "Option::is_none")]
    pub test_name: Option<String>,
    /// 0 for the first attempt, 1 for the first retry, ...
    #[serde(
        rename = "TestAttempt",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub test_attempt: Option<u32>,
    #[serde(
        rename = "TestStepLabel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub step_label: Option<String>,
    #[serde(rename = "Target", default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(rename = "EventName")]
    pub name: String,
    #[serde(rename = "Payload", default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
    #[serde(rename = "EmitTime")]
    pub emit_time: jiff::Timestamp,
}

impl NewEvent {
    /// A job event (state transition or job-level notice), stamped now.
    pub fn job(job_id: JobId, name: impl Into<String>, payload: Option<serde_json::Value>) -> Self {
        NewEvent {
            kind: EventKind::Job,
            job_id,
            run_id: 0,
            test_name: None,
            test_attempt: None,
            step_label: None,
            target: None,
            name: name.into(),
            payload,
            emit_time: jiff::Timestamp::now(),
        }
    }
}

/// A stored event: what was emitted plus the store's sequence number, which
/// orders events of one job totally.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    #[serde(rename = "Seq")]
    pub seq: i64,
    #[serde(flatten)]
    pub event: NewEvent,
}

impl std::ops::Deref for Event {
    type Target = NewEvent;
    fn deref(&self) -> &NewEvent {
        &self.event
    }
}

/// Which events to read. Every field narrows the result; `None` means any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    pub job_id: Option<JobId>,
    pub kind: Option<EventKind>,
    pub run_id: Option<u32>,
    pub test_name: Option<String>,
    pub test_attempt: Option<u32>,
    pub step_label: Option<String>,
    pub target_id: Option<String>,
    /// Any of these names.
    pub names: Vec<String>,
    /// Only events with a sequence number greater than this.
    pub after_seq: Option<i64>,
    /// At most this many, oldest first.
    pub limit: Option<u32>,
}

impl EventQuery {
    pub fn for_job(job_id: JobId) -> Self {
        EventQuery {
            job_id: Some(job_id),
            ..Default::default()
        }
    }
}
