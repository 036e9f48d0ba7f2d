//! What the test suites inside steps reported (a container's or an SSH
//! host's JUnit files, as `TestCasesSummary` and `TestCaseResult` events):
//! the counts shown on a step's progress line and the failing cases listed
//! at the end of `prova run`.

use prova_core::NewEvent;
use prova_core::results::{CaseStatus, TEST_CASE, TestCaseResult};
use prova_results::TEST_CASES_SUMMARY;

/// Failing cases kept for the final list; the rest are counted.
pub const MAX_LISTED: usize = 50;

/// Case counts, summed over the targets of a step.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub passed: u64,
    pub failed: u64,
    pub errors: u64,
    pub skipped: u64,
    pub flaky: u64,
}

impl Counts {
    /// The counts of a `TestCasesSummary` payload.
    pub fn of_summary(payload: &serde_json::Value) -> Counts {
        let n = |k: &str| payload.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        Counts {
            passed: n("Passed"),
            failed: n("Failed"),
            errors: n("Error"),
            skipped: n("Skipped"),
            flaky: n("Flaky"),
        }
    }

    pub fn add(&mut self, o: Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.errors += o.errors;
        self.skipped += o.skipped;
        self.flaky += o.flaky;
    }
}

/// `4 passed, 1 failed, 1 skipped`: the counts that are not zero, in the
/// order nextest and JUnit viewers use; `no test cases` when all are.
impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = [
            (self.passed, "passed"),
            (self.failed, "failed"),
            (self.errors, "errors"),
            (self.skipped, "skipped"),
            (self.flaky, "flaky"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            f.write_str("no test cases")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// A failed or errored case, where it ran.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedCase {
    pub run_id: u32,
    pub test: String,
    pub step: String,
    pub target: String,
    /// `Suite: Name`
    pub case: String,
    /// First line of the failure message, bounded.
    pub message: String,
}

impl std::fmt::Display for FailedCase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "run {}", self.run_id)?;
        for part in [&self.test, &self.step, &self.target] {
            if !part.is_empty() {
                write!(f, " · {part}")?;
            }
        }
        write!(f, ": {}", self.case)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

/// The failing cases of a job, as its events arrive.
#[derive(Debug, Default)]
pub struct FailedCases {
    pub listed: Vec<FailedCase>,
    /// Failing cases beyond [`MAX_LISTED`].
    pub more: u64,
}

impl FailedCases {
    /// Takes note of `ev` if it is a failed case; returns it.
    pub fn observe(&mut self, ev: &NewEvent) -> Option<FailedCase> {
        let case = failed_case(ev)?;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(case.clone());
        } else {
            self.more += 1;
        }
        Some(case)
    }
}

/// The summary counts, if `ev` is a `TestCasesSummary`.
pub fn summary(ev: &NewEvent) -> Option<Counts> {
    (ev.name == TEST_CASES_SUMMARY)
        .then(|| ev.payload.as_ref().map(Counts::of_summary))
        .flatten()
}

/// The failed case, if `ev` is a `TestCaseResult` that failed or errored.
pub fn failed_case(ev: &NewEvent) -> Option<FailedCase> {
    if ev.name != TEST_CASE {
        return None;
    }
    let case: TestCaseResult = serde_json::from_value(ev.payload.clone()?).ok()?;
    if !matches!(case.status, CaseStatus::Failed | CaseStatus::Error) {
        return None;
    }
    let message: String = case
        .message
        .as_deref()
        .or(case.output.as_deref())
        .and_then(|m| m.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("")
        .trim()
        .chars()
        .take(200)
        .collect();
    let name = if case.suite.is_empty() {
        case.name
    } else {
        format!("{}: {}", case.suite, case.name)
    };
    Some(FailedCase {
        run_id: ev.run_id,
        test: ev.test_name.clone().unwrap_or_default(),
        step: ev.step_label.clone().unwrap_or_default(),
        target: ev.target.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
        case: name,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, payload: serde_json::Value) -> NewEvent {
        let mut ev = NewEvent::job(1, name, Some(payload));
        ev.run_id = 1;
        ev.test_name = Some("suite".into());
        ev.step_label = Some("e2e".into());
        ev
    }

    #[test]
    fn a_summary_reads_as_its_nonzero_counts() {
        let ev = event(
            TEST_CASES_SUMMARY,
            json!({"Total": 5, "Passed": 4, "Failed": 0, "Error": 0, "Skipped": 1, "Flaky": 0}),
        );
        assert_eq!(summary(&ev).unwrap().to_string(), "4 passed, 1 skipped");
        assert_eq!(Counts::default().to_string(), "no test cases");
    }

    #[test]
    fn a_failed_case_names_its_suite_case_and_first_message_line() {
        let ev = event(
            TEST_CASE,
            json!({"Suite": "api", "Name": "test_login", "Status": "failed",
                   "Message": "\nassert 401 == 200\nmore", "File": "junit.xml"}),
        );
        let c = failed_case(&ev).unwrap();
        assert_eq!(c.case, "api: test_login");
        assert_eq!(c.message, "assert 401 == 200");
        assert_eq!(
            c.to_string(),
            "run 1 · suite · e2e: api: test_login: assert 401 == 200"
        );
        let passed = event(
            TEST_CASE,
            json!({"Suite": "api", "Name": "ok", "Status": "passed", "File": "j.xml"}),
        );
        assert_eq!(failed_case(&passed), None);
    }

    #[test]
    fn the_list_is_bounded_and_counts_the_rest() {
        let mut cases = FailedCases::default();
        let ev = event(
            TEST_CASE,
            json!({"Suite": "s", "Name": "n", "Status": "error", "File": "j.xml"}),
        );
        for _ in 0..MAX_LISTED + 3 {
            cases.observe(&ev);
        }
        assert_eq!(cases.listed.len(), MAX_LISTED);
        assert_eq!(cases.more, 3);
    }
}
