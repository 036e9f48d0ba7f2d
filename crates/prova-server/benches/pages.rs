//! Server time of the dashboard's pages (`cargo bench -p prova-server
//! --bench pages`): the page of a job with 100,000 events, and the jobs
//! list over 10,000 jobs. The request goes through the whole router (auth,
//! store reads on SQLite, rendering), without a socket.
//!
//! Also a test's history page over 1,000 jobs and the coverage page of
//! APISnoop's 1.37.0 release file (874 endpoints, the whole sunburst), and
//! the verdicts of a list page of 50 jobs two ways in the same run: stored
//! on the jobs' rows as they ended (what the lists read), and read from
//! each job's reports per request (how they were read before).
//!
//! Targets (issue 11): a job page ≤ 300 ms, the jobs list ≤ 100 ms, a
//! test's history over 1,000 jobs ≤ 200 ms.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use criterion::{Criterion, criterion_group, criterion_main};
use prova_core::results::{CaseStatus, TEST_CASE, TestCaseResult};
use prova_core::status::FINAL_REPORT;
use prova_core::{EventKind, JobId, JobState, NewEvent, Target};
use prova_engine::status::{list_verdicts, verdict_from_reports};
use prova_server::ServerConfig;
use prova_store::{EventStore, JobFilter, JobStore, NewJob};
use serde_json::json;
use tower::ServiceExt;

const TOKEN: &str = "bench-token";
const TARGETS: usize = 500;
const STEPS: usize = 10;
const CASES: usize = 2_000;
const EVENTS: usize = 100_000;
const JOBS: usize = 10_000;
const HISTORY_JOBS: usize = 1_000;

/// A descriptor of a real one's size (six tests: ~2 KB): the jobs list's
/// name filter reads every job's row, and rows this big cost it more than
/// rows holding `{}`.
fn descriptor_text() -> String {
    let tests: Vec<serde_json::Value> = (0..6)
        .map(|i| {
            json!({
                "TargetManagerName": "TargetList",
                "TargetManagerAcquireParameters": {"Targets": [{"ID": "host1"}, {"ID": "host2"}]},
                "TestFetcherName": "literal",
                "TestFetcherFetchParameters": {
                    "TestName": format!("test {i}"),
                    "Steps": [{"name": "cmd", "label": "probe",
                               "parameters": {"executable": ["/usr/bin/test"], "args": ["-f", "/etc/hostname"]}}]
                }
            })
        })
        .collect();
    json!({
        "JobName": "bench", "Runs": 1, "TestDescriptors": tests,
        "Reporting": {"RunReporters": [{"name": "TargetSuccess", "parameters": {"SuccessExpression": "=100%"}}]}
    })
    .to_string()
}

fn new_job(name: &str) -> NewJob {
    let descriptor = descriptor_text();
    NewJob {
        name: name.into(),
        tags: vec!["bench".into()],
        requestor: "bench".into(),
        extended_descriptor: descriptor.clone(),
        descriptor,
        source_path: None,
    }
}

/// A finished job of 100,000 events: 500 targets through 10 steps
/// (10,000 TargetIn/TargetOut), 2,000 suite cases, the rest step output.
async fn big_job(store: &prova_store::SqlStore) -> JobId {
    // Its descriptor names no tests: the page shows the events' alone.
    let id = store
        .create_job(NewJob {
            descriptor: "{}".into(),
            extended_descriptor: "{}".into(),
            ..new_job("big")
        })
        .await
        .unwrap();
    let mut events = vec![NewEvent::job(id, JobState::Started.event_name(), None)];
    let ev = |name: &str,
              step: Option<String>,
              target: Option<usize>,
              payload: Option<serde_json::Value>| NewEvent {
        kind: EventKind::Test,
        job_id: id,
        run_id: 1,
        test_name: Some("fleet".into()),
        test_attempt: Some(0),
        step_label: step,
        target: target.map(|t| Target {
            id: format!("t{t:04}"),
            ..Default::default()
        }),
        name: name.into(),
        payload,
        emit_time: jiff::Timestamp::now(),
    };
    let run_event = |name: &str| NewEvent {
        run_id: 1,
        ..NewEvent::job(id, name, None)
    };
    events.push(run_event("RunStarted"));
    events.push(ev("TestStarted", None, None, None));
    for t in 0..TARGETS {
        events.push(ev("TargetAcquired", None, Some(t), None));
    }
    for s in 0..STEPS {
        for t in 0..TARGETS {
            events.push(ev("TargetIn", Some(format!("step{s}")), Some(t), None));
            events.push(ev("TargetOut", Some(format!("step{s}")), Some(t), None));
        }
    }
    for c in 0..CASES {
        let case = TestCaseResult {
            suite: "suite".into(),
            name: format!("case {c}"),
            classname: None,
            status: if c % 50 == 0 {
                CaseStatus::Failed
            } else {
                CaseStatus::Passed
            },
            time_secs: Some(0.5),
            message: (c % 50 == 0).then(|| "expected true, got false".into()),
            output: None,
            flaky_failures: 0,
            file: "junit.xml".into(),
        };
        events.push(ev(
            TEST_CASE,
            Some("step9".into()),
            Some(c % TARGETS),
            Some(serde_json::to_value(case).unwrap()),
        ));
    }
    let mut n = 0;
    while events.len() < EVENTS - 4 {
        events.push(ev(
            "CmdStdout",
            Some(format!("step{}", n % STEPS)),
            Some(n % TARGETS),
            Some(json!({"Msg": format!("line {n} of output")})),
        ));
        n += 1;
    }
    for t in 0..TARGETS {
        events.push(ev("TargetReleased", None, Some(t), None));
    }
    events.push(ev(
        "TestFinished",
        None,
        None,
        Some(json!({"Success": true})),
    ));
    events.push(run_event("RunFinished"));
    events.push(NewEvent::job(
        id,
        FINAL_REPORT,
        Some(json!({"ReporterName": "TargetSuccess", "Success": true, "Data": "ok"})),
    ));
    events.push(NewEvent::job(id, JobState::Completed.event_name(), None));
    for chunk in events.chunks(10_000) {
        store.append_events(chunk).await.unwrap();
    }
    id
}

async fn many_jobs(store: &prova_store::SqlStore) {
    for i in 0..JOBS {
        let id = store
            .create_job(new_job(&format!("job {i}")))
            .await
            .unwrap();
        store
            .append_events(&[
                NewEvent::job(id, JobState::Started.event_name(), None),
                NewEvent::job(
                    id,
                    FINAL_REPORT,
                    Some(json!({"ReporterName": "r", "Success": i % 7 != 0, "Data": null})),
                ),
                NewEvent::job(id, JobState::Completed.event_name(), None),
            ])
            .await
            .unwrap();
    }
}

/// 1,000 jobs named `nightly` whose test `check` (one target, one step)
/// fails every fifth time, with the same inputs each time.
async fn history_jobs(store: &prova_store::SqlStore) {
    let ext =
        json!({"TestStepsDescriptors": [{"TestName": "check", "TestSteps": [{"name": "cmd"}]}]});
    for i in 0..HISTORY_JOBS {
        let id = store
            .create_job(NewJob {
                extended_descriptor: ext.to_string(),
                ..new_job("nightly")
            })
            .await
            .unwrap();
        let ev = |name: &str, payload: Option<serde_json::Value>| NewEvent {
            kind: EventKind::Test,
            job_id: id,
            run_id: 1,
            test_name: Some("check".into()),
            test_attempt: Some(0),
            step_label: Some("probe".into()),
            target: Some(Target::with_id("host1")),
            name: name.into(),
            payload,
            emit_time: jiff::Timestamp::now(),
        };
        let pass = i % 5 != 0;
        let mut events = vec![
            NewEvent::job(id, JobState::Started.event_name(), None),
            ev("TestStarted", None),
        ];
        if !pass {
            events.push(ev("TargetErr", Some(json!({"Error": "exit status 1"}))));
        }
        events.push(ev("TestFinished", Some(json!({"Success": pass}))));
        events.push(NewEvent::job(id, JobState::Completed.event_name(), None));
        store.append_events(&events).await.unwrap();
    }
}

fn pages(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (app, big, store) = rt.block_on(async {
        let store = prova_store::SqlStore::open_path(&dir.path().join("bench.db"))
            .await
            .unwrap();
        let big = big_job(&store).await;
        many_jobs(&store).await;
        history_jobs(&store).await;
        let release = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/corpus/k8s/apisnoop-coverage/1.37.0.json");
        let config = ServerConfig {
            token: Some(TOKEN.into()),
            artifacts_root: dir.path().join("artifacts"),
            coverage_report: Some(Arc::new(
                prova_coverage::Report::from_file(&release).unwrap(),
            )),
            ..ServerConfig::default()
        };
        let store = Arc::new(store);
        let state = prova_server::state(config, store.clone(), prova_engine::plugins::registry());
        (prova_server::router(state), big, store)
    });
    let get = |uri: String| {
        let app = app.clone();
        async move {
            let resp = app
                .oneshot(
                    Request::get(uri)
                        .header("authorization", format!("Bearer {TOKEN}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap()
                .len()
        }
    };
    let mut g = c.benchmark_group("pages");
    g.sample_size(10);
    g.bench_function("job page, 100,000 events", |b| {
        b.iter(|| rt.block_on(get(format!("/jobs/{big}"))))
    });
    g.bench_function("jobs list, 10,000 jobs", |b| {
        b.iter(|| rt.block_on(get("/".into())))
    });
    g.bench_function("jobs list, 10,000 jobs, name filter", |b| {
        b.iter(|| rt.block_on(get("/?name=job%209999".into())))
    });
    let page_of_50 = || async {
        store
            .list_jobs(&JobFilter {
                limit: Some(50),
                ..Default::default()
            })
            .await
            .unwrap()
    };
    g.bench_function("jobs list verdicts, 50 jobs, stored", |b| {
        b.iter(|| {
            rt.block_on(async {
                let jobs = page_of_50().await;
                list_verdicts(&*store, &jobs).await.unwrap()
            })
        })
    });
    g.bench_function(
        "jobs list verdicts, 50 jobs, from reports per request",
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    let jobs = page_of_50().await;
                    futures::future::try_join_all(
                        jobs.iter().map(|j| verdict_from_reports(&*store, j)),
                    )
                    .await
                    .unwrap()
                })
            })
        },
    );
    g.bench_function("history page, 1,000 jobs", |b| {
        b.iter(|| rt.block_on(get("/history?test=check&job_name=nightly&last=1000".into())))
    });
    g.bench_function("coverage page, APISnoop 1.37.0", |b| {
        b.iter(|| rt.block_on(get("/coverage".into())))
    });
    g.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
