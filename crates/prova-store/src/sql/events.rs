//! [`EventStore`] on SQL: appending events in multi-row INSERTs and
//! reading them back, filtered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use prova_core::{Event, EventKind, EventQuery, JobId, JobState, NewEvent};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AssertSqlSafe};

use super::event_rows::{
    EVENT_COLUMNS, EVENTS_PER_PACK, event_from_row, events_from_packed, packed_events_sql,
};
use super::statement::{Arg, CachedSql, Sql, multi_row_insert};
use super::{Backend, SqlStore, corrupt, micros, q};
use crate::{EventStore, Result, StoreError};

/// Bound parameters per event row in the multi-row INSERT.
const EVENT_PARAMS: usize = 11;
/// Rows per INSERT statement (11 parameters each: far under SQLite's
/// 32,766 and PostgreSQL's 65,535). 64, 256 and 1,000 rows measured alike
/// within the noise of a shared machine (140k–210k events/s on SQLite).
const EVENT_ROWS_PER_INSERT: usize = 64;

/// `INSERT INTO events (...) VALUES (...), (...)` for `rows` rows.
fn insert_events_sql(backend: Backend, rows: usize) -> String {
    multi_row_insert(
        backend,
        "INSERT INTO events (job_id, kind, run_id, test_name, test_attempt, step_label, \
         target_id, target, name, payload, emit_time) VALUES ",
        EVENT_PARAMS,
        rows,
        "",
    )
}

/// The full-size INSERT, built once per backend.
fn full_insert_sql(backend: Backend) -> Arc<str> {
    static FULL: CachedSql = CachedSql::new();
    FULL.get(backend, |b| insert_events_sql(b, EVENT_ROWS_PER_INSERT))
}

/// An event's values, ready to bind.
fn bind_event<'q>(
    qry: Query<'q, Any, AnyArguments>,
    e: &'q NewEvent,
) -> Result<Query<'q, Any, AnyArguments>> {
    let target = target_json(e)?;
    Ok(qry
        .bind(e.job_id)
        .bind(e.kind.as_str())
        .bind(i64::from(e.run_id))
        .bind(e.test_name.as_deref())
        .bind(e.test_attempt.map(i64::from))
        .bind(e.step_label.as_deref())
        .bind(e.target.as_ref().map(|t| t.id.as_str()))
        .bind(target)
        .bind(e.name.as_str())
        .bind(e.payload.as_ref().map(|p| p.to_string()))
        .bind(micros(e.emit_time)))
}

/// PostgreSQL's bulk insert: a whole batch in one statement, each column
/// bound as one array. 64-row `VALUES` lists cost a round trip and a
/// 704-parameter bind per 64 events; this costs one per batch. `UNNEST`
/// emits the arrays' elements in order, so `seq` numbers the events in the
/// order given, as the multi-row `VALUES` do.
const PG_INSERT_EVENTS: &str = "INSERT INTO events (job_id, kind, run_id, test_name, \
     test_attempt, step_label, target_id, target, name, payload, emit_time) \
     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], \
     $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[])";

/// A batch of events as columns, for [`PG_INSERT_EVENTS`].
#[derive(Default)]
struct EventColumns<'a> {
    job_id: Vec<i64>,
    kind: Vec<&'a str>,
    run_id: Vec<i64>,
    test_name: Vec<Option<&'a str>>,
    test_attempt: Vec<Option<i64>>,
    step_label: Vec<Option<&'a str>>,
    target_id: Vec<Option<&'a str>>,
    target: Vec<Option<String>>,
    name: Vec<&'a str>,
    payload: Vec<Option<String>>,
    emit_time: Vec<i64>,
}

impl<'a> EventColumns<'a> {
    fn new(events: &'a [NewEvent]) -> Result<Self> {
        let mut c = EventColumns::default();
        for e in events {
            c.job_id.push(e.job_id);
            c.kind.push(e.kind.as_str());
            c.run_id.push(i64::from(e.run_id));
            c.test_name.push(e.test_name.as_deref());
            c.test_attempt.push(e.test_attempt.map(i64::from));
            c.step_label.push(e.step_label.as_deref());
            c.target_id.push(e.target.as_ref().map(|t| t.id.as_str()));
            c.target.push(target_json(e)?);
            c.name.push(e.name.as_str());
            c.payload.push(e.payload.as_ref().map(|p| p.to_string()));
            c.emit_time.push(micros(e.emit_time));
        }
        Ok(c)
    }
}

/// An event's target as stored: JSON text.
fn target_json(e: &NewEvent) -> Result<Option<String>> {
    e.target
        .as_ref()
        .map(|t| serde_json::to_string(t).map_err(|err| corrupt("event target", err)))
        .transpose()
}

/// Moves each job to its newest state of a batch, in the batch's
/// transaction (on either driver: `Any`, or PostgreSQL's own).
async fn set_job_states<DB>(
    conn: &mut DB::Connection,
    states: BTreeMap<JobId, (JobState, jiff::Timestamp)>,
) -> Result<()>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    for (job_id, (state, time)) in states {
        sqlx::query::<DB>("UPDATE jobs SET state = $1, state_time = $2 WHERE id = $3")
            .bind(state.as_str())
            .bind(micros(time))
            .bind(job_id)
            .execute(&mut *conn)
            .await
            .map_err(q("update job state"))?;
    }
    Ok(())
}

impl SqlStore {
    /// [`EventStore::append_events`] on PostgreSQL: the batch in one
    /// `INSERT ... SELECT * FROM UNNEST(...)`, then the jobs' states, in one
    /// transaction.
    async fn append_events_pg(
        &self,
        pg: &sqlx::PgPool,
        events: &[NewEvent],
        states: BTreeMap<JobId, (JobState, jiff::Timestamp)>,
    ) -> Result<()> {
        let c = EventColumns::new(events)?;
        let mut tx = pg.begin().await.map_err(q("append events"))?;
        let inserted = sqlx::query(PG_INSERT_EVENTS)
            .bind(&c.job_id)
            .bind(&c.kind)
            .bind(&c.run_id)
            .bind(&c.test_name)
            .bind(&c.test_attempt)
            .bind(&c.step_label)
            .bind(&c.target_id)
            .bind(&c.target)
            .bind(&c.name)
            .bind(&c.payload)
            .bind(&c.emit_time)
            .execute(&mut *tx)
            .await;
        if let Err(e) = inserted {
            drop(tx);
            return Err(self.append_failed(events, e).await);
        }
        set_job_states::<sqlx::Postgres>(&mut tx, states).await?;
        tx.commit().await.map_err(q("append events"))?;
        Ok(())
    }

    /// The error of an append whose insert failed with `e` (its
    /// transaction already dropped): events must belong to jobs (a foreign
    /// key), so a violation names the missing job. Checked only on failure,
    /// to keep small appends at three round trips.
    async fn append_failed(&self, events: &[NewEvent], e: sqlx::Error) -> StoreError {
        if e.as_database_error()
            .is_some_and(|d| d.is_foreign_key_violation())
        {
            let jobs: BTreeSet<JobId> = events.iter().map(|e| e.job_id).collect();
            if let Err(missing) = self.check_jobs_exist(&jobs).await {
                return missing;
            }
        }
        StoreError::Query {
            what: "append events",
            source: e,
        }
    }

    /// Reads the events of `query` (`filter` its [`event_filter`]), on
    /// SQLite `packed` many to a row (see [`packed_events_sql`]). A whole
    /// job's events are read in parts, one per core, on as many
    /// connections at once: the database works on each part in its own
    /// thread (SQLite) or process (PostgreSQL) while this task decodes
    /// what has come.
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
            order_and_limit(&mut sql, query);
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
        let mut out = Vec::new();
        if !packed {
            let mut rows = sql.query().fetch(&self.pool);
            while let Some(row) = rows.try_next().await.map_err(q("query events"))? {
                out.push(event_from_row(&row)?);
            }
            return Ok(out);
        }
        let sql = Sql {
            text: packed_events_sql(&sql.text),
            args: sql.args,
        };
        let mut rows = sql.query().fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(q("query events"))? {
            events_from_packed(&row, &mut out)?;
        }
        // The packing keeps the inner order in practice; SQL does not
        // promise it, so make sure (free when already sorted).
        if !out.is_sorted_by_key(|e| e.seq) {
            out.sort_by_key(|e| e.seq);
        }
        Ok(out)
    }
}

/// The most parts a job's events are read in at once (each its own
/// connection and SQLite thread).
const MAX_READ_PARTS: usize = 4;

#[async_trait]
impl EventStore for SqlStore {
    async fn append_events(&self, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // The newest job-state event of each job in this batch.
        let mut states: BTreeMap<JobId, (JobState, jiff::Timestamp)> = BTreeMap::new();
        for e in events {
            if e.kind == EventKind::Job
                && let Some(st) = JobState::parse(&e.name)
            {
                states.insert(e.job_id, (st, e.emit_time));
            }
        }

        if let Some(pg) = &self.pg {
            return self.append_events_pg(pg, events, states).await;
        }
        let mut tx = self.begin_write("append events").await?;
        for chunk in events.chunks(EVENT_ROWS_PER_INSERT) {
            let mut qry = if chunk.len() == EVENT_ROWS_PER_INSERT {
                sqlx::query(AssertSqlSafe(full_insert_sql(self.backend)))
            } else {
                sqlx::query(AssertSqlSafe(insert_events_sql(self.backend, chunk.len())))
            };
            for e in chunk {
                qry = bind_event(qry, e)?;
            }
            if let Err(e) = qry.execute(&mut *tx).await {
                drop(tx);
                return Err(self.append_failed(events, e).await);
            }
        }
        set_job_states::<Any>(&mut tx, states).await?;
        tx.commit().await.map_err(q("append events"))?;
        Ok(())
    }

    async fn query_events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        let filter = event_filter(query);
        if self.packed_reads {
            match self.query_events_in_parts(query, &filter, true).await {
                Err(StoreError::Query { source, .. }) => {
                    // E.g. a pack past SQLite's 1 GB string limit (huge
                    // payloads): read row by row instead.
                    tracing::debug!(error = %source, "packed event read failed; reading rows");
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

fn order_and_limit(sql: &mut Sql, query: &EventQuery) {
    sql.push(" ORDER BY seq");
    if let Some(limit) = query.limit {
        sql.push(&format!(" LIMIT {limit}"));
    }
}

#[cfg(test)]
mod tests {
    use prova_core::Target;

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
        let t0 = jiff::Timestamp::from_microsecond(1_700_000_000_000_000).unwrap();
        // Over four packs: a whole job's read is split in parts.
        let events: Vec<NewEvent> = (0..(EVENTS_PER_PACK * 5 + 7))
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
                payload: (i % 5 != 0).then(|| serde_json::json!({"i": i, "s": "\\ \" \u{0}"})),
                emit_time: t0 + std::time::Duration::from_micros(i as u64),
            })
            .collect();
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
            store.packed_reads = true;
            let packed = store.query_events(query).await.unwrap();
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
    #[test]
    fn insert_sql_numbers_every_parameter() {
        let s = insert_events_sql(Backend::Postgres, 2);
        assert!(s.ends_with(
            "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11),($12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)"
        ));
        let s = insert_events_sql(Backend::Sqlite, 2);
        assert!(s.ends_with("VALUES (?,?,?,?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?,?,?,?)"));
    }
}
