//! `[sig-apps] StatefulSet should validate Statefulset Status endpoints`:
//! the APISnoop ticket for `readAppsV1NamespacedStatefulSetStatus`,
//! `replaceAppsV1NamespacedStatefulSetStatus` and
//! `patchAppsV1NamespacedStatefulSetStatus`, as upstream's
//! `test/e2e/apps/statefulset.go` does it: watch from the start; create a
//! StatefulSet with a static label; wait for its pods; get `/status` and
//! list its conditions; update `/status` with a condition and see it in
//! the watch; patch `/status` and see it in the watch.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetCondition, StatefulSetSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{
    ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchParams,
};
use serde_json::json;

use super::retry_on_conflict;
use crate::framework::pods;
use crate::framework::wait::{poll_until, watch_until};
use crate::framework::{Ctx, Failure};

pub const NAME: &str = "[sig-apps] StatefulSet should validate Statefulset Status endpoints";

const SS_NAME: &str = "ss";
/// The static label the watch selects on.
const WATCH_LABEL: (&str, &str) = ("e2e", "testing");
const REPLICAS: i32 = 1;

fn pod_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("foo".to_string(), "bar".to_string()),
        ("baz".to_string(), "blah".to_string()),
    ])
}

/// upstream's `e2estatefulset.NewStatefulSet(ssName, ns, "test", 1, …)`.
fn new_statefulset(image: &str) -> StatefulSet {
    StatefulSet {
        metadata: ObjectMeta {
            name: Some(SS_NAME.into()),
            labels: Some(BTreeMap::from([(
                WATCH_LABEL.0.to_string(),
                WATCH_LABEL.1.to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(REPLICAS),
            service_name: Some("test".into()),
            selector: LabelSelector {
                match_labels: Some(pod_labels()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "webserver".into(),
                        image: Some(image.into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn conditions(ss: &StatefulSet) -> Vec<StatefulSetCondition> {
    ss.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
}

fn is_ours(ss: &StatefulSet, ns: &str) -> bool {
    ss.metadata.name.as_deref() == Some(SS_NAME)
        && ss.metadata.namespace.as_deref() == Some(ns)
        && ss
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(WATCH_LABEL.0))
            .map(String::as_str)
            == Some(WATCH_LABEL.1)
}

pub async fn run(ctx: Ctx) -> Result<(), Failure> {
    let ns = ctx.namespace.clone();
    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let label_selector = format!("{}={}", WATCH_LABEL.0, WATCH_LABEL.1);
    let watch = WatchParams::default().labels(&label_selector);

    // Watch from the start: the list's resourceVersion.
    let start = sets
        .list(&ListParams::default().labels(&label_selector))
        .await
        .map_err(ctx.api_err("listing StatefulSets"))?;
    let from = start.metadata.resource_version.clone().unwrap_or_default();

    ctx.step(&format!("Creating statefulset {SS_NAME} in namespace {ns}"));
    let ss = sets
        .create(&PostParams::default(), &new_statefulset(&ctx.image))
        .await
        .map_err(ctx.api_err("creating the StatefulSet"))?;

    ctx.step("Waiting for the StatefulSet's pods to be running and ready");
    let pod_selector = ListParams::default().labels("foo=bar,baz=blah");
    poll_until(
        &ctx,
        &format!("{REPLICAS} running and ready pods of {SS_NAME}"),
        ctx.wait_timeout,
        || async {
            let list = pod_api
                .list(&pod_selector)
                .await
                .map_err(ctx.api_err("listing the pods"))?;
            let ready = list
                .items
                .iter()
                .filter(|p| pods::is_running_and_ready(p))
                .count();
            let states = pods::phases(&list.items);
            Ok((ready != REPLICAS as usize).then(|| format!("pods: {states:?}, {ready} ready")))
        },
    )
    .await?;
    // upstream's waitForStatus: the controller has seen this generation.
    poll_until(
        &ctx,
        "the StatefulSet's status.observedGeneration",
        ctx.wait_timeout,
        || async {
            let cur = sets
                .get(SS_NAME)
                .await
                .map_err(ctx.api_err("reading the StatefulSet"))?;
            let observed = cur.status.as_ref().and_then(|s| s.observed_generation);
            Ok((observed < cur.metadata.generation).then(|| {
                format!(
                    "observedGeneration {observed:?}, generation {:?}",
                    cur.metadata.generation
                )
            }))
        },
    )
    .await?;

    ctx.step("Getting /status");
    let resource = ApiResource::erase::<StatefulSet>(&());
    let dynamic: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &resource);
    let got = dynamic
        .get_status(SS_NAME)
        .await
        .map_err(ctx.api_err("getting the StatefulSet's /status through the dynamic client"))?;
    let typed: StatefulSet = serde_json::from_value(serde_json::to_value(&got).unwrap_or_default())
        .map_err(|e| Failure::Check {
            step: "Getting /status".into(),
            message: format!("the /status answer is not a StatefulSet: {e}"),
        })?;
    ctx.check(typed.metadata.uid == ss.metadata.uid, || {
        format!(
            "the /status read has uid {:?}, the StatefulSet {:?}",
            typed.metadata.uid, ss.metadata.uid
        )
    })?;
    ctx.info(&format!(
        "StatefulSet {SS_NAME} has Conditions: {:?}",
        conditions(&typed)
    ));

    ctx.step("updating the StatefulSet Status");
    let updated = retry_on_conflict(|| async {
        let mut fresh = sets.get(SS_NAME).await?;
        fresh
            .status
            .get_or_insert_with(Default::default)
            .conditions
            .get_or_insert_with(Vec::new)
            .push(StatefulSetCondition {
                type_: "StatusUpdate".into(),
                status: "True".into(),
                reason: Some("E2E".into()),
                message: Some("Set from e2e test".into()),
                ..Default::default()
            });
        sets.replace_status(SS_NAME, &PostParams::default(), &fresh)
            .await
    })
    .await
    .map_err(ctx.api_err("updating the StatefulSet's /status"))?;
    ctx.info(&format!(
        "updatedStatus.Conditions: {:?}",
        conditions(&updated)
    ));

    ctx.step("watching for the statefulset status to be updated");
    watch_until(
        &ctx,
        &sets,
        &watch,
        &from,
        "the StatusUpdate condition",
        ctx.wait_timeout,
        |s| {
            is_ours(s, &ns)
                && conditions(s).iter().any(|c| {
                    c.type_ == "StatusUpdate"
                        && c.reason.as_deref() == Some("E2E")
                        && c.message.as_deref() == Some("Set from e2e test")
                })
        },
    )
    .await?;

    ctx.step("patching the Statefulset Status");
    let payload = json!({"status": {"conditions": [{"type": "StatusPatched", "status": "True"}]}});
    ctx.info(&format!("Patch payload: {payload}"));
    let patched = sets
        .patch_status(SS_NAME, &PatchParams::default(), &Patch::Merge(&payload))
        .await
        .map_err(ctx.api_err("patching the StatefulSet's /status"))?;
    ctx.info(&format!(
        "Patched status conditions: {:?}",
        conditions(&patched)
    ));

    ctx.step("watching for the Statefulset status to be patched");
    watch_until(
        &ctx,
        &sets,
        &watch,
        &from,
        "the StatusPatched condition",
        ctx.wait_timeout,
        |s| is_ours(s, &ns) && conditions(s).iter().any(|c| c.type_ == "StatusPatched"),
    )
    .await?;
    Ok(())
}
