//! "Retry only what failed": which tests of an ended job failed, and its
//! descriptor cut down to them. The server (`POST /api/v1/jobs/{id}/retry?failed=true`,
//! the job page's "Retry failed" button) and `prova retry --failed` share it.

use std::collections::BTreeSet;

use prova_core::status::JobStatus;
use serde_json::Value;

/// The tests whose last attempt failed, in any run (a test retried within
/// the job and then passed is not one of them), in name order. A test that
/// never finished (the job was cancelled first) did not fail.
pub fn failed_tests(status: &JobStatus) -> BTreeSet<String> {
    let mut failed = BTreeSet::new();
    for run in &status.run_statuses {
        for t in &run.test_statuses {
            let last = run
                .test_statuses
                .iter()
                .filter(|o| o.test_name == t.test_name)
                .map(|o| o.test_attempt)
                .max();
            if Some(t.test_attempt) == last && t.passed == Some(false) {
                failed.insert(t.test_name.clone());
            }
        }
    }
    failed
}

/// Why a descriptor could not be cut down.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum OnlyTestsError {
    #[error("the descriptor has no TestDescriptors array")]
    NoTests,
    #[error("no test of the descriptor is named {0:?}")]
    Missing(String),
}

/// Keeps, in `desc` (a descriptor rebuilt by
/// [`crate::prepare::descriptor_from_extended`], whose tests carry their
/// name in `TestFetcherFetchParameters.TestName`), only the tests named in
/// `names`. Every name must match a test: a retry that would silently
/// drop a failed test is refused.
pub fn only_tests(desc: &mut Value, names: &BTreeSet<String>) -> Result<(), OnlyTestsError> {
    let tests = desc
        .as_object_mut()
        .and_then(|o| {
            o.iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case("TestDescriptors"))
        })
        .and_then(|(_, v)| v.as_array_mut())
        .ok_or(OnlyTestsError::NoTests)?;
    tests.retain(|t| test_name(t).is_some_and(|n| names.contains(n)));
    for name in names {
        if !tests.iter().any(|t| test_name(t) == Some(name.as_str())) {
            return Err(OnlyTestsError::Missing(name.clone()));
        }
    }
    Ok(())
}

fn test_name(test: &Value) -> Option<&str> {
    test.get("TestFetcherFetchParameters")?
        .get("TestName")?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use prova_core::status::{RunStatus, TestStatus};
    use serde_json::json;

    fn attempt(name: &str, attempt: u32, passed: Option<bool>) -> TestStatus {
        TestStatus {
            test_name: name.into(),
            test_attempt: attempt,
            passed,
            ..Default::default()
        }
    }

    #[test]
    fn only_a_failed_last_attempt_counts() {
        let status = JobStatus {
            run_statuses: vec![
                RunStatus {
                    run_id: 1,
                    test_statuses: vec![
                        // Failed, then passed on the retry: not failed.
                        attempt("flaky", 0, Some(false)),
                        attempt("flaky", 1, Some(true)),
                        attempt("broken", 0, Some(false)),
                        attempt("fine", 0, Some(true)),
                        attempt("unfinished", 0, None),
                    ],
                    ..Default::default()
                },
                RunStatus {
                    run_id: 2,
                    test_statuses: vec![attempt("fine", 0, Some(false))],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let got: Vec<String> = failed_tests(&status).into_iter().collect();
        assert_eq!(got, ["broken", "fine"]);
    }

    fn desc() -> Value {
        let test = |n: &str| json!({"TargetManagerName": "TargetList", "TestFetcherName": "literal", "TestFetcherFetchParameters": {"TestName": n, "Steps": []}});
        json!({"JobName": "j", "Runs": 1, "TestDescriptors": [test("a"), test("b"), test("c")]})
    }

    #[test]
    fn keeps_the_named_tests_in_order() {
        let mut d = desc();
        let names: BTreeSet<String> = ["c".to_string(), "a".to_string()].into();
        only_tests(&mut d, &names).unwrap();
        let kept: Vec<&str> = d["TestDescriptors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| test_name(t).unwrap())
            .collect();
        assert_eq!(kept, ["a", "c"]);
        assert_eq!(d["JobName"], "j");
    }

    #[test]
    fn refuses_a_name_it_cannot_find() {
        let mut d = desc();
        let names: BTreeSet<String> = ["zz".to_string()].into();
        assert_eq!(
            only_tests(&mut d, &names),
            Err(OnlyTestsError::Missing("zz".into()))
        );
        assert_eq!(
            only_tests(&mut json!({"JobName": "x"}), &names),
            Err(OnlyTestsError::NoTests)
        );
    }
}
