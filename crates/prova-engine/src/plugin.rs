//! One trait per plugin kind, and the registry that finds plugins by name.
//!
//! A plugin validates its own parameters (reporting every problem with its
//! field path) and turns them into a prepared, runnable value. Adding a
//! plugin touches its own module and one line in [`crate::plugins::registry`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::event::NewEvent;
use prova_core::node::Node;
use prova_core::status::Report;
use prova_core::{JobId, Target};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::files_root::DescriptorFile;
use crate::runner::results::RunResult;
use crate::runner::step_ctx::StepContext;

/// What plugins may look at while preparing: where the descriptor lives,
/// so relative file names resolve against it.
#[derive(Debug, Clone, Default)]
pub struct PrepareCtx<'a> {
    pub descriptor_dir: Option<&'a Path>,
    /// When set (the server), files named in descriptors must lie under it.
    pub files_root: Option<&'a Path>,
}

impl PrepareCtx<'_> {
    /// Resolves a file named in a descriptor: relative to the descriptor's
    /// folder (or the files root), and never outside the files root. The
    /// check opens the file beneath the root as [`Self::file`] does (a
    /// symlink leading out is refused); a caller that reads the file later
    /// should keep a [`DescriptorFile`] and open it then, not this path.
    pub fn resolve(&self, file: &str) -> Result<std::path::PathBuf, String> {
        let f = self.file(file)?;
        if self.files_root.is_some() {
            f.open()?;
        }
        Ok(f.display_path())
    }

    /// A file named in a descriptor, to be opened (beneath the files root,
    /// when there is one) at the moment it is read.
    pub fn file(&self, file: &str) -> Result<DescriptorFile, String> {
        DescriptorFile::new(file, self.descriptor_dir, self.files_root)
    }
}

impl PrepareCtx<'_> {
    /// Resolves a file a plugin will write (the `junit` reporter's `File`):
    /// with a files root, beneath it (relative names against the
    /// descriptor's folder, else the root; `..`, absolute paths and links
    /// leading out refused, checked again when the file is written);
    /// without one, as named.
    pub fn resolve_output(&self, file: &str) -> Result<crate::output_file::OutputFile, String> {
        match self.files_root {
            Some(root) => crate::output_file::OutputFile::beneath(file, self.descriptor_dir, root),
            None => Ok(crate::output_file::OutputFile::ambient(file)),
        }
    }
}

/// Why a step failed a target.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The step ran and the target failed (non-zero exit, port closed, ...).
    #[error("{0}")]
    Failed(String),
    /// The job is being cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The job is pausing and the step stopped where it was; the state
    /// (if any) comes back through `StepContext::take_resume_state` when the
    /// job resumes. Only resumable steps return this.
    #[error("paused")]
    Paused(Option<serde_json::Value>),
    /// The step's parameters could not be used for this target (a template
    /// that failed to render, a value that did not parse after expansion).
    #[error("bad parameters: {0}")]
    Params(String),
}

/// A test step that runs one target at a time. Most steps are this; the
/// engine runs many targets through it concurrently.
#[async_trait]
pub trait Step: Send + Sync + 'static {
    /// Checks parameters before the job runs. Values that are templates
    /// (contain `{{`) are only checked after expansion, at run time.
    fn validate(&self, step: &StepDescriptor, diags: &mut Diagnostics) {
        let _ = (step, diags);
    }

    /// Runs the step for one target. `params` are already expanded for this
    /// target. Must return promptly once `ctx.cancel` is cancelled.
    async fn run(
        &self,
        ctx: &StepContext,
        target: &Target,
        params: &StepParams,
    ) -> Result<(), StepError>;

    /// Whether the step can stop mid-way and resume later (server pause).
    fn resumable(&self) -> bool {
        false
    }
}

/// A step that sees the whole stream of targets, as ConTest steps do: it
/// reads targets from `input` until it closes and returns each one on
/// `output` with its result. The engine checks what comes back: a target the
/// step was never given, or one returned twice, fails the test.
#[async_trait]
pub trait BatchStep: Send + Sync + 'static {
    fn validate(&self, step: &StepDescriptor, diags: &mut Diagnostics) {
        let _ = (step, diags);
    }

    async fn run_batch(
        &self,
        ctx: Arc<StepContext>,
        params: StepParams,
        input: mpsc::Receiver<Target>,
        output: mpsc::Sender<(Target, Result<(), StepError>)>,
    ) -> Result<(), StepError>;
}

/// A registered step plugin.
#[derive(Clone)]
pub enum StepPlugin {
    PerTarget(Arc<dyn Step>),
    Batch(Arc<dyn BatchStep>),
}

impl StepPlugin {
    pub fn validate(&self, step: &StepDescriptor, diags: &mut Diagnostics) {
        match self {
            StepPlugin::PerTarget(s) => s.validate(step, diags),
            StepPlugin::Batch(s) => s.validate(step, diags),
        }
    }
}

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

/// Plugins by kind and case-insensitive name.
#[derive(Clone, Default)]
pub struct Registry {
    steps: BTreeMap<String, (String, StepPlugin)>,
    target_managers: BTreeMap<String, (String, Arc<dyn TargetManager>)>,
    fetchers: BTreeMap<String, (String, Arc<dyn TestFetcher>)>,
    reporters: BTreeMap<String, (String, Arc<dyn Reporter>)>,
}

impl Registry {
    pub fn step(&mut self, name: &str, step: impl Step) -> &mut Self {
        self.steps.insert(
            name.to_ascii_lowercase(),
            (name.to_string(), StepPlugin::PerTarget(Arc::new(step))),
        );
        self
    }
    pub fn batch_step(&mut self, name: &str, step: impl BatchStep) -> &mut Self {
        self.steps.insert(
            name.to_ascii_lowercase(),
            (name.to_string(), StepPlugin::Batch(Arc::new(step))),
        );
        self
    }
    pub fn target_manager(&mut self, name: &str, tm: impl TargetManager + 'static) -> &mut Self {
        self.target_managers
            .insert(name.to_ascii_lowercase(), (name.to_string(), Arc::new(tm)));
        self
    }
    pub fn fetcher(&mut self, name: &str, f: impl TestFetcher + 'static) -> &mut Self {
        self.fetchers
            .insert(name.to_ascii_lowercase(), (name.to_string(), Arc::new(f)));
        self
    }
    pub fn reporter(&mut self, name: &str, r: impl Reporter + 'static) -> &mut Self {
        self.reporters
            .insert(name.to_ascii_lowercase(), (name.to_string(), Arc::new(r)));
        self
    }

    pub fn find_step(&self, name: &str) -> Option<&StepPlugin> {
        self.steps.get(&name.to_ascii_lowercase()).map(|(_, s)| s)
    }
    pub fn find_target_manager(&self, name: &str) -> Option<&Arc<dyn TargetManager>> {
        self.target_managers
            .get(&name.to_ascii_lowercase())
            .map(|(_, s)| s)
    }
    pub fn find_fetcher(&self, name: &str) -> Option<&Arc<dyn TestFetcher>> {
        self.fetchers
            .get(&name.to_ascii_lowercase())
            .map(|(_, s)| s)
    }
    pub fn find_reporter(&self, name: &str) -> Option<&Arc<dyn Reporter>> {
        self.reporters
            .get(&name.to_ascii_lowercase())
            .map(|(_, s)| s)
    }

    pub fn step_names(&self) -> Vec<&str> {
        self.steps.values().map(|(n, _)| n.as_str()).collect()
    }
    pub fn target_manager_names(&self) -> Vec<&str> {
        self.target_managers
            .values()
            .map(|(n, _)| n.as_str())
            .collect()
    }
    pub fn fetcher_names(&self) -> Vec<&str> {
        self.fetchers.values().map(|(n, _)| n.as_str()).collect()
    }
    pub fn reporter_names(&self) -> Vec<&str> {
        self.reporters.values().map(|(n, _)| n.as_str()).collect()
    }
}
