//! `PruneStore`: old ended jobs go with every row that belongs to them;
//! running, paused, recent and still-held jobs stay untouched. On SQLite
//! and PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use prova_core::event::names;
use prova_core::{EventQuery, JobId, JobState, NewEvent};
use prova_store::{
    ArtifactStore, EventStore, JobStore, LeaseStore, NewJob, PRUNE_BATCH_EVENTS, PruneRule,
    PruneStore, SqlStore, TargetLockStore,
};
use serde_json::json;
use sqlx::{AnyPool, AssertSqlSafe, Row};

mod support;
use support::for_each_backend_url;

const DAY: Duration = Duration::from_secs(86_400);

fn days_ago(days: u64) -> jiff::Timestamp {
    jiff::Timestamp::now() - DAY * days as u32
}

fn at(mut e: NewEvent, t: jiff::Timestamp) -> NewEvent {
    e.emit_time = t;
    e
}

fn test_event(job: JobId, step: Option<&str>, name: &str, t: jiff::Timestamp) -> NewEvent {
    let payload = Some(json!({"Msg": "out"}));
    support::test_event(job, step, &format!("t{job}"), name, payload, t)
}

/// A job with tags, that went through `states` (the last one at `ended`),
/// with test events and step output in between, and a kept file: rows
/// in `jobs`, `job_tags`, `events`, `artifacts`, `artifact_chunks` and
/// (once its state moves) `job_status`.
async fn job(store: &SqlStore, name: &str, states: &[JobState], ended: jiff::Timestamp) -> JobId {
    let id = store
        .create_job(NewJob {
            name: name.into(),
            tags: vec!["nightly".into(), name.into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let start = ended - Duration::from_secs(60);
    let mut events = vec![at(
        NewEvent::job(id, JobState::Started.event_name(), None),
        start,
    )];
    for (i, name) in [
        names::TARGET_ACQUIRED,
        names::TARGET_IN,
        "CmdStdout",
        names::TARGET_OUT,
    ]
    .into_iter()
    .enumerate()
    {
        let step = (i > 0).then_some("s1");
        events.push(test_event(
            id,
            step,
            name,
            start + Duration::from_secs(i as u64 + 1),
        ));
    }
    for st in states.iter().filter(|s| **s != JobState::Started) {
        events.push(at(NewEvent::job(id, st.event_name(), None), ended));
    }
    store.append_events(&events).await.unwrap();
    store
        .put_artifact(
            id,
            "run-1/T/attempt-0/s1/t/junit.xml",
            b"<testsuites/>",
            u64::MAX,
        )
        .await
        .unwrap();
    id
}

/// Every table with a `job_id` column, read from the schema itself: a
/// table a later migration adds is checked without changing this test.
async fn job_tables(pool: &AnyPool, url: &str) -> Vec<String> {
    let sql = if url.starts_with("sqlite") {
        "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p \
         WHERE m.type = 'table' AND p.name = 'job_id' ORDER BY m.name"
    } else {
        "SELECT CAST(table_name AS TEXT) FROM information_schema.columns \
         WHERE column_name = 'job_id' AND table_schema = current_schema() ORDER BY table_name"
    };
    sqlx::query(sql)
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

/// Rows per (table, job) for `jobs` and every table with `job_id`.
async fn rows_of(pool: &AnyPool, url: &str, job: JobId) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let mut tables = vec![("jobs".to_string(), "id")];
    tables.extend(
        job_tables(pool, url)
            .await
            .into_iter()
            .map(|t| (t, "job_id")),
    );
    for (table, column) in tables {
        let n: i64 = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {table} WHERE {column} = $1"
        )))
        .bind(job)
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0);
        out.insert(table, n);
    }
    out
}

#[tokio::test]
async fn prune_deletes_old_ended_jobs_whole_and_nothing_else() {
    for_each_backend_url(|store, url| async move {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(&url).await.unwrap();
        let tables = job_tables(&pool, &url).await;
        for t in [
            "events",
            "job_status",
            "job_tags",
            "job_leases",
            "target_locks",
            "artifacts",
            "artifact_chunks",
        ] {
            assert!(tables.contains(&t.to_string()), "{t} not in {tables:?}");
        }

        let old = days_ago(40);
        let done = |s| [JobState::Started, s];
        // Old and ended, with an expired lease and an expired target lock:
        // these go.
        let completed = job(&store, "completed", &done(JobState::Completed), old).await;
        let failed = job(&store, "failed", &done(JobState::Failed), old).await;
        let cancelled = job(
            &store,
            "cancelled",
            &[JobState::Started, JobState::Cancelling, JobState::Cancelled],
            old,
        )
        .await;
        assert!(store.try_lease(completed, "gone", DAY).await.unwrap());
        store.hand_over_lease(completed, "gone").await.unwrap();
        let t = vec![format!("t{completed}")];
        store
            .lock_targets(completed, &t, Duration::ZERO, true)
            .await
            .unwrap();

        // These stay: ended recently, not ended, never started, or still
        // held by a process (a live lease, a live target lock).
        let recent = job(&store, "recent", &done(JobState::Completed), days_ago(1)).await;
        let running = job(&store, "running", &[JobState::Started], old).await;
        let paused = job(&store, "paused", &done(JobState::Paused), old).await;
        let leased = job(&store, "leased", &done(JobState::Completed), old).await;
        assert!(store.try_lease(leased, "alive", DAY).await.unwrap());
        let locked = job(&store, "locked", &done(JobState::Failed), old).await;
        let t = vec![format!("t{locked}")];
        store.lock_targets(locked, &t, DAY, true).await.unwrap();
        let unstarted = store
            .create_job(NewJob {
                name: "unstarted".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await; // the zero-TTL lock expires

        let gone = [completed, failed, cancelled];
        let kept = [recent, running, paused, leased, locked, unstarted];
        let mut before = BTreeMap::new();
        for id in gone.iter().chain(&kept) {
            before.insert(*id, rows_of(&pool, &url, *id).await);
        }
        // Every kind of row is there to be deleted.
        let c = &before[&completed];
        for t in [
            "jobs",
            "events",
            "job_status",
            "job_tags",
            "job_leases",
            "target_locks",
            "artifacts",
            "artifact_chunks",
        ] {
            assert!(c[t] > 0, "job {completed} has no {t} rows: {c:?}");
        }

        let rule = PruneRule {
            ended_before: days_ago(30),
            keep_last: None,
        };
        // Dry run: the list, and nothing deleted.
        let listed = store.prunable_jobs(&rule).await.unwrap();
        let ids: Vec<JobId> = listed.iter().map(|j| j.id).collect();
        assert_eq!(ids, gone);
        assert_eq!(listed[0].name, "completed");
        assert_eq!(listed[0].state, JobState::Completed);
        assert_eq!(listed[1].state, JobState::Failed);
        assert_eq!(listed[2].state, JobState::Cancelled);
        assert_eq!(listed[0].ended_at.as_microsecond(), old.as_microsecond());
        assert_eq!(listed[0].events as i64, before[&completed]["events"]);
        for id in gone.iter().chain(&kept) {
            assert_eq!(
                rows_of(&pool, &url, *id).await,
                before[id],
                "dry run touched {id}"
            );
        }

        let count = store.prune_jobs(&rule).await.unwrap();
        assert_eq!(count.jobs, 3);
        let events: i64 = gone.iter().map(|id| before[id]["events"]).sum();
        assert_eq!(count.events as i64, events);
        assert_eq!(count.batches, 1);

        for id in gone {
            let rows = rows_of(&pool, &url, id).await;
            assert!(
                rows.values().all(|n| *n == 0),
                "job {id} left rows: {rows:?}"
            );
            assert!(store.get_job(id).await.unwrap().is_none());
            assert!(store.job_status(id).await.unwrap().is_none());
            let ev = store.query_events(&EventQuery::for_job(id)).await.unwrap();
            assert!(ev.is_empty());
        }
        for id in kept {
            assert_eq!(
                rows_of(&pool, &url, id).await,
                before[&id],
                "job {id} changed"
            );
        }
        // The kept jobs still read as before.
        let st = store.job_status(running).await.unwrap().unwrap();
        assert_eq!(st.state, Some(JobState::Started));

        // A late append to a pruned job (`prova coverage report --job`)
        // fails and leaves no event behind.
        let late = NewEvent::job(completed, names::COVERAGE_REPORT, Some(json!({})));
        assert!(store.append_events(&[late]).await.is_err());
        assert_eq!(rows_of(&pool, &url, completed).await["events"], 0);

        // Nothing left to prune: a second prune deletes nothing.
        let again = store.prune_jobs(&rule).await.unwrap();
        assert_eq!((again.jobs, again.events, again.batches), (0, 0, 0));
        assert!(store.prunable_jobs(&rule).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_big_prune_goes_in_batches_and_the_space_comes_back() {
    for_each_backend_url(|store, _url| async move {
        let old = days_ago(40);
        // One job of a whole batch's events, then a small one: the small
        // one does not fit in the big one's transaction.
        let big = job(&store, "big", &[JobState::Started], old).await;
        let output: Vec<NewEvent> = (0..PRUNE_BATCH_EVENTS)
            .map(|i| test_event(big, Some("s1"), "CmdStdout", old + Duration::from_micros(i)))
            .collect();
        for chunk in output.chunks(5_000) {
            store.append_events(chunk).await.unwrap();
        }
        store
            .append_events(&[at(
                NewEvent::job(big, JobState::Completed.event_name(), None),
                old,
            )])
            .await
            .unwrap();
        let small = job(&store, "small", &[JobState::Started, JobState::Failed], old).await;

        let before = store.store_size().await.unwrap();
        let count = store
            .prune_jobs(&PruneRule {
                ended_before: days_ago(30),
                keep_last: None,
            })
            .await
            .unwrap();
        assert_eq!(count.jobs, 2);
        assert_eq!(count.batches, 2);
        assert_eq!(count.events, PRUNE_BATCH_EVENTS + 6 + 6);
        assert!(store.get_job(big).await.unwrap().is_none());
        assert!(store.get_job(small).await.unwrap().is_none());

        let pruned = store.store_size().await.unwrap();
        store.vacuum().await.unwrap();
        let vacuumed = store.store_size().await.unwrap();
        match store.backend() {
            prova_store::Backend::Sqlite => {
                // Deleting frees pages inside the file; VACUUM gives them back.
                let free = pruned.free.unwrap();
                assert!(free > 1_000_000, "{before:?} → {pruned:?}");
                assert_eq!(pruned.bytes, before.bytes);
                assert!(
                    vacuumed.bytes + free / 2 < pruned.bytes,
                    "{pruned:?} → {vacuumed:?}"
                );
                assert_eq!(vacuumed.free, Some(0));
            }
            _ => {
                assert!(before.bytes > 1_000_000, "{before:?}");
                assert!(pruned.free.is_none());
                // Plain VACUUM gives back only the empty pages at a
                // table's end, and the other tests of this binary write
                // to the same tables at the same time: that the files
                // shrink cannot be asserted here, only that VACUUM ran
                // and the size is still read.
                assert!(vacuumed.bytes > 0, "{before:?} → {vacuumed:?}");
            }
        }
    })
    .await;
}

#[tokio::test]
async fn keep_last_keeps_the_newest_jobs_of_each_name_however_old() {
    for_each_backend_url(|store, _url| async move {
        let old = days_ago(40);
        let done = [JobState::Started, JobState::Completed];
        let a1 = job(&store, "a", &done, old).await;
        let a2 = job(&store, "a", &done, old).await;
        let b1 = job(&store, "b", &done, old).await;
        let a3 = job(&store, "a", &done, old).await;
        // The newest "a" still runs: it counts among the newest two.
        let a4 = job(&store, "a", &[JobState::Started], old).await;
        let rule = |keep_last| PruneRule {
            ended_before: days_ago(30),
            keep_last,
        };
        let ids =
            |jobs: Vec<prova_store::PrunableJob>| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.prunable_jobs(&rule(None)).await.unwrap()),
            [a1, a2, b1, a3]
        );
        assert_eq!(
            ids(store.prunable_jobs(&rule(Some(0))).await.unwrap()),
            [a1, a2, b1, a3]
        );
        assert_eq!(
            ids(store.prunable_jobs(&rule(Some(2))).await.unwrap()),
            [a1, a2]
        );
        let count = store.prune_jobs(&rule(Some(3))).await.unwrap();
        assert_eq!(count.jobs, 1);
        assert!(store.get_job(a1).await.unwrap().is_none());
        for kept in [a2, b1, a3, a4] {
            assert!(store.get_job(kept).await.unwrap().is_some(), "{kept}");
        }
    })
    .await;
}

#[tokio::test]
async fn an_append_in_flight_is_waited_for_and_pruned_with_its_job() {
    for_each_backend_url(|store, url| async move {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let old = days_ago(40);
        let id = job(
            &store,
            "late",
            &[JobState::Started, JobState::Completed],
            old,
        )
        .await;
        let before: i64 = {
            let pool = AnyPool::connect(&url).await.unwrap();
            rows_of(&pool, &url, id).await["events"]
        };
        // Another process appends to the job as the store does: the job's
        // row first (its event count), then the event; not committed yet.
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        let mut tx = if url.starts_with("sqlite") {
            conn.begin_with("BEGIN IMMEDIATE").await.unwrap()
        } else {
            conn.begin().await.unwrap()
        };
        sqlx::query("UPDATE jobs SET event_count = event_count + 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO events (job_id, kind, run_id, name, emit_time) \
             VALUES ($1, 'job', 0, 'CoverageReport', $2)",
        )
        .bind(id)
        .bind(jiff::Timestamp::now().as_microsecond())
        .execute(&mut *tx)
        .await
        .unwrap();
        let rule = PruneRule {
            ended_before: days_ago(30),
            keep_last: None,
        };
        let (count, ()) = tokio::join!(store.prune_jobs(&rule), async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tx.commit().await.unwrap();
        });
        // The prune waited for the append and took its event too: no
        // event is left without its job.
        let count = count.unwrap();
        assert_eq!(count.jobs, 1);
        assert_eq!(count.events as i64, before + 1);
        let pool = AnyPool::connect(&url).await.unwrap();
        let rows = rows_of(&pool, &url, id).await;
        assert!(rows.values().all(|n| *n == 0), "{rows:?}");
    })
    .await;
}
