//! A job's status, rebuilt from its stored events.

use prova_core::status::{JobStatus, rebuild, status_event_names};
use prova_core::{EventQuery, JobId};
use prova_store::{Store, StoreError};

/// Reads the events a status needs (not step output) and rebuilds it.
/// `None` when the job is not in the store.
pub async fn load_status(
    store: &dyn Store,
    job_id: JobId,
) -> Result<Option<JobStatus>, StoreError> {
    let Some(job) = store.get_job(job_id).await? else {
        return Ok(None);
    };
    let query = EventQuery {
        job_id: Some(job_id),
        names: status_event_names(),
        ..Default::default()
    };
    let events = store.query_events(&query).await?;
    Ok(Some(rebuild(job_id, &job.name, &events)))
}
