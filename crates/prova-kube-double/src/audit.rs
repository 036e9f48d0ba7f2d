//! The API server's audit webhook, batch mode: every request the double
//! serves becomes an `audit.k8s.io/v1` `Event` (level `Metadata`, stage
//! `ResponseComplete`), and events are POSTed to a sink as `EventList`
//! batches, as kube-apiserver's webhook backend does with
//! `--audit-webhook-mode=batch`: a batch leaves when it holds
//! [`AuditWebhook::max_batch_size`] events or its first event has waited
//! [`AuditWebhook::max_wait`]; a failed batch is retried whole with
//! exponential backoff, then dropped and counted; a full buffer drops
//! events and counts them (the API server logs and drops them too).
//!
//! Differences from the API server: a watch's event is sent when its
//! response starts (the API server sends `ResponseStarted`, then
//! `ResponseComplete` when the watch ends); there is no audit policy
//! (every request is audited at `Metadata`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Where and how the double sends its audit events.
#[derive(Debug, Clone)]
pub struct AuditWebhook {
    /// The sink's URL, e.g. `http://127.0.0.1:8080/api/v1/audit/events`.
    pub url: String,
    /// Sent as `Authorization: Bearer …` (the webhook kubeconfig's token).
    pub token: Option<String>,
    /// `--audit-webhook-batch-max-size` (400).
    pub max_batch_size: usize,
    /// `--audit-webhook-batch-max-wait` (30 s).
    pub max_wait: Duration,
    /// `--audit-webhook-batch-buffer-size` (10000): events held at most.
    pub buffer_size: usize,
    /// `--audit-webhook-initial-backoff` (10 s), doubled per retry.
    pub initial_backoff: Duration,
    /// Tries per batch before it is dropped.
    pub attempts: u32,
}

impl AuditWebhook {
    /// The API server's defaults, sending to `url`.
    pub fn new(url: impl Into<String>, token: Option<String>) -> AuditWebhook {
        AuditWebhook {
            url: url.into(),
            token,
            max_batch_size: 400,
            max_wait: Duration::from_secs(30),
            buffer_size: 10_000,
            initial_backoff: Duration::from_secs(10),
            attempts: 5,
        }
    }
}

/// What the webhook did so far.
#[derive(Debug, Default)]
pub struct AuditStats {
    /// Events made (one per request served).
    pub recorded: AtomicU64,
    /// Events the sink accepted.
    pub sent: AtomicU64,
    /// Batches the sink accepted.
    pub batches: AtomicU64,
    /// Failed POSTs (each retried or, at the last attempt, dropped).
    pub failures: AtomicU64,
    /// Events lost: buffer full, or their batch failed every attempt.
    pub dropped: AtomicU64,
}

impl AuditStats {
    /// Events neither sent nor dropped yet.
    pub fn pending(&self) -> u64 {
        self.recorded.load(Ordering::SeqCst)
            - self.sent.load(Ordering::SeqCst)
            - self.dropped.load(Ordering::SeqCst)
    }
}

/// The sending half, kept in the double's shared state.
pub(crate) struct Backend {
    tx: mpsc::Sender<Value>,
    pub(crate) stats: Arc<AuditStats>,
    task: tokio::task::AbortHandle,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    /// Starts the batching task.
    pub(crate) fn start(config: AuditWebhook) -> Backend {
        let (tx, rx) = mpsc::channel(config.buffer_size.max(1));
        let stats = Arc::new(AuditStats::default());
        let task = tokio::spawn(batch_loop(config, rx, stats.clone())).abort_handle();
        Backend { tx, stats, task }
    }

    /// Queues one event; a full buffer drops it.
    pub(crate) fn record(&self, event: Value) {
        self.stats.recorded.fetch_add(1, Ordering::SeqCst);
        if self.tx.try_send(event).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn batch_loop(config: AuditWebhook, mut rx: mpsc::Receiver<Value>, stats: Arc<AuditStats>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let size = config.max_batch_size.max(1);
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + config.max_wait;
        while batch.len() < size {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(ev)) => batch.push(ev),
                Ok(None) | Err(_) => break,
            }
        }
        send(&client, &config, batch, &stats).await;
    }
}

/// POSTs one batch, retrying it whole with exponential backoff.
async fn send(
    client: &reqwest::Client,
    config: &AuditWebhook,
    batch: Vec<Value>,
    stats: &AuditStats,
) {
    let n = batch.len() as u64;
    let body = json!({
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": batch,
    })
    .to_string();
    let mut backoff = config.initial_backoff;
    for attempt in 1..=config.attempts.max(1) {
        let mut req = client
            .post(&config.url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(t) = &config.token {
            req = req.bearer_auth(t);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                stats.sent.fetch_add(n, Ordering::SeqCst);
                stats.batches.fetch_add(1, Ordering::SeqCst);
                return;
            }
            _ => {
                stats.failures.fetch_add(1, Ordering::SeqCst);
                if attempt < config.attempts {
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                }
            }
        }
    }
    stats.dropped.fetch_add(n, Ordering::SeqCst);
}

/// The request as the audit event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// Path and query, as sent.
    pub(crate) uri: String,
    pub(crate) user_agent: Option<String>,
    pub(crate) received: jiff::Timestamp,
}

/// The `audit.k8s.io/v1` event of a served request.
pub(crate) fn event(req: &Request, code: u16) -> Value {
    let (path, query) = req.uri.split_once('?').unwrap_or((&req.uri, ""));
    let target = parse_path(path);
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = verb(&req.method, target.as_ref(), watch);
    let mut ev = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id(),
        "stage": "ResponseComplete",
        "requestURI": req.uri,
        "verb": verb,
        "user": {
            "username": "kubernetes-admin",
            "groups": ["kubeadm:cluster-admins", "system:authenticated"],
        },
        "sourceIPs": ["127.0.0.1"],
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": micros(req.received),
        "stageTimestamp": micros(jiff::Timestamp::now()),
        "annotations": {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": "",
        },
    });
    if let Some(ua) = &req.user_agent {
        ev["userAgent"] = ua.clone().into();
    }
    if let Some(t) = target {
        let mut obj = json!({"resource": t.resource, "apiVersion": t.version});
        if let Some(g) = t.group {
            obj["apiGroup"] = g.into();
        }
        if let Some(ns) = t.namespace {
            obj["namespace"] = ns.into();
        }
        if let Some(n) = t.name {
            obj["name"] = n.into();
        }
        if let Some(s) = t.subresource {
            obj["subresource"] = s.into();
        }
        ev["objectRef"] = obj;
    }
    ev
}

/// A timestamp as the API server writes it: RFC 3339, microseconds.
fn micros(t: jiff::Timestamp) -> String {
    let t = t.round(jiff::Unit::Microsecond).unwrap_or(t);
    t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
}

/// A random (version 4) UUID, as the API server's audit IDs are.
fn audit_id() -> String {
    let r: u128 = rand::random();
    let r = (r & !(0xfu128 << 76) | (0x4u128 << 76)) & !(0x3u128 << 62) | (0x2u128 << 62);
    let h = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The resource a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    group: Option<&'a str>,
    version: &'a str,
    namespace: Option<&'a str>,
    resource: &'a str,
    name: Option<&'a str>,
    subresource: Option<&'a str>,
}

/// `/api/v1/...` or `/apis/<group>/<version>/...`; `None` for other paths
/// (`/version`, `/openapi/v2`, discovery).
pub(crate) fn parse_path(path: &str) -> Option<Target<'_>> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api", version, rest @ ..] => (None, *version, rest),
        ["apis", group, version, rest @ ..] => (Some(*group), *version, rest),
        _ => return None,
    };
    // `namespaces/{ns}/<resource>/…`, except a namespace's own
    // subresources (`namespaces/{name}/status`, `/finalize`).
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, more @ ..]
            if !(more.is_empty() && matches!(*resource, "status" | "finalize")) =>
        {
            (Some(*ns), {
                let mut v = vec![*resource];
                v.extend_from_slice(more);
                v
            })
        }
        _ => (None, rest.to_vec()),
    };
    let resource = *rest.first().filter(|r| !r.is_empty())?;
    Some(Target {
        group,
        version,
        namespace,
        resource,
        name: rest.get(1).copied(),
        subresource: rest.get(2).copied(),
    })
}

/// The Kubernetes verb of a request (the audit event's `verb`).
fn verb(method: &str, target: Option<&Target<'_>>, watch: bool) -> String {
    let object = target.is_some_and(|t| t.name.is_some());
    match method {
        "GET" | "HEAD" if target.is_none() => "get",
        "GET" | "HEAD" if watch => "watch",
        "GET" | "HEAD" if object => "get",
        "GET" | "HEAD" => "list",
        "POST" => "create",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if object => "delete",
        "DELETE" => "deletecollection",
        other => return other.to_ascii_lowercase(),
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, uri: &str) -> Request {
        Request {
            method: method.into(),
            uri: uri.into(),
            user_agent: Some("e2e.test/0.1 -- t".into()),
            received: "2026-12-01T10:00:00.1234567Z".parse().unwrap(),
        }
    }

    #[test]
    fn events_name_the_verb_and_object_as_the_api_server_does() {
        let cases = [
            (
                "GET",
                "/apis/batch/v1/namespaces/n/jobs/j/status",
                "get",
                Some(("batch", "n", "jobs", Some("j"), Some("status"))),
            ),
            (
                "PUT",
                "/apis/batch/v1/namespaces/n/jobs/j/status",
                "update",
                Some(("batch", "n", "jobs", Some("j"), Some("status"))),
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/n/statefulsets/s/status",
                "patch",
                Some(("apps", "n", "statefulsets", Some("s"), Some("status"))),
            ),
            (
                "GET",
                "/apis/apps/v1/namespaces/n/statefulsets?watch=true&resourceVersion=1",
                "watch",
                Some(("apps", "n", "statefulsets", None, None)),
            ),
            (
                "GET",
                "/api/v1/namespaces/n/pods?labelSelector=a",
                "list",
                Some(("", "n", "pods", None, None)),
            ),
            (
                "POST",
                "/api/v1/namespaces",
                "create",
                Some(("", "", "namespaces", None, None)),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/n",
                "delete",
                Some(("", "", "namespaces", Some("n"), None)),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/n/pods",
                "deletecollection",
                Some(("", "n", "pods", None, None)),
            ),
            ("GET", "/version", "get", None),
        ];
        for (method, uri, verb, obj) in cases {
            let ev = event(&req(method, uri), 200);
            assert_eq!(ev["verb"], verb, "{method} {uri}");
            assert_eq!(ev["requestURI"], uri);
            assert_eq!(ev["stage"], "ResponseComplete");
            assert_eq!(ev["responseStatus"]["code"], 200);
            assert_eq!(
                ev["requestReceivedTimestamp"],
                "2026-12-01T10:00:00.123457Z"
            );
            let id = ev["auditID"].as_str().unwrap();
            assert_eq!(id.len(), 36, "{id}");
            assert_eq!(&id[14..15], "4", "{id}");
            match obj {
                None => assert!(ev.get("objectRef").is_none(), "{ev}"),
                Some((group, ns, resource, name, sub)) => {
                    let o = &ev["objectRef"];
                    assert_eq!(o["resource"], resource, "{uri}");
                    assert_eq!(o["apiGroup"].as_str().unwrap_or(""), group, "{uri}");
                    assert_eq!(o["namespace"].as_str().unwrap_or(""), ns, "{uri}");
                    assert_eq!(o["name"].as_str(), name, "{uri}");
                    assert_eq!(o["subresource"].as_str(), sub, "{uri}");
                }
            }
        }
    }
}
