//! Why a running job is not moving: read off its status tree and its
//! descriptor's intervals. The engine emits no "waiting" events, so these
//! are inferred: between runs (the run interval), between the attempts of
//! a failed test (the retry interval), and while a test acquires its
//! targets (another job may hold them; the engine does not say which).

use std::time::Duration;

use prova_core::JobState;
use prova_core::diag::Diagnostics;
use prova_core::node::Format;
use prova_core::status::JobStatus;

use super::layout;

/// What the descriptor says about timing, per test in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// 0: until stopped.
    pub runs: u32,
    pub run_interval: Duration,
    pub tests: Vec<TestPlan>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestPlan {
    pub name: String,
    pub disabled: bool,
    pub num_retries: u32,
    pub retry_interval: Duration,
    pub acquire_timeout: Duration,
    /// Step labels, in order.
    pub steps: Vec<String>,
}

impl Plan {
    /// From a stored job's extended descriptor; `None` when it does not
    /// decode (the page then shows no inferred waits, not an error).
    pub fn from_extended(extended: &str) -> Option<Plan> {
        let ext: serde_json::Value = serde_json::from_str(extended).ok()?;
        let fetched: Vec<(String, Vec<String>)> = ext
            .get("TestStepsDescriptors")
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .map(|t| {
                        let labels = t["TestSteps"]
                            .as_array()
                            .map(|steps| {
                                steps
                                    .iter()
                                    .filter_map(|s| s["label"].as_str().map(str::to_string))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (t["TestName"].as_str().unwrap_or("").to_string(), labels)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let desc = prova_engine::prepare::descriptor_from_extended(extended).ok()?;
        let node = prova_core::node::parse_document(&desc.to_string(), Format::Json).ok()?;
        let mut diags = Diagnostics::default();
        let job = prova_core::descriptor::decode_job(&node, &mut diags)?;
        Some(Plan {
            runs: job.runs,
            run_interval: job.run_interval,
            // TestStepsDescriptors lists every test in descriptor order.
            tests: job
                .tests
                .iter()
                .zip(fetched)
                .map(|(t, (name, steps))| TestPlan {
                    name,
                    steps,
                    disabled: t.disabled,
                    num_retries: t.retry.num_retries,
                    retry_interval: t.retry.retry_interval,
                    acquire_timeout: t.acquire_timeout,
                })
                .collect(),
        })
    }

    pub fn test(&self, name: &str) -> Option<&TestPlan> {
        self.tests.iter().find(|t| t.name == name)
    }
}

/// The job's waits, in words, as of now.
pub fn waits(status: &JobStatus, plan: Option<&Plan>) -> Vec<String> {
    let mut out = Vec::new();
    match status.state {
        Some(JobState::Paused) => {
            out.push("Paused: it goes on from where it stood when resumed.".into());
            return out;
        }
        Some(JobState::Cancelling) => {
            out.push("Cancelling: waiting for the running steps to stop.".into());
            return out;
        }
        Some(JobState::Started) => {}
        _ => return out,
    }
    let Some(run) = status.run_statuses.last() else {
        out.push("Starting: no run has begun yet.".into());
        return out;
    };
    if let Some(end) = run.end_time {
        let more = plan.is_none_or(|p| p.runs == 0 || run.run_id < p.runs);
        if more {
            let interval = plan.map(|p| p.run_interval).unwrap_or_default();
            let at = end
                .checked_add(jiff::SignedDuration::try_from(interval).unwrap_or_default())
                .unwrap_or(end);
            out.push(format!(
                "Waiting the run interval ({}) before run {}: due at {}.",
                layout::duration(interval),
                run.run_id + 1,
                at.strftime("%H:%M:%SZ")
            ));
        } else {
            out.push("Reporting: every run has ended.".into());
        }
        return out;
    }
    // The newest attempt of each test in the running run.
    let mut seen: Vec<&str> = Vec::new();
    for t in run.test_statuses.iter().rev() {
        if seen.contains(&t.test_name.as_str()) {
            continue;
        }
        seen.push(&t.test_name);
        let tp = plan.and_then(|p| p.test(&t.test_name));
        match t.passed {
            Some(false) => {
                let retries = tp.map(|p| p.num_retries).unwrap_or(0);
                if t.test_attempt < retries {
                    let interval = tp.map(|p| p.retry_interval).unwrap_or_default();
                    out.push(format!(
                        "Test {:?}: attempt {} failed; waiting the retry interval ({}) before attempt {} of {}.",
                        t.test_name,
                        t.test_attempt + 1,
                        layout::duration(interval),
                        t.test_attempt + 2,
                        retries + 1
                    ));
                }
            }
            None if t.target_statuses.is_empty() => {
                let timeout = tp
                    .map(|p| format!(" (acquire timeout {})", layout::duration(p.acquire_timeout)))
                    .unwrap_or_default();
                out.push(format!(
                    "Test {:?}: acquiring its targets{timeout}; they stay busy while another job holds them.",
                    t.test_name
                ));
            }
            _ => {}
        }
    }
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use prova_core::status::{RunStatus, TestStatus};

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn plan() -> Plan {
        Plan {
            runs: 3,
            run_interval: Duration::from_secs(30),
            tests: vec![TestPlan {
                name: "t".into(),
                num_retries: 2,
                retry_interval: Duration::from_secs(5),
                acquire_timeout: Duration::from_secs(60),
                ..Default::default()
            }],
        }
    }

    fn started(runs: Vec<RunStatus>) -> JobStatus {
        JobStatus {
            state: Some(JobState::Started),
            run_statuses: runs,
            ..Default::default()
        }
    }

    #[test]
    fn between_runs_the_run_interval_is_the_wait() {
        let st = started(vec![RunStatus {
            run_id: 1,
            start_time: Some(ts("2026-12-01T10:00:00Z")),
            end_time: Some(ts("2026-12-01T10:01:00Z")),
            test_statuses: vec![],
        }]);
        assert_eq!(
            waits(&st, Some(&plan())),
            ["Waiting the run interval (30s) before run 2: due at 10:01:30Z."]
        );
    }

    #[test]
    fn a_failed_attempt_with_retries_left_waits_the_retry_interval() {
        let st = started(vec![RunStatus {
            run_id: 1,
            test_statuses: vec![TestStatus {
                test_name: "t".into(),
                test_attempt: 0,
                passed: Some(false),
                ..Default::default()
            }],
            ..Default::default()
        }]);
        assert_eq!(
            waits(&st, Some(&plan())),
            [
                "Test \"t\": attempt 1 failed; waiting the retry interval (5.0s) before attempt 2 of 3."
            ]
        );
        // Out of retries: no wait.
        let mut last = st.clone();
        last.run_statuses[0].test_statuses[0].test_attempt = 2;
        assert!(waits(&last, Some(&plan())).is_empty());
    }

    #[test]
    fn a_test_without_targets_is_acquiring_them() {
        let st = started(vec![RunStatus {
            run_id: 1,
            test_statuses: vec![TestStatus {
                test_name: "t".into(),
                ..Default::default()
            }],
            ..Default::default()
        }]);
        let w = waits(&st, Some(&plan()));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("acquiring its targets (acquire timeout 1m 00s)"),
            "{w:?}"
        );
    }

    #[test]
    fn ended_jobs_wait_for_nothing() {
        let mut st = started(vec![]);
        st.state = Some(JobState::Completed);
        assert!(waits(&st, None).is_empty());
        st.state = Some(JobState::Paused);
        assert!(waits(&st, None)[0].starts_with("Paused"));
    }

    #[test]
    fn the_plan_comes_from_the_extended_descriptor() {
        let ext = serde_json::json!({
            "JobDescriptor": {
                "JobName": "j", "Runs": 2, "RunInterval": "10s",
                "TestDescriptors": [{
                    "TargetManagerName": "TargetList",
                    "TargetManagerAcquireParameters": {"Targets": [{"ID": "a"}]},
                    "TargetManagerReleaseParameters": {},
                    "TestFetcherName": "literal",
                    "TestFetcherFetchParameters": {"TestName": "x", "Steps": []},
                    "RetryParameters": {"NumRetries": 1, "RetryInterval": "2s"}
                }],
                "Reporting": {"RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">=100%"}}]}
            },
            "TestStepsDescriptors": [{"TestName": "x", "TestSteps": [{"name": "echo", "label": "e", "parameters": {"text": ["hi"]}}], "CleanupSteps": []}]
        });
        let plan = Plan::from_extended(&ext.to_string()).expect("decodes");
        assert_eq!(plan.runs, 2);
        assert_eq!(plan.run_interval, Duration::from_secs(10));
        assert_eq!(plan.tests[0].name, "x");
        assert_eq!(plan.tests[0].num_retries, 1);
        assert_eq!(plan.tests[0].retry_interval, Duration::from_secs(2));
        assert_eq!(plan.tests[0].steps, ["e"]);
    }
}
