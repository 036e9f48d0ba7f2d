//! [`LeaseStore`] on SQL: the `job_leases` table.

use async_trait::async_trait;
use prova_core::JobId;
use sqlx::Row;

use super::{SqlStore, corrupt, micros, q};
use crate::{LeaseStore, Result};

#[async_trait]
impl LeaseStore for SqlStore {
    async fn try_lease(
        &self,
        job_id: JobId,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let now = micros(jiff::Timestamp::now());
        let res = sqlx::query(
            "INSERT INTO job_leases (job_id, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE job_leases.expires_at < $4 OR job_leases.owner = excluded.owner",
        )
        .bind(job_id)
        .bind(owner)
        .bind(now + ttl.as_micros() as i64)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(q("take a job lease"))?;
        Ok(res.rows_affected() == 1)
    }

    async fn renew_leases(&self, owner: &str, ttl: std::time::Duration) -> Result<u64> {
        let until = micros(jiff::Timestamp::now()) + ttl.as_micros() as i64;
        let res = sqlx::query("UPDATE job_leases SET expires_at = $1 WHERE owner = $2")
            .bind(until)
            .bind(owner)
            .execute(&self.writer)
            .await
            .map_err(q("renew job leases"))?;
        Ok(res.rows_affected())
    }

    async fn release_lease(&self, job_id: JobId, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM job_leases WHERE job_id = $1 AND owner = $2")
            .bind(job_id)
            .bind(owner)
            .execute(&self.writer)
            .await
            .map_err(q("release a job lease"))?;
        Ok(())
    }

    async fn hand_over_lease(&self, job_id: JobId, owner: &str) -> Result<()> {
        // Expired, not deleted: the row still names the last owner, so the
        // instance that takes the job over can say whose it was.
        sqlx::query("UPDATE job_leases SET expires_at = 0 WHERE job_id = $1 AND owner = $2")
            .bind(job_id)
            .bind(owner)
            .execute(&self.writer)
            .await
            .map_err(q("hand a job lease over"))?;
        Ok(())
    }

    async fn take_lease_from(
        &self,
        job_id: JobId,
        from: &str,
        to: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let until = micros(jiff::Timestamp::now()) + ttl.as_micros() as i64;
        let res = sqlx::query(
            "UPDATE job_leases SET owner = $1, expires_at = $2 WHERE job_id = $3 AND owner = $4",
        )
        .bind(to)
        .bind(until)
        .bind(job_id)
        .bind(from)
        .execute(&self.writer)
        .await
        .map_err(q("take a job lease over"))?;
        Ok(res.rows_affected() == 1)
    }

    async fn lease_owner(&self, job_id: JobId) -> Result<Option<(String, bool)>> {
        let row = sqlx::query("SELECT owner, expires_at FROM job_leases WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read a job lease"))?;
        let Some(r) = row else { return Ok(None) };
        let owner: String = r.try_get(0).map_err(|e| corrupt("lease row", e))?;
        let expires: i64 = r.try_get(1).map_err(|e| corrupt("lease row", e))?;
        Ok(Some((owner, expires < micros(jiff::Timestamp::now()))))
    }

    async fn leases(&self) -> Result<Vec<(JobId, String, bool)>> {
        let now = micros(jiff::Timestamp::now());
        let rows = sqlx::query("SELECT job_id, owner, expires_at FROM job_leases ORDER BY job_id")
            .fetch_all(&self.pool)
            .await
            .map_err(q("read job leases"))?;
        rows.iter()
            .map(|r| {
                let get = |e| corrupt("lease row", e);
                Ok((
                    r.try_get::<i64, _>(0).map_err(get)?,
                    r.try_get::<String, _>(1).map_err(get)?,
                    r.try_get::<i64, _>(2).map_err(get)? < now,
                ))
            })
            .collect()
    }

    async fn expired_leases(&self) -> Result<Vec<(JobId, String)>> {
        let rows = sqlx::query(
            "SELECT job_id, owner FROM job_leases WHERE expires_at < $1 ORDER BY job_id",
        )
        .bind(micros(jiff::Timestamp::now()))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read expired leases"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)
                        .map_err(|e| corrupt("lease row", e))?,
                    r.try_get::<String, _>(1)
                        .map_err(|e| corrupt("lease row", e))?,
                ))
            })
            .collect()
    }
}
