//! The double's audit webhook against a small sink over HTTP: batches of
//! `audit.k8s.io/v1` events, sized and timed as configured, retried whole.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use prova_kube_double::{AuditWebhook, Double};
use serde_json::Value;

#[derive(Default)]
struct Sink {
    /// Each POST: (Authorization header, body).
    posts: Vec<(Option<String>, Value)>,
    /// Answer 500 to this many POSTs first.
    fail_first: usize,
}

async fn events(State(s): State<Arc<Mutex<Sink>>>, headers: HeaderMap, body: String) -> StatusCode {
    let mut s = s.lock().unwrap();
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    s.posts.push((auth, serde_json::from_str(&body).unwrap()));
    if s.fail_first > 0 {
        s.fail_first -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}

async fn sink(fail_first: usize) -> (String, Arc<Mutex<Sink>>) {
    let state = Arc::new(Mutex::new(Sink {
        fail_first,
        ..Default::default()
    }));
    let app = axum::Router::new()
        .route("/api/v1/audit/events", axum::routing::post(events))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/api/v1/audit/events",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, state)
}

async fn get(d: &Double, path: &str, agent: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}{path}", d.url()))
        .header("user-agent", agent)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn requests_become_event_lists_in_batches_of_the_configured_size() {
    let d = Double::start(Default::default()).await;
    let (url, sink) = sink(0).await;
    let mut hook = AuditWebhook::new(url, Some("t0ken".into()));
    hook.max_batch_size = 3;
    hook.max_wait = Duration::from_millis(300);
    d.send_audit_to(hook).unwrap();
    let ua =
        "e2e.test/0.1.0 (linux/amd64) prova -- [sig-apps] Job should apply changes to a job status";
    for _ in 0..3 {
        assert_eq!(get(&d, "/api/v1/namespaces/default", ua).await, 200);
    }
    assert_eq!(
        get(&d, "/apis/batch/v1/namespaces/default/jobs/nope/status", ua).await,
        404
    );
    assert_eq!(
        get(
            &d,
            "/apis/batch/v1/namespaces/default/jobs",
            "kubectl/v1.36"
        )
        .await,
        200
    );
    assert!(d.audit_flushed(Duration::from_secs(10)).await);
    let stats = d.audit_stats().unwrap();
    assert_eq!(stats.sent.load(std::sync::atomic::Ordering::SeqCst), 5);
    let s = sink.lock().unwrap();
    // Three events fill the first batch; the other two leave after max_wait.
    let sizes: Vec<usize> = s
        .posts
        .iter()
        .map(|(_, b)| b["items"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [3, 2]);
    let (auth, first) = &s.posts[0];
    assert_eq!(auth.as_deref(), Some("Bearer t0ken"));
    assert_eq!(first["kind"], "EventList");
    assert_eq!(first["apiVersion"], "audit.k8s.io/v1");
    let items: Vec<&Value> = s
        .posts
        .iter()
        .flat_map(|(_, b)| b["items"].as_array().unwrap())
        .collect();
    let status = items[3];
    assert_eq!(status["verb"], "get");
    assert_eq!(status["userAgent"], ua);
    assert_eq!(status["responseStatus"]["code"], 404);
    assert_eq!(status["objectRef"]["resource"], "jobs");
    assert_eq!(status["objectRef"]["subresource"], "status");
    assert_eq!(status["objectRef"]["apiGroup"], "batch");
    assert_eq!(status["user"]["username"], "kubernetes-admin");
    let received: jiff::Timestamp = status["requestReceivedTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let done: jiff::Timestamp = status["stageTimestamp"].as_str().unwrap().parse().unwrap();
    assert!(received <= done);
    assert_eq!(items[4]["verb"], "list");
    let mut ids: Vec<&str> = items
        .iter()
        .map(|e| e["auditID"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "audit IDs are unique");
}

#[tokio::test]
async fn a_failed_batch_is_retried_whole_then_dropped_and_counted() {
    let d = Double::start(Default::default()).await;
    let (url, sink) = sink(1).await;
    let mut hook = AuditWebhook::new(url, None);
    hook.max_wait = Duration::from_millis(50);
    hook.initial_backoff = Duration::from_millis(50);
    hook.attempts = 2;
    d.send_audit_to(hook).unwrap();
    get(&d, "/api/v1/namespaces", "a").await;
    assert!(d.audit_flushed(Duration::from_secs(10)).await);
    {
        let s = sink.lock().unwrap();
        assert_eq!(s.posts.len(), 2, "one failure, one retry");
        assert_eq!(s.posts[0].1, s.posts[1].1, "the same batch, whole");
        assert_eq!(s.posts[0].0, None);
    }
    // A sink that is gone: the batch is dropped after its attempts.
    let d = Double::start(Default::default()).await;
    let mut hook = AuditWebhook::new("http://127.0.0.1:9/api/v1/audit/events", None);
    hook.max_wait = Duration::from_millis(10);
    hook.initial_backoff = Duration::from_millis(10);
    hook.attempts = 2;
    d.send_audit_to(hook).unwrap();
    get(&d, "/api/v1/namespaces", "a").await;
    assert!(d.audit_flushed(Duration::from_secs(10)).await);
    let stats = d.audit_stats().unwrap();
    assert_eq!(stats.dropped.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(stats.failures.load(std::sync::atomic::Ordering::SeqCst), 2);
}
