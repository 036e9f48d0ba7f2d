//! [`build_job`]: a [`JobSpec`] becomes a batch/v1 Job. Pure: no client, no
//! clock, no randomness (the name comes in the spec), so it is snapshot
//! tested.
//!
//! Every Job prova builds:
//! - runs one pod once: `restartPolicy: Never`, `backoffLimit: 0`;
//! - has a podFailurePolicy that ignores a disrupted pod (condition
//!   `DisruptionTarget`: preemption, eviction, node drain — the Job makes a
//!   new pod, which prova follows) and fails the Job at once when the test
//!   container exits non-zero;
//! - carries labels that tie it (and its pod) to prova's job, run, test,
//!   attempt, step and target, sanitized to label syntax, with the exact
//!   names in annotations;
//! - with `results_dir`, has a second container, the collector, sharing an
//!   emptyDir mounted at `results_dir` with the test container.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{
    Job, JobSpec as K8sJobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::collector::DEFAULT_CONTROL_DIR;
use crate::spec::{JobSpec, sanitize_label_value};

/// The collector container's name.
pub const COLLECTOR_CONTAINER: &str = "prova-collector";
/// Where the collector binary is in its image.
pub const COLLECTOR_BINARY: &str = "/prova";
/// The shared results volume.
pub const RESULTS_VOLUME: &str = "prova-results";
/// The collector's private control volume.
pub const CONTROL_VOLUME: &str = "prova-control";

/// Label keys prova puts on every Job and pod.
pub mod labels {
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const JOB: &str = "prova.dev/job";
    pub const RUN: &str = "prova.dev/run";
    pub const TEST: &str = "prova.dev/test";
    pub const ATTEMPT: &str = "prova.dev/attempt";
    pub const STEP: &str = "prova.dev/step";
    pub const TARGET: &str = "prova.dev/target";
    /// The Kubernetes Job's name, on its pods: what prova watches pods by.
    pub const K8S_JOB: &str = "prova.dev/k8sjob";
    /// Annotations with the exact (unsanitized) names.
    pub const TEST_NAME_ANNOTATION: &str = "prova.dev/test-name";
    pub const TARGET_ID_ANNOTATION: &str = "prova.dev/target-id";
    pub const STEP_LABEL_ANNOTATION: &str = "prova.dev/step-label";
}

/// The labels of a spec's Job and pod: the user's, then prova's (which win).
pub fn job_labels(spec: &JobSpec) -> BTreeMap<String, String> {
    let o = &spec.owner;
    let mut l = spec.labels.clone();
    let mut put = |k: &str, v: String| {
        l.insert(k.to_string(), v);
    };
    put(labels::MANAGED_BY, "prova".into());
    put(labels::JOB, o.job_id.to_string());
    put(labels::RUN, o.run_id.to_string());
    put(labels::TEST, sanitize_label_value(&o.test));
    put(labels::ATTEMPT, o.attempt.to_string());
    put(labels::STEP, sanitize_label_value(&o.step));
    put(labels::TARGET, sanitize_label_value(&o.target));
    put(labels::K8S_JOB, spec.name.clone());
    l
}

fn annotations(spec: &JobSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            labels::TEST_NAME_ANNOTATION.to_string(),
            spec.owner.test.clone(),
        ),
        (
            labels::TARGET_ID_ANNOTATION.to_string(),
            spec.owner.target.clone(),
        ),
        (
            labels::STEP_LABEL_ANNOTATION.to_string(),
            spec.owner.step.clone(),
        ),
    ])
}

/// The podFailurePolicy of every prova Job. Rules apply in order, so the
/// disruption rule comes first: a container killed by a node drain exits
/// non-zero too, and must not count as a failing test.
pub fn pod_failure_policy(test_container: &str) -> PodFailurePolicy {
    PodFailurePolicy {
        rules: vec![
            PodFailurePolicyRule {
                action: "Ignore".into(),
                on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                }]),
                on_exit_codes: None,
            },
            PodFailurePolicyRule {
                action: "FailJob".into(),
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some(test_container.to_string()),
                    operator: "NotIn".into(),
                    values: vec![0],
                }),
                on_pod_conditions: None,
            },
        ],
    }
}

fn quantities(m: &BTreeMap<String, String>) -> Option<BTreeMap<String, Quantity>> {
    (!m.is_empty()).then(|| {
        m.iter()
            .map(|(k, v)| (k.clone(), Quantity(v.clone())))
            .collect()
    })
}

fn merge<K: Ord, V>(base: Option<BTreeMap<K, V>>, over: BTreeMap<K, V>) -> Option<BTreeMap<K, V>> {
    let mut m = base.unwrap_or_default();
    m.extend(over);
    (!m.is_empty()).then_some(m)
}

/// Builds the Job for `spec`.
pub fn build_job(spec: &JobSpec) -> Job {
    let labels = job_labels(spec);
    let template = spec.pod_template.clone().unwrap_or_default();
    let mut meta = template.metadata.unwrap_or_default();
    meta.labels = merge(meta.labels, labels.clone());
    meta.annotations = merge(meta.annotations, annotations(spec));
    let mut pod = template.spec.unwrap_or_default();

    // The test container: the one named `spec.container`, else the first
    // one of the template (renamed), else a new one.
    let idx = pod
        .containers
        .iter()
        .position(|c| c.name == spec.container)
        .unwrap_or(0);
    if pod.containers.is_empty() {
        pod.containers.push(Container::default());
    }
    {
        let c = &mut pod.containers[idx];
        c.name = spec.container.clone();
        if let Some(image) = &spec.image {
            c.image = Some(image.clone());
        }
        if !spec.command.is_empty() {
            c.command = Some(spec.command.clone());
        }
        if !spec.args.is_empty() {
            c.args = Some(spec.args.clone());
        }
        if !spec.env.is_empty() {
            let env = c.env.get_or_insert_with(Vec::new);
            for (k, v) in &spec.env {
                env.retain(|e| &e.name != k);
                env.push(EnvVar {
                    name: k.clone(),
                    value: Some(v.clone()),
                    value_from: None,
                });
            }
        }
        if !spec.requests.is_empty() || !spec.limits.is_empty() {
            let r = c
                .resources
                .get_or_insert_with(ResourceRequirements::default);
            if let Some(q) = quantities(&spec.requests) {
                r.requests = merge(r.requests.take(), q);
            }
            if let Some(q) = quantities(&spec.limits) {
                r.limits = merge(r.limits.take(), q);
            }
        }
        if c.termination_message_policy.is_none() {
            c.termination_message_policy = Some("FallbackToLogsOnError".into());
        }
        if let Some(r) = &spec.results {
            c.volume_mounts
                .get_or_insert_with(Vec::new)
                .push(VolumeMount {
                    name: RESULTS_VOLUME.into(),
                    mount_path: r.dir.clone(),
                    ..Default::default()
                });
        }
    }

    if let Some(r) = &spec.results {
        pod.containers.push(collector_container(r));
        let volumes = pod.volumes.get_or_insert_with(Vec::new);
        for name in [RESULTS_VOLUME, CONTROL_VOLUME] {
            volumes.push(Volume {
                name: name.into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            });
        }
    }

    pod.restart_policy = Some("Never".into());
    if let Some(sa) = &spec.service_account {
        pod.service_account_name = Some(sa.clone());
    }
    pod.node_selector = merge(pod.node_selector, spec.node_selector.clone());
    if !spec.tolerations.is_empty() {
        pod.tolerations
            .get_or_insert_with(Vec::new)
            .extend(spec.tolerations.iter().cloned());
    }

    Job {
        metadata: ObjectMeta {
            name: Some(spec.name.clone()),
            namespace: Some(spec.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations(spec)),
            ..Default::default()
        },
        spec: Some(K8sJobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: spec.active_deadline_seconds,
            ttl_seconds_after_finished: spec.ttl_seconds_after_finished,
            pod_failure_policy: Some(pod_failure_policy(&spec.container)),
            template: PodTemplateSpec {
                metadata: Some(meta),
                spec: Some(PodSpec { ..pod }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn collector_container(r: &crate::spec::ResultsSpec) -> Container {
    let linger = format!("{}s", r.linger.as_secs().max(1));
    Container {
        name: COLLECTOR_CONTAINER.into(),
        image: Some(r.collector_image.clone()),
        image_pull_policy: Some("IfNotPresent".into()),
        command: Some(
            [
                COLLECTOR_BINARY,
                "collector",
                "wait",
                "--dir",
                &r.dir,
                "--control-dir",
                DEFAULT_CONTROL_DIR,
                "--linger",
                &linger,
            ]
            .map(String::from)
            .to_vec(),
        ),
        volume_mounts: Some(vec![
            VolumeMount {
                name: RESULTS_VOLUME.into(),
                mount_path: r.dir.clone(),
                read_only: Some(true),
                ..Default::default()
            },
            VolumeMount {
                name: CONTROL_VOLUME.into(),
                mount_path: DEFAULT_CONTROL_DIR.into(),
                ..Default::default()
            },
        ]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".into(), Quantity("10m".into())),
                ("memory".into(), Quantity("16Mi".into())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".into(),
                Quantity("128Mi".into()),
            )])),
            ..Default::default()
        }),
        // Reads whatever the test wrote (any owner, any mode) and nothing else.
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: Some(vec!["DAC_READ_SEARCH".into()]),
            }),
            ..Default::default()
        }),
        termination_message_policy: Some("File".into()),
        ..Default::default()
    }
}
