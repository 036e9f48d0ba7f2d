//! core/v1 Events, recorded as controllers do (list and watch with
//! `involvedObject.*` field selectors).

use std::sync::Arc;

use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::response::Response;
use serde_json::{Value, json};

use crate::store::{Kind, Shared, now, rand_u48};
use crate::wire::{list_or_watch, parse_query};

pub(crate) async fn list_events(
    State(s): State<Arc<Shared>>,
    UrlPath(ns): UrlPath<String>,
    RawQuery(q): RawQuery,
) -> Response {
    list_or_watch(s, Kind::Event, Some(ns), parse_query(q.as_deref())).await
}

/// Records a Warning Event about `involved` as a controller does: the
/// same (object, reason) again raises `count` and `lastTimestamp`.
pub(crate) fn record_event(
    s: &Shared,
    involved: &Value,
    reason: &str,
    message: &str,
    component: &str,
) {
    let ns = involved["namespace"].as_str().unwrap();
    let name = format!(
        "{}.{:016x}",
        involved["name"].as_str().unwrap(),
        reason
            .bytes()
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64)
                .wrapping_mul(0x100000001b3))
    );
    if s.modify(Kind::Event, ns, &name, |e| {
        e["count"] = json!(e["count"].as_u64().unwrap_or(1) + 1);
        e["lastTimestamp"] = json!(now());
        e["message"] = json!(message);
    }) {
        return;
    }
    s.put(
        Kind::Event,
        "ADDED",
        json!({
            "kind": "Event", "apiVersion": "v1",
            "metadata": {
                "name": name, "namespace": ns, "creationTimestamp": now(),
                "uid": format!("22222222-0000-4000-8000-{:012x}", rand_u48())
            },
            "involvedObject": involved,
            "reason": reason, "message": message,
            "source": {"component": component},
            "firstTimestamp": now(), "lastTimestamp": now(), "count": 1,
            "type": "Warning", "eventTime": null,
            "reportingComponent": component, "reportingInstance": ""
        }),
    );
}
