//! The `k8sjob` step where Kubernetes does not go the happy way (issue 8):
//! logs that end without a newline, drop mid-stream or hold huge lines; a
//! collector gone before the fetch; a pod the Job cannot create or the
//! scheduler cannot place; and the `User-Agent` on every request.

mod double;
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use double::{Double, Options};
use harness::{Ran, params, run, run_with};
use prova_engine::runner::RunOptions;
use prova_k8s::K8sJob;
use prova_k8s::logs::lines::MAX_LINE_BYTES;
use serde_json::Value;

fn lines(n: usize) -> String {
    (0..n).map(|i| format!("line {i}\n")).collect()
}

fn log_events(ran: &Ran) -> Vec<&Value> {
    ran.events
        .iter()
        .filter(|e| e.name == "K8sLog")
        .map(|e| e.payload.as_ref().unwrap())
        .collect()
}

fn incomplete(ran: &Ran) -> Vec<String> {
    log_events(ran)
        .into_iter()
        .filter(|p| p["Incomplete"] == true)
        .map(|p| p["Msg"].as_str().unwrap().to_string())
        .collect()
}

/// The log requests the step made, `follow` or not.
fn log_requests(d: &Double) -> Vec<String> {
    d.requests()
        .into_iter()
        .filter(|r| r.contains("/log?"))
        .collect()
}

#[tokio::test]
async fn a_last_line_without_a_newline_is_emitted() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=3, LOG_NO_EOL=1]",
        ],
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    // The kubelet holds back an unfinished line while following: only the
    // final read without `follow` returns it.
    assert_eq!(ran.log_text(), "line 0\nline 1\nline 2");
    assert!(incomplete(&ran).is_empty());
    let names = ran.names();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("K8sLog") < pos("K8sContainerTerminated"));
}

#[tokio::test]
async fn a_dropped_log_is_resumed_while_the_container_runs() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=120, LOG_INTERVAL_MS=5, LOG_DROP_AFTER=50]",
        ],
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    assert_eq!(ran.log_text(), lines(120), "every line once, in order");
    let reqs = log_requests(&d);
    let follows: Vec<_> = reqs.iter().filter(|r| r.contains("follow=true")).collect();
    assert!(follows.len() >= 2, "{reqs:#?}");
    assert!(follows[1].contains("sinceTime="), "{reqs:#?}");
    assert!(
        reqs.iter().all(|r| r.contains("timestamps=true")),
        "{reqs:#?}"
    );
}

#[tokio::test]
async fn a_dropped_log_skips_lines_sharing_the_last_seen_timestamp() {
    // 16 lines share each timestamp; the cut falls inside a group.
    for drop_after in [1, 16, 37] {
        let d = Double::start(Options::default()).await;
        let ran = run(
            &d,
            &[
                "image: [busybox:1.36]",
                &format!("env: [SCENARIO=pass, LOG_LINES=100, LOG_DROP_AFTER={drop_after}]"),
            ],
        )
        .await;
        assert!(ran.outcome.success(), "{}", ran.target_err());
        assert_eq!(ran.log_text(), lines(100), "cut after {drop_after}");
    }
}

#[tokio::test]
async fn a_log_that_cannot_be_read_again_says_lines_may_be_missing() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=40, LOG_INTERVAL_MS=5, LOG_DROP_AFTER=10, LOG_REFUSE_RESUME=1]",
        ],
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    assert!(ran.log_text().starts_with(&lines(10)), "{}", ran.log_text());
    let gaps = incomplete(&ran);
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].contains("lines may be missing"), "{}", gaps[0]);
    assert!(
        gaps[0].contains("InternalError")
            || gaps[0].contains("500")
            || gaps[0].contains("error dialing backend"),
        "{}",
        gaps[0]
    );
}

#[tokio::test]
async fn long_lines_stay_whole_up_to_the_cap() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=1, LOG_LONG_LINE=100000]",
        ],
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    let with_x: Vec<_> = log_events(&ran)
        .into_iter()
        .filter(|p| p["Msg"].as_str().unwrap().contains('x'))
        .collect();
    assert_eq!(with_x.len(), 1, "a 100 kB line is one event");
    let msg = with_x[0]["Msg"].as_str().unwrap();
    assert!(msg.ends_with(&format!("{}\n", "x".repeat(100_000))));
    assert_eq!(ran.log_text(), format!("line 0\n{}\n", "x".repeat(100_000)));
}

#[tokio::test]
async fn a_line_over_the_cap_is_one_cut_event_with_a_marker() {
    let d = Double::start(Options::default()).await;
    let n = MAX_LINE_BYTES + 40_000;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            &format!("env: [SCENARIO=pass, LOG_LINES=2, LOG_LONG_LINE={n}]"),
        ],
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    let with_x: Vec<_> = log_events(&ran)
        .into_iter()
        .filter(|p| p["Msg"].as_str().unwrap().contains('x'))
        .collect();
    assert_eq!(with_x.len(), 1, "never split into pieces");
    assert_eq!(
        with_x[0]["Msg"].as_str().unwrap(),
        format!(
            "{} [prova: line cut at {MAX_LINE_BYTES} bytes; 40000 more bytes dropped]\n",
            "x".repeat(MAX_LINE_BYTES)
        )
    );
    assert!(ran.log_text().starts_with("line 0\nline 1\n"));
}

#[tokio::test]
async fn a_collector_gone_before_the_fetch_is_explained() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=collectorcrash]",
            "results_dir: [/results]",
        ],
    )
    .await;
    assert!(!ran.outcome.success());
    let err = ran.target_err();
    assert!(
        err.contains(
            "results: the collector had already exited (exit code 1, reason Error, no termination message)"
        ),
        "{err}"
    );
    assert!(
        err.contains("No space left on device (os error 28)"),
        "{err}"
    );
    assert!(!ran.has("K8sResultsFetched"));
    assert!(
        log_requests(&d)
            .iter()
            .any(|r| r.contains("container=prova-collector") && r.contains("tailLines=")),
        "{:#?}",
        log_requests(&d)
    );
}

#[tokio::test]
async fn a_missing_service_account_fails_fast_naming_it() {
    let d = Double::start(Options::default()).await;
    let started = Instant::now();
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass]",
            "serviceAccount: [e2e-runner]",
            "failed_create_grace: [1s]",
            "activeDeadlineSeconds: [600]",
            "timeout: [50s]",
        ],
    )
    .await;
    let err = ran.target_err();
    assert!(
        err.starts_with(
            "FailedCreate: the Job could not create its pod for 1s: Error creating: pods \""
        ),
        "{err}"
    );
    assert!(
        err.contains("error looking up service account default/e2e-runner: serviceaccount \"e2e-runner\" not found"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let warning = ran.one("K8sWarning");
    assert_eq!(
        (warning["Kind"].as_str(), warning["Reason"].as_str()),
        (Some("Job"), Some("FailedCreate"))
    );
    assert_eq!(ran.one("K8sJobDeleted")["Reason"], err.as_str());
    // The Job's Events were watched by its uid.
    assert!(
        d.requests()
            .iter()
            .any(|r| r.contains("/events?") && r.contains("involvedObject.uid")),
        "{:#?}",
        d.requests()
    );
}

#[tokio::test]
async fn a_service_account_created_within_the_grace_lets_the_job_run() {
    let d = Arc::new(Double::start(Options::default()).await);
    let creator = {
        let d = d.clone();
        tokio::spawn(async move {
            d.wait_until("a FailedCreate event", |d| !d.events().is_empty())
                .await;
            d.add_service_account("default", "late");
        })
    };
    let ran = run_with(
        K8sJob::with_config(d.config()),
        &params(&[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=2]",
            "serviceAccount: [late]",
            "failed_create_grace: [20s]",
        ]),
        RunOptions::default(),
    )
    .await;
    creator.await.unwrap();
    assert!(ran.outcome.success(), "{}", ran.target_err());
    assert_eq!(ran.log_text(), lines(2));
    assert_eq!(ran.one("K8sWarning")["Reason"], "FailedCreate");
}

#[tokio::test]
async fn an_unschedulable_pod_fails_after_its_grace() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=unschedulable]",
            "unschedulable_grace: [1s]",
            "timeout: [50s]",
        ],
    )
    .await;
    let err = ran.target_err();
    assert!(
        err.starts_with("Unschedulable: pod prova-1-1-node-1-"),
        "{err}"
    );
    assert!(
        err.contains(
            " could not be scheduled for 1s: 0/1 nodes are available: 1 Insufficient memory."
        ),
        "{err}"
    );
    assert_eq!(d.deletes().len(), 1);
    // The scheduler's Event on the pod was read too.
    let warnings: Vec<_> = ran
        .events
        .iter()
        .filter(|e| e.name == "K8sWarning")
        .map(|e| {
            e.payload.as_ref().unwrap()["Reason"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        warnings.contains(&"FailedScheduling".to_string()),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_timeout_names_what_held_the_pod_back() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=unschedulable]",
            "timeout: [1s]",
        ],
    )
    .await;
    let err = ran.target_err();
    assert!(
        err.starts_with(
            "timed out after 1s; the Job was deleted; Unschedulable (pod prova-1-1-node-1-"
        ),
        "{err}"
    );
    assert!(err.ends_with("0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."), "{err}");
}

#[tokio::test]
async fn every_request_carries_prova_user_agent() {
    let d = Double::start(Options::default()).await;
    let ran = run(
        &d,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=3]",
            "results_dir: [/results]",
        ],
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    let reqs = d.requests();
    let agents = d.agents();
    assert_eq!(reqs.len(), agents.len());
    assert!(
        reqs.iter().any(|r| r.contains("/exec?")),
        "exec requests too"
    );
    let expected = format!(
        "prova/{} ({}/",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS
    );
    for (req, agent) in reqs.iter().zip(&agents) {
        let agent = agent
            .as_deref()
            .unwrap_or_else(|| panic!("no User-Agent on {req}"));
        assert!(agent.starts_with(&expected), "{req}: {agent}");
        assert!(
            agent.ends_with(") job/1 run/1 test/Smoke step/e2e target/node-1"),
            "{req}: {agent}"
        );
    }
}
