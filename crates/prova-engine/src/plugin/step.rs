//! The step plugin contract: a [`Step`] prepares its parameters once into a
//! runnable value, which then runs each target (or the whole stream of
//! targets) without parsing anything again.

use std::sync::Arc;

use async_trait::async_trait;
use prova_core::Target;
use tokio::sync::mpsc;

use super::context::StepContext;
use super::params::Params;

/// Any error a plugin wants to report; its `source()` chain is shown.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An event a step emits, declared up front as ConTest's steps declare
/// theirs: `prova plugins` lists them, and emitting an event that is not
/// declared is a bug (a debug build panics; see [`StepContext::emit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventDecl {
    pub name: &'static str,
    /// What the event means and its payload's fields.
    pub doc: &'static str,
}

impl EventDecl {
    pub const fn new(name: &'static str, doc: &'static str) -> EventDecl {
        EventDecl { name, doc }
    }
}

/// A step plugin: declares its events and prepares its parameters.
pub trait Step: Send + Sync + 'static {
    /// Every event the prepared step may emit.
    fn events(&self) -> Vec<EventDecl>;

    /// Reads and checks the parameters (every problem goes to `params`, with
    /// its field path), parses templates once and returns the runnable step;
    /// `None` when a parameter was wrong. Keys the step never asks for are
    /// reported by the engine afterwards ("did you mean ...?").
    fn prepare(&self, params: &mut Params<'_>) -> Option<Prepared>;
}

/// A step with its parameters prepared.
#[derive(Clone)]
pub enum Prepared {
    /// Runs one target at a time; the engine runs targets concurrently and
    /// applies the step's timeout per target.
    PerTarget(Arc<dyn PreparedStep>),
    /// Sees the whole stream of targets, as ConTest steps do.
    Batch(Arc<dyn PreparedBatchStep>),
}

impl Prepared {
    pub fn per_target(step: impl PreparedStep) -> Option<Prepared> {
        Some(Prepared::PerTarget(Arc::new(step)))
    }
    pub fn batch(step: impl PreparedBatchStep) -> Option<Prepared> {
        Some(Prepared::Batch(Arc::new(step)))
    }
}

/// A prepared step that runs one target.
#[async_trait]
pub trait PreparedStep: Send + Sync + 'static {
    /// Runs the step for one target. Must return promptly once `ctx.cancel`
    /// is cancelled, and must not leave anything running behind it: what
    /// outlives a dropped future (a remote process, a container) is
    /// registered with [`super::hard_exit`] while it runs.
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError>;

    /// Whether the step can stop mid-way and resume later (server pause):
    /// it then returns [`StepError::Paused`] when `ctx.pause` fires.
    fn resumable(&self) -> bool {
        false
    }
}

/// A prepared step that sees the whole stream of targets: it reads targets
/// from `input` until it closes and returns each on `output` with its
/// result. The engine checks what comes back: a target the step was never
/// given, or one returned twice, fails the test.
#[async_trait]
pub trait PreparedBatchStep: Send + Sync + 'static {
    async fn run_batch(
        &self,
        ctx: Arc<StepContext>,
        input: mpsc::Receiver<Target>,
        output: mpsc::Sender<(Target, Result<(), StepError>)>,
    ) -> Result<(), StepError>;
}

/// Why a step did not pass a target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The target failed the step: the thing under test misbehaved
    /// (non-zero exit, port closed, a test case failed).
    #[error("{}", super::text::error_chain(.0.as_ref()))]
    Failed(BoxError),
    /// The step could not do its work (the Docker engine or the SSH host
    /// unreachable, a refused login): no verdict on the target.
    #[error("{}", super::text::error_chain(.0.as_ref()))]
    Infra(BoxError),
    /// A parameter could not be used for this target (a template that did
    /// not render, or rendered to a value that does not parse).
    #[error("bad parameter {param}: {message}")]
    Params { param: String, message: String },
    /// The job is being cancelled.
    #[error("cancelled")]
    Cancelled,
    /// The job is pausing and a resumable step stopped where it was; the
    /// state comes back through `StepContext::take_resume_state`.
    #[error("paused")]
    Paused(Option<serde_json::Value>),
}

impl StepError {
    /// The target failed, for `reason` (a message or any error).
    pub fn failed(reason: impl Into<BoxError>) -> StepError {
        StepError::Failed(reason.into())
    }

    /// The step could not run, for `reason`.
    pub fn infra(reason: impl Into<BoxError>) -> StepError {
        StepError::Infra(reason.into())
    }

    /// Whether the error is about the infrastructure, not the target.
    pub fn is_infra(&self) -> bool {
        matches!(self, StepError::Infra(_))
    }
}
