//! [`TargetLockStore`] on SQL: the `target_locks` table.

use async_trait::async_trait;
use prova_core::JobId;

use super::{SqlStore, micros, q};
use crate::{Result, TargetLockStore};

/// Targets whose holder [`TargetLockStore::lock_holders`] looks up at
/// most: enough to name who blocks a job, bounded for huge inventories.
const MAX_HOLDERS_ASKED: usize = 100;

#[async_trait]
impl TargetLockStore for SqlStore {
    async fn lock_targets(
        &self,
        job_id: JobId,
        target_ids: &[String],
        ttl: std::time::Duration,
        all: bool,
    ) -> Result<Vec<String>> {
        let now = micros(jiff::Timestamp::now());
        let until = now + ttl.as_micros() as i64;
        let mut tx = self.begin_write("lock targets").await?;
        let mut locked = Vec::new();
        for id in target_ids {
            let res = sqlx::query(
                "INSERT INTO target_locks (target_id, job_id, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (target_id) DO UPDATE SET job_id = excluded.job_id, expires_at = excluded.expires_at \
                 WHERE target_locks.expires_at < $4 OR target_locks.job_id = excluded.job_id",
            )
            .bind(id.as_str())
            .bind(job_id)
            .bind(until)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("lock a target"))?;
            if res.rows_affected() == 1 {
                locked.push(id.clone());
            } else if all {
                tx.rollback().await.map_err(q("lock targets"))?;
                return Ok(Vec::new());
            }
        }
        tx.commit().await.map_err(q("lock targets"))?;
        Ok(locked)
    }

    async fn refresh_target_locks(&self, job_id: JobId, ttl: std::time::Duration) -> Result<()> {
        let until = micros(jiff::Timestamp::now()) + ttl.as_micros() as i64;
        sqlx::query("UPDATE target_locks SET expires_at = $1 WHERE job_id = $2")
            .bind(until)
            .bind(job_id)
            .execute(&self.writer)
            .await
            .map_err(q("refresh target locks"))?;
        Ok(())
    }

    async fn unlock_job_targets(&self, job_id: JobId) -> Result<u64> {
        let res = sqlx::query("DELETE FROM target_locks WHERE job_id = $1")
            .bind(job_id)
            .execute(&self.writer)
            .await
            .map_err(q("unlock a job's targets"))?;
        Ok(res.rows_affected())
    }

    async fn lock_holders(&self, target_ids: &[String]) -> Result<Vec<(String, JobId)>> {
        let now = micros(jiff::Timestamp::now());
        let mut held = Vec::new();
        // One indexed lookup per target (primary key): a job names few.
        for id in target_ids.iter().take(MAX_HOLDERS_ASKED) {
            let row: Option<(i64,)> = sqlx::query_as(
                "SELECT job_id FROM target_locks WHERE target_id = $1 AND expires_at >= $2",
            )
            .bind(id.as_str())
            .bind(now)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read a target's lock"))?;
            if let Some((job,)) = row {
                held.push((id.clone(), job));
            }
        }
        Ok(held)
    }

    async fn unlock_targets(&self, job_id: JobId, target_ids: &[String]) -> Result<()> {
        let mut tx = self.begin_write("unlock targets").await?;
        for id in target_ids {
            sqlx::query("DELETE FROM target_locks WHERE target_id = $1 AND job_id = $2")
                .bind(id.as_str())
                .bind(job_id)
                .execute(&mut *tx)
                .await
                .map_err(q("unlock a target"))?;
        }
        tx.commit().await.map_err(q("unlock targets"))?;
        Ok(())
    }
}
