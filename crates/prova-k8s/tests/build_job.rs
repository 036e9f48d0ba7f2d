//! `build_job` snapshots: the Job prova sends is part of its interface
//! (RBAC, admission policies and cluster operators see it).

use std::time::Duration;

use prova_core::descriptor::{ParamValues, StepDescriptor, StepParams};
use prova_core::diag::{Diagnostics, FieldPath};
use prova_engine::plugin::{NoTemplates, Params, PrepareCtx, Target};
use prova_k8s::build_job;
use prova_k8s::spec::{ConfigParams, Owner, StepConfig, job_name};

/// The step's configuration from fixed parameters, as the engine prepares it.
fn config(pairs: &[(&str, &[&str])]) -> StepConfig {
    let desc = StepDescriptor {
        name: "k8sjob".into(),
        label: "e2e".into(),
        parameters: params(pairs),
        timeout: None,
        path: FieldPath::root(),
        pos: None,
    };
    let ctx = PrepareCtx::default();
    let mut diags = Diagnostics::new(None);
    let mut p = Params::new(&desc, &ctx, &mut diags);
    let read = ConfigParams::read(&mut p);
    p.finish();
    assert!(
        diags.errors().is_empty() && diags.warnings().is_empty(),
        "{:?} {:?}",
        diags.errors(),
        diags.warnings()
    );
    read.expect("prepared")
        .config(&NoTemplates, &Target::with_id("t"))
        .expect("configured")
}

fn params(pairs: &[(&str, &[&str])]) -> StepParams {
    let mut p = StepParams::default();
    for (k, vs) in pairs {
        p.insert(ParamValues {
            key: k.to_string(),
            values: vs.iter().map(|v| v.to_string()).collect(),
            path: Default::default(),
            pos: None,
        });
    }
    p
}

fn owner() -> Owner {
    Owner {
        job_id: 42,
        run_id: 2,
        test: "Conformance suite #1".into(),
        attempt: 1,
        step: "e2e".into(),
        target: "Worker_03.lab".into(),
    }
}

#[test]
fn a_concise_spec_with_every_parameter() {
    let cfg = config(&[
        ("image", &["registry.example/e2e:1.33"]),
        ("command", &["/e2e.test"]),
        (
            "args",
            &["--ginkgo.focus=Conformance", "--report-dir=/results"],
        ),
        ("env", &["KUBECONFIG=", "E2E_PROVIDER=skeleton"]),
        (
            "resources",
            &[
                "requests.cpu=500m",
                "requests.memory=256Mi",
                "limits.memory=1Gi",
            ],
        ),
        ("serviceAccount", &["prova-e2e"]),
        ("namespace", &["e2e"]),
        ("nodeSelector", &["kubernetes.io/arch=amd64"]),
        (
            "tolerations",
            &[
                "dedicated=e2e:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute:300",
            ],
        ),
        ("activeDeadlineSeconds", &["3600"]),
        ("ttlSecondsAfterFinished", &["600"]),
        ("labels", &["team=conformance"]),
        ("results_dir", &["/results"]),
        ("collector_image", &["ghcr.example/prova:0.1.0"]),
        ("linger", &["5m"]),
    ]);
    let mut spec = cfg.spec;
    spec.owner = owner();
    spec.name = job_name(&spec.owner, "k7x2q");
    spec.namespace = cfg.namespace.unwrap();
    // The collector lingers 5m beyond the 1h deadline.
    assert_eq!(
        spec.results.as_ref().unwrap().linger,
        Duration::from_secs(3600 + 300)
    );
    insta::assert_json_snapshot!(build_job(&spec));
}

#[test]
fn a_full_pod_template_with_overrides() {
    let template = r#"{
        "metadata": {"labels": {"app": "suite"}, "annotations": {"note": "kept"}},
        "spec": {
            "containers": [
                {"name": "runner", "image": "suite:1", "env": [{"name": "MODE", "value": "quick"}]},
                {"name": "helper", "image": "helper:1"}
            ],
            "volumes": [{"name": "cache", "emptyDir": {}}],
            "restartPolicy": "OnFailure",
            "priorityClassName": "batch-low"
        }
    }"#;
    let cfg = config(&[
        ("pod_template", &[template]),
        ("container", &["runner"]),
        ("env", &["MODE=full"]),
        ("results_dir", &["/out"]),
        ("ttlSecondsAfterFinished", &["none"]),
    ]);
    let mut spec = cfg.spec;
    spec.owner = owner();
    spec.name = job_name(&spec.owner, "k7x2q");
    spec.namespace = "default".into();
    let job = build_job(&spec);
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod.containers
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["runner", "helper", "prova-collector"]
    );
    insta::assert_json_snapshot!(job);
}
