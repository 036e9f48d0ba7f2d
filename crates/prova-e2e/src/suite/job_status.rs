//! `[sig-apps] Job should apply changes to a job status`: the APISnoop
//! ticket for `readBatchV1NamespacedJobStatus`,
//! `patchBatchV1NamespacedJobStatus` and
//! `replaceBatchV1NamespacedJobStatus`, as upstream's `test/e2e/apps/job.go`
//! does it. The ticket patched `status.startTime`, which Kubernetes 1.32+
//! refuses to change on a running Job; like today's upstream test, the
//! patch adds a custom condition instead.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::retry_on_conflict;
use crate::framework::pods;
use crate::framework::wait::poll_until;
use crate::framework::{Ctx, Failure};

pub const NAME: &str = "[sig-apps] Job should apply changes to a job status";

const PARALLELISM: i32 = 2;
const COMPLETIONS: i32 = 4;
const JOB_NAME: &str = "suspend-false-to-true";

/// Now, to the second: the API carries times as RFC 3339 seconds, so a
/// finer time would not compare equal after a round trip.
fn now_seconds() -> Time {
    Time(
        jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now()),
    )
}

/// upstream's `e2ejob.NewTestJob("notTerminate", …)`: pods that never end.
fn new_job(image: &str) -> Job {
    let labels = BTreeMap::from([("job".to_string(), JOB_NAME.to_string())]);
    Job {
        metadata: ObjectMeta {
            name: Some(JOB_NAME.into()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            parallelism: Some(PARALLELISM),
            completions: Some(COMPLETIONS),
            backoff_limit: Some(6),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![Container {
                        name: "c".into(),
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

fn has_condition(status: Option<&JobStatus>, type_: &str, at: &Time) -> bool {
    status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == type_
                    && c.status == "True"
                    && c.last_transition_time.as_ref() == Some(at)
            })
        })
}

pub async fn run(ctx: Ctx) -> Result<(), Failure> {
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let pod_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);

    ctx.step("Creating a job");
    let job = jobs
        .create(&PostParams::default(), &new_job(&ctx.image))
        .await
        .map_err(ctx.api_err("creating the job"))?;
    let name = job.metadata.name.clone().unwrap_or_default();

    ctx.step("Ensure pods equal to parallelism count is attached to the job");
    let selector = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}"));
    poll_until(
        &ctx,
        &format!("{PARALLELISM} running pods of job {name}"),
        ctx.wait_timeout,
        || async {
            let list = pod_api
                .list(&selector)
                .await
                .map_err(ctx.api_err("listing the job's pods"))?;
            let running = list.items.iter().filter(|p| pods::is_running(p)).count();
            let phases = pods::phases(&list.items);
            Ok((running != PARALLELISM as usize).then(|| format!("pods: {phases:?}")))
        },
    )
    .await?;

    ctx.step("patching /status");
    let now1 = now_seconds();
    let status = JobStatus {
        conditions: Some(vec![JobCondition {
            type_: "CustomConditionType".into(),
            status: "True".into(),
            last_transition_time: Some(now1.clone()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let patch = json!({
        "metadata": {"annotations": {"patchedstatus": "true"}},
        "status": status,
    });
    let patched = jobs
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(ctx.api_err("patching the job's /status"))?;
    for (what, j) in [
        ("the patch's answer", &patched),
        ("a fresh read", &{
            jobs.get(&name)
                .await
                .map_err(ctx.api_err("reading the job"))?
        }),
    ] {
        ctx.check(
            has_condition(j.status.as_ref(), "CustomConditionType", &now1),
            || {
                format!(
                    "{what} has no condition CustomConditionType=True at {}: {:?}",
                    now1.0, j.status
                )
            },
        )?;
        ctx.check(
            j.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("patchedstatus"))
                .map(String::as_str)
                == Some("true"),
            || {
                format!(
                    "{what} lacks the annotation patchedstatus=true: {:?}",
                    j.metadata.annotations
                )
            },
        )?;
    }

    ctx.step("updating /status");
    let now2 = now_seconds();
    let updated = retry_on_conflict(|| async {
        let mut fresh = jobs.get(&name).await?;
        let status = fresh.status.get_or_insert_with(Default::default);
        status
            .conditions
            .get_or_insert_with(Vec::new)
            .push(JobCondition {
                type_: "AnotherCustomConditionType".into(),
                status: "True".into(),
                last_transition_time: Some(now2.clone()),
                ..Default::default()
            });
        jobs.replace_status(&name, &PostParams::default(), &fresh)
            .await
    })
    .await
    .map_err(ctx.api_err("updating the job's /status"))?;
    ctx.check(
        has_condition(updated.status.as_ref(), "AnotherCustomConditionType", &now2),
        || {
            format!(
                "the updated status lacks AnotherCustomConditionType: {:?}",
                updated.status
            )
        },
    )?;

    ctx.step("get /status");
    let resource = ApiResource::erase::<Job>(&());
    let dynamic: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &resource);
    let got = dynamic
        .get_status(&name)
        .await
        .map_err(ctx.api_err("getting the job's /status through the dynamic client"))?;
    ctx.check(got.metadata.uid == job.metadata.uid, || {
        format!(
            "the /status read has uid {:?}, the job {:?}",
            got.metadata.uid, job.metadata.uid
        )
    })?;
    Ok(())
}
