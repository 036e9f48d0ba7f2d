//! The `k8sjob` step against a real cluster. Runs only when
//! `PROVA_E2E_KUBECONFIG` is set; otherwise each test says
//! it was skipped. Needs the collector image loaded into the cluster
//! (`PROVA_COLLECTOR_IMAGE`, default `prova:latest`; see deploy/Dockerfile)
//! and a namespace (`PROVA_NAMESPACE`, default `default`) where the
//! kubeconfig's user has the rights in deploy/k8s/rbac.yaml.
//!
//! ```text
//! docker build -f deploy/Dockerfile -t prova:latest .
//! kind load docker-image prova:latest
//! PROVA_E2E_KUBECONFIG=~/.kube/config cargo test -p prova-k8s --test real_cluster
//! ```

use std::sync::Arc;
use std::time::Duration;

use prova_core::node::Format;
use prova_core::{Event, EventQuery};
use prova_engine::prepare::prepare_str;
use prova_engine::runner::{JobOutcome, RunOptions, run_job};
use prova_store::{SqlStore, Store};

fn kubeconfig() -> Option<String> {
    // Only an explicit opt-in: a developer's KUBECONFIG must not make
    // `cargo test` create Jobs in whatever cluster it points at.
    std::env::var("PROVA_E2E_KUBECONFIG")
        .or_else(|_| std::env::var("PROVA_KUBECONFIG"))
        .ok()
        .filter(|v| !v.is_empty())
}

macro_rules! cluster_or_skip {
    () => {
        match kubeconfig() {
            Some(k) => k,
            None => {
                eprintln!("skipped: set PROVA_E2E_KUBECONFIG to a kubeconfig to run the real-cluster suite");
                return;
            }
        }
    };
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_string())
}

async fn run(kubeconfig: &str, params: &[String]) -> (JobOutcome, Vec<Event>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let mut registry = prova_engine::plugins::registry();
    prova_k8s::register(&mut registry);
    let mut lines = vec![
        format!("kubeconfig: [{kubeconfig:?}]"),
        format!("namespace: [{}]", env_or("PROVA_NAMESPACE", "default")),
        format!(
            "collector_image: [{:?}]",
            env_or("PROVA_COLLECTOR_IMAGE", "prova:latest")
        ),
        "activeDeadlineSeconds: [300]".to_string(),
        "ttlSecondsAfterFinished: [60]".to_string(),
    ];
    lines.extend(params.iter().cloned());
    let params: String = lines.iter().map(|l| format!("            {l}\n")).collect();
    let yaml = format!(
        "JobName: real\nRuns: 1\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters:\n      Targets:\n        - ID: cluster\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: real\n      Steps:\n        - name: k8sjob\n          label: busybox\n          parameters:\n{params}Reporting:\n  RunReporters:\n    - name: TargetSuccess\n      parameters: {{SuccessExpression: \"=100%\"}}\n"
    );
    let prepared = prepare_str(&yaml, Format::Yaml, None, &registry).unwrap();
    let opts = RunOptions {
        artifacts_root: Some(dir.path().join("artifacts")),
        ..Default::default()
    };
    let outcome = tokio::time::timeout(
        Duration::from_secs(600),
        run_job(prepared, store.clone(), opts),
    )
    .await
    .expect("job within 10 minutes")
    .unwrap();
    let events = store
        .query_events(&EventQuery::for_job(outcome.job_id))
        .await
        .unwrap();
    (outcome, events, dir)
}

fn payload<'a>(events: &'a [Event], name: &str) -> Option<&'a serde_json::Value> {
    events
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.payload.as_ref())
}

#[tokio::test]
async fn busybox_writes_results_that_come_back() {
    let kc = cluster_or_skip!();
    let (outcome, events, _dir) = run(
        &kc,
        &[
            "image: [\"busybox:1.36\"]".into(),
            "command: [sh, -c]".into(),
            "args: [\"echo hello from busybox; mkdir -p /results/sub; echo '<testsuite name=\\\"s\\\" tests=\\\"1\\\"><testcase name=\\\"t\\\"/></testsuite>' > /results/junit.xml; echo ok > /results/sub/note.txt\"]".into(),
            "results_dir: [/results]".into(),
        ],
    )
    .await;
    let err = payload(&events, "TargetErr").cloned();
    assert!(outcome.success(), "{err:?}");
    let fetched = payload(&events, "K8sResultsFetched").expect("results fetched");
    assert_eq!(fetched["Files"], 2);
    let dir = std::path::PathBuf::from(fetched["Dir"].as_str().unwrap());
    assert!(
        std::fs::read_to_string(dir.join("junit.xml"))
            .unwrap()
            .contains("<testcase")
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("sub/note.txt")).unwrap(),
        "ok\n"
    );
    let logs: String = events
        .iter()
        .filter(|e| e.name == "K8sLog")
        .filter_map(|e| e.payload.as_ref()?["Msg"].as_str().map(str::to_string))
        .collect();
    assert!(logs.contains("hello from busybox"), "{logs}");
}

#[tokio::test]
async fn a_failing_busybox_reports_its_exit_code() {
    let kc = cluster_or_skip!();
    let (outcome, events, _dir) = run(
        &kc,
        &[
            "image: [\"busybox:1.36\"]".into(),
            "command: [sh, -c, \"exit 7\"]".into(),
            "results_dir: [/results]".into(),
        ],
    )
    .await;
    assert!(!outcome.success());
    let t = payload(&events, "K8sContainerTerminated").unwrap();
    assert_eq!(t["ExitCode"], 7);
}
