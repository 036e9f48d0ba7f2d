//! The files under deploy/ stay valid: the example descriptors prepare
//! (with the k8sjob step registered) and the RBAC grants what the step uses.

use std::path::PathBuf;

fn deploy(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(rel)
}

#[test]
fn the_example_descriptors_validate() {
    let mut registry = prova_engine::plugins::registry();
    prova_k8s::register(&mut registry);
    for file in ["k8s/example-job.yaml", "k8s/example-suite.yaml"] {
        let prepared = prova_engine::prepare::prepare_file(&deploy(file), &registry);
        if let Err(e) = prepared {
            panic!("{file}: {e}");
        }
    }
}

#[test]
fn rbac_grants_exactly_what_the_step_uses() {
    let text = std::fs::read_to_string(deploy("k8s/rbac.yaml")).unwrap();
    for needle in [
        "resources: [\"jobs\"]\n    verbs: [\"create\", \"list\", \"watch\", \"delete\"]",
        "resources: [\"pods\"]\n    verbs: [\"list\", \"watch\"]",
        "resources: [\"pods/log\"]\n    verbs: [\"get\"]",
        "resources: [\"events\"]\n    verbs: [\"list\", \"watch\"]",
        "resources: [\"pods/exec\"]\n    verbs: [\"create\", \"get\"]",
        "kind: ServiceAccount",
        "kind: RoleBinding",
    ] {
        assert!(text.contains(needle), "rbac.yaml lacks {needle:?}");
    }
    assert!(!text.contains("ClusterRole"), "namespace-scoped only");
    assert!(!text.contains("\"*\""), "no wildcards");
}
