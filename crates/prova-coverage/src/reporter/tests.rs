//! The reporter through the engine's preparation (as `prova validate`
//! runs it) and its final report against a small fake of the audit sink.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use prova_core::NewEvent;
use prova_core::node::Format;
use prova_engine::plugin::{FinalReportInput, PreparedReporter};
use prova_engine::prepare::prepare_str;
use serde_json::{Value, json};

const JOB_TEST: &str = "[sig-apps] Job should apply changes to a job status";

/// Four stable Job endpoints and a beta one (shared with `newly`'s tests).
pub(super) const SPEC: &str = r#"{"info":{"version":"v1.36.0"},"paths":{
  "/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status":{
    "get":{"operationId":"readBatchV1NamespacedJobStatus","tags":["batch_v1"]},
    "put":{"operationId":"replaceBatchV1NamespacedJobStatus","tags":["batch_v1"]},
    "patch":{"operationId":"patchBatchV1NamespacedJobStatus","tags":["batch_v1"]}},
  "/apis/batch/v1/namespaces/{namespace}/jobs":{
    "post":{"operationId":"createBatchV1NamespacedJob","tags":["batch_v1"]}},
  "/apis/batch/v1beta1/namespaces/{namespace}/things":{
    "post":{"operationId":"createBatchV1beta1NamespacedThing","tags":["batch_v1beta1"]}}}}"#;

/// A baseline where only the Job create is tested.
const BASELINE: &str = r#"{"release":"1.36.0","total endpoints":4,"tested endpoints":1,
 "total conformance eligible endpoints":4,"tested conformance eligible endpoints":1,
 "endpoints":[
  {"endpoint":"createBatchV1NamespacedJob","level":"stable","category":"batch","path":"/apis/batch/v1/namespaces/{namespace}/jobs","kind":"Job","group":"batch","version":"v1","action":"post","tested":true,"conf_tested":true,"tests":["[sig-apps] Job should create [Conformance]"]},
  {"endpoint":"readBatchV1NamespacedJobStatus","level":"stable","category":"batch","path":"/x","kind":"Job","group":"batch","version":"v1","action":"get","tested":true,"conf_tested":true,"tests":["[sig-apps] Job should apply changes to a job status [Conformance]"]},
  {"endpoint":"replaceBatchV1NamespacedJobStatus","level":"stable","category":"batch","path":"/x","kind":"Job","group":"batch","version":"v1","action":"put","tested":false,"conf_tested":false,"tests":[null]},
  {"endpoint":"patchBatchV1NamespacedJobStatus","level":"stable","category":"batch","path":"/x","kind":"Job","group":"batch","version":"v1","action":"patch","tested":false,"conf_tested":false,"tests":[null]}]}"#;

const THREE: [&str; 3] = [
    "patchBatchV1NamespacedJobStatus",
    "readBatchV1NamespacedJobStatus",
    "replaceBatchV1NamespacedJobStatus",
];

fn files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("swagger.json"), SPEC).unwrap();
    std::fs::write(dir.path().join("baseline.json"), BASELINE).unwrap();
    dir
}

fn descriptor(params: &str) -> String {
    format!(
        "JobName: j\nRuns: 1\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters:\n      Targets: [{{ID: a}}]\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: T\n      Steps:\n        - {{name: echo, label: e, parameters: {{text: [hi]}}}}\nReporting:\n  FinalReporters:\n    - name: coverage\n      parameters:\n{params}"
    )
}

fn registry() -> prova_engine::Registry {
    let mut r = prova_engine::plugins::registry();
    super::register(&mut r);
    r
}

fn prepare_err(dir: &std::path::Path, params: &str) -> String {
    match prepare(dir, params) {
        Ok(_) => panic!("accepted: {params}"),
        Err(e) => e,
    }
}

fn prepare(dir: &std::path::Path, params: &str) -> Result<Arc<dyn PreparedReporter>, String> {
    let source = dir.join("job.yaml");
    prepare_str(
        &descriptor(params),
        Format::Yaml,
        Some(&source),
        &registry(),
    )
    .map(|job| job.final_reporters[0].1.clone())
    .map_err(|e| e.to_string())
}

fn case(name: &str, status: &str) -> NewEvent {
    NewEvent::job(
        1,
        prova_core::results::TEST_CASE,
        Some(
            json!({"Suite":"Kubernetes e2e suite","Name":name,"Status":status,"File":"junit.xml"}),
        ),
    )
}

async fn final_report(
    r: &Arc<dyn PreparedReporter>,
    events: &[NewEvent],
) -> prova_core::status::Report {
    assert!(r.needs_events());
    r.final_report(&FinalReportInput {
        job_id: 1,
        job_name: "j",
        runs: &[],
        events,
    })
    .await
    .expect("a final report")
}

#[test]
fn every_mistake_is_reported_with_its_field() {
    let dir = files();
    let e = prepare_err(dir.path(), "        {}\n");
    for field in [
        "Parameters.Spec",
        "Parameters.Baseline",
        "Parameters.Server",
    ] {
        assert!(e.contains(field), "{field}: {e}");
    }
    let e = prepare_err(
        dir.path(),
        "        Spec: missing.json\n        Baseline: baseline.json\n        Server: ftp://x\n        Expect: [readBatchV1NamespacedJobStatus, readBatchV1NamespacedJobStatusTypo]\n        Wait: soon\n",
    );
    assert!(e.contains("Spec") && e.contains("missing.json"), "{e}");
    assert!(e.contains("expected an http:// or https:// URL"), "{e}");
    assert!(e.contains("Wait"), "{e}");
    let e = prepare_err(
        dir.path(),
        "        Spec: swagger.json\n        Baseline: swagger.json\n        Server: http://x\n        AuditLog: a.log\n        Expect: [readBatchV1NamespacedJobStatusTypo]\n",
    );
    assert!(e.contains("Expect[0]"), "{e}");
    assert!(
        e.contains("\"readBatchV1NamespacedJobStatusTypo\" is not an endpoint of the spec"),
        "{e}"
    );
    assert!(e.contains("not a coverage report"), "{e}");
    assert!(e.contains("not both"), "{e}");
    // As a run reporter it is refused.
    let run = descriptor("        {}\n").replace("FinalReporters", "RunReporters");
    let e = prepare_str(&run, Format::Yaml, None, &registry())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("coverage is a final reporter"), "{e}");
}

/// What the fake sink saw and serves.
#[derive(Default)]
struct Sink {
    hits: Vec<Value>,
    queries: Vec<(Option<String>, std::collections::HashMap<String, String>)>,
}

async fn hits_handler(
    State(s): State<Arc<Mutex<Sink>>>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> axum::response::Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut s = s.lock().unwrap();
    s.queries.push((auth.clone(), q.clone()));
    if auth.as_deref() != Some("Bearer sekret") {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    // Two hits a page, so the cursor is followed.
    let from: usize = q.get("cursor").map_or(0, |c| c.parse().unwrap());
    let page: Vec<Value> = s.hits.iter().skip(from).take(2).cloned().collect();
    let next = (from + 2 < s.hits.len()).then(|| (from + 2).to_string());
    Json(json!({"hits": page, "next": next})).into_response()
}

async fn fake_sink(hits: Vec<Value>) -> (String, Arc<Mutex<Sink>>) {
    let state = Arc::new(Mutex::new(Sink {
        hits,
        ..Default::default()
    }));
    let app = axum::Router::new()
        .route("/api/v1/audit/hits", axum::routing::get(hits_handler))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

fn hit(endpoint: &str, test: Option<&str>) -> Value {
    let ua = test.map_or("kube-controller-manager/v1.36.0".to_string(), |t| {
        format!("e2e.test/0.1.0 (linux/amd64) prova -- {t}")
    });
    json!({"AuditID": "x", "Endpoint": endpoint, "Verb": "get", "Path": "/x", "UserAgent": ua,
           "TestName": test, "Time": "2026-12-01T10:00:00Z"})
}

#[tokio::test]
async fn reports_the_endpoints_the_jobs_tests_newly_cover_from_the_sink() {
    let dir = files();
    let mut hits: Vec<Value> = THREE.iter().map(|e| hit(e, Some(JOB_TEST))).collect();
    hits.push(hit("createBatchV1NamespacedJob", Some(JOB_TEST)));
    // Not the job's tests: another test, and the cluster's own traffic.
    hits.push(hit("createBatchV1NamespacedJob", Some("[sig-x] other")));
    hits.push(hit("patchBatchV1NamespacedJobStatus", None));
    hits.push(hit("noSuchOperation", Some(JOB_TEST)));
    let (url, sink) = fake_sink(hits).await;
    let r = prepare(
        dir.path(),
        &format!(
            "        Spec: swagger.json\n        Baseline: baseline.json\n        BaselineWithoutTests: ['%should apply changes to a job status%']\n        Expect: [{}]\n        Server: {url}/\n        Token: sekret\n        Wait: 0s\n",
            THREE.join(", ")
        ),
    )
    .unwrap();
    let report = final_report(&r, &[case(JOB_TEST, "passed")]).await;
    assert!(report.success, "{:#}", report.data);
    let d = &report.data;
    assert_eq!(
        d["Message"].as_str().unwrap(),
        "+3: patchBatchV1NamespacedJobStatus, readBatchV1NamespacedJobStatus, replaceBatchV1NamespacedJobStatus (eligible endpoints tested: 1 → 4 of 4)"
    );
    assert_eq!(d["NewlyCovered"], json!(THREE));
    assert_eq!(d["Before"]["TestedEligible"], 1);
    assert_eq!(d["After"]["TestedEligible"], 4);
    assert_eq!(d["Hits"], 4);
    assert_eq!(d["UnknownEndpointHits"], 1);
    let create = d["Endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Endpoint"] == "createBatchV1NamespacedJob")
        .unwrap();
    assert_eq!(create["BaselineTested"], true);
    assert_eq!(create["Tests"], json!([JOB_TEST]));
    // Four pages of two; the window and the user agent filter were asked for.
    let s = sink.lock().unwrap();
    assert_eq!(s.queries.len(), 4);
    let (_, q) = &s.queries[0];
    assert_eq!(q["user_agent"], "e2e.test%");
    let since: jiff::Timestamp = q["since"].parse().unwrap();
    let until: jiff::Timestamp = q["until"].parse().unwrap();
    assert!(since < until, "{q:?}");
}

#[tokio::test]
async fn fails_naming_the_expected_endpoints_not_covered_and_a_refused_token() {
    let dir = files();
    let (url, _) = fake_sink(vec![hit("patchBatchV1NamespacedJobStatus", Some(JOB_TEST))]).await;
    let params = |token: &str| {
        format!(
            "        Spec: swagger.json\n        Baseline: baseline.json\n        Expect: [{}]\n        Server: {url}\n        Token: {token}\n        Wait: 0s\n",
            THREE.join(", ")
        )
    };
    let r = prepare(dir.path(), &params("sekret")).unwrap();
    let report = final_report(&r, &[case(JOB_TEST, "failed")]).await;
    assert!(!report.success);
    // read… is tested in the baseline (no BaselineWithoutTests here).
    assert_eq!(
        report.data["Message"],
        "+1: patchBatchV1NamespacedJobStatus (eligible endpoints tested: 2 → 3 of 4); expected but not newly covered: readBatchV1NamespacedJobStatus, replaceBatchV1NamespacedJobStatus"
    );
    assert_eq!(report.data["FailedTests"], json!([JOB_TEST]));

    let r = prepare(dir.path(), &params("wrong")).unwrap();
    let report = final_report(&r, &[case(JOB_TEST, "passed")]).await;
    assert!(!report.success);
    let err = report.data["Error"].as_str().unwrap();
    assert!(
        err.contains("answered 401 Unauthorized: bad token"),
        "{err}"
    );

    // A job that brought back no test cases cannot be credited.
    let report = final_report(&r, &[]).await;
    assert!(!report.success);
    assert!(
        report.data["Error"]
            .as_str()
            .unwrap()
            .contains("no test cases"),
        "{}",
        report.data
    );
}

#[tokio::test]
async fn waits_for_late_batches_until_the_expected_endpoints_arrive() {
    let dir = files();
    let (url, sink) = fake_sink(vec![]).await;
    let r = prepare(
        dir.path(),
        &format!(
            "        Spec: swagger.json\n        Baseline: baseline.json\n        Expect: [patchBatchV1NamespacedJobStatus]\n        Server: {url}\n        Token: sekret\n        Wait: 20s\n"
        ),
    )
    .unwrap();
    let late = sink.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        late.lock()
            .unwrap()
            .hits
            .push(hit("patchBatchV1NamespacedJobStatus", Some(JOB_TEST)));
    });
    let started = std::time::Instant::now();
    let report = final_report(&r, &[case(JOB_TEST, "passed")]).await;
    assert!(report.success, "{}", report.data);
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    assert!(sink.lock().unwrap().queries.len() >= 2);
}

#[tokio::test]
async fn reads_an_audit_log_file_with_the_same_rules() {
    let dir = files();
    let ua = format!("e2e.test/0.1.0 (linux/amd64) prova -- {JOB_TEST}");
    let mut log = String::new();
    for (verb, uri) in [
        ("get", "/apis/batch/v1/namespaces/n/jobs/j/status"),
        ("update", "/apis/batch/v1/namespaces/n/jobs/j/status"),
        ("patch", "/apis/batch/v1/namespaces/n/jobs/j/status"),
    ] {
        log.push_str(
            &json!({"kind":"Event","apiVersion":"audit.k8s.io/v1","verb":verb,"requestURI":uri,"userAgent":ua})
                .to_string(),
        );
        log.push('\n');
    }
    log.push_str(&json!({"verb":"create","requestURI":"/apis/batch/v1/namespaces/n/jobs","userAgent":"e2e.test/1 -- [sig-x] other"}).to_string());
    log.push('\n');
    std::fs::write(dir.path().join("audit.log"), log).unwrap();
    let r = prepare(
        dir.path(),
        "        Spec: swagger.json\n        Baseline: baseline.json\n        BaselineWithoutTests: '%should apply changes to a job status%'\n        AuditLog: audit.log\n        Wait: 0s\n",
    )
    .unwrap();
    let report = final_report(&r, &[case(JOB_TEST, "passed")]).await;
    // Without Expect: success when something was newly covered.
    assert!(report.success, "{}", report.data);
    assert_eq!(report.data["NewlyCovered"], json!(THREE));
    assert_eq!(report.data["Hits"], 3);
}
