//! prova's job engine.
//!
//! A job runs as ConTest runs it: runs (0 = until stopped) separated by
//! `RunInterval`; tests in order; targets acquired per test; targets flow
//! through the steps as a pipeline; cleanup steps always run afterwards;
//! failed tests are retried per `RetryParameters`; reporters judge each run
//! and the whole job. Every event goes to the [`prova_store::Store`].
//!
//! - [`plugin`]: the one trait per plugin kind, and [`plugin::Registry`].
//! - [`plugins`]: the built-in plugins, one module each.
//! - [`prepare`]: descriptor → validated, runnable job (every error at once).
//! - [`retry_failed`]: the tests of an ended job that failed, and its descriptor cut down to them.
//! - [`runner`]: the job, test and step runners.
//! - [`emit`]: the event sink that batches events into the store.
//! - [`keep_artifacts`]: steps' artifacts copied into the store as each step finishes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! let store = Arc::new(prova_store::SqlStore::open("sqlite::memory:").await?);
//! let registry = prova_engine::plugins::registry();
//! let prepared = prova_engine::prepare::prepare_file("examples/hello.yaml".as_ref(), &registry)?;
//! let outcome = prova_engine::runner::run_job(prepared, store, Default::default()).await?;
//! println!("job {} ended {}", outcome.job_id, outcome.state);
//! # Ok(()) }
//! ```

pub mod emit;
pub mod files_root;
pub mod keep_artifacts;
pub mod locks;
pub mod output_file;
pub mod ownership;
pub mod plugin;
pub mod plugins;
pub mod prepare;
pub mod retry_failed;
pub mod runner;
pub mod status;
pub mod vars;

pub use plugin::Registry;
