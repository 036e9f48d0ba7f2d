//! Histories and comparisons over job histories built in a real SQLite
//! store: pass rates, both flaky rules, the first failing job, JUnit cases,
//! what a search matches, and the categories of a comparison.

use prova_core::results::CaseStatus::{
    Error as CError, Failed as CFailed, Passed as CPassed, Skipped as CSkipped,
};
use prova_results::history::{
    FlakyReason, History, HistoryError, HistoryRequest, Outcome, Subject, load_comparison,
    load_history,
};

mod history_support;
use history_support::{A, JobSpec, record, store};

async fn one(store: &prova_store::SqlStore, text: &str, job: &str, last: u32) -> History {
    let answer = load_history(store, &HistoryRequest::new(text, Some(job.into()), last))
        .await
        .unwrap();
    assert_eq!(answer.histories.len(), 1, "{answer:#?}");
    answer.histories.into_iter().next().unwrap()
}

fn outcomes(h: &History) -> Vec<Outcome> {
    h.entries.iter().map(|e| e.execution.outcome).collect()
}

#[tokio::test]
async fn a_pass_on_retry_is_a_pass_and_flaky() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    record(
        &s,
        &JobSpec::new("nightly", "v1").test("Boot", &[A::Pass], 5),
    )
    .await;
    let retried = record(
        &s,
        &JobSpec::new("nightly", "v1").test("Boot", &[A::Fail, A::Pass], 5),
    )
    .await;
    record(
        &s,
        &JobSpec::new("nightly", "v1").test("Boot", &[A::Pass], 5),
    )
    .await;

    let h = one(&s, "Boot", "nightly", 30).await;
    assert_eq!(
        h.subject,
        Subject::Test {
            name: "Boot".into()
        }
    );
    assert_eq!(outcomes(&h), [Outcome::Passed; 3]);
    assert_eq!(h.summary.pass_rate, Some(1.0));
    assert!(h.summary.flaky);
    assert_eq!(
        h.summary.flaky_reasons,
        [FlakyReason::PassedOnRetry {
            jobs: vec![retried]
        }]
    );
    let e = h.entries.iter().find(|e| e.job_id == retried).unwrap();
    assert_eq!(e.execution.attempts, 2);
    // From the first attempt's start to the last one's end (1 s between).
    assert_eq!(e.execution.duration_secs, Some(11.0));
    assert_eq!(h.summary.first_failing_job, None);
}

#[tokio::test]
async fn alternating_outcomes_on_the_same_inputs_are_flaky_a_regression_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    // Flaky: pass, fail, pass on unchanged inputs.
    for a in [A::Pass, A::Fail, A::Pass] {
        record(&s, &JobSpec::new("flaky", "v1").test("T", &[a], 1)).await;
    }
    let h = one(&s, "T", "flaky", 30).await;
    assert!(h.summary.flaky, "{:#?}", h.summary);
    assert!(matches!(
        &h.summary.flaky_reasons[..],
        [FlakyReason::MixedOnSameInputs { switches: 2, jobs, .. }] if jobs.len() == 3
    ));
    assert_eq!(h.summary.first_failing_job, None, "the newest passed");

    // A regression: pass, pass, fail, error on unchanged inputs: one switch.
    let mut ids = Vec::new();
    for a in [A::Pass, A::Pass, A::Fail, A::Error] {
        ids.push(record(&s, &JobSpec::new("regressed", "v1").test("T", &[a], 1)).await);
    }
    let h = one(&s, "T", "regressed", 30).await;
    assert!(!h.summary.flaky, "{:#?}", h.summary);
    assert_eq!(
        outcomes(&h),
        [
            Outcome::Error,
            Outcome::Failed,
            Outcome::Passed,
            Outcome::Passed
        ]
    );
    assert_eq!(h.summary.first_failing_job, Some(ids[2]));
    assert_eq!(h.summary.failing_streak, 2);
    assert_eq!(h.summary.pass_rate, Some(0.5));
    assert_eq!((h.summary.failed, h.summary.errors), (1, 1));
    assert_eq!(
        h.entries[1].execution.message.as_deref(),
        Some("target host1 failed at step run: exit status 1")
    );
    assert_eq!(
        h.entries[0].execution.message.as_deref(),
        Some("cannot acquire targets")
    );

    // Changed inputs: pass on v1, fail on v2, pass on v1: each input's
    // outcomes are constant, so not flaky.
    for (a, inputs) in [(A::Pass, "v1"), (A::Fail, "v2"), (A::Pass, "v1")] {
        record(&s, &JobSpec::new("changing", inputs).test("T", &[a], 1)).await;
    }
    let h = one(&s, "T", "changing", 30).await;
    assert!(!h.summary.flaky, "{:#?}", h.summary);
    let inputs: Vec<_> = h
        .entries
        .iter()
        .map(|e| e.execution.inputs.clone().unwrap())
        .collect();
    assert_eq!(inputs[0], inputs[2]);
    assert_ne!(inputs[0], inputs[1]);
}

#[tokio::test]
async fn last_limits_the_window_and_absent_or_running_jobs_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let first = record(&s, &JobSpec::new("n", "v1").test("T", &[A::Fail], 1)).await;
    record(&s, &JobSpec::new("n", "v1").test("T", &[A::Fail], 1)).await;
    record(&s, &JobSpec::new("n", "v1").test("Other", &[A::Pass], 1)).await;
    let mut running = JobSpec::new("n", "v1").test("T", &[A::Pass], 1);
    running.running = true;
    let running = record(&s, &running).await;
    // The running job counts with what its test did so far.
    let h = one(&s, "T", "n", 30).await;
    assert_eq!(
        outcomes(&h),
        [
            Outcome::Passed,
            Outcome::Absent,
            Outcome::Failed,
            Outcome::Failed
        ]
    );
    assert_eq!(h.entries[0].job_state.as_deref(), Some("Started"));
    assert_eq!(h.entries[0].job_id, running);
    assert_eq!(h.summary.first_failing_job, None);
    assert_eq!(h.summary.executions, 3);

    let h = one(&s, "T", "n", 3).await;
    assert_eq!(h.entries.len(), 3);
    assert!(h.entries.iter().all(|e| e.job_id != first));
}

#[tokio::test]
async fn junit_cases_have_histories_and_flaky_reruns() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let spec = |status, flaky| {
        JobSpec::new("e2e", "v1")
            .test("Suite", &[A::Pass], 60)
            .case("Suite", 0, "pkg.Pods", "should start", status, 2.5, flaky)
            .case("Suite", 0, "pkg.Pods", "should stop", CSkipped, 0.0, 0)
    };
    record(&s, &spec(CPassed, 0)).await;
    let broken = record(&s, &spec(CError, 0)).await;
    let rerun = record(&s, &spec(CPassed, 2)).await;
    record(&s, &spec(CFailed, 0)).await;

    // By name, and by classname.name (the text spans the dot).
    for text in ["should start", "pkg.Pods.should start", "Pods.should sta"] {
        let answer = load_history(&s, &HistoryRequest::new(text, Some("e2e".into()), 30))
            .await
            .unwrap();
        assert_eq!(answer.histories.len(), 1, "{text}: {answer:#?}");
        let h = &answer.histories[0];
        assert_eq!(
            h.subject,
            Subject::Case {
                suite: "e2e".into(),
                classname: Some("pkg.Pods".into()),
                name: "should start".into()
            }
        );
        assert_eq!(
            outcomes(h),
            [
                Outcome::Failed,
                Outcome::Passed,
                Outcome::Error,
                Outcome::Passed
            ]
        );
        assert_eq!(h.summary.pass_rate, Some(0.5));
        assert!(h.summary.flaky);
        assert!(
            h.summary
                .flaky_reasons
                .iter()
                .any(|r| matches!(r, FlakyReason::PassedOnRetry { jobs } if jobs == &vec![rerun]))
        );
        assert_eq!(h.entries[2].job_id, broken);
        assert_eq!(
            h.entries[2].execution.message.as_deref(),
            Some("should start broke")
        );
        assert_eq!(h.entries[1].execution.duration_secs, Some(2.5));
    }

    // A part of several names follows each; skipped cases have no pass rate.
    let answer = load_history(&s, &HistoryRequest::new("should", Some("e2e".into()), 30))
        .await
        .unwrap();
    assert!(!answer.exact);
    assert_eq!(answer.histories.len(), 2);
    let stop = &answer.histories[1];
    assert_eq!(stop.summary.skipped, 4);
    assert_eq!(stop.summary.pass_rate, None);
}

#[tokio::test]
async fn a_case_failing_then_passing_on_retry_within_a_job_is_flaky() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let id = record(
        &s,
        &JobSpec::new("e2e", "v1")
            .test("Suite", &[A::Fail, A::Pass], 1)
            .case("Suite", 0, "", "flaky case", CFailed, 1.0, 0)
            .case("Suite", 1, "", "flaky case", CPassed, 1.0, 0),
    )
    .await;
    let h = one(&s, "flaky case", "e2e", 30).await;
    assert_eq!(outcomes(&h), [Outcome::Passed]);
    assert_eq!(h.entries[0].execution.attempts, 2);
    assert_eq!(
        h.summary.flaky_reasons,
        [FlakyReason::PassedOnRetry { jobs: vec![id] }]
    );
}

#[tokio::test]
async fn without_a_job_name_every_name_the_text_turns_up_in_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    record(&s, &JobSpec::new("a", "v1").test("Boot", &[A::Pass], 1)).await;
    record(&s, &JobSpec::new("b", "v1").test("Boot", &[A::Fail], 1)).await;
    record(&s, &JobSpec::new("c", "v1").test("Other", &[A::Pass], 1)).await;
    let answer = load_history(&s, &HistoryRequest::new("Boot", None, 30))
        .await
        .unwrap();
    assert_eq!(answer.job_names, ["b", "a"]);
    let names: Vec<&str> = answer
        .histories
        .iter()
        .map(|h| h.job_name.as_str())
        .collect();
    assert_eq!(names, ["b", "a"]);
}

#[tokio::test]
async fn nothing_matching_lists_what_exists_and_bad_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    record(
        &s,
        &JobSpec::new("n", "v1")
            .test("Boot", &[A::Pass], 1)
            .case("Boot", 0, "k", "c1", CPassed, 1.0, 0),
    )
    .await;
    let answer = load_history(&s, &HistoryRequest::new("nope", Some("n".into()), 30))
        .await
        .unwrap();
    assert!(answer.histories.is_empty());
    assert_eq!(answer.known, ["case: k.c1", "test: Boot"]);
    assert_eq!(answer.jobs_searched, 1);
    let answer = load_history(
        &s,
        &HistoryRequest::new("Boot", Some("no such job".into()), 30),
    )
    .await
    .unwrap();
    assert_eq!((answer.jobs_searched, answer.histories.len()), (0, 0));

    for (text, last) in [("", 30), ("  ", 30), ("Boot", 0), ("Boot", 1_000_000)] {
        let err = load_history(&s, &HistoryRequest::new(text, None, last))
            .await
            .unwrap_err();
        assert!(
            matches!(err, HistoryError::EmptyText | HistoryError::BadLast(_)),
            "{err}"
        );
    }
    let long = "x".repeat(5000);
    assert!(matches!(
        load_history(&s, &HistoryRequest::new(long, None, 30)).await,
        Err(HistoryError::TextTooLong(5000))
    ));
}

#[tokio::test]
async fn a_comparison_sorts_every_subject_into_its_category() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir).await;
    let base = record(
        &s,
        &JobSpec::new("n", "v1")
            .test("Regresses", &[A::Pass], 1)
            .test("Fixed", &[A::Fail], 1)
            .test("Broken", &[A::Error], 1)
            .test("Removed", &[A::Pass], 1)
            .test("Slower", &[A::Pass], 10)
            .test("Jitter", &[A::Pass], 10)
            .test("Faster", &[A::Pass], 20),
    )
    .await;
    let head = record(
        &s,
        &JobSpec::new("n", "v1")
            .test("Regresses", &[A::Fail], 1)
            .test("Fixed", &[A::Pass], 1)
            .test("Broken", &[A::Fail], 1)
            .test("Added", &[A::Error], 1)
            .test("Slower", &[A::Pass], 13) // +3 s, +30%
            .test("Jitter", &[A::Pass], 12) // +2 s but +20%: under the ratio
            .test("Faster", &[A::Pass], 10),
    )
    .await;
    let c = load_comparison(&s, base, head).await.unwrap();
    let names = |v: &[prova_results::history::Change]| -> Vec<String> {
        v.iter().map(|c| c.subject.full_name()).collect()
    };
    assert_eq!(names(&c.newly_failing), ["Regresses"]);
    assert_eq!(names(&c.newly_passing), ["Fixed"]);
    assert_eq!(names(&c.still_failing), ["Broken"]);
    assert_eq!(names(&c.added), ["Added"]);
    assert_eq!(names(&c.removed), ["Removed"]);
    assert_eq!(names(&c.slower), ["Slower"]);
    assert_eq!(c.slower[0].duration_delta_secs, Some(3.0));
    assert_eq!(names(&c.faster), ["Faster"]);
    assert_eq!(c.unchanged, 1, "Jitter");
    assert!(c.has_new_failures());
    assert_eq!((c.base.id, c.head.id), (base, head));

    let same = load_comparison(&s, head, head).await.unwrap();
    assert!(!same.has_new_failures());
    assert!(matches!(
        load_comparison(&s, base, 4242).await,
        Err(HistoryError::JobNotFound(4242))
    ));
}
