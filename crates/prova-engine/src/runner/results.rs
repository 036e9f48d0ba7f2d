//! What a run produced, for the reporters.

use prova_core::Target;
use serde::{Deserialize, Serialize};

/// How one target did in one test attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    pub target: Target,
    pub passed: bool,
    /// The step it failed at.
    pub failed_step: Option<String>,
    pub error: Option<String>,
    /// It failed because the infrastructure did (`StepError::Infra`).
    #[serde(default)]
    pub infra: bool,
}

/// One test in one run: its final attempt decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResult {
    pub name: String,
    pub attempts: u32,
    pub passed: bool,
    /// A problem that failed the test as a whole (a step that misbehaved).
    pub error: Option<String>,
    pub targets: Vec<TargetResult>,
    pub skipped: bool,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunResult {
    pub run_id: u32,
    pub tests: Vec<TestResult>,
}

impl RunResult {
    /// (targets that passed, all targets) over the run's tests.
    pub fn target_counts(&self) -> (usize, usize) {
        let all = self.tests.iter().flat_map(|t| &t.targets);
        let (mut ok, mut total) = (0, 0);
        for t in all {
            total += 1;
            ok += usize::from(t.passed);
        }
        (ok, total)
    }
}
