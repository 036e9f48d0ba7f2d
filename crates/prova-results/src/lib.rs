//! A suite's results directory, as prova brings it back from a container or
//! a Kubernetes Job: its files kept as artifacts, and its JUnit files read
//! into test cases that travel as events.
//!
//! - [`archive`]: unpacks a tar stream (what the Docker archive API and the
//!   collector send) into a directory, safely: no absolute paths, no `..`,
//!   no links, no devices; checksummed and bounded.
//! - [`junit`]: tells a JUnit file by its content and reads it with
//!   `junit-parser` into [`TestCaseResult`]s (nested suites, skips, errors,
//!   flaky reruns), with bounded output.
//! - [`ingest_dir`]: walks a results directory: counts files and bytes and
//!   reads every JUnit file in it. A malformed file is reported, never fatal.
//! - [`history`]: a test's and a JUnit case's outcomes across jobs (pass
//!   rate, flakiness, first failing job) and two jobs compared.
//! - [`emit_results`]: emits the `Artifacts` event, one `TestCaseResult`
//!   event per case (at most [`MAX_CASE_EVENTS`]) and a `TestCasesSummary`.
//!
//! ```no_run
//! # fn demo() -> Result<(), prova_results::ResultsError> {
//! let ingested = prova_results::ingest_dir("/tmp/results".as_ref())?;
//! println!(
//!     "{} files, {} cases, {} failed, {} unreadable JUnit files",
//!     ingested.files,
//!     ingested.cases.len(),
//!     ingested.summary().failed,
//!     ingested.errors.len()
//! );
//! # Ok(()) }
//! ```

pub mod archive;
mod dir;
mod emit;
mod error;
pub mod history;
pub mod junit;
mod xml_scan;

pub use dir::{FileError, Ingested, Summary, ingest_dir};
pub use emit::{
    EVENTS, MAX_CASE_EVENTS, MAX_ERROR_EVENTS, RESULTS_ERROR, TEST_CASES_SUMMARY, emit_results,
};
pub use error::ResultsError;
pub use prova_core::results::{CaseStatus, TestCaseResult};
