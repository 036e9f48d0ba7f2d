//! A job's status, rebuilt from its stored events.

use prova_core::status::{FINAL_REPORT, JobStatus, RUN_REPORT, Report, Verdict};
use prova_core::{EventQuery, JobId, JobState};
use prova_store::{JobRecord, Store, StoreError};

/// The job's status, as rebuilt from its events (the store keeps it as
/// events arrive: see `EventStore::job_status`). `None` when the job is
/// not in the store.
pub async fn load_status(
    store: &dyn Store,
    job_id: JobId,
) -> Result<Option<JobStatus>, StoreError> {
    store.job_status(job_id).await
}

/// A job's verdict for lists (`prova jobs`, the jobs API, the jobs page):
/// from its state, and for an ended job its run and final reports, read
/// alone (two event names, not the whole status). Not the infrastructure
/// rule of [`Verdict::with_infra`], which needs the targets' statuses:
/// `prova status` applies it.
pub async fn list_verdict(store: &dyn Store, job: &JobRecord) -> Result<Verdict, StoreError> {
    if !job.state.is_some_and(JobState::is_final) {
        return Ok(Verdict::of(job.state, &[], &[]));
    }
    let events = store
        .query_events(&EventQuery {
            job_id: Some(job.id),
            names: vec![RUN_REPORT.into(), FINAL_REPORT.into()],
            ..Default::default()
        })
        .await?;
    let mut run = Vec::new();
    let mut fin = Vec::new();
    for ev in &events {
        let Some(r) = ev
            .payload
            .clone()
            .and_then(|p| serde_json::from_value::<Report>(p).ok())
        else {
            continue;
        };
        if ev.name == RUN_REPORT {
            run.push(r);
        } else {
            fin.push(r);
        }
    }
    Ok(Verdict::of(job.state, &[run], &fin))
}

/// [`list_verdict`] of many jobs, read concurrently.
pub async fn list_verdicts(
    store: &dyn Store,
    jobs: &[JobRecord],
) -> Result<Vec<Verdict>, StoreError> {
    futures::future::try_join_all(jobs.iter().map(|j| list_verdict(store, j))).await
}
