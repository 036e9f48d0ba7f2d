//! Store tests, run against every backend available: SQLite in a temporary
//! directory always, and PostgreSQL when `PROVA_TEST_POSTGRES_URL` is set
//! (each test then gets its own schema, so tests can run in parallel).

use prova_core::{Event, EventKind, EventQuery, JobState, NewEvent, Target};
use prova_store::{
    EventStore, JobFilter, JobStore, LeaseStore, NewJob, SqlStore, StoreError, TargetLockStore,
};
use serde_json::json;
use sqlx::Connection;

mod support;
use support::for_each_backend;

/// A timestamp the store round-trips exactly (it keeps microseconds).
fn now() -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(jiff::Timestamp::now().as_microsecond()).unwrap()
}

fn ts(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(1_700_000_000_000_000 + us).unwrap()
}

fn job(name: &str, tags: &[&str], requestor: &str) -> NewJob {
    NewJob {
        name: name.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        requestor: requestor.into(),
        descriptor: format!(r#"{{"JobName":"{name}"}}"#),
        extended_descriptor: format!(r#"{{"JobName":"{name}","TestDescriptors":[]}}"#),
        source_path: Some(format!("/jobs/{name}.yaml")),
    }
}

fn test_event(
    job_id: i64,
    run: u32,
    test: &str,
    attempt: u32,
    step: &str,
    target: &str,
    name: &str,
) -> NewEvent {
    NewEvent {
        kind: EventKind::Test,
        job_id,
        run_id: run,
        test_name: Some(test.into()),
        test_attempt: Some(attempt),
        step_label: Some(step.into()),
        target: Some(Target::with_id(target)),
        name: name.into(),
        payload: Some(json!({"Msg": format!("{test}/{step}/{target}")})),
        emit_time: now(),
    }
}

fn state_event(job_id: i64, st: JobState, us: i64) -> NewEvent {
    let mut e = NewEvent::job(job_id, st.event_name(), None);
    e.emit_time = ts(us);
    e
}

fn ids(jobs: &[prova_store::JobRecord]) -> Vec<i64> {
    jobs.iter().map(|j| j.id).collect()
}

#[tokio::test]
async fn jobs_create_get_and_list_with_filters() {
    for_each_backend(|store| async move {
        assert!(store.get_job(1).await.unwrap().is_none());
        let before = now();
        let a = store
            .create_job(job("a", &["nightly", "x86"], "alice"))
            .await
            .unwrap();
        let b = store
            .create_job(job("b", &["nightly"], "bob"))
            .await
            .unwrap();
        let c = store
            .create_job(job("c", &["x86", "x86"], "alice"))
            .await
            .unwrap();
        let d = store.create_job(job("d", &[], "bob")).await.unwrap();
        assert!(a < b && b < c && c < d);

        let ja = store.get_job(a).await.unwrap().unwrap();
        assert_eq!(ja.name, "a");
        assert_eq!(ja.tags, vec!["nightly", "x86"]);
        assert_eq!(ja.requestor, "alice");
        assert_eq!(ja.descriptor, r#"{"JobName":"a"}"#);
        assert_eq!(
            ja.extended_descriptor,
            r#"{"JobName":"a","TestDescriptors":[]}"#
        );
        assert_eq!(ja.source_path.as_deref(), Some("/jobs/a.yaml"));
        assert!(ja.created_at >= before && ja.created_at <= now());
        assert_eq!(ja.state, None);
        assert_eq!(ja.state_time, None);
        // Duplicate tags are kept as given in the record.
        let jc = store.get_job(c).await.unwrap().unwrap();
        assert_eq!(jc.tags, vec!["x86", "x86"]);

        let all = store.list_jobs(&JobFilter::default()).await.unwrap();
        assert_eq!(ids(&all), vec![d, c, b, a], "newest first");
        assert_eq!(all[3], ja);

        let by_tags = |tags: &[&str]| JobFilter {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(
            ids(&store.list_jobs(&by_tags(&["nightly"])).await.unwrap()),
            vec![b, a]
        );
        assert_eq!(
            ids(&store.list_jobs(&by_tags(&["x86"])).await.unwrap()),
            vec![c, a]
        );
        assert_eq!(
            ids(&store
                .list_jobs(&by_tags(&["x86", "nightly"]))
                .await
                .unwrap()),
            vec![a],
            "all tags must be present"
        );
        assert!(
            store
                .list_jobs(&by_tags(&["nope"]))
                .await
                .unwrap()
                .is_empty()
        );

        let by_req = JobFilter {
            requestor: Some("bob".into()),
            ..Default::default()
        };
        assert_eq!(ids(&store.list_jobs(&by_req).await.unwrap()), vec![d, b]);

        // States: set some.
        store
            .append_events(&[
                state_event(a, JobState::Started, 1),
                state_event(a, JobState::Completed, 2),
                state_event(b, JobState::Started, 3),
                state_event(c, JobState::Failed, 4),
            ])
            .await
            .unwrap();
        let by_states = |s: &[JobState]| JobFilter {
            states: s.to_vec(),
            ..Default::default()
        };
        assert_eq!(
            ids(&store
                .list_jobs(&by_states(&[JobState::Completed]))
                .await
                .unwrap()),
            vec![a]
        );
        assert_eq!(
            ids(&store
                .list_jobs(&by_states(&[JobState::Started, JobState::Failed]))
                .await
                .unwrap()),
            vec![c, b]
        );
        // Combined filters.
        let combined = JobFilter {
            states: vec![JobState::Completed, JobState::Failed],
            tags: vec!["x86".into()],
            requestor: Some("alice".into()),
            ..Default::default()
        };
        assert_eq!(ids(&store.list_jobs(&combined).await.unwrap()), vec![c, a]);

        // Pagination: limit, then before_id of the last one seen.
        let mut seen = Vec::new();
        let mut before_id = None;
        loop {
            let page = store
                .list_jobs(&JobFilter {
                    limit: Some(3),
                    before_id,
                    ..Default::default()
                })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 3);
            before_id = Some(page.last().unwrap().id);
            seen.extend(ids(&page));
        }
        assert_eq!(seen, vec![d, c, b, a]);
        let page = store
            .list_jobs(&JobFilter {
                limit: Some(1),
                before_id: Some(c),
                tags: vec!["nightly".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&page), vec![b]);
    })
    .await;
}

#[tokio::test]
async fn query_events_every_filter_narrows() {
    for_each_backend(|store| async move {
        let j1 = store.create_job(job("one", &[], "")).await.unwrap();
        let j2 = store.create_job(job("two", &[], "")).await.unwrap();
        let mut evs = vec![NewEvent::job(j1, "JobStateStarted", None)];
        for run in 1..=2u32 {
            for test in ["t1", "t2"] {
                for attempt in 0..2u32 {
                    for step in ["s1", "s2"] {
                        for target in ["host-a", "host-b"] {
                            evs.push(test_event(
                                j1,
                                run,
                                test,
                                attempt,
                                step,
                                target,
                                "StepRunning",
                            ));
                            evs.push(test_event(
                                j1,
                                run,
                                test,
                                attempt,
                                step,
                                target,
                                "CmdStdout",
                            ));
                        }
                    }
                }
            }
        }
        evs.push(test_event(j2, 1, "t1", 0, "s1", "host-a", "CmdStdout"));
        store.append_events(&evs).await.unwrap();

        let count = |q: EventQuery| {
            let store = &store;
            async move { store.query_events(&q).await.unwrap() }
        };
        let all = count(EventQuery::default()).await;
        assert_eq!(all.len(), evs.len());
        let one = count(EventQuery::for_job(j1)).await;
        assert_eq!(one.len(), evs.len() - 1);
        assert!(one.iter().all(|e| e.job_id == j1));
        let base = || EventQuery::for_job(j1);

        let r = count(EventQuery {
            kind: Some(EventKind::Job),
            ..base()
        })
        .await;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].name, "JobStateStarted");
        assert_eq!(r[0].run_id, 0);
        assert_eq!(r[0].test_name, None);
        let r = count(EventQuery {
            kind: Some(EventKind::Test),
            ..base()
        })
        .await;
        assert_eq!(r.len(), 64);

        let r = count(EventQuery {
            run_id: Some(2),
            ..base()
        })
        .await;
        assert_eq!(r.len(), 32);
        assert!(r.iter().all(|e| e.run_id == 2));
        let r = count(EventQuery {
            test_name: Some("t2".into()),
            ..base()
        })
        .await;
        assert_eq!(r.len(), 32);
        assert!(r.iter().all(|e| e.test_name.as_deref() == Some("t2")));
        let r = count(EventQuery {
            test_attempt: Some(1),
            ..base()
        })
        .await;
        assert_eq!(r.len(), 32);
        assert!(r.iter().all(|e| e.test_attempt == Some(1)));
        let r = count(EventQuery {
            step_label: Some("s1".into()),
            ..base()
        })
        .await;
        assert_eq!(r.len(), 32);
        assert!(r.iter().all(|e| e.step_label.as_deref() == Some("s1")));
        let r = count(EventQuery {
            target_id: Some("host-b".into()),
            ..base()
        })
        .await;
        assert_eq!(r.len(), 32);
        assert!(r.iter().all(|e| e.target.as_ref().unwrap().id == "host-b"));
        let r = count(EventQuery {
            names: vec!["CmdStdout".into()],
            ..base()
        })
        .await;
        assert_eq!(r.len(), 32);
        let r = count(EventQuery {
            names: vec!["CmdStdout".into(), "JobStateStarted".into(), "Nope".into()],
            ..base()
        })
        .await;
        assert_eq!(r.len(), 33);

        // All together: exactly one event.
        let r = count(EventQuery {
            job_id: Some(j1),
            kind: Some(EventKind::Test),
            run_id: Some(1),
            test_name: Some("t1".into()),
            test_attempt: Some(0),
            step_label: Some("s2".into()),
            target_id: Some("host-a".into()),
            names: vec!["CmdStdout".into()],
            after_seq: None,
            limit: None,
        })
        .await;
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].event,
            test_event(j1, 1, "t1", 0, "s2", "host-a", "CmdStdout").with_time(r[0].emit_time)
        );

        // Target across jobs.
        let r = count(EventQuery {
            target_id: Some("host-a".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(r.len(), 33);

        // after_seq and limit page through in order.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = count(EventQuery {
                after_seq: after,
                limit: Some(10),
                ..base()
            })
            .await;
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 10);
            after = Some(page.last().unwrap().seq);
            paged.extend(page);
        }
        assert_eq!(paged, one);
        let r = count(EventQuery {
            limit: Some(0),
            ..base()
        })
        .await;
        assert!(r.is_empty());

        // No match.
        let r = count(EventQuery {
            run_id: Some(3),
            ..base()
        })
        .await;
        assert!(r.is_empty());
        let r = count(EventQuery::for_job(j2 + 100)).await;
        assert!(r.is_empty());
    })
    .await;
}

trait WithTime {
    fn with_time(self, t: jiff::Timestamp) -> Self;
}
impl WithTime for NewEvent {
    fn with_time(mut self, t: jiff::Timestamp) -> Self {
        self.emit_time = t;
        self
    }
}

#[tokio::test]
async fn job_state_follows_the_newest_state_event() {
    for_each_backend(|store| async move {
        let j = store.create_job(job("s", &[], "")).await.unwrap();
        let other = store.create_job(job("o", &[], "")).await.unwrap();
        store
            .append_events(&[state_event(j, JobState::Started, 10)])
            .await
            .unwrap();
        let rec = store.get_job(j).await.unwrap().unwrap();
        assert_eq!(rec.state, Some(JobState::Started));
        assert_eq!(rec.state_time, Some(ts(10)));

        // Within one batch the last state event wins; non-state job events
        // and test events named like states do not count.
        let mut fake = test_event(j, 1, "t", 0, "s", "h", "JobStateFailed");
        fake.emit_time = ts(99);
        store
            .append_events(&[
                state_event(j, JobState::Paused, 20),
                NewEvent::job(j, "JobNotice", Some(json!("hi"))),
                state_event(other, JobState::Cancelling, 21),
                state_event(j, JobState::Started, 30),
                state_event(j, JobState::Completed, 40),
                fake,
                NewEvent::job(j, "RunStarted", None),
            ])
            .await
            .unwrap();
        let rec = store.get_job(j).await.unwrap().unwrap();
        assert_eq!(rec.state, Some(JobState::Completed));
        assert_eq!(rec.state_time, Some(ts(40)));
        let rec = store.get_job(other).await.unwrap().unwrap();
        assert_eq!(rec.state, Some(JobState::Cancelling));

        // A later batch moves it again; the short name is accepted too.
        let mut e = NewEvent::job(other, "Cancelled", None);
        e.emit_time = ts(50);
        store.append_events(&[e]).await.unwrap();
        let rec = store.get_job(other).await.unwrap().unwrap();
        assert_eq!(rec.state, Some(JobState::Cancelled));
        assert_eq!(rec.state_time, Some(ts(50)));
    })
    .await;
}

#[tokio::test]
async fn seq_orders_events_across_batches_and_jobs() {
    for_each_backend(|store| async move {
        let a = store.create_job(job("a", &[], "")).await.unwrap();
        let b = store.create_job(job("b", &[], "")).await.unwrap();
        for batch in 0..5 {
            let evs: Vec<NewEvent> = (0..7)
                .map(|i| {
                    let j = if i % 2 == 0 { a } else { b };
                    NewEvent::job(j, format!("E{batch}-{i}"), None)
                })
                .collect();
            store.append_events(&evs).await.unwrap();
        }
        store.append_events(&[]).await.unwrap();
        let all = store.query_events(&EventQuery::default()).await.unwrap();
        assert_eq!(all.len(), 35);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        let names: Vec<String> = all.iter().map(|e| e.name.clone()).collect();
        let want: Vec<String> = (0..5)
            .flat_map(|b| (0..7).map(move |i| format!("E{b}-{i}")))
            .collect();
        assert_eq!(names, want);
        let of_b = store.query_events(&EventQuery::for_job(b)).await.unwrap();
        assert!(of_b.windows(2).all(|w| w[0].seq < w[1].seq));
        assert_eq!(of_b.len(), 15);
    })
    .await;
}

#[tokio::test]
async fn payload_and_target_json_round_trip() {
    for_each_backend(|store| async move {
        let j = store.create_job(job("json", &[], "")).await.unwrap();
        let target = Target {
            id: "node-1".into(),
            fqdn: "node-1.example.test".into(),
            primary_ipv4: "192.0.2.7".into(),
            primary_ipv6: "2001:db8::7".into(),
        };
        let payloads = [
            json!({"Msg": "line\nwith \"quotes\" and ünïcødé ✓", "n": [1, 2.5, -3], "deep": {"a": null, "b": true}}),
            json!("just a string"),
            json!(42),
            json!(null),
            json!([]),
        ];
        let mut evs = Vec::new();
        for p in &payloads {
            let mut e = test_event(j, 1, "t", 0, "s", "x", "CmdStdout");
            e.target = Some(target.clone());
            e.payload = Some(p.clone());
            evs.push(e);
        }
        let mut bare = NewEvent::job(j, "NoPayload", None);
        bare.emit_time = now();
        evs.push(bare);
        let mut minimal = test_event(j, 3, "t", 0, "s", "y", "Min");
        minimal.test_name = None;
        minimal.test_attempt = None;
        minimal.step_label = None;
        minimal.target = None;
        minimal.payload = None;
        evs.push(minimal);
        store.append_events(&evs).await.unwrap();

        let got = store.query_events(&EventQuery::for_job(j)).await.unwrap();
        let got: Vec<NewEvent> = got.into_iter().map(|e| e.event).collect();
        assert_eq!(got, evs);
        // Found by the full target's ID.
        let by_target = store
            .query_events(&EventQuery {
                target_id: Some("node-1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(by_target.len(), payloads.len());
    })
    .await;
}

#[tokio::test]
async fn ten_thousand_events_round_trip() {
    for_each_backend(|store| async move {
        let j = store.create_job(job("big", &[], "")).await.unwrap();
        let evs: Vec<NewEvent> = (0..10_000u32)
            .map(|i| {
                let mut e = test_event(
                    j,
                    1 + i / 5000,
                    &format!("t{}", i % 7),
                    i % 3,
                    "step",
                    &format!("host-{}", i % 11),
                    "CmdStdout",
                );
                e.payload = Some(json!({"Msg": format!("output line {i}"), "i": i}));
                e.emit_time = ts(i64::from(i));
                e
            })
            .collect();
        // One call (several INSERT chunks) and a few smaller ones.
        store.append_events(&evs[..7_000]).await.unwrap();
        for chunk in evs[7_000..].chunks(999) {
            store.append_events(chunk).await.unwrap();
        }
        let got = store.query_events(&EventQuery::for_job(j)).await.unwrap();
        assert_eq!(got.len(), 10_000);
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
        let got: Vec<NewEvent> = got.into_iter().map(|e| e.event).collect();
        assert_eq!(got, evs);
    })
    .await;
}

#[tokio::test]
async fn events_of_unknown_jobs_are_refused_whole() {
    for_each_backend(|store| async move {
        let j = store.create_job(job("real", &[], "")).await.unwrap();
        let err = store
            .append_events(&[
                NewEvent::job(j, "JobStateStarted", None),
                NewEvent::job(j + 41, "JobStateStarted", None),
            ])
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::JobNotFound(id) if id == j + 41),
            "{err:?}"
        );
        assert!(
            store
                .query_events(&EventQuery::default())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.get_job(j).await.unwrap().unwrap().state, None);
    })
    .await;
}

#[tokio::test]
async fn reopening_a_sqlite_file_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/prova.db");
    let url = format!("sqlite://{}", path.display());
    let (j, evs) = {
        let store = SqlStore::open(&url).await.unwrap();
        let j = store.create_job(job("keep", &["t"], "me")).await.unwrap();
        let evs = vec![
            state_event(j, JobState::Started, 1),
            test_event(j, 1, "t", 0, "s", "h", "CmdStdout"),
        ];
        store.append_events(&evs).await.unwrap();
        (j, evs)
    };
    assert!(path.exists());
    for _ in 0..2 {
        // Every way of opening, twice: migrations are idempotent.
        for store in [
            SqlStore::open(&url).await.unwrap(),
            SqlStore::open_path(&path).await.unwrap(),
            SqlStore::open_db(path.to_str().unwrap()).await.unwrap(),
            SqlStore::open_db(&url).await.unwrap(),
        ] {
            let rec = store.get_job(j).await.unwrap().unwrap();
            assert_eq!(rec.name, "keep");
            assert_eq!(rec.state, Some(JobState::Started));
            let got: Vec<NewEvent> = store
                .query_events(&EventQuery::for_job(j))
                .await
                .unwrap()
                .into_iter()
                .map(|e: Event| e.event)
                .collect();
            assert_eq!(got, evs);
        }
    }
}

#[tokio::test]
async fn sqlite_file_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let store = SqlStore::open_path(&path).await.unwrap();
    store.create_job(job("w", &[], "")).await.unwrap();
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let mode: String = sqlx::Row::get(
        &sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap(),
        0,
    );
    assert_eq!(mode.to_lowercase(), "wal");
}

#[tokio::test]
async fn in_memory_sqlite_works() {
    let store = SqlStore::open("sqlite::memory:").await.unwrap();
    let j = store.create_job(job("mem", &[], "")).await.unwrap();
    store
        .append_events(&[state_event(j, JobState::Completed, 1)])
        .await
        .unwrap();
    assert_eq!(
        store
            .query_events(&EventQuery::for_job(j))
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.get_job(j).await.unwrap().unwrap().state,
        Some(JobState::Completed)
    );
    // A second in-memory store is a different database.
    let other = SqlStore::open("sqlite::memory:").await.unwrap();
    assert!(other.get_job(j).await.unwrap().is_none());
}

#[tokio::test]
async fn bad_urls_and_corrupt_rows_are_errors_not_panics() {
    assert!(matches!(
        SqlStore::open("mysql://nope").await.unwrap_err(),
        StoreError::Open { .. }
    ));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.db");
    let store = SqlStore::open_path(&path).await.unwrap();
    let j = store.create_job(job("c", &[], "")).await.unwrap();
    store
        .append_events(&[test_event(j, 1, "t", 0, "s", "h", "CmdStdout")])
        .await
        .unwrap();
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE events SET payload = 'not json{'")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE jobs SET state = 'Exploded', tags = '[1'")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = store
        .query_events(&EventQuery::for_job(j))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let err = store.get_job(j).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    let err = store.list_jobs(&JobFilter::default()).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

#[tokio::test]
async fn leases_are_exclusive_until_they_expire() {
    use std::time::Duration;
    for_each_backend(|store| async move {
        let id = store.create_job(job("leased", &[], "r")).await.unwrap();
        assert!(
            store
                .try_lease(id, "a", Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert!(
            store
                .try_lease(id, "a", Duration::from_secs(60))
                .await
                .unwrap(),
            "the owner renews"
        );
        assert!(
            !store
                .try_lease(id, "b", Duration::from_secs(60))
                .await
                .unwrap(),
            "held by a"
        );
        assert!(store.expired_leases().await.unwrap().is_empty());
        // A lease that has run out can be taken over.
        assert!(store.try_lease(id, "a", Duration::ZERO).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            store.expired_leases().await.unwrap(),
            vec![(id, "a".to_string())]
        );
        assert!(
            store
                .try_lease(id, "b", Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .renew_leases("b", Duration::from_secs(60))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .renew_leases("a", Duration::from_secs(60))
                .await
                .unwrap(),
            0
        );
        store.release_lease(id, "b").await.unwrap();
        assert!(
            store
                .try_lease(id, "c", Duration::from_secs(60))
                .await
                .unwrap(),
            "released"
        );
    })
    .await;
}

#[tokio::test]
async fn a_target_is_locked_by_one_job_at_a_time() {
    use std::time::Duration;
    for_each_backend(|store| async move {
        let j1 = store.create_job(job("one", &[], "r")).await.unwrap();
        let j2 = store.create_job(job("two", &[], "r")).await.unwrap();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ttl = Duration::from_secs(60);
        assert_eq!(
            store
                .lock_targets(j1, &ids(&["a", "b"]), ttl, true)
                .await
                .unwrap(),
            ids(&["a", "b"])
        );
        // All-or-nothing: b is taken, so c is not locked either.
        assert!(
            store
                .lock_targets(j2, &ids(&["c", "b"]), ttl, true)
                .await
                .unwrap()
                .is_empty()
        );
        // TryLock: whatever is free.
        assert_eq!(
            store
                .lock_targets(j2, &ids(&["c", "b"]), ttl, false)
                .await
                .unwrap(),
            ids(&["c"])
        );
        store.unlock_targets(j1, &ids(&["b"])).await.unwrap();
        assert_eq!(
            store
                .lock_targets(j2, &ids(&["b"]), ttl, true)
                .await
                .unwrap(),
            ids(&["b"])
        );
        // Expired locks are free; refreshing keeps them.
        store
            .refresh_target_locks(j1, Duration::ZERO)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            store
                .lock_targets(j2, &ids(&["a"]), ttl, true)
                .await
                .unwrap(),
            ids(&["a"])
        );
        store.unlock_targets(j1, &ids(&["a"])).await.unwrap();
        assert!(
            store
                .lock_targets(j1, &ids(&["a"]), ttl, true)
                .await
                .unwrap()
                .is_empty(),
            "j1 could not unlock j2's lock"
        );
    })
    .await;
}

#[tokio::test]
async fn lock_holders_names_the_job_of_each_unexpired_lock() {
    use std::time::Duration;
    for_each_backend(|store| async move {
        let j1 = store.create_job(job("one", &[], "r")).await.unwrap();
        let j2 = store.create_job(job("two", &[], "r")).await.unwrap();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ttl = Duration::from_secs(60);
        store
            .lock_targets(j1, &ids(&["a"]), ttl, true)
            .await
            .unwrap();
        store
            .lock_targets(j2, &ids(&["b"]), ttl, true)
            .await
            .unwrap();
        assert_eq!(
            store.lock_holders(&ids(&["a", "b", "free"])).await.unwrap(),
            vec![("a".to_string(), j1), ("b".to_string(), j2)]
        );
        // An expired lock holds nothing.
        store
            .refresh_target_locks(j1, Duration::ZERO)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(
            store.lock_holders(&ids(&["a", "b"])).await.unwrap(),
            vec![("b".to_string(), j2)]
        );
    })
    .await;
}
