//! The JUnit report, in the shape conformance tooling reads from the
//! upstream suite's `junit_01.xml`: one testsuite, `Kubernetes e2e suite`,
//! one testcase per test named by its full name, with its time, a
//! `<failure message=… type="failed">` when it failed, and the STEP log as
//! its system-out.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::runner::Outcome;

/// The upstream suite's name, kept so tools that look for it find it.
pub const SUITE_NAME: &str = "Kubernetes e2e suite";

pub fn report(outcomes: &[Outcome]) -> Report {
    let mut suite = TestSuite::new(SUITE_NAME);
    let mut total = std::time::Duration::ZERO;
    for o in outcomes {
        total += o.duration;
        let status = match &o.failure {
            None => TestCaseStatus::success(),
            Some(message) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(message.as_str())
                    .set_type("failed")
                    .set_description(message.as_str());
                s
            }
        };
        let mut case = TestCase::new(o.name, status);
        case.set_classname(SUITE_NAME)
            .set_time(o.duration)
            .set_system_out_lossy(o.log.as_bytes());
        suite.add_test_case(case);
    }
    suite.set_time(total);
    let mut report = Report::new("prova e2e");
    report.set_time(total).add_test_suite(suite);
    report
}
