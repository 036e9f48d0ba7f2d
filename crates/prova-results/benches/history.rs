//! A test's history over 1,000 jobs (issue 11: ≤ 200 ms), on a file SQLite
//! store (WAL) holding 1,000 jobs named `nightly` and 200 of another name.
//! Each job has five ConTest tests on three targets (start, end, step and
//! output events) and a suite step that brought back 200 JUnit cases:
//! ~380 events a job, ~460,000 in all.
//!
//! - `test_over_1000_jobs`: `prova history 'Test 3' --job-name nightly --last 1000`;
//! - `case_over_1000_jobs`: a JUnit case's, by `classname.name`;
//! - `test_without_job_name`: the same test, its job names found first
//!   among the newest 1,000 jobs;
//! - `compare_two_jobs`: `prova diff`.
//!
//! `cargo bench -p prova-results --bench history`

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use prova_core::results::{CaseStatus, TEST_CASE, TestCaseResult};
use prova_core::{EventKind, JobId, NewEvent, Target};
use prova_results::history::{HistoryRequest, load_comparison, load_history};
use prova_store::{EventStore, JobStore, NewJob, SqlStore};
use serde_json::json;

const JOBS: usize = 1_000;
const OTHER_JOBS: usize = 200;
const TESTS: usize = 5;
const TARGETS: usize = 3;
const CASES: usize = 200;

fn test_event(
    job: JobId,
    test: &str,
    name: &str,
    target: Option<usize>,
    payload: Option<serde_json::Value>,
    time: jiff::Timestamp,
) -> NewEvent {
    NewEvent {
        kind: EventKind::Test,
        job_id: job,
        run_id: 1,
        test_name: Some(test.to_string()),
        test_attempt: Some(0),
        step_label: target.map(|_| "run".to_string()),
        target: target.map(|i| Target::with_id(format!("host{i}"))),
        name: name.to_string(),
        payload,
        emit_time: time,
    }
}

fn job_events(job: JobId, n: usize) -> Vec<NewEvent> {
    let t0 = jiff::Timestamp::from_second(1_700_000_000 + n as i64 * 3600).unwrap();
    let mut t = 0u64;
    let mut at = || {
        t += 1000;
        t0 + Duration::from_micros(t)
    };
    let mut evs = vec![NewEvent {
        emit_time: at(),
        ..NewEvent::job(job, "JobStateStarted", None)
    }];
    for test in 0..TESTS {
        let name = format!("Test {test}");
        // Test 3 fails every 7th job: a real history has failures.
        let passed = !(test == 3 && n.is_multiple_of(7));
        evs.push(test_event(job, &name, "TestStarted", None, None, at()));
        for target in 0..TARGETS {
            evs.push(test_event(job, &name, "TargetIn", Some(target), None, at()));
            for line in 0..8 {
                let msg = json!({"Msg": format!("line {line} of a step's output on host{target}")});
                evs.push(test_event(
                    job,
                    &name,
                    "CmdStdout",
                    Some(target),
                    Some(msg),
                    at(),
                ));
            }
            if !passed && target == 0 {
                let err = json!({"Error": "exit status 1"});
                evs.push(test_event(
                    job,
                    &name,
                    "TargetErr",
                    Some(target),
                    Some(err),
                    at(),
                ));
            } else {
                evs.push(test_event(
                    job,
                    &name,
                    "TargetOut",
                    Some(target),
                    None,
                    at(),
                ));
            }
            if test == 0 && target == 0 {
                for c in 0..CASES {
                    let case = TestCaseResult {
                        suite: "e2e".into(),
                        name: format!("case {c}"),
                        classname: Some(format!("pkg.Suite{}", c % 10)),
                        status: if (c + n).is_multiple_of(97) {
                            CaseStatus::Failed
                        } else {
                            CaseStatus::Passed
                        },
                        time_secs: Some(0.5 + (c % 13) as f64),
                        message: None,
                        output: None,
                        flaky_failures: 0,
                        file: "junit.xml".into(),
                    };
                    let payload = serde_json::to_value(case).unwrap();
                    evs.push(test_event(
                        job,
                        &name,
                        TEST_CASE,
                        Some(target),
                        Some(payload),
                        at(),
                    ));
                }
            }
        }
        let done = json!({"Success": passed});
        evs.push(test_event(
            job,
            &name,
            "TestFinished",
            None,
            Some(done),
            at(),
        ));
    }
    evs.push(NewEvent {
        emit_time: at(),
        ..NewEvent::job(job, "JobStateCompleted", None)
    });
    evs
}

/// Records the jobs; returns the two newest nightly ones and the events.
async fn seed(store: &SqlStore) -> (JobId, JobId, usize) {
    let tests: Vec<serde_json::Value> = (0..TESTS)
        .map(|t| {
            json!({
                "TestName": format!("Test {t}"),
                "TestSteps": [{"name": "cmd", "label": "run", "parameters": {"executable": ["make"], "args": [format!("check-{t}")]}}],
                "CleanupSteps": [],
            })
        })
        .collect();
    let ext = json!({"JobDescriptor": {}, "TestStepsDescriptors": tests}).to_string();
    let mut nightly = Vec::new();
    let mut total = 0;
    for n in 0..JOBS + OTHER_JOBS {
        // Every sixth job is a weekly one, 200 in all, among the nightly.
        let name = if n % 6 == 5 && n / 6 < OTHER_JOBS {
            "weekly"
        } else {
            "nightly"
        };
        let id = store
            .create_job(NewJob {
                name: name.into(),
                extended_descriptor: ext.clone(),
                descriptor: "{}".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let evs = job_events(id, n);
        total += evs.len();
        store.append_events(&evs).await.unwrap();
        if name == "nightly" {
            nightly.push(id);
        }
    }
    (
        nightly[nightly.len() - 2],
        nightly[nightly.len() - 1],
        total,
    )
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt
        .block_on(SqlStore::open_path(&dir.path().join("history.db")))
        .unwrap();
    let started = Instant::now();
    let (base, head, events) = rt.block_on(seed(&store));
    eprintln!(
        "seeded {} jobs, {events} events in {:?}",
        JOBS + OTHER_JOBS,
        started.elapsed()
    );

    // Where the time goes, once.
    rt.block_on(async {
        use prova_store::history::{HistoryEventFilter, HistoryStore};
        let t = Instant::now();
        let jobs = store.jobs_named("nightly", 1000).await.unwrap();
        let t_jobs = t.elapsed();
        let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
        for contains in [Some("Test 3"), Some("case 42"), None] {
            let t = Instant::now();
            let evs = store
                .history_events(&HistoryEventFilter {
                    jobs: ids.clone(),
                    contains: contains.map(str::to_string),
                })
                .await
                .unwrap();
            eprintln!(
                "history events {contains:?}: {} in {:?}",
                evs.len(),
                t.elapsed()
            );
        }
        let t = Instant::now();
        for j in &jobs {
            std::hint::black_box(
                prova_results::history::inputs::TestInputs::from_extended_descriptor(
                    &j.extended_descriptor,
                ),
            );
        }
        eprintln!(
            "jobs_named: {t_jobs:?}; 1000 descriptors' inputs: {:?}",
            t.elapsed()
        );
    });

    let test = HistoryRequest::new("Test 3", Some("nightly".into()), 1000);
    let answer = rt.block_on(load_history(&store, &test)).unwrap();
    let h = &answer.histories[0];
    assert_eq!(h.entries.len(), 1000);
    assert!(h.summary.failed > 100, "{:?}", h.summary);
    let case = HistoryRequest::new("pkg.Suite2.case 42", Some("nightly".into()), 1000);
    let answer = rt.block_on(load_history(&store, &case)).unwrap();
    assert_eq!(answer.histories.len(), 1);
    assert_eq!(answer.histories[0].summary.executions, 1000);

    let mut g = c.benchmark_group("history");
    g.sample_size(20);
    g.bench_function("test_over_1000_jobs", |b| {
        b.iter(|| rt.block_on(load_history(&store, &test)).unwrap())
    });
    g.bench_function("case_over_1000_jobs", |b| {
        b.iter(|| rt.block_on(load_history(&store, &case)).unwrap())
    });
    let anywhere = HistoryRequest::new("Test 3", None, 1000);
    g.bench_function("test_without_job_name", |b| {
        b.iter(|| rt.block_on(load_history(&store, &anywhere)).unwrap())
    });
    g.bench_function("compare_two_jobs", |b| {
        b.iter(|| rt.block_on(load_comparison(&store, base, head)).unwrap())
    });
    g.finish();
}

criterion_group!(history, benches);
criterion_main!(history);
