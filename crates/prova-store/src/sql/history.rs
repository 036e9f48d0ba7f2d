//! [`HistoryStore`] on SQL. A history reads the newest jobs of a name (a
//! `LIMIT` over `jobs`) and only their history events (`events_job_name`,
//! one index range per job and name), on SQLite packed many to a row as
//! [`super::events`] reads them.

use async_trait::async_trait;
use futures::TryStreamExt;
use prova_core::{Event, JobId, JobState};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::event_rows::{EVENT_COLUMNS, event_from_row, events_from_packed, packed_events_sql};
use super::statement::{Arg, Sql};
use super::{Backend, SqlStore, corrupt, from_micros, q};
use crate::Result;
use crate::history::{
    HISTORY_EVENT_NAMES, HistoryEventFilter, HistoryJob, HistoryStore, MAX_HISTORY_JOBS,
};

/// Most ids in one `IN (...)` list before a read is split.
const MAX_IN_LIST: usize = 1000;
/// The most parts a history's events are read in at once.
const MAX_READ_PARTS: usize = 4;

const HISTORY_JOB_COLUMNS: &str = "id, name, created_at, state, state_time, extended_descriptor";

fn history_job_from_row(row: &AnyRow) -> Result<HistoryJob> {
    let get = |e: sqlx::Error| corrupt("job row", e);
    let id: i64 = row.try_get(0).map_err(get)?;
    let state = match row.try_get::<Option<&str>, _>(3).map_err(get)? {
        Some(s) => Some(
            JobState::parse(s).ok_or_else(|| corrupt("job state", format!("job {id}: {s:?}")))?,
        ),
        None => None,
    };
    let state_time = match row.try_get::<Option<i64>, _>(4).map_err(get)? {
        Some(t) => Some(from_micros("job state_time", t)?),
        None => None,
    };
    Ok(HistoryJob {
        id,
        name: row.try_get(1).map_err(get)?,
        created_at: from_micros("job created_at", row.try_get(2).map_err(get)?)?,
        state,
        state_time,
        extended_descriptor: row.try_get(5).map_err(get)?,
    })
}

impl SqlStore {
    async fn read_history_jobs(&self, sql: Sql) -> Result<Vec<HistoryJob>> {
        let mut rows = sql.query().fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(q("read history jobs"))? {
            out.push(history_job_from_row(&row)?);
        }
        Ok(out)
    }

    /// One chunk of jobs' history events.
    async fn history_events_of(
        &self,
        jobs: &[JobId],
        contains: Option<&str>,
    ) -> Result<Vec<Event>> {
        let mut sql = Sql::new(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE job_id IN ("
        ));
        for (i, id) in jobs.iter().enumerate() {
            if i > 0 {
                sql.push(",");
            }
            sql.arg(Arg::I64(*id));
        }
        sql.push(") AND name IN (");
        for (i, n) in HISTORY_EVENT_NAMES.iter().enumerate() {
            if i > 0 {
                sql.push(",");
            }
            sql.arg(Arg::Text((*n).to_string()));
        }
        sql.push(")");
        if let Some(text) = contains {
            // Both backends: a plain substring test, case-sensitive, with
            // no pattern characters to escape (LIKE would need both).
            let find = match self.backend {
                Backend::Sqlite => "instr",
                Backend::Postgres => "strpos",
            };
            // A payload is compact JSON: the name appears escaped.
            let escaped = serde_json::to_string(text).map_err(|e| corrupt("history filter", e))?;
            let escaped = escaped[1..escaped.len() - 1].to_string();
            sql.push(&format!(" AND (({find}(test_name, "))
                .arg(Arg::Text(text.to_string()))
                .push(") > 0 AND name <> ")
                .arg(Arg::Text(prova_core::results::TEST_CASE.to_string()))
                .push(") OR (name = ")
                .arg(Arg::Text(prova_core::results::TEST_CASE.to_string()))
                .push(&format!(" AND {find}(payload, "))
                .arg(Arg::Text(escaped))
                .push(") > 0))");
        }
        sql.push(" ORDER BY seq");
        let mut out = Vec::new();
        if self.packed_reads {
            let packed = Sql {
                text: packed_events_sql(&sql.text),
                args: sql.args.clone(),
            };
            let mut rows = packed.query().fetch(&self.pool);
            let mut read = Ok(());
            while let Some(row) = match rows.try_next().await {
                Ok(r) => r,
                Err(e) => {
                    read = Err(e.to_string());
                    None
                }
            } {
                if let Err(e) = events_from_packed(&row, &mut out) {
                    read = Err(e.to_string());
                    break;
                }
            }
            match read {
                Ok(()) => {
                    if !out.is_sorted_by_key(|e| e.seq) {
                        out.sort_by_key(|e| e.seq);
                    }
                    return Ok(out);
                }
                // A pack past SQLite's string limit, or one this side
                // cannot read: read row by row (which names a bad row).
                Err(e) => {
                    tracing::debug!(error = %e, "packed history read failed; reading rows");
                    out.clear();
                }
            }
        }
        let mut rows = sql.query().fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(q("read history events"))? {
            out.push(event_from_row(&row)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl HistoryStore for SqlStore {
    async fn jobs_named(&self, name: &str, limit: u32) -> Result<Vec<HistoryJob>> {
        let limit = limit.min(MAX_HISTORY_JOBS);
        let mut sql = Sql::new(&format!(
            "SELECT {HISTORY_JOB_COLUMNS} FROM jobs WHERE name = "
        ));
        sql.arg(Arg::Text(name.to_string()))
            .push(&format!(" ORDER BY id DESC LIMIT {limit}"));
        self.read_history_jobs(sql).await
    }

    async fn newest_jobs(&self, limit: u32) -> Result<Vec<HistoryJob>> {
        let limit = limit.min(MAX_HISTORY_JOBS);
        let sql = Sql::new(&format!(
            "SELECT {HISTORY_JOB_COLUMNS} FROM jobs ORDER BY id DESC LIMIT {limit}"
        ));
        self.read_history_jobs(sql).await
    }

    async fn history_jobs(&self, ids: &[JobId]) -> Result<Vec<HistoryJob>> {
        let mut found = std::collections::HashMap::new();
        for chunk in ids.chunks(MAX_IN_LIST) {
            let mut sql = Sql::new(&format!(
                "SELECT {HISTORY_JOB_COLUMNS} FROM jobs WHERE id IN ("
            ));
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(",");
                }
                sql.arg(Arg::I64(*id));
            }
            sql.push(")");
            for job in self.read_history_jobs(sql).await? {
                found.insert(job.id, job);
            }
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    async fn history_events(&self, filter: &HistoryEventFilter) -> Result<Vec<Event>> {
        // The jobs in one part per core, read at once on as many
        // connections: a history over 1,000 jobs spends its time in the
        // database scanning case payloads for the text (measured: 145 ms
        // in one part on two cores, see docs/benchmarks.md).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_READ_PARTS));
        let per_part = filter.jobs.len().div_ceil(cores).clamp(1, MAX_IN_LIST);
        let contains = filter.contains.as_deref();
        let parts = futures::future::try_join_all(
            filter
                .jobs
                .chunks(per_part)
                .map(|chunk| self.history_events_of(chunk, contains)),
        )
        .await?;
        let mut out: Vec<Event> = parts.into_iter().flatten().collect();
        if !out.is_sorted_by_key(|e| e.seq) {
            out.sort_by_key(|e| e.seq);
        }
        Ok(out)
    }
}
