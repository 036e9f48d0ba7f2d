//! Results as events.

use std::path::Path;

use prova_core::Target;
use prova_core::results::{ARTIFACTS, Artifacts, TEST_CASE};
use prova_engine::plugin::{EventDecl, StepContext};
use serde_json::json;

use crate::dir::Ingested;

/// `TestCaseResult` events emitted per target and step at most; the
/// summary event still counts every case.
pub const MAX_CASE_EVENTS: usize = 10_000;
/// `ResultsFileError` events emitted at most.
pub const MAX_ERROR_EVENTS: usize = 100;
/// Event name of the per-directory summary:
/// `{Total, Passed, Failed, Error, Skipped, Flaky, Emitted, JUnitFiles, UnreadableFiles}`.
pub const TEST_CASES_SUMMARY: &str = "TestCasesSummary";
/// Event name of a results file that could not be read: `{File, Error}`.
pub const RESULTS_ERROR: &str = "ResultsFileError";

/// The events [`emit_results`] emits: a step that reads results declares
/// these beside its own.
pub const EVENTS: &[EventDecl] = &[
    EventDecl::new(
        ARTIFACTS,
        "{Path, Files, Bytes, Sha256}: the results directory, kept under the artifacts root",
    ),
    EventDecl::new(
        TEST_CASE,
        "{Suite, Name, Classname, Status, TimeSecs, Message, Output, FlakyFailures, File}: one JUnit case",
    ),
    EventDecl::new(
        TEST_CASES_SUMMARY,
        "{Total, Passed, Failed, Error, Skipped, Flaky, Emitted, JUnitFiles, UnreadableFiles}: every case counted",
    ),
    EventDecl::new(
        RESULTS_ERROR,
        "{File, Error}: a results file that could not be read",
    ),
];

/// Emits what a results directory held, for `target`:
/// one `Artifacts {Path, Files, Bytes, Sha256}` event (`sha256`: of the
/// archive it arrived as, if it did); one `ResultsFileError {File, Error}`
/// per unreadable file (at most [`MAX_ERROR_EVENTS`]); one
/// `TestCaseResult` per case (at most [`MAX_CASE_EVENTS`]); and one
/// `TestCasesSummary` with the counts over every case.
pub fn emit_results(
    ctx: &StepContext,
    target: &Target,
    ingested: &Ingested,
    artifacts_path: &Path,
    sha256: Option<&str>,
) {
    let artifacts = Artifacts {
        path: artifacts_path.display().to_string(),
        files: ingested.files,
        bytes: ingested.bytes,
        sha256: sha256.map(str::to_string),
    };
    ctx.emit(target, ARTIFACTS, serde_json::to_value(&artifacts).ok());
    for e in ingested.errors.iter().take(MAX_ERROR_EVENTS) {
        ctx.emit(
            target,
            RESULTS_ERROR,
            Some(json!({ "File": e.file, "Error": e.error.to_string() })),
        );
    }
    let mut emitted = 0usize;
    for case in ingested.cases.iter().take(MAX_CASE_EVENTS) {
        if let Ok(v) = serde_json::to_value(case) {
            ctx.emit(target, TEST_CASE, Some(v));
            emitted += 1;
        }
    }
    let s = ingested.summary();
    ctx.emit(
        target,
        TEST_CASES_SUMMARY,
        Some(json!({
            "Total": s.total,
            "Passed": s.passed,
            "Failed": s.failed,
            "Error": s.errors,
            "Skipped": s.skipped,
            "Flaky": s.flaky,
            "Emitted": emitted,
            "JUnitFiles": ingested.junit_files.len(),
            "UnreadableFiles": ingested.errors.len(),
        })),
    );
}
