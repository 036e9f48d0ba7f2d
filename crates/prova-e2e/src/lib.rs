//! `prova e2e`: Kubernetes e2e tests written in Rust with kube-rs, and the
//! basics of the upstream e2e framework they need.
//!
//! - [`framework`]: per test, a client whose every request carries the
//!   user agent `e2e.test/<version> (<os>/<arch>) prova -- <full test
//!   name>` (so APISnoop and `prova coverage` credit the test), a fresh
//!   namespace `<basename>-NNNN` whose `default` ServiceAccount is awaited,
//!   a `STEP: …` log, waits that each have a timeout and fail naming the
//!   step and the last state seen, and cleanup (the namespace is deleted)
//!   whether the test passed, failed, panicked or timed out.
//! - [`suite`]: the tests, by their full names:
//!   `[sig-apps] Job should apply changes to a job status` and
//!   `[sig-apps] StatefulSet should validate Statefulset Status endpoints`,
//!   the APISnoop tickets for `%JobStatus` and `%StatefulSetStatus`.
//! - [`runner`]: `--focus`/`--skip` selection and running, one outcome per
//!   test; [`junit`]: the JUnit report conformance tooling reads.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use prova_e2e::{runner, suite};
//! let selected = runner::select(suite::all(), Some("Job"), None)?;
//! let config = runner::RunConfig::new(kube::Config::infer().await?);
//! let outcomes = runner::run(&selected, &config).await;
//! let xml = prova_e2e::junit::report(&outcomes).to_string()?;
//! # Ok(()) }
//! ```

pub mod framework;
pub mod junit;
pub mod runner;
pub mod suite;
pub mod user_agent;

pub use framework::{Ctx, Failure};
