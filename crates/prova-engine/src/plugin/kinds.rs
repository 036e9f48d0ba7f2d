//! The plugin kinds other than steps: target managers, test fetchers and
//! reporters.

use std::sync::Arc;

use async_trait::async_trait;
use prova_core::descriptor::StepDescriptor;
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::event::NewEvent;
use prova_core::node::Node;
use prova_core::status::Report;
use prova_core::{JobId, Target};
use tokio_util::sync::CancellationToken;

use super::prepare_ctx::PrepareCtx;
use crate::runner::results::RunResult;

/// Target locks in the store, held by one job: two jobs never hold the same
/// target (ConTest's locker). Target managers lock what they hand out.
#[async_trait]
pub trait TargetLocker: Send + Sync {
    /// Locks as many of `ids` as are free; returns those locked (TryLock).
    async fn try_lock(&self, ids: &[String]) -> Result<Vec<String>, String>;
    /// Locks every one of `ids`, or none (Lock).
    async fn lock_all(&self, ids: &[String]) -> Result<bool, String>;
    async fn unlock(&self, ids: &[String]) -> Result<(), String>;
}

/// Targets acquired for one test, and how to give them back.
#[async_trait]
pub trait TargetSource: Send + Sync {
    /// Acquires targets for a test of `job_id`, locked with `locker`; waits
    /// while other jobs hold them. Must honour `cancel`.
    async fn acquire(
        &self,
        job_id: JobId,
        cancel: &CancellationToken,
        locker: &dyn TargetLocker,
    ) -> Result<Vec<Target>, String>;
    /// Releases targets acquired before.
    async fn release(&self, job_id: JobId, targets: &[Target]) -> Result<(), String>;
}

/// A target manager plugin.
pub trait TargetManager: Send + Sync {
    /// Validates acquire and release parameters and prepares the source.
    fn prepare(
        &self,
        acquire: &Node,
        acquire_path: &FieldPath,
        release: &Node,
        ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<Arc<dyn TargetSource>>;
}

/// The steps a fetcher found for a test.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedSteps {
    /// `TestName` from the fetch parameters (test fetchers require it).
    pub test_name: Option<String>,
    pub steps: Vec<StepDescriptor>,
}

/// A test (or cleanup) fetcher plugin. Fetching happens while the job is
/// prepared, as in ConTest, so a job never starts with steps it cannot run.
pub trait TestFetcher: Send + Sync {
    fn fetch(
        &self,
        params: &Node,
        path: &FieldPath,
        ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<FetchedSteps>;
}

/// What a reporter sees of a finished run.
pub struct RunReportInput<'a> {
    pub job_id: JobId,
    pub job_name: &'a str,
    pub run: &'a RunResult,
    /// The run's events, only when [`PreparedReporter::needs_events`].
    pub events: &'a [NewEvent],
}

/// What a final reporter sees: every run.
pub struct FinalReportInput<'a> {
    pub job_id: JobId,
    pub job_name: &'a str,
    pub runs: &'a [RunResult],
    pub events: &'a [NewEvent],
}

/// A reporter with its parameters validated.
#[async_trait]
pub trait PreparedReporter: Send + Sync {
    /// Judges one run. `None` when the reporter has nothing to say per run.
    async fn run_report(&self, input: &RunReportInput<'_>) -> Option<Report> {
        let _ = input;
        None
    }
    /// Judges the whole job.
    async fn final_report(&self, input: &FinalReportInput<'_>) -> Option<Report> {
        let _ = input;
        None
    }
    /// Whether the reporter reads events (the engine then keeps them).
    fn needs_events(&self) -> bool {
        false
    }
}

/// Where a reporter is used: its parameters differ (ConTest's TargetSuccess
/// takes `SuccessExpression` per run and `AverageSuccessExpression` at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReporterRole {
    Run,
    Final,
}

/// A reporter plugin.
pub trait Reporter: Send + Sync {
    fn prepare(
        &self,
        role: ReporterRole,
        params: &Node,
        path: &FieldPath,
        ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<Arc<dyn PreparedReporter>>;
}
