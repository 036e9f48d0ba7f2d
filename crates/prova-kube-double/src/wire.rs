//! The API server's wire forms that every handler shares: `Status` error
//! bodies, query strings, selectors, lists and watch streams, and the
//! middleware that records each request (and injects faults).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::store::{Kind, Shared};

/// Records the request line and `User-Agent`, then serves it, unless a
/// fault set by [`crate::Double::reject`] matches.
pub(crate) async fn record(
    State(s): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let line = format!(
        "{} {}",
        req.method(),
        req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("")
    );
    let agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let audited = s.audit.get().is_some().then(|| crate::audit::Request {
        method: req.method().to_string(),
        uri: req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default(),
        user_agent: agent.clone(),
        received: jiff::Timestamp::now(),
    });
    let fault = {
        let mut inner = s.inner.lock().unwrap();
        inner.requests.push(line);
        inner.agents.push(agent);
        inner
            .faults
            .iter()
            .find(|f| {
                f.method == req.method().as_str() && req.uri().path().ends_with(&f.path_suffix)
            })
            .cloned()
    };
    if let Some(f) = fault {
        let reason = match f.code {
            400 => "BadRequest",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            422 => "Invalid",
            429 => "TooManyRequests",
            _ => "InternalError",
        };
        let resp = status_body(
            f.code,
            reason,
            &format!("injected fault for {} {}", f.method, req.uri().path()),
        );
        return audit(&s, audited, resp);
    }
    let resp = next.run(req).await;
    audit(&s, audited, resp)
}

/// Sends the audit event of a served request, when the webhook is on.
fn audit(s: &Shared, req: Option<crate::audit::Request>, resp: Response) -> Response {
    if let (Some(req), Some(backend)) = (req, s.audit.get()) {
        backend.record(crate::audit::event(&req, resp.status().as_u16()));
    }
    resp
}

/// A `metav1.Status` failure, as the API server sends with an error code.
pub(crate) fn status_body(code: u16, reason: &str, message: &str) -> Response {
    status_with_details(code, reason, message, Value::Null)
}

pub(crate) fn status_with_details(
    code: u16,
    reason: &str,
    message: &str,
    details: Value,
) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    if !details.is_null() {
        body["details"] = details;
    }
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// `<resource> "<name>" not found`, with the details the API server adds.
pub(crate) fn not_found_object(kind: Kind, name: &str) -> Response {
    let resource = kind.resource();
    let (res, group) = resource.split_once('.').unwrap_or((resource, ""));
    status_with_details(
        404,
        "NotFound",
        &format!("{resource} \"{name}\" not found"),
        json!({"name": name, "group": group, "kind": res}),
    )
}

pub(crate) async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    status_body(
        404,
        "NotFound",
        &format!("the server could not find the requested resource ({method} {uri})"),
    )
}

pub(crate) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-decoding of a query component (`+` is a space); a malformed
/// escape is kept as written.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(c) => {
                        out.push(c);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn q1<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

/// Whether `obj` passes the query's `fieldSelector` (`a.b=v`, `a.b!=v`)
/// and `labelSelector` (`k=v`, `k==v`, `k!=v`, `k`, `!k`).
pub(crate) fn matches(obj: &Value, q: &[(String, String)]) -> bool {
    if let Some(fs) = q1(q, "fieldSelector") {
        for term in fs.split(',').filter(|t| !t.is_empty()) {
            let (k, v, negated) = split_term(term);
            // `metadata.name`, `involvedObject.uid`, ...: a path into the object.
            let actual = k.split('.').fold(obj, |o, part| &o[part]).as_str();
            if (actual == v) == negated {
                return false;
            }
        }
    }
    if let Some(ls) = q1(q, "labelSelector") {
        let labels = &obj["metadata"]["labels"];
        for term in ls.split(',').filter(|t| !t.is_empty()) {
            let ok = if let Some(k) = term.strip_prefix('!') {
                labels.get(k).is_none()
            } else if !term.contains('=') {
                labels.get(term).is_some()
            } else {
                let (k, v, negated) = split_term(term);
                (labels[k].as_str() == v) != negated
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

/// `k=v`, `k==v` or `k!=v` as (k, Some(v), negated).
fn split_term(term: &str) -> (&str, Option<&str>, bool) {
    if let Some((k, v)) = term.split_once("!=") {
        return (k, Some(v), true);
    }
    let (k, v) = term.split_once('=').unwrap_or((term, ""));
    (k, Some(v.strip_prefix('=').unwrap_or(v)), false)
}

/// A list, or with `watch=true` a watch stream, of `kind` in namespace
/// `ns` (`None`: every namespace, or a cluster-scoped kind).
///
/// A watch from a `resourceVersion` replays every change after it; without
/// one (or `0`) it starts with a synthetic ADDED for each object that
/// exists, as the API server does. `timeoutSeconds` ends the stream.
pub(crate) async fn list_or_watch(
    s: Arc<Shared>,
    kind: Kind,
    ns: Option<String>,
    q: Vec<(String, String)>,
) -> Response {
    let in_ns = move |o: &Value| {
        ns.as_deref()
            .is_none_or(|ns| o["metadata"]["namespace"].as_str() == Some(ns))
    };
    let (kind_name, api_version) = kind.type_meta();
    if q1(&q, "watch") != Some("true") && q1(&q, "watch") != Some("1") {
        let inner = s.inner.lock().unwrap();
        let items: Vec<Value> = inner
            .all(kind)
            .filter(|o| in_ns(o) && matches(o, &q))
            .map(|o| {
                // Items of a typed list carry no kind or apiVersion.
                let mut o = o.clone();
                if let Some(m) = o.as_object_mut() {
                    m.remove("kind");
                    m.remove("apiVersion");
                }
                o
            })
            .collect();
        return axum::Json(json!({
            "kind": format!("{kind_name}List"), "apiVersion": api_version,
            "metadata": {"resourceVersion": inner.rv.to_string()},
            "items": items,
        }))
        .into_response();
    }
    let given: Option<u64> = q1(&q, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .filter(|&rv| rv != 0);
    let mut initial = Vec::new();
    let from = match given {
        Some(rv) => rv,
        None => {
            let inner = s.inner.lock().unwrap();
            for o in inner.all(kind).filter(|o| in_ns(o) && matches(o, &q)) {
                initial.extend(watch_line("ADDED", o));
            }
            inner.rv
        }
    };
    let timeout = q1(&q, "timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let rx = s.changed.subscribe();
    let first = (!initial.is_empty()).then(|| Ok::<_, std::io::Error>(Bytes::from(initial)));
    let changes = futures::stream::unfold(
        (s, rx, from, q, in_ns),
        move |(s, mut rx, mut cursor, q, in_ns)| async move {
            loop {
                let mut out = Vec::new();
                {
                    let inner = s.inner.lock().unwrap();
                    let start = inner.history.partition_point(|r| r.rv <= cursor);
                    for r in &inner.history[start..] {
                        cursor = r.rv;
                        if r.kind == kind && in_ns(&r.object) && matches(&r.object, &q) {
                            out.extend(watch_line(r.type_, &r.object));
                        }
                    }
                }
                if !out.is_empty() {
                    return Some((
                        Ok::<_, std::io::Error>(Bytes::from(out)),
                        (s, rx, cursor, q, in_ns),
                    ));
                }
                let changed = rx.changed();
                let ended = match deadline {
                    Some(d) => tokio::time::timeout_at(d, changed)
                        .await
                        .map_or(true, |r| r.is_err()),
                    None => changed.await.is_err(),
                };
                if ended {
                    return None;
                }
            }
        },
    );
    let stream = futures::StreamExt::chain(futures::stream::iter(first), changes);
    axum::http::Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

fn watch_line(type_: &str, object: &Value) -> Vec<u8> {
    let mut line = json!({"type": type_, "object": object})
        .to_string()
        .into_bytes();
    line.push(b'\n');
    line
}
