//! Job histories built in a real SQLite store, event by event as the
//! engine and the results steps emit them.
#![allow(dead_code)]

use prova_core::results::{CaseStatus, TEST_CASE, TestCaseResult};
use prova_core::{EventKind, JobId, NewEvent, Target};
use prova_store::{EventStore, JobStore, NewJob, SqlStore};
use serde_json::json;

pub const T0: i64 = 1_700_000_000;

/// How one attempt of a test ends.
#[derive(Clone, Copy, Debug)]
pub enum A {
    Pass,
    /// A target failed a step.
    Fail,
    /// A `TestError` (targets not acquired, ...).
    Error,
}

/// A job to record: its tests' attempts (one run), their cases.
pub struct JobSpec {
    pub name: &'static str,
    /// The test's inputs: a parameter of its one step.
    pub inputs: &'static str,
    /// (test, attempts, seconds per attempt)
    pub tests: Vec<(&'static str, Vec<A>, i64)>,
    /// (test it ran in, attempt, classname, name, status, secs, flaky failures)
    pub cases: Vec<(
        &'static str,
        u32,
        &'static str,
        &'static str,
        CaseStatus,
        f64,
        u32,
    )>,
    /// Leave the job Started (it never ends).
    pub running: bool,
}

impl JobSpec {
    pub fn new(name: &'static str, inputs: &'static str) -> Self {
        JobSpec {
            name,
            inputs,
            tests: Vec::new(),
            cases: Vec::new(),
            running: false,
        }
    }
    pub fn test(mut self, name: &'static str, attempts: &[A], secs: i64) -> Self {
        self.tests.push((name, attempts.to_vec(), secs));
        self
    }
    #[allow(clippy::too_many_arguments)]
    pub fn case(
        mut self,
        test: &'static str,
        attempt: u32,
        classname: &'static str,
        name: &'static str,
        status: CaseStatus,
        secs: f64,
        flaky: u32,
    ) -> Self {
        self.cases
            .push((test, attempt, classname, name, status, secs, flaky));
        self
    }
}

pub async fn store(dir: &tempfile::TempDir) -> SqlStore {
    SqlStore::open_path(&dir.path().join("prova.db"))
        .await
        .unwrap()
}

/// Records a job and its events; returns its id.
pub async fn record(store: &SqlStore, spec: &JobSpec) -> JobId {
    let tests: Vec<serde_json::Value> = spec
        .tests
        .iter()
        .map(|(name, _, _)| {
            json!({"TestName": name, "TestSteps": [{"name": "cmd", "label": "run", "parameters": {"args": [spec.inputs]}}], "CleanupSteps": []})
        })
        .collect();
    let id = store
        .create_job(NewJob {
            name: spec.name.into(),
            extended_descriptor: json!({"JobDescriptor": {}, "TestStepsDescriptors": tests})
                .to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let t = std::cell::Cell::new(T0 + id * 10_000);
    let at = || {
        t.set(t.get() + 1);
        jiff::Timestamp::from_second(t.get()).unwrap()
    };
    let mut events = vec![NewEvent {
        emit_time: at(),
        ..NewEvent::job(id, "JobStateStarted", None)
    }];
    let ev = |test: &str, attempt: u32, name: &str, payload, time| NewEvent {
        kind: EventKind::Test,
        job_id: id,
        run_id: 1,
        test_name: Some(test.to_string()),
        test_attempt: Some(attempt),
        step_label: None,
        target: None,
        name: name.to_string(),
        payload,
        emit_time: time,
    };
    for (test, attempts, secs) in &spec.tests {
        for (n, a) in attempts.iter().enumerate() {
            let n = n as u32;
            let start = at();
            events.push(ev(test, n, "TestStarted", None, start));
            match a {
                A::Pass => {}
                A::Fail => events.push(NewEvent {
                    step_label: Some("run".into()),
                    target: Some(Target::with_id("host1")),
                    ..ev(
                        test,
                        n,
                        "TargetErr",
                        Some(json!({"Error": "exit status 1"})),
                        start,
                    )
                }),
                A::Error => events.push(ev(
                    test,
                    n,
                    "TestError",
                    Some(json!({"Error": "cannot acquire targets"})),
                    start,
                )),
            }
            for (ct, ca, class, cname, status, csecs, flaky) in &spec.cases {
                if ct == test && *ca == n {
                    let case = TestCaseResult {
                        suite: "e2e".into(),
                        name: cname.to_string(),
                        classname: (!class.is_empty()).then(|| class.to_string()),
                        status: *status,
                        time_secs: Some(*csecs),
                        message: matches!(status, CaseStatus::Failed | CaseStatus::Error)
                            .then(|| format!("{cname} broke")),
                        output: None,
                        flaky_failures: *flaky,
                        file: "junit.xml".into(),
                    };
                    events.push(NewEvent {
                        step_label: Some("run".into()),
                        target: Some(Target::with_id("host1")),
                        ..ev(
                            test,
                            n,
                            TEST_CASE,
                            Some(serde_json::to_value(case).unwrap()),
                            start,
                        )
                    });
                }
            }
            let end = jiff::Timestamp::from_second(start.as_second() + secs).unwrap();
            t.set(end.as_second());
            events.push(ev(
                test,
                n,
                "TestFinished",
                Some(json!({"Success": matches!(a, A::Pass)})),
                end,
            ));
        }
    }
    if !spec.running {
        events.push(NewEvent {
            emit_time: at(),
            ..NewEvent::job(id, "JobStateCompleted", None)
        });
    }
    store.append_events(&events).await.unwrap();
    id
}
