//! What the reporter learns from the job's events: the names of the test
//! cases its steps brought back (`TestCaseResult` events: an e2e suite's
//! JUnit, through the k8sjob step's `results_dir`) and when the job began.

use std::collections::BTreeSet;

use prova_core::NewEvent;
use prova_core::results::{CaseStatus, TEST_CASE, TestCaseResult};

/// The job's tests, as the coverage reporter credits them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobTests {
    /// Every test case name (the e2e test's full name, as its user agent
    /// carries it after ` -- `).
    pub names: BTreeSet<String>,
    /// Of which failed or errored in their last report.
    pub failed: BTreeSet<String>,
    /// The first event's time: the job's start.
    pub started: Option<jiff::Timestamp>,
}

/// Reads the job's tests and start from its events.
pub fn job_tests(events: &[NewEvent]) -> JobTests {
    let mut t = JobTests::default();
    for ev in events {
        t.started = Some(t.started.map_or(ev.emit_time, |s| s.min(ev.emit_time)));
        if ev.name != TEST_CASE {
            continue;
        }
        let Some(case) = ev
            .payload
            .clone()
            .and_then(|p| serde_json::from_value::<TestCaseResult>(p).ok())
        else {
            continue;
        };
        let name = case.name.trim().to_string();
        if name.is_empty() {
            continue;
        }
        match case.status {
            CaseStatus::Failed | CaseStatus::Error => {
                t.failed.insert(name.clone());
            }
            CaseStatus::Passed => {
                t.failed.remove(&name);
            }
            CaseStatus::Skipped => {}
        }
        if case.status != CaseStatus::Skipped {
            t.names.insert(name);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, status: &str, secs: i64) -> NewEvent {
        let mut ev = NewEvent::job(
            1,
            TEST_CASE,
            Some(
                serde_json::json!({"Suite":"Kubernetes e2e suite","Name":name,"Status":status,"File":"junit.xml"}),
            ),
        );
        ev.emit_time = jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap();
        ev
    }

    #[test]
    fn names_of_run_cases_and_the_first_events_time() {
        let mut start = NewEvent::job(1, "JobStateStarted", None);
        start.emit_time = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let events = vec![
            case("[sig-apps] Job a", "passed", 5),
            start,
            case(" [sig-apps] StatefulSet b ", "failed", 6),
            case("skipped one", "skipped", 7),
            NewEvent::job(1, TEST_CASE, Some(serde_json::json!({"garbage": true}))),
        ];
        let t = job_tests(&events);
        assert_eq!(
            t.names.iter().collect::<Vec<_>>(),
            ["[sig-apps] Job a", "[sig-apps] StatefulSet b"]
        );
        assert_eq!(
            t.failed.iter().collect::<Vec<_>>(),
            ["[sig-apps] StatefulSet b"]
        );
        // The garbage event was emitted now, later than every other.
        assert_eq!(t.started.unwrap().as_second(), 1_700_000_000);
    }
}
