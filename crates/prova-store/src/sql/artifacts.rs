//! [`ArtifactStore`] on SQL: a job's files in `artifacts` (one row per
//! file) and `artifact_chunks` (its content in pieces of
//! [`ARTIFACT_CHUNK`] bytes), migration 0007. `Any` carries bytes, so one
//! code path serves both backends.

use async_trait::async_trait;
use prova_core::JobId;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{SqlStore, corrupt, micros, q};
use crate::{ARTIFACT_CHUNK, ArtifactMeta, ArtifactStore, Result};

fn meta_from_row(row: &AnyRow) -> Result<ArtifactMeta> {
    let get = |e: sqlx::Error| corrupt("artifact row", e);
    let bytes: i64 = row.try_get(1).map_err(get)?;
    let stored: i64 = row.try_get(2).map_err(get)?;
    Ok(ArtifactMeta {
        path: row.try_get(0).map_err(get)?,
        bytes: u64::try_from(bytes)
            .map_err(|_| corrupt("artifact bytes", format!("{bytes} is negative")))?,
        stored: stored != 0,
    })
}

fn to_i64(what: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| corrupt(what, format!("{v} does not fit a BIGINT")))
}

impl SqlStore {
    /// Writes the `artifacts` row of a file and, when `content` is given,
    /// its pieces, replacing what the file had; in one transaction. With
    /// `job_limit`, the content is kept only if the job's other stored
    /// files and it stay within that many bytes. Returns whether the
    /// content was stored.
    async fn write_artifact(
        &self,
        job_id: JobId,
        path: &str,
        bytes: u64,
        content: Option<(&[u8], u64)>,
    ) -> Result<bool> {
        const WHAT: &str = "store an artifact";
        let mut tx = self.begin_write(WHAT).await?;
        sqlx::query("DELETE FROM artifact_chunks WHERE job_id = $1 AND path = $2")
            .bind(job_id)
            .bind(path)
            .execute(&mut *tx)
            .await
            .map_err(q(WHAT))?;
        let stored = match content {
            None => None,
            Some((content, job_limit)) => {
                let row = sqlx::query(
                    "SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM artifacts \
                     WHERE job_id = $1 AND stored = 1 AND path <> $2",
                )
                .bind(job_id)
                .bind(path)
                .fetch_one(&mut *tx)
                .await
                .map_err(q(WHAT))?;
                let used: i64 = row.try_get(0).map_err(|e| corrupt("artifact bytes", e))?;
                let used = u64::try_from(used).unwrap_or(0);
                (used.saturating_add(bytes) <= job_limit).then_some(content)
            }
        };
        sqlx::query(
            "INSERT INTO artifacts (job_id, path, bytes, stored, kept_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (job_id, path) DO UPDATE SET bytes = excluded.bytes, \
             stored = excluded.stored, kept_at = excluded.kept_at",
        )
        .bind(job_id)
        .bind(path)
        .bind(to_i64("artifact bytes", bytes)?)
        .bind(i64::from(stored.is_some()))
        .bind(micros(jiff::Timestamp::now()))
        .execute(&mut *tx)
        .await
        .map_err(q(WHAT))?;
        if let Some(content) = stored {
            for (seq, piece) in content.chunks(ARTIFACT_CHUNK).enumerate() {
                sqlx::query(
                    "INSERT INTO artifact_chunks (job_id, path, seq, data) VALUES ($1, $2, $3, $4)",
                )
                .bind(job_id)
                .bind(path)
                .bind(to_i64("artifact piece", seq as u64)?)
                .bind(piece.to_vec())
                .execute(&mut *tx)
                .await
                .map_err(q(WHAT))?;
            }
        }
        tx.commit().await.map_err(q(WHAT))?;
        Ok(stored.is_some())
    }
}

#[async_trait]
impl ArtifactStore for SqlStore {
    async fn put_artifact(
        &self,
        job_id: JobId,
        path: &str,
        content: &[u8],
        job_limit: u64,
    ) -> Result<bool> {
        self.write_artifact(
            job_id,
            path,
            content.len() as u64,
            Some((content, job_limit)),
        )
        .await
    }

    async fn put_unstored_artifact(&self, job_id: JobId, path: &str, bytes: u64) -> Result<()> {
        self.write_artifact(job_id, path, bytes, None).await?;
        Ok(())
    }

    async fn list_artifacts(&self, job_id: JobId, limit: usize) -> Result<Vec<ArtifactMeta>> {
        let rows = sqlx::query(
            "SELECT path, bytes, stored FROM artifacts WHERE job_id = $1 ORDER BY path LIMIT $2",
        )
        .bind(job_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(q("list a job's artifacts"))?;
        rows.iter().map(meta_from_row).collect()
    }

    async fn artifact(&self, job_id: JobId, path: &str) -> Result<Option<ArtifactMeta>> {
        let row = sqlx::query(
            "SELECT path, bytes, stored FROM artifacts WHERE job_id = $1 AND path = $2",
        )
        .bind(job_id)
        .bind(path)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read an artifact"))?;
        row.as_ref().map(meta_from_row).transpose()
    }

    async fn artifact_chunk(&self, job_id: JobId, path: &str, seq: u64) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query(
            "SELECT data FROM artifact_chunks WHERE job_id = $1 AND path = $2 AND seq = $3",
        )
        .bind(job_id)
        .bind(path)
        .bind(to_i64("artifact piece", seq)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(q("read an artifact"))?;
        row.map(|r| {
            r.try_get::<Vec<u8>, _>(0)
                .map_err(|e| corrupt("artifact piece", e))
        })
        .transpose()
    }
}
