//! Schema upgrades over stores that already hold data: a store made by an
//! older prova opens with a newer one and keeps its jobs and events.

use prova_core::{EventKind, EventQuery, JobState};
use prova_store::{EventStore, JobFilter, JobStore, LeaseStore, SqlStore, TargetLockStore};
use serde_json::json;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Row};

mod support;
use support::PostgresSchema;

const T0: i64 = 1_700_000_000_000_000;

fn ts(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(T0 + us).unwrap()
}

#[tokio::test]
async fn migration_0003_keeps_jobs_and_events_and_moves_coverage_into_events() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("v2.db").display());
    eprintln!("backend: sqlite");
    upgrade_from_0002(&sqlite, sqlx::migrate!("./migrations/sqlite")).await;
    if let Some(pg) = PostgresSchema::create().await {
        eprintln!("backend: postgres ({})", pg.url);
        upgrade_from_0002(&pg.url, sqlx::migrate!("./migrations/postgres")).await;
        pg.drop().await;
    }
}

/// Builds a store at schema 0002 with a job in every table, opens it (which
/// migrates it to the newest schema) and checks what survived.
async fn upgrade_from_0002(url: &str, migrator: Migrator) {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url).await.unwrap();
    migrator.run_to(2, &pool).await.unwrap();
    let job = seed_v2(&pool).await;
    pool.close().await;

    let store = SqlStore::open(url).await.unwrap();

    let rec = store.get_job(job).await.unwrap().expect("the job survives");
    assert_eq!(
        (rec.name.as_str(), rec.tags.clone(), rec.requestor.as_str()),
        ("old", vec!["nightly".to_string()], "me")
    );
    assert_eq!(rec.state, Some(JobState::Completed));
    assert_eq!(rec.state_time, Some(ts(3)));
    let tagged = store
        .list_jobs(&JobFilter {
            tags: vec!["nightly".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(tagged.iter().map(|j| j.id).collect::<Vec<_>>(), [job]);

    let events = store.query_events(&EventQuery::for_job(job)).await.unwrap();
    let seen: Vec<(EventKind, u32, &str, Option<serde_json::Value>, i64)> = events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.run_id,
                e.name.as_str(),
                e.payload.clone(),
                e.emit_time.as_microsecond() - T0,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (EventKind::Job, 0, "JobStateStarted", None, 1),
            (
                EventKind::Test,
                1,
                "CmdStdout",
                Some(json!({"Msg": "hi"})),
                2
            ),
            (EventKind::Job, 0, "JobStateCompleted", None, 3),
            // The coverage rows, as events, in the order attached.
            (
                EventKind::Job,
                1,
                "CoverageReport",
                Some(json!({"total endpoints": 908})),
                5
            ),
            (EventKind::Job, 0, "CoverageReport", Some(json!({})), 6),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    let target = events[1].target.as_ref().expect("the test event's target");
    assert_eq!(target.id, "host-a");
    assert_eq!(events[1].step_label.as_deref(), Some("say"));

    // Leases and locks taken under 0002 still hold.
    assert_eq!(
        store.lease_owner(job).await.unwrap(),
        Some(("instance-a".to_string(), false))
    );
    let newer = store
        .create_job(prova_store::NewJob {
            name: "new".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(newer > job, "ids keep growing: {newer} after {job}");
    let ttl = std::time::Duration::from_secs(60);
    let got = store
        .lock_targets(newer, &["host-a".into()], ttl, true)
        .await
        .unwrap();
    assert!(got.is_empty(), "host-a is still locked by job {job}");

    // The tables nothing reads are gone.
    let pool = AnyPool::connect(url).await.unwrap();
    for table in ["reports", "coverage"] {
        let err = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT 1 FROM {table}")))
            .fetch_all(&pool)
            .await;
        assert!(err.is_err(), "table {table} is still there");
    }
    pool.close().await;
}

/// A job in every table of schema 0002, written with that schema's SQL.
async fn seed_v2(pool: &AnyPool) -> i64 {
    let job: i64 = sqlx::query(
        "INSERT INTO jobs (name, tags, requestor, descriptor, extended_descriptor, \
         created_at, state, state_time) \
         VALUES ('old', '[\"nightly\"]', 'me', '{}', '{}', $1, 'Completed', $2) RETURNING id",
    )
    .bind(T0)
    .bind(T0 + 3)
    .fetch_one(pool)
    .await
    .unwrap()
    .try_get(0)
    .unwrap();
    let rows: [(&str, Vec<i64>); 6] = [
        (
            "INSERT INTO job_tags (tag, job_id) VALUES ('nightly', $1)",
            vec![job],
        ),
        (
            "INSERT INTO events (job_id, kind, run_id, test_name, test_attempt, step_label, \
             target_id, target, name, payload, emit_time) VALUES \
             ($1, 'job', 0, NULL, NULL, NULL, NULL, NULL, 'JobStateStarted', NULL, $2), \
             ($1, 'test', 1, 't', 0, 'say', 'host-a', '{\"ID\":\"host-a\"}', 'CmdStdout', \
              '{\"Msg\":\"hi\"}', $3), \
             ($1, 'job', 0, NULL, NULL, NULL, NULL, NULL, 'JobStateCompleted', NULL, $4)",
            vec![job, T0 + 1, T0 + 2, T0 + 3],
        ),
        (
            "INSERT INTO reports (job_id, run_id, reporter, success, data, report_time) \
             VALUES ($1, 1, 'TargetSuccess', 1, '{}', $2)",
            vec![job, T0 + 4],
        ),
        (
            "INSERT INTO coverage (job_id, run_id, report, created_at) VALUES \
             ($1, 1, '{\"total endpoints\": 908}', $2), ($1, NULL, '{}', $3)",
            vec![job, T0 + 5, T0 + 6],
        ),
        (
            "INSERT INTO job_leases (job_id, owner, expires_at) VALUES ($1, 'instance-a', $2)",
            vec![job, i64::MAX / 2],
        ),
        (
            "INSERT INTO target_locks (target_id, job_id, expires_at) VALUES ('host-a', $1, $2)",
            vec![job, i64::MAX / 2],
        ),
    ];
    for (sql, args) in rows {
        let mut q = sqlx::query(sql);
        for a in args {
            q = q.bind(a);
        }
        q.execute(pool).await.unwrap();
    }
    job
}

#[tokio::test]
async fn migration_0005_keeps_events_counts_them_and_statuses_read_right() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("v4.db").display());
    eprintln!("backend: sqlite");
    upgrade_from_0004(&sqlite, sqlx::migrate!("./migrations/sqlite")).await;
    if let Some(pg) = PostgresSchema::create().await {
        eprintln!("backend: postgres ({})", pg.url);
        upgrade_from_0004(&pg.url, sqlx::migrate!("./migrations/postgres")).await;
        pg.drop().await;
    }
}

/// Builds a store at schema 0004 holding a job's events (0002's seed, run
/// through 0003), migrates it by opening it, and checks the events, their
/// count, and the job's status before and after new appends.
async fn upgrade_from_0004(url: &str, migrator: Migrator) {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url).await.unwrap();
    migrator.run_to(2, &pool).await.unwrap();
    let job = seed_v2(&pool).await;
    migrator.run_to(4, &pool).await.unwrap();
    let before: Vec<(i64, String)> =
        sqlx::query("SELECT seq, name FROM events WHERE job_id = $1 ORDER BY seq")
            .bind(job)
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(before.len(), 5);
    pool.close().await;

    let store = SqlStore::open(url).await.unwrap();
    let events = store.query_events(&EventQuery::for_job(job)).await.unwrap();
    let after: Vec<(i64, String)> = events.iter().map(|e| (e.seq, e.name.clone())).collect();
    assert_eq!(after, before, "every event kept, with its seq");

    let pool = AnyPool::connect(url).await.unwrap();
    let count: i64 = sqlx::query("SELECT event_count FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 5, "the job's events are counted");
    for index in ["events_job_run", "events_job_name"] {
        // Dropping an index that is gone fails on both backends.
        let gone = sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {index}")))
            .execute(&pool)
            .await;
        assert!(gone.is_err(), "index {index} is still there");
    }

    // No saved status yet: the status is rebuilt from all events.
    let rebuilt = |events: &[prova_core::Event]| prova_core::status::rebuild(job, "old", events);
    assert_eq!(store.job_status(job).await.unwrap(), Some(rebuilt(&events)));

    // An append to the migrated job (this store did not see its first
    // events, so it saves no status for it), then a new job's whole life.
    let more = prova_core::NewEvent {
        kind: EventKind::Job,
        job_id: job,
        run_id: 0,
        test_name: None,
        test_attempt: None,
        step_label: None,
        target: None,
        name: "JobStateCancelled".into(),
        payload: None,
        emit_time: ts(9),
    };
    store
        .append_events(std::slice::from_ref(&more))
        .await
        .unwrap();
    let events = store.query_events(&EventQuery::for_job(job)).await.unwrap();
    assert_eq!(events.len(), 6);
    let status = store.job_status(job).await.unwrap().unwrap();
    assert_eq!(status, rebuilt(&events));
    assert_eq!(status.state, Some(JobState::Cancelled));
    let count: i64 = sqlx::query("SELECT event_count FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 6);
    pool.close().await;
}

#[tokio::test]
async fn migrations_0006_and_0007_over_a_store_made_at_0005() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("v5.db").display());
    eprintln!("backend: sqlite");
    upgrade_from_0005(&sqlite, sqlx::migrate!("./migrations/sqlite")).await;
    if let Some(pg) = PostgresSchema::create().await {
        eprintln!("backend: postgres ({})", pg.url);
        upgrade_from_0005(&pg.url, sqlx::migrate!("./migrations/postgres")).await;
        pg.drop().await;
    }
}

/// A store at schema 0005 holding an ended job ("old", Completed),
/// migrated by opening it: the name filter (0006) finds the job in any
/// case, its verdict is unknown (readers compute it from its status), and
/// an artifact of it (0007) is stored, listed and read back.
async fn upgrade_from_0005(url: &str, migrator: Migrator) {
    use prova_store::ArtifactStore;
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url).await.unwrap();
    migrator.run_to(2, &pool).await.unwrap();
    let job = seed_v2(&pool).await;
    migrator.run_to(5, &pool).await.unwrap();
    pool.close().await;

    let store = SqlStore::open(url).await.unwrap();
    let rec = store.get_job(job).await.unwrap().unwrap();
    assert_eq!(rec.state, Some(JobState::Completed));
    assert_eq!(rec.verdict, None, "no verdict stored before 0006");
    let found = store
        .list_jobs(&JobFilter {
            name_contains: Some("OL".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.iter().map(|j| j.id).collect::<Vec<_>>(), [job]);
    assert_eq!(store.get_job(job).await.unwrap().unwrap().name, "old");
    assert!(store.list_artifacts(job, 10).await.unwrap().is_empty());
    assert!(
        store
            .put_artifact(job, "run-1/t/junit.xml", b"\0<x/>", u64::MAX)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .artifact_chunk(job, "run-1/t/junit.xml", 0)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"\0<x/>"[..])
    );
    assert_eq!(store.list_artifacts(job, 10).await.unwrap().len(), 1);
}
