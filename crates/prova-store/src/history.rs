//! What a test's history and a comparison of two jobs read from the store:
//! the jobs of one name, newest first, and the few events of theirs that
//! say how their tests and JUnit cases went. The logic over them (outcomes,
//! pass rates, flakiness, comparisons) is `prova_results::history`'s; this
//! is only the reading, kept narrow so 1,000 jobs read in milliseconds.

use async_trait::async_trait;
use prova_core::{Event, JobId, JobState};
use serde::{Deserialize, Serialize};

use crate::Result;

/// The event names a history reads: a test's start, end and errors, its
/// targets' failures, and the JUnit cases its steps brought back
/// (`TestCaseResult`).
pub const HISTORY_EVENT_NAMES: [&str; 5] = [
    prova_core::event::names::TEST_STARTED,
    prova_core::event::names::TEST_FINISHED,
    prova_core::event::names::TEST_ERROR,
    prova_core::event::names::TARGET_ERR,
    prova_core::results::TEST_CASE,
];

/// The most jobs one [`HistoryStore::jobs_named`] returns.
pub const MAX_HISTORY_JOBS: u32 = 10_000;

/// A job as a history needs it: no submitted descriptor, only the extended
/// one (which holds every test's steps and parameters: a test's inputs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryJob {
    pub id: JobId,
    pub name: String,
    pub created_at: jiff::Timestamp,
    pub state: Option<JobState>,
    pub state_time: Option<jiff::Timestamp>,
    /// `{JobDescriptor, TestStepsDescriptors: [{TestName, TestSteps, CleanupSteps}]}`.
    pub extended_descriptor: String,
}

/// Which of the jobs' history events to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryEventFilter {
    /// Only these jobs (an empty list reads nothing).
    pub jobs: Vec<JobId>,
    /// Only events that may concern a test or case named with this text:
    /// test events whose test name contains it, `TestCaseResult` events
    /// whose payload contains it (JSON-escaped). A coarse, case-sensitive
    /// pre-filter: the caller matches exactly on what comes back.
    pub contains: Option<String>,
}

/// Reads for histories and comparisons.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// The newest `limit` jobs named `name` (at most [`MAX_HISTORY_JOBS`]),
    /// newest first.
    async fn jobs_named(&self, name: &str, limit: u32) -> Result<Vec<HistoryJob>>;
    /// The newest `limit` jobs of any name (at most [`MAX_HISTORY_JOBS`]),
    /// newest first.
    async fn newest_jobs(&self, limit: u32) -> Result<Vec<HistoryJob>>;
    /// Jobs by id, in the order given; ids that are not jobs are left out.
    async fn history_jobs(&self, ids: &[JobId]) -> Result<Vec<HistoryJob>>;
    /// The [`HISTORY_EVENT_NAMES`] events of the filter's jobs, ordered by
    /// sequence number.
    async fn history_events(&self, filter: &HistoryEventFilter) -> Result<Vec<Event>>;
}
