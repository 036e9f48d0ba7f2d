//! Everything a plugin author needs, in one module: `use
//! prova_engine::plugin::*` and write a step.
//!
//! A step plugin ([`Step`]) declares the events it emits and, while the job
//! is prepared, reads its parameters through [`Params`] into a typed value
//! (templates parsed once, rendered per target by [`Param::get`]). That value
//! ([`PreparedStep`], or [`PreparedBatchStep`] for steps that see every
//! target at once) runs each target with a [`StepContext`]: emit events,
//! set variables, honour cancel and pause. What outlives a dropped step (a
//! container, a remote process) is registered with [`hard_exit`]. Errors are
//! [`StepError`]: the target failed, or the infrastructure did.
//!
//! Target managers, test fetchers and reporters have their traits in
//! [`kinds`]; [`Registry`] finds every plugin by name. Adding a plugin
//! touches its own module (or crate) and one line where the registry is
//! built ([`crate::plugins::registry`]). `docs/plugins.md` walks through the
//! SSH crate as the worked example.

mod context;
pub mod hard_exit;
pub mod kinds;
mod params;
mod prepare_ctx;
mod registry;
mod step;
mod text;

pub use async_trait::async_trait;
pub use context::{StepContext, TestScope};
pub use kinds::{
    FetchedSteps, FinalReportInput, PreparedReporter, Reporter, ReporterRole, RunReportInput,
    TargetLocker, TargetManager, TargetSource, TestFetcher,
};
pub use params::{FromParam, NoTemplates, Param, ParamList, Params, Render, nearest};
pub use prepare_ctx::{DescriptorFile, PrepareCtx};
pub use prova_core::Target;
pub use registry::Registry;
pub use step::{BoxError, EventDecl, Prepared, PreparedBatchStep, PreparedStep, Step, StepError};
pub use text::{TailBuffer, error_chain, tail_text};
