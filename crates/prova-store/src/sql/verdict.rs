//! Each job's verdict, stored on its row (`jobs.verdict`, migration 0006)
//! when an append moves it to a final state, so the jobs lists (`prova
//! jobs`, `GET /api/v1/jobs`, the `/` page) read it with the job instead
//! of reading every listed job's reports per request.
//!
//! The store is where it is written because every way a job ends passes
//! through it: the job runner's end, a cancel, a job whose runner
//! panicked, the reaper that fails the jobs of a dead process. All of them
//! append the final job-state event. The verdict is the one the job's
//! status gives ([`JobStatus::verdict`](prova_core::status::JobStatus)),
//! infrastructure rule included, so the lists and `prova status` agree.

use prova_core::{JobId, JobState};

use super::{SqlStore, q};
use crate::Result;

impl SqlStore {
    /// Stores the verdict of each job an append (just committed) ended.
    /// Runs after the append's transaction: its status read is then the
    /// saved status the append wrote. It cannot fail the append, whose
    /// events are stored: a verdict that could not be written stays NULL,
    /// and readers compute it from the job's status instead.
    pub(super) async fn save_verdicts(&self, ended: &[JobId]) {
        for &job in ended {
            if let Err(e) = self.save_verdict(job).await {
                tracing::warn!(job, error = %e, "cannot store the job's verdict");
            }
        }
    }

    async fn save_verdict(&self, job: JobId) -> Result<()> {
        let Some(status) = self.read_job_status(job).await? else {
            return Ok(());
        };
        if !status.state.is_some_and(JobState::is_final) {
            return Ok(());
        }
        sqlx::query("UPDATE jobs SET verdict = $1 WHERE id = $2")
            .bind(status.verdict.as_str())
            .bind(job)
            .execute(&self.writer)
            .await
            .map_err(q("store a job's verdict"))?;
        Ok(())
    }
}
