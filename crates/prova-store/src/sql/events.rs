//! [`EventStore`] on SQL: reading events back, filtered (appends are in
//! [`super::append`], statuses in [`super::status`]).

use std::collections::BTreeSet;

use async_trait::async_trait;
use futures::TryStreamExt;
use prova_core::status::JobStatus;
use prova_core::{Event, EventQuery, JobId, NewEvent};

use super::event_rows::{
    EVENT_COLUMNS, EVENTS_PER_PACK, event_from_row, events_from_packed, packed_events_sql,
};
use super::pg_copy_out::{self, copy_out_statement};
use super::statement::{Arg, Sql};
use super::{SqlStore, q};
use crate::{EventStore, Result, StoreError};

impl SqlStore {
    /// Reads the events of `query` (`filter` its [`event_filter`]), on
    /// SQLite `packed` many to a row (see [`packed_events_sql`]). A whole
    /// job's events are read in parts, one per core, on as many
    /// connections at once: the database works on each part in its own
    /// thread (SQLite) or process (PostgreSQL) while what has come is
    /// decoded (in a task per part, see [`in_own_task`]).
    async fn query_events_in_parts(
        &self,
        query: &EventQuery,
        filter: &Sql,
        packed: bool,
    ) -> Result<Vec<Event>> {
        let ranges = match (query.job_id, query.limit) {
            (Some(job), None) => self.seq_ranges(job).await?,
            _ => vec![None],
        };
        let parts = ranges.into_iter().map(|range| {
            let mut sql = filter.clone();
            if let Some((lo, hi)) = range {
                sql.push(" AND seq >= ")
                    .arg(Arg::I64(lo))
                    .push(" AND seq < ")
                    .arg(Arg::I64(hi));
            }
            order_and_limit(&mut sql, query, self.database_sorts(query));
            self.read_part(sql, packed)
        });
        let parts = futures::future::try_join_all(parts).await?;
        let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for part in parts {
            out.extend(part);
        }
        Ok(out)
    }

    /// The job's `seq` span cut into one range per core (whole packs
    /// each), or one unbounded range when the job is small.
    async fn seq_ranges(&self, job: JobId) -> Result<Vec<Option<(i64, i64)>>> {
        let (lo, hi): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT min(seq), max(seq) FROM events WHERE job_id = $1")
                .bind(job)
                .fetch_one(&self.pool)
                .await
                .map_err(q("query events"))?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(vec![None]);
        };
        let pack = EVENTS_PER_PACK as i64;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_READ_PARTS));
        let packs = hi / pack - lo / pack + 1;
        if cores < 2 || packs < 4 {
            return Ok(vec![None]);
        }
        let per_part = (packs as u64).div_ceil(cores as u64) as i64 * pack;
        let first = lo / pack * pack;
        Ok((0..cores as i64)
            .map(|i| first + i * per_part)
            .filter(|start| *start <= hi)
            .map(|start| Some((start, start + per_part)))
            .collect())
    }

    /// Runs a read (`packed`: wrapped by [`packed_events_sql`]) and
    /// decodes its rows, in `seq` order.
    async fn read_part(&self, sql: Sql, packed: bool) -> Result<Vec<Event>> {
        let mut out = match (&self.pg, packed) {
            (Some(pg), false) => read_pg(pg, sql).await?,
            (None, false) => {
                let mut out = Vec::new();
                let mut rows = sql.query().fetch(&self.pool);
                while let Some(row) = rows.try_next().await.map_err(q("query events"))? {
                    out.push(event_from_row(&row)?);
                }
                out
            }
            (_, true) => {
                let pool = self.pool.clone();
                in_own_task(async move { read_packed(&pool, sql).await }).await?
            }
        };
        // PostgreSQL is not asked to sort (see [`order_and_limit`]); the
        // packing keeps the inner order in practice, but SQL does not
        // promise it. Rows come in `seq` order or close to it, which a
        // stable sort checks in one pass (free when already sorted).
        if !out.is_sorted_by_key(|e| e.seq) {
            out.sort_by_key(|e| e.seq);
        }
        Ok(out)
    }

    /// Whether the database sorts `query`'s events (`ORDER BY seq`).
    /// PostgreSQL is not asked to when it returns them all: once its
    /// statistics know a job is large, its planner picks a bitmap scan
    /// and a sort of every row, which spills to disk past `work_mem`
    /// (a job of 100,000 events: 16 MB of temporary files, 78 ms of
    /// server time against 26 ms for the same scan unsorted), while the
    /// rows come in `seq` order or close to it anyway. With a `LIMIT` it
    /// sorts: the limit keeps the first events by `seq`.
    fn database_sorts(&self, query: &EventQuery) -> bool {
        self.pg.is_none() || query.limit.is_some()
    }
}

/// A read on PostgreSQL: as binary `COPY` when it can be (see
/// [`pg_copy_out`]), else rows on sqlx's own driver (`Any` would copy
/// every value once more).
async fn read_pg(pg: &sqlx::PgPool, sql: Sql) -> Result<Vec<Event>> {
    if let Some(statement) = copy_out_statement(&sql) {
        let pg = pg.clone();
        match in_own_task(async move { pg_copy_out::read_events(&pg, &statement).await }).await {
            Err(StoreError::Corrupt(e)) => {
                // Rows name the bad one.
                tracing::debug!(error = %e, "copied events unreadable; reading rows");
            }
            other => return other,
        }
    }
    let mut out = Vec::new();
    let mut rows = sql.query().fetch(pg);
    while let Some(row) = rows.try_next().await.map_err(q("query events"))? {
        out.push(event_from_row(&row)?);
    }
    Ok(out)
}

/// A read on SQLite, packed (see [`packed_events_sql`]).
async fn read_packed(pool: &sqlx::AnyPool, sql: Sql) -> Result<Vec<Event>> {
    let sql = Sql {
        text: packed_events_sql(&sql.text),
        args: sql.args,
    };
    let mut out = Vec::new();
    let mut rows = sql.query().fetch(pool);
    while let Some(row) = rows.try_next().await.map_err(q("query events"))? {
        events_from_packed(&row, &mut out)?;
    }
    Ok(out)
}

/// Runs a read in a task of its own, so the parts of a job decode on as
/// many threads (while the database produces the next rows), and a
/// caller that gives up does not cut a read off halfway (a `COPY` cut
/// off leaves its connection to drain it before its next use).
async fn in_own_task<T: Send + 'static>(
    read: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(read).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only when the runtime shuts down.
        Err(_) => Err(StoreError::Query {
            what: "query events",
            source: sqlx::Error::WorkerCrashed,
        }),
    }
}

/// The most parts a job's events are read in at once (each its own
/// connection and SQLite thread).
const MAX_READ_PARTS: usize = 4;

#[async_trait]
impl EventStore for SqlStore {
    async fn append_events(&self, events: &[NewEvent]) -> Result<()> {
        self.append(events).await
    }

    async fn job_status(&self, job_id: JobId) -> Result<Option<JobStatus>> {
        self.read_job_status(job_id).await
    }

    async fn query_events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        let filter = event_filter(query);
        if self.packed_reads {
            match self.query_events_in_parts(query, &filter, true).await {
                Err(e @ (StoreError::Query { .. } | StoreError::Corrupt(_))) => {
                    // E.g. a pack past SQLite's 1 GB string limit (huge
                    // payloads), or one this side cannot read: read row by
                    // row instead (which names a bad row, if one is).
                    tracing::debug!(error = %e, "packed event read failed; reading rows");
                }
                other => return other,
            }
        }
        self.query_events_in_parts(query, &filter, false).await
    }
}

/// `SELECT` [`EVENT_COLUMNS`] of the events matching `query`, without its
/// order and limit.
fn event_filter(query: &EventQuery) -> Sql {
    let mut sql = Sql::new(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE 1 = 1"));
    if let Some(job) = query.job_id {
        sql.push(" AND job_id = ").arg(Arg::I64(job));
    }
    if let Some(kind) = query.kind {
        sql.push(" AND kind = ")
            .arg(Arg::Text(kind.as_str().to_string()));
    }
    if let Some(run) = query.run_id {
        sql.push(" AND run_id = ").arg(Arg::I64(run.into()));
    }
    if let Some(t) = &query.test_name {
        sql.push(" AND test_name = ").arg(Arg::Text(t.clone()));
    }
    if let Some(a) = query.test_attempt {
        sql.push(" AND test_attempt = ").arg(Arg::I64(a.into()));
    }
    if let Some(s) = &query.step_label {
        sql.push(" AND step_label = ").arg(Arg::Text(s.clone()));
    }
    if let Some(t) = &query.target_id {
        sql.push(" AND target_id = ").arg(Arg::Text(t.clone()));
    }
    if !query.names.is_empty() {
        let names: BTreeSet<&String> = query.names.iter().collect();
        sql.push(" AND name IN (");
        for (i, n) in names.into_iter().enumerate() {
            if i > 0 {
                sql.push(",");
            }
            sql.arg(Arg::Text(n.clone()));
        }
        sql.push(")");
    }
    if let Some(after) = query.after_seq {
        sql.push(" AND seq > ").arg(Arg::I64(after));
    }
    sql
}

/// `ORDER BY seq` (when the database `sorts`) and `query`'s limit.
fn order_and_limit(sql: &mut Sql, query: &EventQuery, sorts: bool) {
    if sorts {
        sql.push(" ORDER BY seq");
    }
    if let Some(limit) = query.limit {
        sql.push(&format!(" LIMIT {limit}"));
    }
}

#[cfg(test)]
mod tests {
    use prova_core::{EventKind, Target};

    use super::*;

    #[tokio::test]
    async fn packed_and_row_reads_agree() {
        use crate::{EventStore, JobStore, NewJob};
        let mut store = SqlStore::open("sqlite::memory:").await.unwrap();
        let job = store
            .create_job(NewJob {
                name: "p".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        // Over four packs: a whole job's read is split in parts.
        let events = odd_events(job, 0, EVENTS_PER_PACK * 5 + 7);
        store.append_events(&events).await.unwrap();
        let queries = [
            EventQuery::for_job(job),
            EventQuery {
                run_id: Some(1),
                names: vec!["N1".into(), "N4".into()],
                ..EventQuery::for_job(job)
            },
            EventQuery {
                after_seq: Some(100),
                limit: Some(1500),
                ..Default::default()
            },
            EventQuery::for_job(job + 1),
        ];
        for query in &queries {
            // The packed read itself, not its fallback to rows.
            let packed = store
                .query_events_in_parts(query, &event_filter(query), true)
                .await
                .unwrap();
            store.packed_reads = false;
            let rows = store.query_events(query).await.unwrap();
            assert_eq!(packed, rows, "{query:?}");
        }
        store.packed_reads = false;
        let all: Vec<NewEvent> = store
            .query_events(&queries[0])
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(all, events);
    }

    /// `n` events of `job` with every column's awkward values (NULLs, a
    /// JSON null payload, quotes, control and multi-byte characters), the
    /// `from`th first.
    fn odd_events(job: JobId, from: usize, n: usize) -> Vec<NewEvent> {
        let t0 = jiff::Timestamp::from_microsecond(1_700_000_000_000_000).unwrap();
        (from..from + n)
            .map(|i| NewEvent {
                kind: if i % 9 == 0 {
                    EventKind::Job
                } else {
                    EventKind::Test
                },
                job_id: job,
                run_id: (i % 3) as u32,
                test_name: (i % 2 == 0).then(|| format!("t\"{i}\"\n\u{1f}")),
                test_attempt: (i % 4 != 0).then_some((i % 5) as u32),
                step_label: (i % 3 == 0).then(|| "ステップ".to_string()),
                target: (i % 2 == 1).then(|| Target::with_id(format!("h{i}"))),
                name: format!("N{}", i % 6),
                payload: match i % 5 {
                    0 => None,
                    // A JSON null is a payload too, not its absence.
                    1 => Some(serde_json::Value::Null),
                    2 => Some(serde_json::json!([u64::MAX, -1.5e300, "x", {"a": [null]}])),
                    _ => Some(serde_json::json!({"i": i, "s": "\\ \" \u{0}"})),
                },
                emit_time: t0 + std::time::Duration::from_micros(i as u64),
            })
            .collect()
    }

    /// On PostgreSQL a whole job is read by `COPY`, filtered reads by
    /// rows, and the database is not asked to sort: reads agree with what
    /// was written, in `seq` order, even where the table's physical order
    /// is not `seq` order (rows of a new append filling the space another
    /// job's deleted rows left, after `VACUUM`).
    #[tokio::test]
    async fn copied_and_row_reads_agree_on_postgres() {
        use crate::{EventStore, JobStore, NewJob};
        use sqlx::{AssertSqlSafe, Executor};
        let Ok(url) = std::env::var("PROVA_TEST_POSTGRES_URL") else {
            assert!(
                std::env::var_os("PROVA_REQUIRE_POSTGRES").is_none(),
                "PROVA_REQUIRE_POSTGRES is set but PROVA_TEST_POSTGRES_URL is not"
            );
            return;
        };
        let schema = format!("prova_unit_{}", std::process::id());
        let admin = sqlx::PgPool::connect(&url).await.unwrap();
        admin
            .execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        // No index scans: rows come in the order of the table's pages, as
        // the planner may choose for a large job (an index scan would
        // return them sorted and hide a missing sort).
        let store = SqlStore::open(&format!(
            "{url}{sep}options=-c%20search_path%3D{schema}%20-c%20enable_indexscan%3Doff"
        ))
        .await
        .unwrap();
        let new_job = |name: &str| NewJob {
            name: name.into(),
            ..Default::default()
        };
        let gone = store.create_job(new_job("gone")).await.unwrap();
        let job = store.create_job(new_job("kept")).await.unwrap();
        store
            .append_events(&odd_events(gone, 0, 3000))
            .await
            .unwrap();
        let mut events = odd_events(job, 0, 2000);
        store.append_events(&events).await.unwrap();
        for statement in [
            format!("DELETE FROM {schema}.events WHERE job_id = {gone}"),
            format!("VACUUM {schema}.events"),
        ] {
            admin.execute(AssertSqlSafe(statement)).await.unwrap();
        }
        let later = odd_events(job, 2000, EVENTS_PER_PACK * 4);
        store.append_events(&later).await.unwrap();
        events.extend(later);
        let physical: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT seq FROM {schema}.events WHERE job_id = {job} ORDER BY ctid"
        )))
        .fetch_all(&admin)
        .await
        .unwrap();
        assert!(
            !physical.is_sorted(),
            "the new rows did not reuse the freed space"
        );

        let whole = EventQuery::for_job(job);
        let filter = event_filter(&whole);
        assert!(
            copy_out_statement(&filter).is_some(),
            "a whole job is read by COPY"
        );
        let read = store.query_events(&whole).await.unwrap();
        assert!(read.is_sorted_by_key(|e| e.seq));
        let read_events: Vec<NewEvent> = read.iter().map(|e| e.event.clone()).collect();
        assert_eq!(read_events, events);
        // The same rows through the driver's rows.
        let rows = read_pg(store.pg.as_ref().unwrap(), filter).await.unwrap();
        let rows_copy = {
            let mut r = rows.clone();
            r.sort_by_key(|e| e.seq);
            r
        };
        assert_eq!(rows_copy, read);
        // A text filter goes through rows; an integer one through COPY.
        let by_name = EventQuery {
            names: vec!["N1".into()],
            ..EventQuery::for_job(job)
        };
        assert!(copy_out_statement(&event_filter(&by_name)).is_none());
        let by_run = EventQuery {
            run_id: Some(2),
            after_seq: Some(read[100].seq),
            ..EventQuery::for_job(job)
        };
        for query in [by_name, by_run] {
            let want: Vec<Event> = read
                .iter()
                .filter(|e| query.names.is_empty() || query.names.contains(&e.name))
                .filter(|e| query.run_id.is_none_or(|r| e.run_id == r))
                .filter(|e| query.after_seq.is_none_or(|s| e.seq > s))
                .cloned()
                .collect();
            assert!(!want.is_empty());
            assert_eq!(store.query_events(&query).await.unwrap(), want, "{query:?}");
        }
        // With a limit, the first events by seq.
        let first = EventQuery {
            limit: Some(10),
            ..EventQuery::for_job(job)
        };
        assert_eq!(store.query_events(&first).await.unwrap(), read[..10]);
        drop(store);
        admin
            .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .await
            .unwrap();
    }
}
