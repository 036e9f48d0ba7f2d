//! A job's status, rebuilt from its stored events.

use prova_core::JobId;
use prova_core::status::JobStatus;
use prova_store::{Store, StoreError};

/// The job's status, as rebuilt from its events (the store keeps it as
/// events arrive: see `EventStore::job_status`). `None` when the job is
/// not in the store.
pub async fn load_status(
    store: &dyn Store,
    job_id: JobId,
) -> Result<Option<JobStatus>, StoreError> {
    store.job_status(job_id).await
}
