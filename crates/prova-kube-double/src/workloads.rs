//! Pods that run until deleted (the double runs no images: a pod of a
//! sleeping image, such as `pause`, is all e2e tests need), the kubelet
//! steps that bring one to Running and Ready, and the Job controller for
//! Jobs with parallelism > 1.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::rest::{suffix, uid};
use crate::store::{Kind, Shared, now};

/// The pause between a pod's steps (created, scheduled, running).
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// A new Pending pod from `template` (a PodTemplateSpec), owned by `owner`
/// (an ownerReference), with `labels` added to the template's.
pub(crate) fn new_pod(
    ns: &str,
    name: &str,
    template: &Value,
    labels: &[(&str, Value)],
    owner: Value,
    finalizers: &[&str],
) -> Value {
    let mut all_labels = template["metadata"]["labels"].clone();
    if !all_labels.is_object() {
        all_labels = json!({});
    }
    for (k, v) in labels {
        all_labels[*k] = v.clone();
    }
    let mut pod = json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid(),
            "creationTimestamp": now(), "labels": all_labels,
            "ownerReferences": [owner]
        },
        "spec": template["spec"],
        "status": {"phase": "Pending", "qosClass": "BestEffort"}
    });
    if let Some(a) = template["metadata"].get("annotations") {
        pod["metadata"]["annotations"] = a.clone();
    }
    if !finalizers.is_empty() {
        pod["metadata"]["finalizers"] = json!(finalizers);
    }
    let spec = &mut pod["spec"];
    crate::jobs::default(spec, "restartPolicy", json!("Always"));
    crate::jobs::default(spec, "dnsPolicy", json!("ClusterFirst"));
    crate::jobs::default(spec, "schedulerName", json!("default-scheduler"));
    crate::jobs::default(spec, "serviceAccountName", json!("default"));
    crate::jobs::default(spec, "terminationGracePeriodSeconds", json!(30));
    pod
}

/// The controller reference an owner puts on its pods.
pub(crate) fn owner_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": true, "blockOwnerDeletion": true
    })
}

fn condition(type_: &str) -> Value {
    json!({"type": type_, "status": "True", "lastProbeTime": null, "lastTransitionTime": now()})
}

/// An image the double's kubelet cannot pull: its name holds this.
pub const UNPULLABLE: &str = "does-not-exist";

/// Stores `pod` and plays the scheduler and kubelet until it is Running
/// and Ready; returns early if the pod is deleted meanwhile. A pod whose
/// image names [`UNPULLABLE`] stays Pending in `ErrImagePull`.
pub(crate) async fn run_pod(s: &Shared, pod: Value) {
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
    let containers = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    s.put(Kind::Pod, "ADDED", pod);
    tokio::time::sleep(TICK).await;
    let scheduled = s.modify(Kind::Pod, &ns, &name, |p| {
        p["spec"]["nodeName"] = json!("node-1");
        p["status"]["conditions"] = json!([condition("PodScheduled")]);
        p["status"]["hostIP"] = json!("10.0.0.7");
        p["status"]["hostIPs"] = json!([{"ip": "10.0.0.7"}]);
        p["status"]["startTime"] = json!(now());
        p["status"]["containerStatuses"] = containers
            .iter()
            .map(|c| {
                json!({
                    "name": c["name"], "image": c["image"], "imageID": "",
                    "lastState": {}, "ready": false, "restartCount": 0, "started": false,
                    "state": {"waiting": {"reason": "ContainerCreating"}}
                })
            })
            .collect();
    });
    if !scheduled {
        return;
    }
    tokio::time::sleep(TICK).await;
    let unpullable = containers
        .iter()
        .find(|c| c["image"].as_str().is_some_and(|i| i.contains(UNPULLABLE)));
    if let Some(c) = unpullable {
        let image = c["image"].as_str().unwrap_or("");
        let message = format!("failed to pull and unpack image \"{image}\": not found");
        s.modify(Kind::Pod, &ns, &name, |p| {
            if let Some(statuses) = p["status"]["containerStatuses"].as_array_mut() {
                for cs in statuses.iter_mut().filter(|cs| cs["image"] == image) {
                    cs["state"] =
                        json!({"waiting": {"reason": "ErrImagePull", "message": message}});
                }
            }
        });
        return;
    }
    s.modify(Kind::Pod, &ns, &name, |p| {
        let st = &mut p["status"];
        st["phase"] = json!("Running");
        st["podIP"] = json!("10.244.1.17");
        st["podIPs"] = json!([{"ip": "10.244.1.17"}]);
        st["conditions"] = json!([
            condition("PodReadyToStartContainers"),
            condition("Initialized"),
            condition("Ready"),
            condition("ContainersReady"),
            condition("PodScheduled"),
        ]);
        st["containerStatuses"] = containers
            .iter()
            .map(|c| {
                json!({
                    "name": c["name"], "image": c["image"],
                    "imageID": format!("{}@sha256:{:064x}", c["image"].as_str().unwrap_or(""), 0),
                    "containerID": "containerd://0f3c9a", "lastState": {},
                    "ready": true, "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": now()}}
                })
            })
            .collect();
    });
}

/// Whether a pod is Running with its Ready condition true.
pub(crate) fn is_ready(pod: &Value) -> bool {
    pod["status"]["phase"] == "Running"
        && pod["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The Job controller for a Job whose pods run until deleted: it makes
/// min(parallelism, completions) pods and keeps `status.active`, `ready`
/// and `startTime` as the real one does (other status fields, such as
/// conditions a client added, are left alone).
pub(crate) async fn job_controller(s: Arc<Shared>, ns: String, name: String) {
    let Some(job) = s.get(Kind::Job, &ns, &name) else {
        return;
    };
    let spec = &job["spec"];
    let n = spec["parallelism"]
        .as_u64()
        .unwrap_or(1)
        .min(spec["completions"].as_u64().unwrap_or(u64::MAX));
    let uid = job["metadata"]["uid"].clone();
    let labels = [
        ("batch.kubernetes.io/controller-uid", uid.clone()),
        ("batch.kubernetes.io/job-name", json!(name)),
        ("controller-uid", uid.clone()),
        ("job-name", json!(name)),
    ];
    s.modify(Kind::Job, &ns, &name, |j| {
        let st = &mut j["status"];
        st["active"] = json!(n);
        st["ready"] = json!(0);
        st["terminating"] = json!(0);
        st["startTime"] = json!(now());
        st["uncountedTerminatedPods"] = json!({});
    });
    let mut pods = Vec::new();
    for _ in 0..n {
        let mut pod = new_pod(
            &ns,
            &format!("{name}-{}", suffix()),
            &spec["template"],
            &labels,
            owner_ref(&job),
            &["batch.kubernetes.io/job-tracking"],
        );
        pod["metadata"]["generateName"] = json!(format!("{name}-"));
        pods.push(pod);
    }
    futures::future::join_all(pods.into_iter().map(|p| run_pod(&s, p))).await;
    s.modify(Kind::Job, &ns, &name, |j| {
        j["status"]["ready"] = json!(n);
    });
}
