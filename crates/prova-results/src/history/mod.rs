//! A test's history across jobs of the same name, and two jobs compared.
//!
//! prova keeps every job's events; this module reads the few that say how
//! each test and JUnit case went (`TestStarted`, `TestFinished`,
//! `TestError`, `TargetErr`, `TestCaseResult`) and answers:
//!
//! - [`outcome`]: what happened to each test and case in one job: an
//!   [`Outcome`] per subject, its attempts, whether it passed on a retry,
//!   its duration and the inputs it ran with ([`inputs`]).
//! - [`trend`]: one subject over the newest jobs of a name: pass rate,
//!   flakiness ([`FlakyReason`]), the first job of the current failing
//!   streak, durations.
//! - [`compare`]: two jobs: newly failing, newly passing, still failing,
//!   added, removed, slower and faster.
//! - [`load`]: the reads from a [`prova_store::HistoryStore`] behind the
//!   three, shared by `prova history`, `prova diff` and the API.
//!
//! The rules (what counts as flaky, as a duration change, ...) are in
//! `docs/history.md`; each is stated again where it is implemented.
//!
//! ```no_run
//! # async fn demo(store: &dyn prova_store::HistoryStore) -> Result<(), prova_results::history::HistoryError> {
//! use prova_results::history::{HistoryRequest, load_history};
//! let answer = load_history(store, &HistoryRequest::new("Test 1", Some("nightly".into()), 30)).await?;
//! for h in &answer.histories {
//!     println!("{}: {:?} pass rate, flaky: {}", h.subject, h.summary.pass_rate, h.summary.flaky);
//! }
//! # Ok(()) }
//! ```

pub mod compare;
pub mod inputs;
pub mod load;
pub mod outcome;
pub mod trend;

pub use compare::{
    Change, Comparison, DURATION_MIN_RATIO, DURATION_MIN_SECS, DurationThreshold, JobRef,
    compare_jobs,
};
pub use load::{
    DEFAULT_LAST, HistoryAnswer, HistoryError, HistoryRequest, MAX_LAST, MAX_SUBJECTS,
    load_comparison, load_history,
};
pub use outcome::{Execution, JobOutcomes, Match, Outcome, Subject, job_outcomes};
pub use trend::{FlakyReason, History, HistoryEntry, HistorySummary, WindowJob, history_of};
