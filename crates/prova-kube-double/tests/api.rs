//! The double's API semantics over HTTP with kube-rs, as the API server
//! behaves: namespaces and their default ServiceAccount, /status writes,
//! resourceVersion conflicts, the three patch types, watches, and the
//! StatefulSet controller.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::Api;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use prova_kube_double::Double;
use serde_json::json;

async fn setup() -> (Double, kube::Client) {
    let d = Double::start(Default::default()).await;
    let client = kube::Client::try_from(d.config()).unwrap();
    (d, client)
}

fn sts(name: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"e2e": "testing"}},
        "spec": {
            "replicas": 2, "serviceName": "test",
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "pause"}]}}
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn a_namespace_gets_its_default_service_account_and_deletion_empties_it() {
    let (d, client) = setup().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "t-1"}})).unwrap();
    let created = nss.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "t-1");
    d.wait_for("the default ServiceAccount", || {
        d.service_accounts()
            .iter()
            .any(|s| s["metadata"]["namespace"] == "t-1")
    })
    .await;
    sas.get("default").await.unwrap();
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "t-1");
    sets.create(&PostParams::default(), &sts("ss"))
        .await
        .unwrap();
    let gone = nss
        .delete("t-1", &DeleteParams::background())
        .await
        .unwrap();
    assert_eq!(
        gone.left().unwrap().status.unwrap().phase.as_deref(),
        Some("Terminating")
    );
    // New content is refused while it terminates; then everything goes.
    let err = sets
        .create(&PostParams::default(), &sts("other"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403 || s.code == 404),
        "{err}"
    );
    d.wait_for("t-1 to go", || {
        d.namespaces()
            .iter()
            .all(|n| n["metadata"]["name"] != "t-1")
    })
    .await;
    assert!(d.pods().is_empty() && d.stateful_sets().is_empty());
    // Creating in a namespace that does not exist is a 404.
    let err = sets
        .create(&PostParams::default(), &sts("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"),
        "{err}"
    );
}

#[tokio::test]
async fn status_writes_keep_the_spec_and_stale_versions_conflict() {
    let (d, client) = setup().await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    sets.create(&PostParams::default(), &sts("ss"))
        .await
        .unwrap();
    // The controller makes ss-0 then ss-1, each Running and Ready.
    d.wait_for("2 ready replicas", || {
        d.stateful_sets()[0]["status"]["readyReplicas"] == 2
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let names: Vec<String> = pods
        .list(&ListParams::default().labels("app=ss"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| p.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["ss-0", "ss-1"]);
    let cur = sets.get("ss").await.unwrap();
    assert_eq!(cur.status.as_ref().unwrap().observed_generation, Some(1));

    // PUT /status with a spec change: the status lands, the spec does not.
    let mut edited = cur.clone();
    edited.spec.as_mut().unwrap().replicas = Some(5);
    edited.status.as_mut().unwrap().conditions = Some(vec![
        serde_json::from_value(json!({"type": "StatusUpdate", "status": "True", "reason": "E2E"}))
            .unwrap(),
    ]);
    let put = sets
        .replace_status("ss", &PostParams::default(), &edited)
        .await
        .unwrap();
    assert_eq!(put.spec.unwrap().replicas, Some(2));
    assert_eq!(put.metadata.generation, Some(1));
    assert_eq!(
        put.status.unwrap().conditions.unwrap()[0].type_,
        "StatusUpdate"
    );

    // The same PUT again carries a stale resourceVersion: 409 with a Status.
    match sets
        .replace_status("ss", &PostParams::default(), &edited)
        .await
        .unwrap_err()
    {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        e => panic!("{e}"),
    }

    // A strategic merge patch of /status merges conditions by type; a merge
    // patch replaces the list.
    let patch = json!({"status": {"conditions": [{"type": "StatusPatched", "status": "True"}]}});
    let out = sets
        .patch_status("ss", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let types: Vec<String> = out
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(types, ["StatusUpdate", "StatusPatched"]);
    let out = sets
        .patch_status("ss", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(out.status.unwrap().conditions.unwrap().len(), 1);

    // A JSON patch (RFC 6902), sent raw: kube's Patch::Json needs a feature.
    let req = http::Request::patch("/apis/apps/v1/namespaces/default/statefulsets/ss/status")
        .header("content-type", "application/json-patch+json")
        .body(
            br#"[{"op":"add","path":"/status/conditions/-","value":{"type":"J","status":"True"}}]"#
                .to_vec(),
        )
        .unwrap();
    let out: StatefulSet = client.request(req).await.unwrap();
    assert_eq!(out.status.unwrap().conditions.unwrap().len(), 2);

    // A main-resource write keeps the status and raises the generation.
    let scale = json!({"spec": {"replicas": 1}, "status": {"replicas": 9}});
    let scaled = sets
        .patch("ss", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
    assert_ne!(scaled.status.as_ref().unwrap().replicas, 9);
    d.wait_for("scale down to ss-0", || {
        let pods = d.pods();
        pods.len() == 1 && pods[0]["metadata"]["name"] == "ss-0"
    })
    .await;
}

#[tokio::test]
async fn a_watch_from_a_resource_version_replays_later_changes() {
    let (_d, client) = setup().await;
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let rv = sets
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    sets.create(&PostParams::default(), &sts("ss"))
        .await
        .unwrap();
    let cond = json!({"status": {"conditions": [{"type": "W", "status": "True"}]}});
    sets.patch_status("ss", &PatchParams::default(), &Patch::Merge(&cond))
        .await
        .unwrap();
    let stream = sets
        .watch(&WatchParams::default().labels("e2e=testing"), &rv)
        .await
        .unwrap();
    let mut stream = std::pin::pin!(stream);
    let mut kinds = Vec::new();
    while let Some(e) = stream.next().await {
        match e.unwrap() {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Modified(s) => {
                kinds.push("MODIFIED");
                let conds = s.status.and_then(|s| s.conditions).unwrap_or_default();
                if conds.iter().any(|c| c.type_ == "W") {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(kinds[0], "ADDED");
}
