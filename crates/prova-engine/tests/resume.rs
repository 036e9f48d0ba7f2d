//! Pause and resume: a job paused again and again, resumed each time from
//! its recorded position (as a server restarting would), ends with the same
//! step output and target events as a run without pauses.

use std::sync::Arc;
use std::time::Duration;

use prova_core::node::Format;
use prova_core::{Event, EventQuery, JobState};
use prova_engine::prepare::prepare_str;
use prova_engine::runner::{JobOutcome, RunOptions, paused_position, resume_job, run_job};
use prova_store::{SqlStore, Store};
use tokio_util::sync::CancellationToken;

/// ConTest's test-resume.yaml with TargetList for its test-only manager.
fn descriptor() -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/contest/descriptors/test-resume.yaml"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .replace("TargetListWithState", "TargetList")
}

fn key(e: &Event) -> String {
    let msg = e
        .payload
        .as_ref()
        .and_then(|p| p.get("Msg"))
        .and_then(|m| m.as_str())
        .unwrap_or("");
    format!(
        "{} {} {} {} {}",
        e.run_id,
        e.test_name.as_deref().unwrap_or("-"),
        e.name,
        e.target.as_ref().map(|t| t.id.as_str()).unwrap_or("-"),
        msg.trim()
    )
}

fn compared(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e.name.as_str(),
                "CmdStdout" | "TargetAcquired" | "TargetReleased" | "TargetIn" | "TargetOut"
            )
        })
        .map(|e| format!("{} {}", key(e), e.step_label.as_deref().unwrap_or("-")))
        .collect()
}

async fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap())
}

fn pause_after(ms: u64) -> CancellationToken {
    let t = CancellationToken::new();
    let t2 = t.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        t2.cancel();
    });
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_paused_every_second_completes_with_the_same_events() {
    let registry = prova_engine::plugins::registry();
    // Reference: no pauses.
    let dir = tempfile::tempdir().unwrap();
    let st = store(&dir).await;
    let prepared = prepare_str(&descriptor(), Format::Yaml, None, &registry).unwrap();
    let reference = run_job(prepared, st.clone(), RunOptions::default())
        .await
        .unwrap();
    assert!(reference.success(), "{reference:?}");
    let want = compared(
        &st.query_events(&EventQuery::for_job(reference.job_id))
            .await
            .unwrap(),
    );

    // Paused after ~1s, then resumed and paused again after ~1s, ...
    let dir = tempfile::tempdir().unwrap();
    let st = store(&dir).await;
    let prepared = prepare_str(&descriptor(), Format::Yaml, None, &registry).unwrap();
    let mut outcome: JobOutcome = run_job(
        prepared,
        st.clone(),
        RunOptions {
            pause: pause_after(1000),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut pauses = 0;
    while outcome.state == JobState::Paused {
        pauses += 1;
        assert!(pauses <= 20, "not done after 20 pauses");
        let position = paused_position(&*st, outcome.job_id).await.unwrap();
        assert_eq!(
            Some(&position),
            outcome.position.as_ref(),
            "the stored position is the one returned"
        );
        let prepared = prepare_str(&descriptor(), Format::Yaml, None, &registry).unwrap();
        let opts = RunOptions {
            pause: pause_after(1000),
            ..Default::default()
        };
        outcome = resume_job(outcome.job_id, prepared, st.clone(), position, opts)
            .await
            .unwrap();
    }
    assert!(
        pauses >= 5,
        "the job should have been paused many times, was {pauses}"
    );
    assert_eq!(outcome.state, JobState::Completed);
    assert!(outcome.success(), "{outcome:?}");
    let events = st
        .query_events(&EventQuery::for_job(outcome.job_id))
        .await
        .unwrap();
    assert_eq!(compared(&events), want);
    assert_eq!(outcome.runs.len(), 2);
    assert_eq!(outcome.run_reports.len(), 2);
}

#[tokio::test]
async fn a_sleep_resumes_with_the_time_it_had_left() {
    let yaml = "JobName: s\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: sleep, label: nap, parameters: {duration: [3s]}}]\nReporting:\n  RunReporters: [{name: noop}]\n";
    let registry = prova_engine::plugins::registry();
    let dir = tempfile::tempdir().unwrap();
    let st = store(&dir).await;
    let prepared = prepare_str(yaml, Format::Yaml, None, &registry).unwrap();
    let paused = run_job(
        prepared,
        st.clone(),
        RunOptions {
            pause: pause_after(1000),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(paused.state, JobState::Paused);
    let position = paused.position.clone().unwrap();
    let held = position.test.as_ref().unwrap().held.as_ref().unwrap();
    let left = held.entries[0].state.as_ref().unwrap()["RemainingMs"]
        .as_u64()
        .unwrap();
    assert!((1000..=2950).contains(&left), "about 2s left, got {left}ms");
    let start = std::time::Instant::now();
    let prepared = prepare_str(yaml, Format::Yaml, None, &registry).unwrap();
    let done = resume_job(
        paused.job_id,
        prepared,
        st.clone(),
        position,
        RunOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.state, JobState::Completed);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_millis(4000),
        "{took:?}"
    );
    let names: Vec<String> = st
        .query_events(&EventQuery::for_job(paused.job_id))
        .await
        .unwrap()
        .iter()
        .filter(|e| e.name.starts_with("Target") || e.name.starts_with("JobState"))
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "JobStateStarted",
            "TargetAcquired",
            "TargetIn",
            "JobStatePaused",
            "JobStateStarted",
            "TargetOut",
            "TargetReleased",
            "JobStateCompleted"
        ]
    );
}
