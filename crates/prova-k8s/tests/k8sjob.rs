//! The `k8sjob` step run by the real engine against the Kubernetes API
//! double (tests/double): a Job per target, watched; logs streamed; the
//! results directory fetched through exec from the real collector code.

mod double;
mod harness;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use double::{Double, Options, RESULT_FILES};
use harness::{collector_message, descriptor, job_condition, params, run, run_with};
use prova_core::JobState;
use prova_core::node::Format;
use prova_engine::prepare::prepare_str;
use prova_engine::runner::RunOptions;
use prova_k8s::K8sJob;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_passing_job_streams_its_log_and_brings_back_its_results() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=5]",
            "results_dir: [/results]",
        ],
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    assert_eq!(
        ran.names(),
        [
            "K8sJobCreated",
            "K8sPodScheduled",
            "K8sLog",
            "K8sContainerTerminated",
            "K8sResultsFetched"
        ]
    );
    let created = ran.one("K8sJobCreated");
    assert_eq!(created["Namespace"], "default");
    let name = created["Name"].as_str().unwrap();
    assert!(name.starts_with("prova-1-1-node-1-"), "{name}");
    assert_eq!(ran.one("K8sPodScheduled")["Node"], "node-1");
    let t = ran.one("K8sContainerTerminated");
    assert_eq!(
        (t["ExitCode"].as_i64(), t["Reason"].as_str()),
        (Some(0), Some("Completed"))
    );
    assert_eq!(ran.log_text(), "line 0\nline 1\nline 2\nline 3\nline 4\n");

    // The results came back intact into the step's artifacts directory.
    let fetched = ran.one("K8sResultsFetched");
    let bytes: usize = RESULT_FILES.iter().map(|(_, t)| t.len()).sum();
    assert_eq!(fetched["Files"], 2);
    assert_eq!(fetched["Bytes"], bytes);
    assert_eq!(fetched["Sha256"].as_str().unwrap().len(), 64);
    let dir = PathBuf::from(fetched["Dir"].as_str().unwrap());
    assert!(
        dir.ends_with("job-1/run-1/Smoke/attempt-0/e2e/node-1"),
        "{dir:?}"
    );
    for (rel, text) in RESULT_FILES {
        assert_eq!(std::fs::read_to_string(dir.join(rel)).unwrap(), *text);
    }
    assert_no_stray_files(&dir);
    // prova-results read them: artifacts and the JUnit case as events.
    let artifacts = ran.one("Artifacts");
    assert_eq!(artifacts["Files"], 2);
    assert_eq!(artifacts["Sha256"], fetched["Sha256"]);
    let case = ran.one("TestCaseResult");
    assert_eq!(case["Name"], "ok");
    assert_eq!(ran.one("TestCasesSummary")["Passed"], 1);

    // `send`, then `done` with the exit code read from the pod status.
    let execs = d.execs();
    assert_eq!(execs.len(), 2, "{execs:?}");
    assert_eq!(&execs[0][..3], ["/prova", "collector", "send"]);
    assert_eq!(&execs[1][..3], ["/prova", "collector", "done"]);
    assert!(execs[1].ends_with(&["--exit-code".to_string(), "0".to_string()]));
    // The collector's termination message summarises what happened.
    let message = collector_message(&d).expect("collector terminated");
    let summary = prova_k8s::collector::Summary::parse(&message).unwrap();
    assert_eq!(summary.exit_code, Some(0));
    assert!(summary.fetched);
    assert_eq!(summary.files, 2);
    assert_eq!(summary.sha256.as_deref(), fetched["Sha256"].as_str());
    assert!(job_condition(&d).contains(&"Complete".to_string()));

    // Watched, never polled: one list per kind, then watches.
    let reqs = d.requests();
    let lists = |path: &str| {
        reqs.iter()
            .filter(|r| r.starts_with(&format!("GET {path}")) && !r.contains("watch=true"))
            .count()
    };
    assert_eq!(
        lists("/apis/batch/v1/namespaces/default/jobs?"),
        1,
        "{reqs:#?}"
    );
    assert_eq!(lists("/api/v1/namespaces/default/pods?"), 1, "{reqs:#?}");
    assert!(
        reqs.iter()
            .any(|r| r.contains("/jobs?") && r.contains("watch=true"))
    );
    assert!(d.deletes().is_empty(), "a finished Job is left to its TTL");
}

fn assert_no_stray_files(dir: &Path) {
    let parent = dir.parent().unwrap();
    let names: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["node-1"], "temporary files left beside the results");
}

#[tokio::test]
async fn the_job_labels_tie_it_to_prova() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=0]",
            "labels: [team=storage]",
        ],
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    let job = &d.jobs()[0];
    let labels = &job["metadata"]["labels"];
    assert_eq!(labels["prova.dev/job"], "1");
    assert_eq!(labels["prova.dev/run"], "1");
    assert_eq!(labels["prova.dev/test"], "Smoke");
    assert_eq!(labels["prova.dev/step"], "e2e");
    assert_eq!(labels["prova.dev/target"], "node-1");
    assert_eq!(labels["team"], "storage");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    // No results_dir: no collector, no exec.
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(d.execs().is_empty());
    assert!(!ran.has("K8sResultsFetched"));
}

#[tokio::test]
async fn a_failing_test_fails_the_target_with_its_exit_code() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=fail, EXIT_CODE=3]",
            "results_dir: [/results]",
        ],
    )
    .await;
    assert!(!ran.outcome.success());
    assert_eq!(ran.outcome.state, JobState::Completed);
    assert!(
        ran.target_err()
            .contains("the test container \"test\" exited with code 3 (Error)"),
        "{}",
        ran.target_err()
    );
    assert_eq!(ran.one("K8sContainerTerminated")["ExitCode"], 3);
    // The results of a failing test come back too.
    assert_eq!(ran.one("K8sResultsFetched")["Files"], 2);
    let summary = prova_k8s::collector::Summary::parse(&collector_message(&d).unwrap()).unwrap();
    assert_eq!(summary.exit_code, Some(3));
    assert!(job_condition(&d).contains(&"Failed".to_string()));
}

#[tokio::test]
async fn oom_killed_is_named() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=oom]",
            "resources: [limits.memory=16Mi]",
            "results_dir: [/results]",
        ],
    )
    .await;
    assert!(
        ran.target_err().starts_with("OOMKilled: "),
        "{}",
        ran.target_err()
    );
    assert_eq!(ran.one("K8sContainerTerminated")["Reason"], "OOMKilled");
}

#[tokio::test]
async fn deadline_exceeded_is_named() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=deadline]",
            "activeDeadlineSeconds: [1]",
            "results_dir: [/results]",
        ],
    )
    .await;
    assert_eq!(
        ran.target_err(),
        "DeadlineExceeded: Job was active longer than specified deadline"
    );
    // The pod was killed: nothing to fetch, no exec.
    assert!(!ran.has("K8sResultsFetched"));
    assert!(d.execs().is_empty(), "{:?}", d.execs());
}

#[tokio::test]
async fn an_image_pull_error_fails_fast_and_deletes_the_job() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [registry.invalid/nope:1]",
            "env: [SCENARIO=pullerror]",
            "results_dir: [/results]",
        ],
    )
    .await;
    let err = ran.target_err();
    assert!(err.starts_with("ErrImagePull: "), "{err}");
    assert!(err.contains("registry.invalid/nope:1"), "{err}");
    assert_eq!(ran.one("K8sJobDeleted")["Reason"], err.as_str());
    let deletes = d.deletes();
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].propagation_policy.as_deref(), Some("Background"));
}

#[tokio::test]
async fn a_collector_that_cannot_start_is_named() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=collectorpull]",
            "results_dir: [/results]",
            "collector_image: [registry.invalid/prova:0]",
        ],
    )
    .await;
    let err = ran.target_err();
    assert!(
        err.starts_with(
            "ErrImagePull: the collector container (registry.invalid/prova:0) cannot start"
        ),
        "{err}"
    );
    assert_eq!(d.deletes().len(), 1);
}

#[tokio::test]
async fn cancel_deletes_the_job_with_background_propagation() {
    let d = Arc::new(Double::start(Options::default()).await);
    let cancel = CancellationToken::new();
    let canceller = {
        let (d, cancel) = (d.clone(), cancel.clone());
        tokio::spawn(async move {
            d.wait_until("the pod to run", |d| {
                d.pods()
                    .first()
                    .is_some_and(|p| p["status"]["phase"] == "Running")
            })
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            cancel.cancel();
        })
    };
    let ran = run_with(
        K8sJob::with_config(d.config()),
        &params(&[
            "image: [busybox:1.36]",
            "env: [SCENARIO=hang]",
            "results_dir: [/results]",
        ]),
        RunOptions {
            cancel,
            ..Default::default()
        },
    )
    .await;
    canceller.await.unwrap();
    assert_eq!(ran.outcome.state, JobState::Cancelled);
    let deletes = d.deletes();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    let name = ran.one("K8sJobCreated")["Name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(deletes[0].name, name);
    assert_eq!(deletes[0].namespace, "default");
    assert_eq!(deletes[0].propagation_policy.as_deref(), Some("Background"));
    assert_eq!(ran.one("K8sJobDeleted")["Reason"], "cancelled");
    assert!(d.jobs().is_empty() && d.pods().is_empty());
}

#[tokio::test]
async fn the_step_timeout_deletes_the_job() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=hang]",
            "timeout: [500ms]",
        ],
    )
    .await;
    assert_eq!(
        ran.target_err(),
        "timed out after 500ms; the Job was deleted"
    );
    assert_eq!(
        d.deletes()[0].propagation_policy.as_deref(),
        Some("Background")
    );
}

#[tokio::test]
async fn a_corrupted_results_stream_is_detected() {
    let d = Double::start(Options {
        corrupt_results: true,
    })
    .await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass]",
            "results_dir: [/results]",
        ],
    )
    .await;
    let err = ran.target_err();
    assert!(
        err.starts_with("results: bad results stream: checksum mismatch"),
        "{err}"
    );
    assert!(!ran.has("K8sResultsFetched"));
    // Nothing half-verified was extracted.
    let artifacts = ran._dir.path().join("artifacts");
    let found = walk(&artifacts);
    assert!(found.is_empty(), "{found:?}");
    // The collector was still let go, so the Job finished.
    assert!(job_condition(&d).contains(&"Complete".to_string()));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flat_map(|e| {
        let p = e.unwrap().path();
        if p.is_dir() { walk(&p) } else { vec![p] }
    })
    .collect()
}

#[tokio::test]
async fn log_events_arrive_in_order_and_are_bounded() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=400]",
        ],
    )
    .await;
    let expected: String = (0..400).map(|i| format!("line {i}\n")).collect();
    assert_eq!(ran.log_text(), expected);
    // Every log event comes before the termination.
    let names = ran.names();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("K8sLog") < pos("K8sContainerTerminated"));
    assert_eq!(names.iter().filter(|n| **n == "K8sLog").count(), 1);

    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=400]",
            "max_log_bytes: [100]",
        ],
    )
    .await;
    assert!(ran.outcome.success());
    let logs: Vec<&Value> = ran
        .events
        .iter()
        .filter(|e| e.name == "K8sLog")
        .map(|e| e.payload.as_ref().unwrap())
        .collect();
    let last = logs.last().unwrap();
    assert_eq!(last["Truncated"], true);
    let kept: usize = logs[..logs.len() - 1]
        .iter()
        .map(|p| p["Msg"].as_str().unwrap().len())
        .sum();
    assert!(kept <= 100, "{kept}");
    assert!(ran.log_text().starts_with("line 0\n"));
}

#[tokio::test]
async fn the_collector_exits_by_itself_when_nobody_fetches() {
    use k8s_openapi::api::batch::v1::Job;
    use kube::api::{Api, PostParams};
    use prova_k8s::spec::{JobSpec, ResultsSpec};

    // A Job made by build_job, with nobody (no step) to fetch its results.
    let d = Double::start(Options::default()).await;
    let spec = JobSpec {
        name: "orphan".into(),
        namespace: "default".into(),
        container: "test".into(),
        image: Some("busybox:1.36".into()),
        env: vec![("SCENARIO".into(), "pass".into())],
        results: Some(ResultsSpec {
            dir: "/results".into(),
            collector_image: "prova:latest".into(),
            linger: Duration::from_secs(1),
        }),
        ..Default::default()
    };
    let client = kube::Client::try_from(d.config()).unwrap();
    let jobs: Api<Job> = Api::namespaced(client, "default");
    let started = std::time::Instant::now();
    jobs.create(&PostParams::default(), &prova_k8s::build_job(&spec))
        .await
        .unwrap();
    d.wait_until("the Job to complete", |d| {
        job_condition(d).contains(&"Complete".to_string())
    })
    .await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    let summary = prova_k8s::collector::Summary::parse(&collector_message(&d).unwrap()).unwrap();
    assert_eq!(summary.end, prova_k8s::collector::WaitEnd::Linger);
    assert!(!summary.fetched);
    assert_eq!(summary.exit_code, None);
    assert!(d.execs().is_empty());
}

#[tokio::test]
async fn kubeconfig_and_context_parameters_pick_the_cluster_and_namespace() {
    let d = Double::start(Options::default()).await;
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = d.write_kubeconfig(tmp.path());
    // The current context points nowhere; `context: double` picks the double
    // and its namespace.
    let ran = run_with(
        K8sJob::new(),
        &params(&[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=1]",
            &format!("kubeconfig: [{}]", kubeconfig.display()),
            "context: [double]",
        ]),
        RunOptions::default(),
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    assert_eq!(ran.one("K8sJobCreated")["Namespace"], "e2e");
    assert_eq!(d.jobs()[0]["metadata"]["namespace"], "e2e");
}

#[test]
fn parameters_are_validated_with_their_paths() {
    let mut registry = prova_engine::plugins::registry();
    prova_k8s::register(&mut registry);
    let yaml = descriptor(&params(&[
        "env: [NOEQUALS]",
        "tolerations: [\"gpu=1:Sometimes\"]",
        "activeDeadlineSeconds: [soon]",
        "results_dir: [relative/dir]",
        "colour: [blue]",
    ]));
    let err = prepare_str(&yaml, Format::Yaml, None, &registry)
        .err()
        .expect("invalid")
        .to_string();
    for needle in [
        "needs parameter \\\"image\\\" or \\\"pod_template\\\"",
        "parameters.env[0]: expected KEY=VALUE",
        "parameters.tolerations[0]: unknown taint effect",
        "parameters.activeDeadlineSeconds[0]: expected a whole number",
        "parameters.results_dir[0]: expected an absolute directory path",
    ] {
        assert!(
            err.contains(needle.replace("\\\"", "\"").as_str()),
            "{needle} not in:\n{err}"
        );
    }
}
