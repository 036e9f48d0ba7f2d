//! What the jobs lists read from the `jobs` row alone (migration 0006):
//! each ended job's verdict, stored as its final state arrives and the
//! same as its status gives, and the name filter, in SQL.

use prova_core::event::names;
use prova_core::status::{FINAL_REPORT, Verdict};
use prova_core::{JobId, JobState, NewEvent};
use prova_store::{EventStore, JobFilter, JobStore, NewJob, SqlStore};
use serde_json::json;

mod support;
use support::for_each_backend_url;

fn named(name: &str) -> NewJob {
    NewJob {
        name: name.into(),
        ..Default::default()
    }
}

fn state(job: JobId, st: JobState) -> NewEvent {
    NewEvent::job(job, st.event_name(), None)
}

fn final_report(job: JobId, success: bool) -> NewEvent {
    NewEvent::job(
        job,
        FINAL_REPORT,
        Some(json!({"ReporterName": "TargetSuccess", "Success": success, "Data": null})),
    )
}

/// Test "T", attempt 0, on target "t1".
fn test_ev(
    job: JobId,
    step: Option<&str>,
    name: &str,
    payload: Option<serde_json::Value>,
) -> NewEvent {
    support::test_event(job, step, "t1", name, payload, jiff::Timestamp::now())
}

/// A test whose only target fails at step "s1", `infra` or not.
fn failing_test(job: JobId, infra: bool) -> Vec<NewEvent> {
    vec![
        test_ev(job, None, names::TEST_STARTED, None),
        test_ev(job, None, names::TARGET_ACQUIRED, None),
        test_ev(job, Some("s1"), names::TARGET_IN, None),
        test_ev(
            job,
            Some("s1"),
            names::TARGET_ERR,
            Some(json!({"Error": "no Docker daemon", "Infra": infra})),
        ),
        test_ev(
            job,
            None,
            names::TEST_FINISHED,
            Some(json!({"Success": false})),
        ),
    ]
}

async fn stored_verdict(store: &SqlStore, job: JobId) -> Option<Verdict> {
    store.get_job(job).await.unwrap().unwrap().verdict
}

/// The verdict the job's status gives (`prova status`).
async fn status_verdict(store: &SqlStore, job: JobId) -> Verdict {
    store.job_status(job).await.unwrap().unwrap().verdict
}

#[tokio::test]
async fn a_jobs_verdict_is_stored_when_it_ends_as_its_status_gives_it() {
    for_each_backend_url(|store, url| async move {
        let passed = store.create_job(named("passed")).await.unwrap();
        store
            .append_events(&[state(passed, JobState::Started), final_report(passed, true)])
            .await
            .unwrap();
        assert_eq!(stored_verdict(&store, passed).await, None, "not ended yet");
        store
            .append_events(&[state(passed, JobState::Completed)])
            .await
            .unwrap();

        let failed = store.create_job(named("failed")).await.unwrap();
        let mut events = vec![state(failed, JobState::Started)];
        events.extend(failing_test(failed, false));
        events.extend([
            final_report(failed, false),
            state(failed, JobState::Completed),
        ]);
        store.append_events(&events).await.unwrap();

        // Tests that failed only because the infrastructure did: an
        // error, as `prova status` says (exit 3), not a test failure.
        let infra = store.create_job(named("infra")).await.unwrap();
        let mut events = vec![state(infra, JobState::Started)];
        events.extend(failing_test(infra, true));
        events.extend([
            final_report(infra, false),
            state(infra, JobState::Completed),
        ]);
        store.append_events(&events).await.unwrap();

        let cancelled = store.create_job(named("cancelled")).await.unwrap();
        store
            .append_events(&[
                state(cancelled, JobState::Started),
                state(cancelled, JobState::Cancelling),
            ])
            .await
            .unwrap();
        store
            .append_events(&[state(cancelled, JobState::Cancelled)])
            .await
            .unwrap();

        // Ended by another process's store (the reaper of a dead job's
        // runner): this store did not see the job's first events.
        let reaped = store.create_job(named("reaped")).await.unwrap();
        store
            .append_events(&[state(reaped, JobState::Started)])
            .await
            .unwrap();
        let other = SqlStore::open(&url).await.unwrap();
        other
            .append_events(&[state(reaped, JobState::Failed)])
            .await
            .unwrap();

        let expected = [
            (passed, Verdict::Passed),
            (failed, Verdict::Failed),
            (infra, Verdict::Error),
            (cancelled, Verdict::Cancelled),
            (reaped, Verdict::Error),
        ];
        for (job, verdict) in expected {
            assert_eq!(
                stored_verdict(&store, job).await,
                Some(verdict),
                "job {job}"
            );
            assert_eq!(status_verdict(&store, job).await, verdict, "job {job}");
        }
        let listed: Vec<(JobId, Option<Verdict>)> = store
            .list_jobs(&JobFilter::default())
            .await
            .unwrap()
            .iter()
            .map(|j| (j.id, j.verdict))
            .collect();
        let mut want: Vec<(JobId, Option<Verdict>)> =
            expected.iter().map(|&(j, v)| (j, Some(v))).collect();
        want.reverse();
        assert_eq!(listed, want, "list_jobs carries the stored verdicts");
    })
    .await;
}

#[tokio::test]
async fn the_name_filter_is_a_case_insensitive_substring_paged_in_the_store() {
    for_each_backend_url(|store, _url| async move {
        let mut id = std::collections::HashMap::new();
        for name in [
            "Nightly Build",
            "weekly",
            "100%_done",
            "nightly-smoke",
            "ÉTÉ run",
            "NIGHTLY",
        ] {
            id.insert(name, store.create_job(named(name)).await.unwrap());
        }
        let names = |jobs: Vec<prova_store::JobRecord>| {
            jobs.into_iter().map(|j| j.name).collect::<Vec<_>>()
        };
        let by_name = |part: &str, limit: Option<u32>, before_id: Option<JobId>| JobFilter {
            name_contains: Some(part.into()),
            limit,
            before_id,
            ..Default::default()
        };
        assert_eq!(
            names(
                store
                    .list_jobs(&by_name("nIGHTly", None, None))
                    .await
                    .unwrap()
            ),
            ["NIGHTLY", "nightly-smoke", "Nightly Build"],
            "any case, newest first"
        );
        assert_eq!(
            names(store.list_jobs(&by_name("ly b", None, None)).await.unwrap()),
            ["Nightly Build"]
        );
        // `%` and `_` are characters, not patterns.
        assert_eq!(
            names(store.list_jobs(&by_name("%", None, None)).await.unwrap()),
            ["100%_done"]
        );
        assert_eq!(
            names(store.list_jobs(&by_name("_", None, None)).await.unwrap()),
            ["100%_done"]
        );
        // Folded with Unicode, not ASCII, rules.
        assert_eq!(
            names(store.list_jobs(&by_name("été", None, None)).await.unwrap()),
            ["ÉTÉ run"]
        );
        assert!(
            store
                .list_jobs(&by_name("night\0ly", None, None))
                .await
                .unwrap()
                .is_empty(),
            "a NUL matches nothing, and is no error"
        );
        assert!(
            store
                .list_jobs(&by_name("monthly", None, None))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store
                .list_jobs(&by_name("", None, None))
                .await
                .unwrap()
                .len(),
            6,
            "an empty part matches every job"
        );

        // Pages: the limit counts matches, and `before_id` goes on.
        let first = store
            .list_jobs(&by_name("nightly", Some(2), None))
            .await
            .unwrap();
        assert_eq!(names(first.clone()), ["NIGHTLY", "nightly-smoke"]);
        let rest = store
            .list_jobs(&by_name("nightly", Some(2), Some(first[1].id)))
            .await
            .unwrap();
        assert_eq!(names(rest), ["Nightly Build"]);

        // With the other filters.
        store
            .append_events(&[state(id["nightly-smoke"], JobState::Started)])
            .await
            .unwrap();
        let started = JobFilter {
            states: vec![JobState::Started],
            ..by_name("NIGHT", None, None)
        };
        assert_eq!(
            names(store.list_jobs(&started).await.unwrap()),
            ["nightly-smoke"]
        );
    })
    .await;
}
