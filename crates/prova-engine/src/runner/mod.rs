//! The job runner: runs, tests in order, reporters, and the job's state.

pub mod pipeline;
pub mod results;
pub mod step_ctx;
pub mod test;

use std::sync::Arc;

use prova_core::event::names;
use prova_core::status::{FINAL_REPORT, RUN_REPORT, Report};
use prova_core::{JobId, JobState, NewEvent};
use prova_store::{NewJob, Store};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::emit::{EventSink, Observer, WriterStats};
use crate::plugin::{FinalReportInput, RunReportInput};
use crate::prepare::PreparedJob;
use results::{RunResult, TestResult};
use test::{Cancel, JobCtx, run_test};

/// How to run a job.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub requestor: String,
    /// Cancel gracefully (first Ctrl-C): steps stop, cleanup runs, targets
    /// are released, the job ends Cancelled.
    pub cancel: CancellationToken,
    /// Cancel hard (second Ctrl-C): cleanup stops too.
    pub hard_cancel: CancellationToken,
    /// Sees every event as it is emitted (progress display).
    pub observer: Option<Observer>,
    /// Called once the job has its id.
    pub on_created: Option<Arc<dyn Fn(JobId) + Send + Sync>>,
    /// Where steps keep artifacts (results directories); default
    /// `$TMPDIR/prova-artifacts`.
    pub artifacts_root: Option<std::path::PathBuf>,
}

/// How a job ended.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub job_id: JobId,
    pub state: JobState,
    /// Why the job failed, if it did.
    pub error: Option<String>,
    pub runs: Vec<RunResult>,
    pub run_reports: Vec<Vec<Report>>,
    pub final_reports: Vec<Report>,
    pub writer: WriterStats,
}

impl JobOutcome {
    /// Completed, and every reporter said success.
    pub fn success(&self) -> bool {
        self.state == JobState::Completed
            && self.run_reports.iter().flatten().all(|r| r.success)
            && self.final_reports.iter().all(|r| r.success)
    }
}

/// Errors before a job could start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("cannot record the job")]
    Store(#[from] prova_store::StoreError),
}

/// Records and runs a prepared job to its end.
pub async fn run_job(
    job: PreparedJob,
    store: Arc<dyn Store>,
    opts: RunOptions,
) -> Result<JobOutcome, EngineError> {
    let job_id = store
        .create_job(NewJob {
            name: job.descriptor.job_name.clone(),
            tags: job.descriptor.tags.clone(),
            requestor: opts.requestor.clone(),
            descriptor: job.descriptor_json.to_string(),
            extended_descriptor: job.extended_descriptor().to_string(),
            source_path: job.source.as_ref().map(|p| p.display().to_string()),
        })
        .await?;
    if let Some(cb) = &opts.on_created {
        cb(job_id);
    }
    let (sink, writer) = EventSink::spawn(store, opts.observer.clone());
    if job.needs_events() {
        sink.start_capture();
    }
    let cancel = Cancel {
        graceful: opts.cancel.clone(),
        hard: opts.hard_cancel.clone(),
    };
    let job_ctx = JobCtx {
        job_id,
        sink: sink.clone(),
        cancel: cancel.clone(),
        artifacts_root: Arc::from(
            opts.artifacts_root
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("prova-artifacts"))
                .as_path(),
        ),
    };
    sink.emit(NewEvent::job(
        job_id,
        JobState::Started.event_name(),
        Some(json!({ "Requestor": opts.requestor })),
    ));

    let mut outcome = JobOutcome {
        job_id,
        state: JobState::Completed,
        error: None,
        runs: Vec::new(),
        run_reports: Vec::new(),
        final_reports: Vec::new(),
        writer: WriterStats::default(),
    };
    // The Cancelling event goes out the moment cancellation is asked for.
    let mut cancel_watch = {
        let (sink, token) = (sink.clone(), cancel.graceful.clone());
        tokio::spawn(async move {
            token.cancelled().await;
            sink.emit(NewEvent::job(
                job_id,
                JobState::Cancelling.event_name(),
                None,
            ));
        })
    };
    let mut run_id = 0u32;
    'runs: while job.descriptor.runs == 0 || run_id < job.descriptor.runs {
        if cancel.graceful.is_cancelled() {
            break;
        }
        run_id += 1;
        sink.emit(run_event(job_id, run_id, names::RUN_STARTED, None));
        let mut run = RunResult {
            run_id,
            tests: Vec::new(),
        };
        for test in &job.tests {
            if test.disabled {
                run.tests.push(TestResult {
                    name: test.name.clone(),
                    attempts: 0,
                    passed: true,
                    error: None,
                    targets: Vec::new(),
                    skipped: true,
                });
                continue;
            }
            if cancel.graceful.is_cancelled() {
                break;
            }
            match run_test(&job_ctx, run_id, test).await {
                Ok(result) => run.tests.push(result),
                Err(e) => {
                    outcome.state = JobState::Failed;
                    outcome.error = Some(e.to_string());
                    sink.emit(run_event(job_id, run_id, names::RUN_FINISHED, None));
                    outcome.runs.push(run);
                    break 'runs;
                }
            }
        }
        sink.emit(run_event(job_id, run_id, names::RUN_FINISHED, None));
        if cancel.graceful.is_cancelled() {
            outcome.runs.push(run);
            break;
        }
        let events = sink.captured();
        let mut reports = Vec::new();
        for (name, reporter) in &job.run_reporters {
            let input = RunReportInput {
                job_id,
                job_name: &job.descriptor.job_name,
                run: &run,
                events: &events,
            };
            if let Some(mut report) = reporter.run_report(&input).await {
                report.reporter_name.clone_from(name);
                report.run_id = Some(run_id);
                sink.emit(run_event(
                    job_id,
                    run_id,
                    RUN_REPORT,
                    serde_json::to_value(&report).ok(),
                ));
                reports.push(report);
            }
        }
        outcome.run_reports.push(reports);
        outcome.runs.push(run);
        let more = job.descriptor.runs == 0 || run_id < job.descriptor.runs;
        if more && !job.descriptor.run_interval.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(job.descriptor.run_interval) => {}
                _ = cancel.graceful.cancelled() => {}
            }
        }
    }

    if cancel.graceful.is_cancelled() {
        // Let the watcher emit Cancelling before the final state.
        let _ = (&mut cancel_watch).await;
        if outcome.state != JobState::Failed {
            outcome.state = JobState::Cancelled;
        }
    }
    cancel_watch.abort();

    if outcome.state == JobState::Completed {
        let events = sink.captured();
        for (name, reporter) in &job.final_reporters {
            let input = FinalReportInput {
                job_id,
                job_name: &job.descriptor.job_name,
                runs: &outcome.runs,
                events: &events,
            };
            if let Some(mut report) = reporter.final_report(&input).await {
                report.reporter_name.clone_from(name);
                report.run_id = None;
                sink.emit(NewEvent::job(
                    job_id,
                    FINAL_REPORT,
                    serde_json::to_value(&report).ok(),
                ));
                outcome.final_reports.push(report);
            }
        }
    }

    let payload = outcome.error.as_ref().map(|e| json!({ "Error": e }));
    sink.emit(NewEvent::job(job_id, outcome.state.event_name(), payload));
    drop(job_ctx);
    drop(sink);
    outcome.writer = writer.finish().await;
    if outcome.writer.lost > 0 {
        tracing::error!(
            "{} events of job {job_id} could not be stored",
            outcome.writer.lost
        );
    }
    Ok(outcome)
}

fn run_event(
    job_id: JobId,
    run_id: u32,
    name: &str,
    payload: Option<serde_json::Value>,
) -> NewEvent {
    NewEvent {
        run_id,
        ..NewEvent::job(job_id, name, payload)
    }
}
