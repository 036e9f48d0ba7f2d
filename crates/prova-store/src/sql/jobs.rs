//! [`JobStore`] on SQL: the `jobs` table and its `job_tags` index.

use std::collections::BTreeSet;

use async_trait::async_trait;
use futures::TryStreamExt;
use prova_core::status::Verdict;
use prova_core::{JobId, JobState};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::statement::{Arg, Sql};
use super::{Backend, SqlStore, corrupt, from_micros, micros, q};
use crate::{JobFilter, JobRecord, JobStore, NewJob, Result};

/// The columns of a job, in the order [`job_from_row`] expects them.
const JOB_COLUMNS: &str = "id, name, tags, requestor, descriptor, extended_descriptor, \
                           source_path, created_at, state, state_time, verdict";

fn job_from_row(row: &AnyRow) -> Result<JobRecord> {
    let get = |e: sqlx::Error| corrupt("job row", e);
    let id: i64 = row.try_get(0).map_err(get)?;
    let tags: &str = row.try_get(2).map_err(get)?;
    let tags: Vec<String> =
        serde_json::from_str(tags).map_err(|e| corrupt("job tags", format!("job {id}: {e}")))?;
    let state = match row.try_get::<Option<&str>, _>(8).map_err(get)? {
        Some(s) => Some(
            JobState::parse(s).ok_or_else(|| corrupt("job state", format!("job {id}: {s:?}")))?,
        ),
        None => None,
    };
    let state_time = match row.try_get::<Option<i64>, _>(9).map_err(get)? {
        Some(t) => Some(from_micros("job state_time", t)?),
        None => None,
    };
    let verdict = match row.try_get::<Option<&str>, _>(10).map_err(get)? {
        Some(v) => Some(
            Verdict::parse(v).ok_or_else(|| corrupt("job verdict", format!("job {id}: {v:?}")))?,
        ),
        None => None,
    };
    Ok(JobRecord {
        id,
        name: row.try_get(1).map_err(get)?,
        tags,
        requestor: row.try_get(3).map_err(get)?,
        descriptor: row.try_get(4).map_err(get)?,
        extended_descriptor: row.try_get(5).map_err(get)?,
        source_path: row.try_get(6).map_err(get)?,
        created_at: from_micros("job created_at", row.try_get(7).map_err(get)?)?,
        state,
        state_time,
        verdict,
    })
}

#[async_trait]
impl JobStore for SqlStore {
    async fn create_job(&self, job: NewJob) -> Result<JobId> {
        let tags_json = serde_json::to_string(&job.tags).map_err(|e| corrupt("job tags", e))?;
        let distinct: BTreeSet<&str> = job.tags.iter().map(String::as_str).collect();
        let mut tx = self.begin_write("create job").await?;
        let id: i64 = sqlx::query(
            "INSERT INTO jobs (name, tags, requestor, descriptor, extended_descriptor, \
             source_path, created_at, name_folded) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             RETURNING id",
        )
        .bind(job.name.as_str())
        .bind(tags_json)
        .bind(job.requestor.as_str())
        .bind(job.descriptor.as_str())
        .bind(job.extended_descriptor.as_str())
        .bind(job.source_path.as_deref())
        .bind(micros(jiff::Timestamp::now()))
        .bind(job.name.to_lowercase())
        .fetch_one(&mut *tx)
        .await
        .map_err(q("create job"))?
        .try_get(0)
        .map_err(|e| corrupt("new job id", e))?;
        for tag in distinct {
            sqlx::query("INSERT INTO job_tags (tag, job_id) VALUES ($1, $2)")
                .bind(tag)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(q("create job tags"))?;
        }
        tx.commit().await.map_err(q("create job"))?;
        Ok(id)
    }

    async fn get_job(&self, id: JobId) -> Result<Option<JobRecord>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get job"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>> {
        let mut sql = Sql::new(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
        if !filter.states.is_empty() {
            sql.push(" AND state IN (");
            for (i, st) in filter.states.iter().enumerate() {
                if i > 0 {
                    sql.push(",");
                }
                sql.arg(Arg::Text(st.as_str().to_string()));
            }
            sql.push(")");
        }
        if let Some(r) = &filter.requestor {
            sql.push(" AND requestor = ").arg(Arg::Text(r.clone()));
        }
        if let Some(part) = filter.name_contains.as_deref().filter(|p| !p.is_empty()) {
            if part.contains('\0') {
                // PostgreSQL text cannot hold NUL (nor can a job's name
                // there), and SQLite's `instr` stops at one: no job matches.
                sql.push(" AND 1 = 0");
            } else {
                // A plain substring test on the folded name: no pattern
                // characters to escape (LIKE would treat `%` and `_`). In
                // a subquery that the index `jobs_id_name` answers alone,
                // so only matching rows are read, not every job's whole
                // row (descriptors included) on the way.
                let find = match self.backend {
                    Backend::Sqlite => "instr",
                    Backend::Postgres => "strpos",
                };
                sql.push(&format!(
                    " AND id IN (SELECT id FROM jobs WHERE {find}(name_folded, "
                ))
                .arg(Arg::Text(part.to_lowercase()))
                .push(") > 0)");
            }
        }
        if let Some(before) = filter.before_id {
            sql.push(" AND id < ").arg(Arg::I64(before));
        }
        let tags: BTreeSet<&String> = filter.tags.iter().collect();
        for tag in tags {
            sql.push(" AND EXISTS (SELECT 1 FROM job_tags t WHERE t.tag = ")
                .arg(Arg::Text(tag.clone()))
                .push(" AND t.job_id = jobs.id)");
        }
        sql.push(" ORDER BY id DESC");
        if let Some(limit) = filter.limit {
            sql.push(&format!(" LIMIT {limit}"));
        }
        let mut rows = sql.query().fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(q("list jobs"))? {
            out.push(job_from_row(&row)?);
        }
        Ok(out)
    }
}
