//! Test results that steps bring back from the suites they run (a
//! container's `junit.xml`, ...), as events, so that reporters (JUnit
//! output, status) carry the suite's own test cases.

use serde::{Deserialize, Serialize};

/// Event name of one test case a step's suite reported.
pub const TEST_CASE: &str = "TestCaseResult";
/// Event name of a results directory a step kept as artifacts.
pub const ARTIFACTS: &str = "Artifacts";

/// Outcome of a suite's test case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    Passed,
    Failed,
    Error,
    Skipped,
}

/// Payload of a [`TEST_CASE`] event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestCaseResult {
    /// The `<testsuite name>` it was in.
    #[serde(rename = "Suite")]
    pub suite: String,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Classname", default, skip_serializing_if = "Option::is_none")]
    pub classname: Option<String>,
    #[serde(rename = "Status")]
    pub status: CaseStatus,
    #[serde(rename = "TimeSecs", default, skip_serializing_if = "Option::is_none")]
    pub time_secs: Option<f64>,
    /// Failure, error or skip message.
    #[serde(rename = "Message", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Failure text or system-out, bounded.
    #[serde(rename = "Output", default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Failed earlier runs of a case that then passed (flaky).
    #[serde(rename = "FlakyFailures", default, skip_serializing_if = "is_zero")]
    pub flaky_failures: u32,
    /// The results file it came from, relative to the results directory.
    #[serde(rename = "File")]
    pub file: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Payload of an [`ARTIFACTS`] event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifacts {
    /// Where the directory was stored.
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Files")]
    pub files: u64,
    #[serde(rename = "Bytes")]
    pub bytes: u64,
    /// sha256 of the tar stream it arrived as, when it arrived as one.
    #[serde(rename = "Sha256", default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}
