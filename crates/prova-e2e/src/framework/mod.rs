//! The e2e framework's basics: what a test gets ([`Ctx`]) and how it fails
//! ([`Failure`]).

mod log;
pub mod namespace;
pub mod pods;
pub mod wait;

use std::time::Duration;

pub use log::StepLog;

/// Why a test failed. Each names the step it happened in, so the JUnit
/// failure message says where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// A wait ran out of time.
    #[error("STEP {step:?}: timed out after {timeout:?} waiting for {what}; last seen: {last}")]
    Timeout {
        step: String,
        what: String,
        timeout: Duration,
        last: String,
    },
    /// An API request failed.
    #[error("STEP {step:?}: {action}")]
    Api {
        step: String,
        action: String,
        #[source]
        source: kube::Error,
    },
    /// A check of what the API answered did not hold.
    #[error("STEP {step:?}: {message}")]
    Check { step: String, message: String },
    /// The test exceeded `--timeout` (it was stopped in that step).
    #[error("STEP {step:?}: the test did not finish within {timeout:?}")]
    TestTimeout { step: String, timeout: Duration },
    /// The test panicked.
    #[error("STEP {step:?}: the test panicked: {message}")]
    Panicked { step: String, message: String },
    /// Setting up the client or namespace failed before any step.
    #[error("setting up the test: {message}")]
    Setup { message: String },
}

impl Failure {
    /// The message with its causes, `: `-separated (for JUnit and stderr).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}

/// What one test gets: its client (with its user agent), its namespace,
/// the image for its pods, and its log.
#[derive(Clone)]
pub struct Ctx {
    pub client: kube::Client,
    pub namespace: String,
    /// The image of the pods the test creates (`--image`); it must run
    /// until stopped without a command (as `registry.k8s.io/pause`).
    pub image: String,
    /// How long a wait for the cluster (pods running, a watch event) may
    /// take before the test fails.
    pub wait_timeout: Duration,
    pub log: StepLog,
}

impl Ctx {
    /// Starts a step (ginkgo's `By`).
    pub fn step(&self, what: &str) {
        self.log.step(what);
    }

    pub fn info(&self, what: &str) {
        self.log.info(what);
    }

    fn step_name(&self) -> String {
        self.log.current_step().unwrap_or_else(|| "setup".into())
    }

    /// A failed request, in the current step.
    pub fn api_err(&self, action: impl Into<String>) -> impl FnOnce(kube::Error) -> Failure + '_ {
        let action = action.into();
        move |source| Failure::Api {
            step: self.step_name(),
            action,
            source,
        }
    }

    /// Fails the test in the current step unless `ok`.
    pub fn check(&self, ok: bool, message: impl FnOnce() -> String) -> Result<(), Failure> {
        if ok {
            Ok(())
        } else {
            Err(Failure::Check {
                step: self.step_name(),
                message: message(),
            })
        }
    }

    /// A timeout in the current step.
    pub fn timeout(&self, what: &str, timeout: Duration, last: String) -> Failure {
        Failure::Timeout {
            step: self.step_name(),
            what: what.to_string(),
            timeout,
            last,
        }
    }
}
