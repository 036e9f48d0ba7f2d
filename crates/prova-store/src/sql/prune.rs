//! [`PruneStore`] on SQL: deleting ended jobs with every row that belongs
//! to them, in batches, and giving the space back.
//!
//! Since migration 0005, `events` has no foreign key to `jobs` (it cost
//! every append), so a job's events do not go with it by themselves; the
//! other tables still cascade, but every one is deleted here explicitly,
//! in the job's transaction, so nothing depends on `PRAGMA foreign_keys`.

use std::collections::HashSet;

use async_trait::async_trait;
use prova_core::{JobId, JobState};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::statement::{Arg, Sql};
use super::{Backend, SqlStore, corrupt, from_micros, micros, q};
use crate::{
    PRUNE_BATCH_EVENTS, PRUNE_BATCH_JOBS, PrunableJob, PruneCount, PruneRule, PruneStore, Result,
    StoreSize,
};

/// Every table with a `job_id` column, in the order a job's rows are
/// deleted: its events first (the bulk), then the rest; the `jobs` row
/// goes last. `tests/prune.rs` reads the schema for every table with a
/// `job_id` column and checks none keeps a row of a pruned job, so a table
/// a later migration adds without a cascade fails there until it is
/// listed here.
pub(super) const JOB_TABLES: [&str; 7] = [
    "events",
    "artifact_chunks",
    "artifacts",
    "job_status",
    "job_tags",
    "job_leases",
    "target_locks",
];

/// The tables `prova prune --vacuum` vacuums on PostgreSQL.
const VACUUM_TABLES: &str =
    "jobs, events, job_status, job_tags, job_leases, target_locks, artifacts, artifact_chunks";

/// The jobs `rule` selects by state, age and holder, oldest id first,
/// from the job after `after` on: (id, name, state, state_time,
/// event_count). `keep_last` is applied by the caller ([`newest_of_names`]).
/// With `lock` (PostgreSQL, in the prune's transaction), their `jobs` rows
/// are locked: an append to one of them (`prova coverage report --job`)
/// updates that row first, so it waits, then finds the job gone and
/// fails, instead of leaving events without a job.
fn selected(rule: &PruneRule, now: i64, after: JobId, limit: Option<usize>, lock: bool) -> Sql {
    let mut sql =
        Sql::new("SELECT id, name, state, state_time, event_count FROM jobs WHERE state IN (");
    for (i, st) in JobState::ALL
        .into_iter()
        .filter(|s| s.is_final())
        .enumerate()
    {
        if i > 0 {
            sql.push(",");
        }
        sql.arg(Arg::Text(st.as_str().to_string()));
    }
    sql.push(") AND state_time < ")
        .arg(Arg::I64(micros(rule.ended_before)));
    // A live lease or target lock: some process still holds the job (it
    // ended but has not let go yet); it is left for a later prune.
    sql.push(" AND NOT EXISTS (SELECT 1 FROM job_leases l WHERE l.job_id = jobs.id AND l.expires_at >= ")
        .arg(Arg::I64(now))
        .push(") AND NOT EXISTS (SELECT 1 FROM target_locks t WHERE t.job_id = jobs.id AND t.expires_at >= ")
        .arg(Arg::I64(now))
        .push(") AND id > ")
        .arg(Arg::I64(after))
        .push(" ORDER BY id");
    if let Some(n) = limit {
        sql.push(&format!(" LIMIT {n}"));
    }
    if lock {
        sql.push(" FOR UPDATE");
    }
    sql
}

/// The newest `n` jobs of each name (by id, whatever their state): the
/// ones `keep_last` keeps. Read once per prune, not per batch (a window
/// over every job costs a sort): a job created meanwhile only makes the
/// set keep more than it must.
async fn newest_of_names(pool: &sqlx::AnyPool, n: u32) -> Result<HashSet<JobId>> {
    let rows = sqlx::query(
        "SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY name ORDER BY id DESC) \
         AS newest FROM jobs) ranked WHERE newest <= $1",
    )
    .bind(i64::from(n))
    .fetch_all(pool)
    .await
    .map_err(q("read the newest jobs of each name"))?;
    rows.iter()
        .map(|r| r.try_get::<i64, _>(0).map_err(|e| corrupt("job id", e)))
        .collect()
}

fn prunable_from_row(row: &AnyRow) -> Result<PrunableJob> {
    let get = |e: sqlx::Error| corrupt("job row", e);
    let id: i64 = row.try_get(0).map_err(get)?;
    let state: &str = row.try_get(2).map_err(get)?;
    let state = JobState::parse(state)
        .ok_or_else(|| corrupt("job state", format!("job {id}: {state:?}")))?;
    let events: i64 = row.try_get(4).map_err(get)?;
    Ok(PrunableJob {
        id,
        name: row.try_get(1).map_err(get)?,
        state,
        ended_at: from_micros("job state_time", row.try_get(3).map_err(get)?)?,
        events: u64::try_from(events).unwrap_or(0),
    })
}

/// How many of `jobs` (their event counts, in order) one transaction
/// takes: at most `max_jobs`, and while their events stay within
/// `max_events`; always at least one, so a job bigger than the budget
/// still goes (alone).
fn batch_len(events: &[u64], max_jobs: usize, max_events: u64) -> usize {
    let mut total = 0u64;
    let mut n = 0;
    for &e in events.iter().take(max_jobs) {
        total = total.saturating_add(e);
        if n > 0 && total > max_events {
            break;
        }
        n += 1;
    }
    n
}

/// `DELETE FROM table WHERE column IN (ids)`: how many rows went.
async fn delete_where_in(
    tx: &mut Transaction<'static, Any>,
    table: &str,
    column: &str,
    ids: &[JobId],
) -> Result<u64> {
    let mut sql = Sql::new(&format!("DELETE FROM {table} WHERE {column} IN ("));
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push(",");
        }
        sql.arg(Arg::I64(*id));
    }
    sql.push(")");
    let res = sql
        .query()
        .execute(&mut **tx)
        .await
        .map_err(q("prune jobs"))?;
    Ok(res.rows_affected())
}

/// What one prune transaction did.
struct Batch {
    jobs: u64,
    events: u64,
    /// The next batch starts after this job.
    next_after: JobId,
}

impl SqlStore {
    /// The `keep_last` newest jobs of each name, if asked.
    async fn kept(&self, rule: &PruneRule) -> Result<HashSet<JobId>> {
        match rule.keep_last.filter(|n| *n > 0) {
            Some(n) => newest_of_names(&self.pool, n).await,
            None => Ok(HashSet::new()),
        }
    }

    /// One batch: selects (and on PostgreSQL locks) the next jobs after
    /// `after`, deletes those not `kept` with their rows, commits. `None`
    /// when no job is left to look at.
    async fn prune_batch(
        &self,
        rule: &PruneRule,
        after: JobId,
        kept: &HashSet<JobId>,
    ) -> Result<Option<Batch>> {
        let mut tx = self.begin_write("prune jobs").await?;
        let now = micros(jiff::Timestamp::now());
        let lock = self.backend == Backend::Postgres;
        let rows = selected(rule, now, after, Some(PRUNE_BATCH_JOBS), lock)
            .query()
            .fetch_all(&mut *tx)
            .await
            .map_err(q("select jobs to prune"))?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            jobs.push(prunable_from_row(row)?);
        }
        let Some(last) = jobs.last().map(|j| j.id) else {
            tx.rollback().await.map_err(q("prune jobs"))?;
            return Ok(None);
        };
        jobs.retain(|j| !kept.contains(&j.id));
        let counts: Vec<u64> = jobs.iter().map(|j| j.events).collect();
        let n = batch_len(&counts, PRUNE_BATCH_JOBS, PRUNE_BATCH_EVENTS);
        if n == 0 {
            // Every job of this page is kept.
            tx.rollback().await.map_err(q("prune jobs"))?;
            return Ok(Some(Batch {
                jobs: 0,
                events: 0,
                next_after: last,
            }));
        }
        let ids: Vec<JobId> = jobs[..n].iter().map(|j| j.id).collect();
        let mut events = 0;
        for table in JOB_TABLES {
            let gone = delete_where_in(&mut tx, table, "job_id", &ids).await?;
            if table == "events" {
                events = gone;
            }
        }
        let gone = delete_where_in(&mut tx, "jobs", "id", &ids).await?;
        tx.commit().await.map_err(q("prune jobs"))?;
        tracing::debug!(jobs = gone, events, "pruned a batch of jobs");
        // The rest of the page (jobs over the events budget) comes next.
        let next_after = if n == jobs.len() { last } else { ids[n - 1] };
        Ok(Some(Batch {
            jobs: gone,
            events,
            next_after,
        }))
    }
}

#[async_trait]
impl PruneStore for SqlStore {
    async fn prunable_jobs(&self, rule: &PruneRule) -> Result<Vec<PrunableJob>> {
        let kept = self.kept(rule).await?;
        let rows = selected(rule, micros(jiff::Timestamp::now()), 0, None, false)
            .query()
            .fetch_all(&self.pool)
            .await
            .map_err(q("select jobs to prune"))?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let job = prunable_from_row(row)?;
            if !kept.contains(&job.id) {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }

    async fn prune_jobs(&self, rule: &PruneRule) -> Result<PruneCount> {
        let kept = self.kept(rule).await?;
        let mut count = PruneCount::default();
        let mut after = 0;
        while let Some(batch) = self.prune_batch(rule, after, &kept).await? {
            if batch.jobs > 0 {
                count.jobs += batch.jobs;
                count.events += batch.events;
                count.batches += 1;
            }
            after = batch.next_after;
        }
        Ok(count)
    }

    async fn store_size(&self) -> Result<StoreSize> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT c.page_count * s.page_size, f.freelist_count * s.page_size \
                 FROM pragma_page_count() c, pragma_page_size() s, pragma_freelist_count() f"
            }
            // prova's tables in the schema it uses, with their indexes and
            // TOAST; free space inside them is not known without a scan.
            Backend::Postgres => {
                "SELECT CAST(COALESCE(SUM(pg_total_relation_size(c.oid)), 0) AS BIGINT), \
                 CAST(NULL AS BIGINT) FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            }
        };
        let row = sqlx::query(sql)
            .fetch_one(&self.pool)
            .await
            .map_err(q("read the store's size"))?;
        let get = |e: sqlx::Error| corrupt("store size", e);
        let bytes: i64 = row.try_get(0).map_err(get)?;
        let free: Option<i64> = row.try_get(1).map_err(get)?;
        Ok(StoreSize {
            bytes: u64::try_from(bytes).unwrap_or(0),
            free: free.map(|f| u64::try_from(f).unwrap_or(0)),
        })
    }

    async fn vacuum(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                // On the writer: VACUUM takes the write lock, and other
                // writers of this store wait for it there. The WAL then
                // holds the rewritten pages; a checkpoint moves them into
                // the file and truncates the WAL, or the space would come
                // back only at the next checkpoint.
                sqlx::query("VACUUM")
                    .execute(&self.writer)
                    .await
                    .map_err(q("vacuum the store"))?;
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                    .execute(&self.writer)
                    .await
                    .map_err(q("checkpoint the store"))?;
            }
            Backend::Postgres => {
                // Plain VACUUM: no exclusive lock (VACUUM FULL would block
                // the server while it rewrites); freed space becomes
                // reusable and trailing pages go back to the file system.
                // Not in a transaction: PostgreSQL refuses VACUUM in one.
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "VACUUM (ANALYZE) {VACUUM_TABLES}"
                )))
                .execute(&self.pool)
                .await
                .map_err(q("vacuum the store"))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::batch_len;

    #[test]
    fn a_batch_stays_within_its_budget_but_takes_at_least_one_job() {
        assert_eq!(batch_len(&[], 500, 100), 0);
        assert_eq!(batch_len(&[10, 20, 30], 500, 100), 3);
        assert_eq!(batch_len(&[60, 30, 20], 500, 100), 2);
        assert_eq!(batch_len(&[500, 1], 500, 100), 1);
        assert_eq!(batch_len(&[0; 10], 4, 100), 4);
    }
}
