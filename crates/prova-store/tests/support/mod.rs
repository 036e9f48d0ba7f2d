//! What the store's test binaries share: a fresh database on every backend
//! available. SQLite in a temporary directory always; PostgreSQL when
//! `PROVA_TEST_POSTGRES_URL` is set, each test in a schema of its own (so
//! tests can run in parallel), dropped at the end.
#![allow(dead_code)] // each test binary uses its own part

use std::future::Future;

use prova_store::SqlStore;
use sqlx::Connection;

/// Runs `f` once per backend with a fresh, empty store.
pub async fn for_each_backend<F, Fut>(f: F)
where
    F: Fn(SqlStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_path(&dir.path().join("sub/dir/prova.db"))
        .await
        .unwrap();
    eprintln!("backend: sqlite");
    f(store).await;

    if let Some(pg) = PostgresSchema::create().await {
        let store = SqlStore::open(&pg.url).await.unwrap();
        eprintln!("backend: postgres ({})", pg.url);
        f(store).await;
        pg.drop().await;
    }
}

/// An empty PostgreSQL schema, and a URL whose connections use it.
pub struct PostgresSchema {
    pub url: String,
    name: String,
    conn: sqlx::AnyConnection,
}

impl PostgresSchema {
    /// A new schema on the server at `PROVA_TEST_POSTGRES_URL`; `None` when
    /// that is unset, unless `PROVA_REQUIRE_POSTGRES` is set (CI: never
    /// skip there).
    pub async fn create() -> Option<PostgresSchema> {
        let url = std::env::var("PROVA_TEST_POSTGRES_URL").ok();
        if url.is_none() && std::env::var_os("PROVA_REQUIRE_POSTGRES").is_some() {
            panic!(
                "PROVA_REQUIRE_POSTGRES is set but PROVA_TEST_POSTGRES_URL is not: start PostgreSQL with scripts/postgres.sh"
            );
        }
        let url = url?;
        let name = format!(
            "prova_test_{}_{}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond() % 1_000_000_000_000
        );
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        Some(PostgresSchema {
            url: format!("{url}{sep}options=-c%20search_path%3D{name}"),
            name,
            conn,
        })
    }

    pub async fn drop(mut self) {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.name
        )))
        .execute(&mut self.conn)
        .await
        .unwrap();
    }
}

/// Runs `f` once per backend with a fresh, empty store and its URL (for a
/// second store on the same database, or plain SQL).
pub async fn for_each_backend_url<F, Fut>(f: F)
where
    F: Fn(SqlStore, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("prova.db").display());
    let store = SqlStore::open(&url).await.unwrap();
    eprintln!("backend: sqlite");
    f(store, url).await;

    if let Some(pg) = PostgresSchema::create().await {
        let store = SqlStore::open(&pg.url).await.unwrap();
        eprintln!("backend: postgres ({})", pg.url);
        f(store, pg.url.clone()).await;
        pg.drop().await;
    }
}

/// A test event of run 1, test "T", attempt 0, on `target`: of step
/// `step`, or of the test itself without one.
pub fn test_event(
    job: prova_core::JobId,
    step: Option<&str>,
    target: &str,
    name: &str,
    payload: Option<serde_json::Value>,
    emit_time: jiff::Timestamp,
) -> prova_core::NewEvent {
    prova_core::NewEvent {
        kind: prova_core::EventKind::Test,
        job_id: job,
        run_id: 1,
        test_name: Some("T".into()),
        test_attempt: Some(0),
        step_label: step.map(str::to_string),
        target: Some(prova_core::Target::with_id(target)),
        name: name.into(),
        payload,
        emit_time,
    }
}
