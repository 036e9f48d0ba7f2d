//! Job statuses kept as events arrive (`EventStore::job_status`): always
//! the status rebuilt from every event, whichever writers appended them and
//! whatever the saved status holds.

use prova_core::event::names;
use prova_core::status::{JobStatus, rebuild};
use prova_core::{EventQuery, JobState, NewEvent};
use prova_store::{EventStore, JobStore, NewJob, SqlStore};
use serde_json::json;
use sqlx::{AnyPool, Row};

mod support;
use support::for_each_backend_url;

fn ts(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(1_700_000_000_000_000 + us).unwrap()
}

fn state(job: i64, st: JobState, us: i64) -> NewEvent {
    let mut e = NewEvent::job(job, st.event_name(), None);
    e.emit_time = ts(us);
    e
}

fn run_event(job: i64, name: &str, us: i64) -> NewEvent {
    let mut e = NewEvent::job(job, name, None);
    e.run_id = 1;
    e.emit_time = ts(us);
    e
}

/// A test event of run 1, test "T", attempt 0.
fn test_ev(
    job: i64,
    step: Option<&str>,
    target: &str,
    name: &str,
    payload: Option<serde_json::Value>,
    us: i64,
) -> NewEvent {
    // Nanoseconds, as the engine's clock gives: the store keeps
    // microseconds, and a status must be the stored events'.
    let at = ts(us) + std::time::Duration::from_nanos(321);
    support::test_event(job, step, target, name, payload, at)
}

/// Targets through two steps: a pass, a failure, step output between.
fn targets_through_steps(job: i64, targets: &[&str], t0: i64) -> Vec<NewEvent> {
    let mut out = Vec::new();
    let mut us = t0;
    let mut tick = || {
        us += 1;
        us
    };
    for t in targets {
        out.push(test_ev(job, None, t, names::TARGET_ACQUIRED, None, tick()));
    }
    for step in ["s1", "s2"] {
        for (i, t) in targets.iter().enumerate() {
            out.push(test_ev(job, Some(step), t, names::TARGET_IN, None, tick()));
            let msg = json!({"Msg": format!("{step} on {t}")});
            out.push(test_ev(job, Some(step), t, "CmdStdout", Some(msg), tick()));
            if step == "s2" && i == 0 {
                let err = json!({"Error": format!("{t} broke")});
                out.push(test_ev(
                    job,
                    Some(step),
                    t,
                    names::TARGET_ERR,
                    Some(err),
                    tick(),
                ));
            } else {
                out.push(test_ev(job, Some(step), t, names::TARGET_OUT, None, tick()));
            }
        }
    }
    for t in targets {
        out.push(test_ev(job, None, t, names::TARGET_RELEASED, None, tick()));
    }
    out
}

/// The status rebuilt from every event of the job.
async fn rebuilt(store: &SqlStore, job: i64) -> JobStatus {
    let events = store.query_events(&EventQuery::for_job(job)).await.unwrap();
    rebuild(job, "st", &events)
}

async fn saved_seq(pool: &AnyPool, job: i64) -> Option<i64> {
    sqlx::query("SELECT last_seq FROM job_status WHERE job_id = $1")
        .bind(job)
        .fetch_optional(pool)
        .await
        .unwrap()
        .map(|r| r.get(0))
}

async fn new_job(store: &SqlStore) -> i64 {
    store
        .create_job(NewJob {
            name: "st".into(),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_status_is_the_saved_one_plus_the_events_after_it() {
    for_each_backend_url(|store, url| async move {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(&url).await.unwrap();
        let job = new_job(&store).await;
        assert_eq!(saved_seq(&pool, job).await, None);
        assert_eq!(
            store.job_status(job).await.unwrap().unwrap(),
            rebuilt(&store, job).await
        );

        // Started: the state moved, so the status is saved with the batch.
        store
            .append_events(&[
                state(job, JobState::Started, 1),
                run_event(job, names::RUN_STARTED, 2),
            ])
            .await
            .unwrap();
        let first = saved_seq(&pool, job)
            .await
            .expect("saved when the state moved");

        // Events in batches that move no state: read as saved + after.
        let events = targets_through_steps(job, &["a", "b", "c"], 10);
        for (i, chunk) in events.chunks(4).enumerate() {
            store.append_events(chunk).await.unwrap();
            if i == 0 {
                // Saved at most every 2 s: this one is read as the saved
                // status and the events after it.
                assert_eq!(
                    saved_seq(&pool, job).await,
                    Some(first),
                    "not saved again yet"
                );
            }
            assert_eq!(
                store.job_status(job).await.unwrap().unwrap(),
                rebuilt(&store, job).await
            );
        }

        // The end: saved with every event.
        let report = json!({"ReporterName": "TargetSuccess", "Success": false, "Data": "2/3"});
        let mut rep = run_event(job, prova_core::status::RUN_REPORT, 100);
        rep.payload = Some(report);
        store
            .append_events(&[
                run_event(job, names::RUN_FINISHED, 99),
                rep,
                state(job, JobState::Completed, 101),
            ])
            .await
            .unwrap();
        let all = store.query_events(&EventQuery::for_job(job)).await.unwrap();
        assert_eq!(saved_seq(&pool, job).await, Some(all.last().unwrap().seq));
        let status = store.job_status(job).await.unwrap().unwrap();
        assert_eq!(status, rebuild(job, "st", &all));
        assert_eq!(status.verdict, prova_core::status::Verdict::Failed);
        assert_eq!(
            status.run_statuses[0].test_statuses[0].step_statuses.len(),
            2
        );

        // A reader of another store (another process) reads the same.
        let other = SqlStore::open(&url).await.unwrap();
        assert_eq!(other.job_status(job).await.unwrap().unwrap(), status);
        assert_eq!(store.job_status(job + 1000).await.unwrap(), None);
        pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn another_writer_never_leaves_a_saved_status_short_of_events() {
    for_each_backend_url(|first, url| async move {
        let pool = AnyPool::connect(&url).await.unwrap();
        let second = SqlStore::open(&url).await.unwrap();
        let job = new_job(&first).await;
        first
            .append_events(&[state(job, JobState::Started, 1)])
            .await
            .unwrap();
        // Another process (a job resumed elsewhere, `prova coverage report
        // --job`) appends events the first store never sees...
        let theirs = targets_through_steps(job, &["x"], 10);
        second.append_events(&theirs).await.unwrap();
        // ... then the first store ends the job. Its status lacks the
        // second's events, so it must not be saved as the job's.
        first
            .append_events(&[state(job, JobState::Paused, 50)])
            .await
            .unwrap();
        let all = store_events(&first, job).await;
        assert_eq!(
            first.job_status(job).await.unwrap().unwrap(),
            rebuild(job, "st", &all)
        );
        assert_eq!(
            second.job_status(job).await.unwrap().unwrap(),
            rebuild(job, "st", &all)
        );

        // A store opened after a crash carries the job on from there.
        drop(first);
        let third = SqlStore::open(&url).await.unwrap();
        third
            .append_events(&targets_through_steps(job, &["y", "z"], 60))
            .await
            .unwrap();
        third
            .append_events(&[state(job, JobState::Completed, 200)])
            .await
            .unwrap();
        let all = store_events(&third, job).await;
        let status = third.job_status(job).await.unwrap().unwrap();
        assert_eq!(status, rebuild(job, "st", &all));
        assert_eq!(status.state, Some(JobState::Completed));
        assert_eq!(
            status.run_statuses[0].test_statuses[0]
                .target_statuses
                .len(),
            3
        );
        pool.close().await;
    })
    .await;
}

#[tokio::test]
async fn an_unreadable_saved_status_is_rebuilt_from_the_events() {
    for_each_backend_url(|store, url| async move {
        let pool = AnyPool::connect(&url).await.unwrap();
        let job = new_job(&store).await;
        let mut events = vec![state(job, JobState::Started, 1)];
        events.extend(targets_through_steps(job, &["a"], 10));
        events.push(state(job, JobState::Completed, 90));
        store.append_events(&events).await.unwrap();
        assert!(saved_seq(&pool, job).await.is_some());
        sqlx::query("UPDATE job_status SET status = 'not json' WHERE job_id = $1")
            .bind(job)
            .execute(&pool)
            .await
            .unwrap();
        let status = store.job_status(job).await.unwrap().unwrap();
        assert_eq!(status, rebuilt(&store, job).await);
        assert_eq!(status.state, Some(JobState::Completed));
        pool.close().await;
    })
    .await;
}

async fn store_events(store: &SqlStore, job: i64) -> Vec<prova_core::Event> {
    store.query_events(&EventQuery::for_job(job)).await.unwrap()
}
