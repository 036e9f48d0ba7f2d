//! apps/v1 StatefulSets: creation with the API server's defaults, and the
//! StatefulSet controller (OrderedReady): pods `<name>-0` … `<name>-N-1`,
//! one at a time, each Running and Ready before the next, with the
//! template's labels plus `controller-revision-hash`,
//! `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index`,
//! and a controller ownerReference; scale-down removes the highest
//! ordinals first. It keeps `status.replicas`, `readyReplicas`,
//! `availableReplicas`, `currentReplicas`, `updatedReplicas`,
//! `observedGeneration` and the revisions, and leaves other status fields
//! (conditions a client wrote) alone.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::jobs::default;
use crate::rest;
use crate::store::{Kind, Shared};
use crate::workloads::{is_ready, new_pod, owner_ref, run_pod};

fn defaults(sts: &mut Value) {
    let spec = &mut sts["spec"];
    default(spec, "replicas", json!(1));
    default(spec, "podManagementPolicy", json!("OrderedReady"));
    default(
        spec,
        "updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
    );
    default(spec, "revisionHistoryLimit", json!(10));
    default(
        spec,
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    sts["status"] = json!({"replicas": 0, "availableReplicas": 0});
}

pub(crate) async fn create(
    State(s): State<Arc<Shared>>,
    UrlPath(ns): UrlPath<String>,
    body: Bytes,
) -> Response {
    let sts = match rest::create(&s, Kind::StatefulSet, &ns, &body, defaults) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let name = sts["metadata"]["name"].as_str().unwrap_or("").to_string();
    let task = tokio::spawn(controller(s.clone(), ns.clone(), name.clone()));
    s.add_sim(&ns, &name, task);
    (StatusCode::CREATED, axum::Json(sts)).into_response()
}

/// `<name>-<hash of the pod template>`, as a ControllerRevision's name.
fn revision(name: &str, template: &Value) -> String {
    let hash = template
        .to_string()
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
    format!("{name}-{:010x}", hash & 0xff_ffff_ffff)
}

fn ordinal(pod: &Value) -> Option<u64> {
    pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"]
        .as_str()?
        .parse()
        .ok()
}

async fn controller(s: Arc<Shared>, ns: String, name: String) {
    let mut rx = s.changed.subscribe();
    loop {
        let Some(sts) = s.get(Kind::StatefulSet, &ns, &name) else {
            return;
        };
        reconcile(&s, &ns, &name, &sts).await;
        if rx.changed().await.is_err() {
            return;
        }
    }
}

async fn reconcile(s: &Shared, ns: &str, name: &str, sts: &Value) {
    let replicas = sts["spec"]["replicas"].as_u64().unwrap_or(1);
    let template = &sts["spec"]["template"];
    let rev = revision(name, template);
    let uid = &sts["metadata"]["uid"];
    let mut pods: Vec<Value> = s
        .inner
        .lock()
        .unwrap()
        .all(Kind::Pod)
        .filter(|p| {
            p["metadata"]["namespace"] == ns && p["metadata"]["ownerReferences"][0]["uid"] == *uid
        })
        .cloned()
        .collect();
    pods.sort_by_key(ordinal);
    // Scale down: the highest ordinal first.
    if let Some(extra) = pods.iter().rev().find(|p| ordinal(p) >= Some(replicas)) {
        rest::delete_pod(s, extra.clone());
        return;
    }
    // OrderedReady: the first missing ordinal, once all before it are Ready.
    if pods.iter().all(is_ready) && (pods.len() as u64) < replicas {
        let i = (0..replicas)
            .find(|i| !pods.iter().any(|p| ordinal(p) == Some(*i)))
            .unwrap_or(0);
        let pod_name = format!("{name}-{i}");
        let mut pod = new_pod(
            ns,
            &pod_name,
            template,
            &[
                ("controller-revision-hash", json!(rev)),
                ("statefulset.kubernetes.io/pod-name", json!(pod_name)),
                ("apps.kubernetes.io/pod-index", json!(i.to_string())),
            ],
            owner_ref(sts),
            &[],
        );
        pod["spec"]["hostname"] = json!(pod_name);
        if let Some(svc) = sts["spec"]["serviceName"].as_str() {
            pod["spec"]["subdomain"] = json!(svc);
        }
        run_pod(s, pod).await;
        return;
    }
    let ready = pods.iter().filter(|p| is_ready(p)).count() as u64;
    let current = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == rev)
        .count() as u64;
    let want = json!({
        "observedGeneration": sts["metadata"]["generation"],
        "replicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": current,
        "currentRevision": rev,
        "updateRevision": rev,
        "collisionCount": 0,
    });
    let status = &sts["status"];
    let stale = want
        .as_object()
        .into_iter()
        .flatten()
        .any(|(k, v)| status.get(k) != Some(v));
    if stale {
        s.modify(Kind::StatefulSet, ns, name, |o| {
            for (k, v) in want.as_object().into_iter().flatten() {
                o["status"][k] = v.clone();
            }
        });
    }
}
