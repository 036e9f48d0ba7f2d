//! The APISnoop loop against the Kubernetes API double: an e2e test runs,
//! the double's audit webhook posts its requests to an audit sink, and the
//! `coverage` reporter of `examples/k8s/apisnoop-*.yaml` (the real v1.36
//! swagger.json and APISnoop's 1.36.0 release from shared/corpus/k8s)
//! reports +3 from the sink's hits.
//!
//! The sink here is a small fake of `prova serve`'s, speaking its HTTP
//! contract (`POST /api/v1/audit/events` an `EventList`, `GET
//! /api/v1/audit/hits?since&until&user_agent&limit&cursor`) and mapping
//! events with the coverage crate's rules, as the real one does; the last
//! test runs the loop through the real sink of `prova serve` (its router
//! on SQLite, served over TCP).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use prova_core::NewEvent;
use prova_coverage::live::{Mapped, map_body};
use prova_coverage::report::MapContext;
use prova_coverage::spec::Spec;
use prova_e2e::runner;
use prova_e2e::suite;
use prova_kube_double::{AuditWebhook, Double};
use serde_json::{Value, json};

mod support;

use support::{TOKEN, config, example, registry, repo, report_of_example};

struct Sink {
    spec: Spec,
    hits: Vec<Value>,
    seen: std::collections::HashSet<String>,
}

async fn post_events(
    State(s): State<Arc<Mutex<Sink>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return StatusCode::UNAUTHORIZED;
    }
    let list: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return StatusCode::BAD_REQUEST,
    };
    let mut s = s.lock().unwrap();
    let Sink { spec, hits, seen } = &mut *s;
    let ctx = MapContext::new(spec, &[]);
    let items = list["items"].as_array().cloned().unwrap_or_default();
    for (m, raw) in map_body(&ctx, &body, false).into_iter().zip(items) {
        // The API server retries a batch whole: one hit per auditID.
        let id = raw["auditID"].as_str().unwrap_or("").to_string();
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Mapped::Hit(hit) = m.mapped {
            hits.push(json!({
                "AuditID": id,
                "Endpoint": hit.endpoint,
                "Verb": m.verb,
                "Path": m.request_uri,
                "UserAgent": m.user_agent,
                "TestName": hit.test,
                "Time": raw["requestReceivedTimestamp"],
            }));
        }
    }
    StatusCode::OK
}

async fn get_hits(
    State(s): State<Arc<Mutex<Sink>>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let ts = |k: &str| q.get(k).map(|v| v.parse::<jiff::Timestamp>().unwrap());
    let (since, until) = (ts("since").unwrap(), ts("until").unwrap());
    let limit: usize = q.get("limit").map_or(100, |l| l.parse().unwrap());
    let from: usize = q.get("cursor").map_or(0, |c| c.parse().unwrap());
    let s = s.lock().unwrap();
    let matching: Vec<&Value> = s
        .hits
        .iter()
        .filter(|h| {
            let t: jiff::Timestamp = h["Time"].as_str().unwrap().parse().unwrap();
            since <= t && t <= until
        })
        .filter(|h| {
            q.get("user_agent").is_none_or(|p| {
                prova_coverage::like::like(h["UserAgent"].as_str().unwrap_or(""), p)
            })
        })
        .collect();
    let page: Vec<&Value> = matching.iter().skip(from).take(limit).copied().collect();
    let next = (from + limit < matching.len()).then(|| (from + limit).to_string());
    Json(json!({"hits": page, "next": next})).into_response()
}

/// The fake sink on a free port: its base URL and state.
async fn start_sink() -> (String, Arc<Mutex<Sink>>) {
    let spec =
        Spec::from_file(&repo().join("../shared/corpus/k8s/openapi/v1.36/swagger.json")).unwrap();
    let state = Arc::new(Mutex::new(Sink {
        spec,
        hits: Vec::new(),
        seen: Default::default(),
    }));
    let app = axum::Router::new()
        .route("/api/v1/audit/events", axum::routing::post(post_events))
        .route("/api/v1/audit/hits", axum::routing::get(get_hits))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

/// Runs the tests `focus` selects against a double whose audit webhook
/// posts to the sink, and returns the job's events as the k8sjob step
/// would have emitted them: a first event, then one `TestCaseResult` per
/// case of the suite's JUnit.
async fn run_e2e(sink: &str, focus: &str) -> Vec<NewEvent> {
    let d = Double::start(Default::default()).await;
    let mut hook = AuditWebhook::new(format!("{sink}/api/v1/audit/events"), Some(TOKEN.into()));
    hook.max_wait = Duration::from_millis(200);
    d.send_audit_to(hook).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(&d, dir.path()).await;
    let selected = runner::select(suite::all(), Some(focus), None).unwrap();
    assert_eq!(selected.len(), 1, "{focus}");
    let outcomes = runner::run(&selected, &config).await;
    assert!(
        outcomes[0].passed(),
        "{:?}\n{}",
        outcomes[0].failure,
        outcomes[0].log
    );
    eprintln!(
        "{}: {:.2?} against the double",
        outcomes[0].name, outcomes[0].duration
    );
    assert!(
        d.audit_flushed(Duration::from_secs(10)).await,
        "audit events left unsent"
    );
    support::job_events(&outcomes)
}

#[test]
fn the_examples_validate_with_every_plugin_the_binary_has() {
    for name in [
        "apisnoop-job-status.yaml",
        "apisnoop-statefulset-status.yaml",
    ] {
        let job = prova_engine::prepare::prepare_file(&example(name), &registry())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let names: Vec<&str> = job
            .final_reporters
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["coverage", "junit"], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_status_test_newly_covers_three_endpoints_through_the_audit_sink() {
    let (url, sink) = start_sink().await;
    let events = run_e2e(&url, "Job should apply changes to a job status").await;
    let report = report_of_example("apisnoop-job-status.yaml", &url, &events, |t| t).await;
    let d = &report.data;
    assert!(report.success, "{d:#}");
    let message = d["Message"].as_str().unwrap();
    eprintln!("{message}");
    assert!(
        message.starts_with("+3: patchBatchV1NamespacedJobStatus, readBatchV1NamespacedJobStatus, replaceBatchV1NamespacedJobStatus (eligible endpoints tested: "),
        "{message}"
    );
    assert_eq!(
        d["After"]["TestedEligible"].as_u64().unwrap(),
        d["Before"]["TestedEligible"].as_u64().unwrap() + 3
    );
    assert_eq!(d["Tests"], json!([suite::all()[0].name]));
    // The test's other requests (namespaces, jobs, pods) hit endpoints the
    // baseline has tested already.
    let endpoints = d["Endpoints"].as_array().unwrap();
    assert!(endpoints.len() > 3, "{endpoints:#?}");
    assert!(
        endpoints
            .iter()
            .any(|e| e["Endpoint"] == "createBatchV1NamespacedJob" && e["BaselineTested"] == true)
    );
    assert!(sink.lock().unwrap().hits.len() as u64 >= d["Hits"].as_u64().unwrap());

    // Against APISnoop's 1.36.0 coverage as published, upstream's own
    // Job status test (the one the ticket led to) covers them already: +0.
    let report = report_of_example("apisnoop-job-status.yaml", &url, &events, |t| {
        t.replace(
            "          - \"[sig-apps] Job should apply changes to a job status%\"\n",
            "          - \"no such test\"\n",
        )
        .replace("Wait: 5s", "Wait: 0s")
    })
    .await;
    assert!(!report.success);
    assert!(
        report.data["Message"].as_str().unwrap().starts_with("+0 "),
        "{}",
        report.data["Message"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statefulset_status_test_newly_covers_three_endpoints_through_the_audit_sink() {
    let (url, _sink) = start_sink().await;
    let events = run_e2e(
        &url,
        "StatefulSet should validate Statefulset Status endpoints",
    )
    .await;
    let report = report_of_example("apisnoop-statefulset-status.yaml", &url, &events, |t| t).await;
    let d = &report.data;
    assert!(report.success, "{d:#}");
    let message = d["Message"].as_str().unwrap();
    eprintln!("{message}");
    assert!(
        message.starts_with("+3: patchAppsV1NamespacedStatefulSetStatus, readAppsV1NamespacedStatefulSetStatus, replaceAppsV1NamespacedStatefulSetStatus (eligible endpoints tested: "),
        "{message}"
    );
    assert_eq!(d["Missing"], json!([]));
}

/// `prova serve`'s router with its audit sink (the v1.36 spec) on a fresh
/// SQLite store, on a free port.
async fn start_prova_serve(dir: &Path) -> String {
    let spec =
        Spec::from_file(&repo().join("../shared/corpus/k8s/openapi/v1.36/swagger.json")).unwrap();
    let store = prova_store::SqlStore::open_path(&dir.join("prova.db"))
        .await
        .unwrap();
    let config = prova_server::ServerConfig {
        token: Some(TOKEN.into()),
        artifacts_root: dir.join("artifacts"),
        files_root: Some(dir.to_path_buf()),
        audit: prova_server::audit::AuditConfig {
            spec: Some(Arc::new(spec)),
            ..Default::default()
        },
        ..Default::default()
    };
    let app = prova_server::router(prova_server::state(config, Arc::new(store), registry()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_loop_through_prova_serves_own_audit_sink() {
    let dir = tempfile::tempdir().unwrap();
    let url = start_prova_serve(dir.path()).await;
    let events = run_e2e(&url, "Job should apply changes to a job status").await;
    let report = report_of_example("apisnoop-job-status.yaml", &url, &events, |t| t).await;
    let d = &report.data;
    assert!(report.success, "{d:#}");
    let message = d["Message"].as_str().unwrap();
    eprintln!("prova serve: {message}");
    assert!(
        message.starts_with("+3: patchBatchV1NamespacedJobStatus, readBatchV1NamespacedJobStatus, replaceBatchV1NamespacedJobStatus ("),
        "{message}"
    );
}
