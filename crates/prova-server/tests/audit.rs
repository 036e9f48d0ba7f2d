//! The live audit sink (`/api/v1/audit/*`), through the router: real audit
//! events from the shared corpus posted as `EventList` batches give the
//! report `prova coverage report` gives over the same events read from a
//! file; retried batches are stored once; the token, the spec, the body
//! limit, malformed bodies and a full queue are answered as documented.
//! The store tests run on SQLite and, when `PROVA_TEST_POSTGRES_URL` is
//! set, PostgreSQL (`PROVA_REQUIRE_POSTGRES=1` makes its absence fail).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use prova_coverage::spec::Spec;
use prova_server::audit::AuditConfig;
use prova_server::{ServerConfig, router, state};
use serde_json::{Value, json};
use tower::ServiceExt;

mod audit_corpus;
#[path = "../../prova-store/tests/support/mod.rs"]
mod store_support;

const TOKEN: &str = "s3cret";

fn spec() -> Arc<Spec> {
    static SPEC: OnceLock<Arc<Spec>> = OnceLock::new();
    SPEC.get_or_init(|| Arc::new(Spec::from_file(&audit_corpus::spec_path()).unwrap()))
        .clone()
}

fn audit(with_spec: bool) -> AuditConfig {
    AuditConfig {
        spec: with_spec.then(spec),
        ..Default::default()
    }
}

fn app(store: prova_store::SqlStore, audit: AuditConfig) -> Router {
    let dir = std::env::temp_dir();
    let config = ServerConfig {
        token: Some(TOKEN.into()),
        artifacts_root: dir.join("prova-audit-test-artifacts"),
        files_root: Some(dir),
        audit,
        ..Default::default()
    };
    router(state(
        config,
        Arc::new(store),
        prova_engine::plugins::registry(),
    ))
}

/// A fresh SQLite store in `dir`.
async fn sqlite(dir: &tempfile::TempDir) -> prova_store::SqlStore {
    prova_store::SqlStore::open_path(&dir.path().join("p.db"))
        .await
        .unwrap()
}

async fn call(app: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .unwrap();
    let v = serde_json::from_slice(&body).unwrap_or_else(|_| {
        panic!(
            "{status}: body is not JSON: {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, headers, v)
}

fn post(body: Vec<u8>) -> Request<Body> {
    Request::post("/api/v1/audit/events")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// The `/metrics` text.
async fn metrics(app: &Router) -> String {
    let resp = app.clone().oneshot(get("/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// Asserts a metric line of the Prometheus text.
fn assert_metric(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no {line:?} in /metrics:\n{}",
        text.lines()
            .filter(|l| l.starts_with("prova_audit"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

/// What must agree between two reports: per endpoint whether and how
/// often it was hit, by tests and by conformance tests, and by which
/// tests; per test its endpoints; the event totals.
fn essence(report: &Value) -> Value {
    let endpoints: Vec<Value> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["hits"].as_u64() > Some(0))
        .map(|e| {
            json!([
                e["endpoint"],
                e["tested"],
                e["conf_tested"],
                e["hits"],
                e["tests"]
            ])
        })
        .collect();
    let tests: Vec<Value> = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| json!([t["test"], t["endpoints"], t["hits"]]))
        .collect();
    json!({
        "endpoints": endpoints,
        "tests": tests,
        "tested": report["tested endpoints"],
        "conformance tested": report["conformance tested endpoints"],
        "events": [report["events"]["total"], report["events"]["mapped"], report["events"]["unmapped"]],
    })
}

/// `prova coverage report --json` over `events` written to a file.
fn file_report(events: &[Value]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    std::fs::write(&log, audit_corpus::json_lines(events)).unwrap();
    let (report, _) = prova_coverage::analyze::analyze(&prova_coverage::analyze::AnalyzeOptions {
        spec: audit_corpus::spec_path(),
        audit: vec![log.display().to_string()],
        read: prova_coverage::audit::ReadOptions {
            progress: false,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    serde_json::to_value(report).unwrap()
}

#[tokio::test]
async fn corpus_batches_give_the_file_report_and_retries_are_stored_once() {
    let events = audit_corpus::with_e2e_agents(audit_corpus::events());
    assert!(events.len() > 80, "the corpus has {} events", events.len());
    let expected = essence(&file_report(&events));
    assert!(
        expected["tested"].as_u64() > Some(3),
        "the e2e agents credit tests: {expected}"
    );
    store_support::for_each_backend(|store| {
        let events = events.clone();
        let expected = expected.clone();
        async move {
            let app = app(store, audit(true));
            // Batches of 7, as the webhook would cut them.
            let mut stored = 0;
            for chunk in events.chunks(7) {
                let (status, _, v) = call(&app, post(audit_corpus::event_list(chunk))).await;
                assert_eq!(status, StatusCode::OK, "{v}");
                assert_eq!(v["Received"], chunk.len());
                stored += v["Stored"].as_u64().unwrap();
            }
            assert_eq!(stored, events.len() as u64);

            // The API server retries a failed batch whole: nothing is added.
            let (status, _, v) = call(&app, post(audit_corpus::event_list(&events[..7]))).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(
                (v["Stored"].as_u64(), v["Duplicates"].as_u64()),
                (Some(0), Some(7))
            );

            let (status, _, report) = call(&app, get("/api/v1/audit/report")).await;
            assert_eq!(status, StatusCode::OK, "{report}");
            assert_eq!(essence(&report), expected);

            // Every hit is there once, with the event's own fields.
            let (_, _, v) = call(&app, get("/api/v1/audit/hits?limit=10000")).await;
            let hits = v["hits"].as_array().unwrap();
            assert_eq!(hits.len(), events.len());
            assert_eq!(v["next"], Value::Null);
            let first = &events[0];
            let hit = hits
                .iter()
                .find(|h| h["AuditID"] == first["auditID"])
                .unwrap();
            assert_eq!(hit["Endpoint"], "readCoreV1Node", "{hit}");
            assert_eq!(hit["Verb"], first["verb"]);
            assert_eq!(hit["Path"], "/api/v1/nodes/bootstrap-e2e-minion-group-9s5q");
            // The path only: the query is left out.
            let with_query = hits
                .iter()
                .find(|h| h["Path"] == "/api/v1/namespaces/default/pods" && h["Verb"] == "list")
                .unwrap();
            assert!(!with_query["Path"].as_str().unwrap().contains('?'));
            assert_eq!(hit["UserAgent"], first["userAgent"]);
            assert_eq!(hit["TestName"], "[sig-test] corpus test 0 [Conformance]");
            assert_eq!(
                hit["Time"]
                    .as_str()
                    .unwrap()
                    .parse::<jiff::Timestamp>()
                    .unwrap(),
                first["stageTimestamp"]
                    .as_str()
                    .unwrap()
                    .parse::<jiff::Timestamp>()
                    .unwrap()
            );
            assert!(
                hits.iter().any(|h| h["Endpoint"].is_null()),
                "the corpus has unmapped events"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn hits_are_filtered_by_window_agent_and_endpoint_and_paged() {
    let events = audit_corpus::with_e2e_agents(audit_corpus::events());
    store_support::for_each_backend(|store| {
        let events = events.clone();
        async move {
            let app = app(store, audit(true));
            let (status, _, v) = call(&app, post(audit_corpus::event_list(&events))).await;
            assert_eq!(status, StatusCode::OK, "{v}");

            // The tickets' query: endpoints hit by e2e agents whose test
            // name says "corpus test 1".
            let (_, _, v) = call(
                &app,
                get("/api/v1/audit/hits?user_agent=e2e%25corpus%20test%201&endpoint=%25Namespace%25"),
            )
            .await;
            let hits = v["hits"].as_array().unwrap();
            assert!(!hits.is_empty());
            for h in hits {
                assert!(h["UserAgent"].as_str().unwrap().ends_with("corpus test 1"), "{h}");
                assert!(h["Endpoint"].as_str().unwrap().contains("Namespace"), "{h}");
            }

            // A window: the audit2rbac events are from 2017.
            let (_, _, v) = call(
                &app,
                get("/api/v1/audit/hits?since=2017-01-01T00:00:00Z&until=2018-01-01T00:00:00Z"),
            )
            .await;
            let in_2017 = v["hits"].as_array().unwrap();
            assert_eq!(in_2017.len(), 37);
            assert!(in_2017.iter().all(|h| h["Time"].as_str().unwrap().starts_with("2017-")));

            // Pages of 10 until `next` is null: every hit once, in time order.
            let mut seen = Vec::new();
            let mut next: Option<String> = None;
            loop {
                let uri = match &next {
                    Some(n) => format!("/api/v1/audit/hits?limit=10&next={n}"),
                    None => "/api/v1/audit/hits?limit=10".into(),
                };
                let (status, _, v) = call(&app, get(&uri)).await;
                assert_eq!(status, StatusCode::OK, "{v}");
                let page = v["hits"].as_array().unwrap();
                assert!(page.len() <= 10);
                seen.extend(page.iter().cloned());
                match v["next"].as_str() {
                    Some(n) => next = Some(n.to_string()),
                    None => break,
                }
            }
            assert_eq!(seen.len(), events.len());
            let times: Vec<jiff::Timestamp> = seen
                .iter()
                .map(|h| h["Time"].as_str().unwrap().parse().unwrap())
                .collect();
            assert!(times.is_sorted());

            for bad in [
                "/api/v1/audit/hits?since=yesterday",
                "/api/v1/audit/hits?since=2020-01-02T00:00:00Z&until=2020-01-01T00:00:00Z",
                "/api/v1/audit/hits?next=x",
                "/api/v1/audit/hits?limit=-1",
            ] {
                let (status, _, v) = call(&app, get(bad)).await;
                assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
                assert!(v["Error"].is_string(), "{bad}: {v}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn the_token_the_spec_and_bad_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let with_spec = app(
        sqlite(&dir).await,
        AuditConfig {
            max_body: 64 << 10,
            ..audit(true)
        },
    );
    let body = audit_corpus::event_list(&audit_corpus::events()[..3]);

    // The webhook kubeconfig carries the server's token.
    let no_token = Request::post("/api/v1/audit/events")
        .body(Body::from(body.clone()))
        .unwrap();
    let (status, headers, _) = call(&with_spec, no_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    let (status, _, _) = call(
        &with_spec,
        Request::get("/api/v1/audit/hits")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Without --coverage-spec the sink is off, and says how to turn it on.
    let dir2 = tempfile::tempdir().unwrap();
    let no_spec = app(sqlite(&dir2).await, audit(false));
    let (status, _, v) = call(&no_spec, post(body.clone())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        v["Error"].as_str().unwrap().contains("--coverage-spec"),
        "{v}"
    );
    let (status, _, _) = call(&no_spec, get("/api/v1/audit/report")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    // Too large: 413, nothing stored.
    let big = audit_corpus::event_list(&audit_corpus::events());
    assert!(big.len() > 64 << 10);
    let (status, _, v) = call(&with_spec, post(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(
        v["Error"].as_str().unwrap().contains("--audit-max-body"),
        "{v}"
    );

    // Malformed: 400 naming what is wrong; nothing of the batch is stored.
    let mut items = audit_corpus::events()[..3].to_vec();
    items[1].as_object_mut().unwrap().remove("auditID");
    for (body, says) in [
        (
            b"{not json".to_vec(),
            "not an audit EventList: invalid JSON",
        ),
        (b"{}".to_vec(), "no requestURI"),
        (audit_corpus::event_list(&items), "item 2: no auditID"),
        (
            audit_corpus::event_list(&[
                json!({"auditID": "x", "verb": "get", "requestURI": "/api", "stageTimestamp": "noon"}),
            ]),
            "stageTimestamp \"noon\" is not an RFC 3339 time",
        ),
    ] {
        let (status, _, v) = call(&with_spec, post(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["Error"].as_str().unwrap().contains(says),
            "{v} should say {says}"
        );
    }
    let (_, _, v) = call(&with_spec, get("/api/v1/audit/hits")).await;
    assert_eq!(v["hits"], json!([]));

    // Every refusal is counted by its reason; nothing was stored.
    let text = metrics(&with_spec).await;
    assert_metric(
        &text,
        r#"prova_audit_batches_refused_total{reason="too_large"} 1"#,
    );
    assert_metric(
        &text,
        r#"prova_audit_batches_refused_total{reason="bad_batch"} 4"#,
    );
    assert_metric(&text, "prova_audit_hits_stored_total 0");
    let text = metrics(&no_spec).await;
    assert_metric(
        &text,
        r#"prova_audit_batches_refused_total{reason="no_spec"} 1"#,
    );
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_and_loses_nothing() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let app = app(
        sqlite(&dir).await,
        AuditConfig {
            queue: 1,
            ..audit(true)
        },
    );
    let events = audit_corpus::events();
    // Another writer holds SQLite's write lock: the sink's writer waits
    // (busy_timeout) on the first batch, the second fills the queue.
    let mut blocker =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", dir.path().join("p.db").display()))
            .await
            .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();

    let first = tokio::spawn({
        let app = app.clone();
        let body = audit_corpus::event_list(&events[..10]);
        async move { call(&app, post(body)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = tokio::spawn({
        let app = app.clone();
        let body = audit_corpus::event_list(&events[10..20]);
        async move { call(&app, post(body)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, headers, v) = call(&app, post(audit_corpus::event_list(&events[20..30]))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(headers["retry-after"], "1");
    assert!(
        v["Error"].as_str().unwrap().contains("queue is full"),
        "{v}"
    );

    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    for task in [first, second] {
        let (status, _, v) = task.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["Stored"], 10);
    }
    // The refused batch, sent again, is stored.
    let (status, _, v) = call(&app, post(audit_corpus::event_list(&events[20..30]))).await;
    assert_eq!((status, v["Stored"].as_u64()), (StatusCode::OK, Some(10)));
    let (_, _, v) = call(&app, get("/api/v1/audit/hits")).await;
    assert_eq!(v["hits"].as_array().unwrap().len(), 30);

    let text = metrics(&app).await;
    assert_metric(
        &text,
        r#"prova_audit_batches_refused_total{reason="queue_full"} 1"#,
    );
    assert_metric(&text, "prova_audit_batches_total 3");
    assert_metric(&text, "prova_audit_events_total 30");
    assert_metric(&text, "prova_audit_hits_stored_total 30");
    assert_metric(&text, "prova_audit_queue_depth 0");
}

#[tokio::test]
async fn the_openapi_document_describes_the_sink() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(sqlite(&dir).await, audit(false));
    let (_, _, doc) = call(&app, get("/api/v1/openapi.json")).await;
    for path in [
        "/api/v1/audit/events",
        "/api/v1/audit/hits",
        "/api/v1/audit/report",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    let params: Vec<&str> = doc["paths"]["/api/v1/audit/hits"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["since", "until", "user_agent", "endpoint", "limit", "next"]
    );
}
