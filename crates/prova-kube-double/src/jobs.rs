//! batch/v1 Jobs: creation with the API server's defaults, deletion with
//! the propagation policy the request gives (a Job's default is to orphan
//! its pods), and the controller each Job gets: [`crate::kubelet`] for a
//! one-pod Job (prova's `k8sjob` step), [`crate::workloads`] for
//! parallelism > 1 (pods that run until deleted, as e2e tests use).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::DeleteSeen;
use crate::store::{Kind, Shared};
use crate::wire::{not_found_object, parse_query, q1};
use crate::{kubelet, rest, workloads};

/// Sets `obj[key]` to `value` unless the client gave it.
pub(crate) fn default(obj: &mut Value, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj[key] = value;
    }
}

/// What the API server fills in on a new Job.
fn defaults(job: &mut Value) {
    let uid = job["metadata"]["uid"].clone();
    let name = job["metadata"]["name"].clone();
    job["status"] = json!({});
    let spec = &mut job["spec"];
    default(spec, "completions", json!(1));
    default(spec, "parallelism", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    default(spec, "podReplacementPolicy", json!("Failed"));
    default(spec, "manualSelector", json!(false));
    default(
        spec,
        "selector",
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let labels = &mut spec["template"]["metadata"]["labels"];
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels[k] = v.clone();
    }
}

pub(crate) async fn create_job(
    State(s): State<Arc<Shared>>,
    UrlPath(ns): UrlPath<String>,
    body: Bytes,
) -> Response {
    let job = match rest::create(&s, Kind::Job, &ns, &body, defaults) {
        Ok(j) => j,
        Err(r) => return r,
    };
    let name = job["metadata"]["name"].as_str().unwrap_or("").to_string();
    let parallelism = job["spec"]["parallelism"].as_u64().unwrap_or(1);
    let sim = if parallelism > 1 {
        tokio::spawn(workloads::job_controller(
            s.clone(),
            ns.clone(),
            name.clone(),
        ))
    } else {
        tokio::spawn(kubelet::simulate(s.clone(), ns.clone(), job.clone()))
    };
    s.add_sim(&ns, &name, sim);
    (StatusCode::CREATED, axum::Json(job)).into_response()
}

pub(crate) async fn delete_job(
    State(s): State<Arc<Shared>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let q = parse_query(q.as_deref());
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let policy = body["propagationPolicy"]
        .as_str()
        .or(q1(&q, "propagationPolicy"))
        .map(str::to_string);
    s.inner.lock().unwrap().deletes.push(DeleteSeen {
        namespace: ns.clone(),
        name: name.clone(),
        propagation_policy: policy.clone(),
    });
    // batch/v1 Jobs orphan their pods unless asked otherwise.
    let orphan = !matches!(policy.as_deref(), Some("Background" | "Foreground"));
    match rest::delete_now(&s, Kind::Job, &ns, &name, orphan) {
        Some(job) => axum::Json(job).into_response(),
        None => not_found_object(Kind::Job, &name),
    }
}
