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

/// A job's verdict for lists (`prova jobs`, the jobs API, the jobs page),
/// the same as its status gives (`prova status`, infrastructure rule
/// included): the verdict the store kept on the job's row when it ended;
/// for a job not ended, from its state alone; for a job that ended before
/// the store kept verdicts (or whose verdict could not be written), from
/// its status, read once.
pub async fn list_verdict(store: &dyn Store, job: &JobRecord) -> Result<Verdict, StoreError> {
    if let Some(v) = job.verdict {
        return Ok(v);
    }
    if !job.state.is_some_and(JobState::is_final) {
        return Ok(Verdict::of(job.state, &[], &[]));
    }
    Ok(match store.job_status(job.id).await? {
        Some(status) => status.verdict,
        None => Verdict::of(job.state, &[], &[]),
    })
}

/// A job's verdict from its run and final reports alone (two event names,
/// not the whole status), without the infrastructure rule: how the lists
/// computed it, per request, before the store kept verdicts. Kept for the
/// benchmark that compares the two.
pub async fn verdict_from_reports(
    store: &dyn Store,
    job: &JobRecord,
) -> Result<Verdict, StoreError> {
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
