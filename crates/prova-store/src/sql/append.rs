//! [`crate::EventStore::append_events`] on SQL: one transaction per batch
//! that counts each job's events (the check that the job exists), inserts
//! the rows in bulk, and saves the statuses that are due (see [`status`]).
//!
//! Each backend inserts through sqlx's own driver for it, not `Any`, which
//! copies every text value once more on the way: on SQLite multi-row
//! `INSERT`s over one writer connection, on PostgreSQL one binary `COPY`
//! of the whole batch ([`pg_copy`]). The rest of the transaction is the
//! same code over either driver ([`BatchDb`]).
//!
//! [`status`]: super::status
//! [`pg_copy`]: super::pg_copy

use std::collections::BTreeMap;
use std::sync::Arc;

use prova_core::{EventKind, JobId, JobState, NewEvent};
use sqlx::{AssertSqlSafe, Database};

use super::pg_copy::EventCopy;
use super::statement::{CachedSql, multi_row_insert};
use super::status::{Tracked, TrackedJobs};
use super::{Backend, SqlStore, corrupt, micros, q};
use crate::{Result, StoreError};

/// Bound parameters per event row in the multi-row INSERT.
const EVENT_PARAMS: usize = 11;
/// Rows per INSERT statement on SQLite (11 parameters each: far under its
/// 32,766). 64, 256 and 1,000 rows measured alike within the noise of a
/// shared machine.
const EVENT_ROWS_PER_INSERT: usize = 64;

/// `INSERT INTO events (...) VALUES (...), (...)` for `rows` rows.
pub(super) fn insert_events_sql(backend: Backend, rows: usize) -> String {
    multi_row_insert(
        backend,
        "INSERT INTO events (job_id, kind, run_id, test_name, test_attempt, step_label, \
         target_id, target, name, payload, emit_time) VALUES ",
        EVENT_PARAMS,
        rows,
        "",
    )
}

/// The full-size SQLite INSERT, built once.
fn full_insert_sql() -> Arc<str> {
    static FULL: CachedSql = CachedSql::new();
    FULL.get(Backend::Sqlite, |b| {
        insert_events_sql(b, EVENT_ROWS_PER_INSERT)
    })
}

/// What a batch does to one job.
#[derive(Default)]
struct JobBatch {
    /// Its events in the batch.
    events: i64,
    /// Its newest job-state event in the batch.
    state: Option<(JobState, jiff::Timestamp)>,
}

/// The batch's jobs, in id order: every transaction locks `jobs` rows in
/// the same order, so two appends cannot deadlock.
fn jobs_of(events: &[NewEvent]) -> BTreeMap<JobId, JobBatch> {
    let mut jobs: BTreeMap<JobId, JobBatch> = BTreeMap::new();
    for e in events {
        let j = jobs.entry(e.job_id).or_default();
        j.events += 1;
        if e.kind == EventKind::Job
            && let Some(st) = JobState::parse(&e.name)
        {
            j.state = Some((st, e.emit_time));
        }
    }
    jobs
}

/// The jobs whose newest job-state event in the batch is a final state.
fn ended_jobs(jobs: BTreeMap<JobId, JobBatch>) -> Vec<JobId> {
    jobs.into_iter()
        .filter(|(_, b)| b.state.is_some_and(|(st, _)| st.is_final()))
        .map(|(job, _)| job)
        .collect()
}

/// An event's target as stored: JSON text.
fn target_json(e: &NewEvent) -> Result<Option<String>> {
    e.target
        .as_ref()
        .map(|t| serde_json::to_string(t).map_err(|err| corrupt("event target", err)))
        .transpose()
}

/// The statements of an append that both drivers run alike. Implemented
/// for sqlx's SQLite, PostgreSQL and `Any` (in-memory SQLite) drivers.
trait BatchDb: Database {}
impl BatchDb for sqlx::Sqlite {}
impl BatchDb for sqlx::Postgres {}
impl BatchDb for sqlx::Any {}

/// Adds `n` events to the job's count and moves its state, returning the
/// new count; `None` when the job does not exist. The `UPDATE` also locks
/// the job's row until the transaction ends (PostgreSQL): appends to one
/// job take their `seq` numbers in the order they commit, which the saved
/// statuses rely on.
async fn count_job_events<DB>(
    conn: &mut DB::Connection,
    job: JobId,
    b: &JobBatch,
) -> Result<Option<i64>>
where
    DB: BatchDb,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    sqlx::query_scalar::<DB, i64>(
        "UPDATE jobs SET event_count = event_count + $1, state = COALESCE($2, state), \
         state_time = COALESCE($3, state_time) WHERE id = $4 RETURNING event_count",
    )
    .bind(b.events)
    .bind(b.state.map(|(s, _)| s.as_str()))
    .bind(b.state.map(|(_, t)| micros(t)))
    .bind(job)
    .fetch_optional(&mut *conn)
    .await
    .map_err(q("count a job's events"))
}

/// The job's newest event (seen by this transaction).
async fn last_seq<DB>(conn: &mut DB::Connection, job: JobId) -> Result<i64>
where
    DB: BatchDb,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    sqlx::query_scalar::<DB, i64>("SELECT max(seq) FROM events WHERE job_id = $1")
        .bind(job)
        .fetch_one(&mut *conn)
        .await
        .map_err(q("save a job's status"))
}

/// Saves the job's status as of its event `last_seq`.
async fn save_status<DB>(
    conn: &mut DB::Connection,
    job: JobId,
    last_seq: i64,
    json: String,
) -> Result<()>
where
    DB: BatchDb,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    sqlx::query::<DB>(
        "INSERT INTO job_status (job_id, last_seq, status) VALUES ($1, $2, $3) \
         ON CONFLICT (job_id) DO UPDATE SET last_seq = excluded.last_seq, status = excluded.status",
    )
    .bind(job)
    .bind(last_seq)
    .bind(json)
    .execute(&mut *conn)
    .await
    .map_err(q("save a job's status"))?;
    Ok(())
}

/// Multi-row INSERTs of `events` (SQLite, on its own driver or `Any`).
async fn insert_rows<DB>(conn: &mut DB::Connection, events: &[NewEvent]) -> Result<()>
where
    DB: BatchDb,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
{
    for chunk in events.chunks(EVENT_ROWS_PER_INSERT) {
        let mut qry = if chunk.len() == EVENT_ROWS_PER_INSERT {
            sqlx::query::<DB>(AssertSqlSafe(full_insert_sql()))
        } else {
            sqlx::query::<DB>(AssertSqlSafe(insert_events_sql(
                Backend::Sqlite,
                chunk.len(),
            )))
        };
        for e in chunk {
            // Target and payload are new strings: moved into the
            // arguments, not copied.
            qry = qry
                .bind(e.job_id)
                .bind(e.kind.as_str())
                .bind(i64::from(e.run_id))
                .bind(e.test_name.as_deref())
                .bind(e.test_attempt.map(i64::from))
                .bind(e.step_label.as_deref())
                .bind(e.target.as_ref().map(|t| t.id.as_str()))
                .bind(target_json(e)?)
                .bind(e.name.as_str())
                .bind(e.payload.as_ref().map(|p| p.to_string()))
                .bind(micros(e.emit_time));
        }
        qry.execute(&mut *conn).await.map_err(q("append events"))?;
    }
    Ok(())
}

/// The steps of one append, over any of the drivers.
struct Append<'a> {
    events: &'a [NewEvent],
    jobs: BTreeMap<JobId, JobBatch>,
    /// The statuses this append carries on, taken from the store's
    /// [`TrackedJobs`] and given back once the transaction commits.
    tracked: BTreeMap<JobId, Tracked>,
}

impl<'a> Append<'a> {
    fn new(events: &'a [NewEvent], tracker: &TrackedJobs) -> Self {
        let jobs = jobs_of(events);
        let tracked = tracker.take(jobs.keys().copied());
        Append {
            events,
            jobs,
            tracked,
        }
    }

    /// Counts every job's events (failing on a job that does not exist)
    /// and keeps the running statuses that still cover every event of
    /// their job.
    async fn count<DB>(&mut self, conn: &mut DB::Connection, tracker: &TrackedJobs) -> Result<()>
    where
        DB: BatchDb,
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
        for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        Option<i64>: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
        DB::Arguments: sqlx::IntoArguments<DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
    {
        for (&job, b) in &self.jobs {
            let Some(total) = count_job_events::<DB>(conn, job, b).await? else {
                return Err(StoreError::JobNotFound(job));
            };
            let before = total - b.events;
            match self.tracked.remove(&job) {
                Some(t) if t.events == before => {
                    self.tracked.insert(job, t);
                }
                None if before == 0 && tracker.has_room(self.tracked.len()) => {
                    self.tracked.insert(job, Tracked::new(job));
                }
                // Another writer appended to the job (another process, a
                // job resumed here): this store no longer knows its whole
                // status, and reads rebuild it from the saved one.
                _ => {}
            }
        }
        Ok(())
    }

    /// Applies the batch to the running statuses (after [`Append::count`]
    /// chose them). CPU only: on PostgreSQL it runs while the server
    /// inserts the rows.
    fn apply(&mut self) {
        if self.tracked.is_empty() {
            return;
        }
        for e in self.events {
            if let Some(t) = self.tracked.get_mut(&e.job_id) {
                t.apply(e);
            }
        }
    }

    /// Saves the running statuses that are due (after [`Append::apply`]),
    /// in the batch's transaction.
    async fn save<DB>(&mut self, conn: &mut DB::Connection) -> Result<()>
    where
        DB: BatchDb,
        for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
        String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
        i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
        DB::Arguments: sqlx::IntoArguments<DB>,
        usize: sqlx::ColumnIndex<DB::Row>,
    {
        for (job, t) in &mut self.tracked {
            let state_moved = self.jobs.get(job).is_some_and(|b| b.state.is_some());
            if let Some(json) = t.due(state_moved)? {
                let seq = last_seq::<DB>(conn, *job).await?;
                save_status::<DB>(conn, *job, seq, json).await?;
            }
        }
        Ok(())
    }

    /// The transaction committed: the running statuses go back to the
    /// store; returns the jobs the batch moved to a final state (their
    /// verdicts are then due, see [`super::verdict`]).
    fn committed(self, tracker: &TrackedJobs) -> Vec<JobId> {
        tracker.give_back(self.tracked);
        ended_jobs(self.jobs)
    }
}

impl SqlStore {
    /// [`crate::EventStore::append_events`]: the batch in one transaction.
    /// On any failure the running statuses of its jobs are dropped (not
    /// given back), so none can claim events that were not stored.
    pub(super) async fn append(&self, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut a = Append::new(events, &self.tracked);
        if let Some(pg) = &self.pg {
            let mut tx = pg.begin().await.map_err(q("append events"))?;
            a.count::<sqlx::Postgres>(&mut tx, &self.tracked).await?;
            let copy = EventCopy::begin(&mut tx).await?.send(events).await?;
            // The server inserts the rows sent while this process applies
            // them to the statuses it keeps (a fifth of the batch's time
            // saved, measured).
            a.apply();
            copy.finish().await?;
            a.save::<sqlx::Postgres>(&mut tx).await?;
            tx.commit().await.map_err(q("append events"))?;
        } else if let Some(writer) = &self.sqlite_writer {
            let mut tx = writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(q("append events"))?;
            a.count::<sqlx::Sqlite>(&mut tx, &self.tracked).await?;
            insert_rows::<sqlx::Sqlite>(&mut tx, events).await?;
            a.apply();
            a.save::<sqlx::Sqlite>(&mut tx).await?;
            tx.commit().await.map_err(q("append events"))?;
        } else {
            // In-memory SQLite: one `Any` connection holds the database.
            let mut tx = self.begin_write("append events").await?;
            a.count::<sqlx::Any>(&mut tx, &self.tracked).await?;
            insert_rows::<sqlx::Any>(&mut tx, events).await?;
            a.apply();
            a.save::<sqlx::Any>(&mut tx).await?;
            tx.commit().await.map_err(q("append events"))?;
        }
        let ended = a.committed(&self.tracked);
        self.save_verdicts(&ended).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_final_job_states_end_a_job() {
        let ev = |job, name: &str| NewEvent::job(job, name, None);
        let events = [
            ev(1, JobState::Started.event_name()),
            ev(2, JobState::Completed.event_name()),
            ev(3, JobState::Paused.event_name()),
            ev(4, JobState::Cancelled.event_name()),
            ev(5, "FinalReport"),
        ];
        assert_eq!(ended_jobs(jobs_of(&events)), [2, 4]);
    }

    #[test]
    fn insert_sql_has_a_placeholder_per_value() {
        let s = insert_events_sql(Backend::Sqlite, 2);
        assert!(s.ends_with("VALUES (?,?,?,?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?,?,?,?)"));
    }
}
