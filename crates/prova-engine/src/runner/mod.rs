//! The job runner: runs, tests in order, reporters, and the job's state.
//!
//! A job can be paused (a server shutting down) and resumed later, even by
//! another process: the `JobStatePaused` event's payload holds the job's
//! [`JobPosition`], and [`resume_job`] continues from it.

pub mod pipeline;
pub mod results;
pub mod test;

use std::sync::Arc;
use std::time::Duration;

use prova_core::event::names;
use prova_core::status::{FINAL_REPORT, RUN_REPORT, Report, Verdict};
use prova_core::{EventQuery, JobId, JobState, NewEvent};
use prova_store::{NewJob, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::emit::{EventSink, Observer, WriterStats};
use crate::plugin::{FinalReportInput, RunReportInput};
use crate::prepare::PreparedJob;
use results::{RunResult, TestResult};
use test::{Cancel, JobCtx, TestPosition, TestRun, run_test};

/// How to run a job.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub requestor: String,
    /// Cancel gracefully (first Ctrl-C): steps stop, cleanup runs, targets
    /// are released, the job ends Cancelled.
    pub cancel: CancellationToken,
    /// Cancel hard (second Ctrl-C): cleanup stops too.
    pub hard_cancel: CancellationToken,
    /// Pause: resumable steps stop at once, others finish, targets wait at
    /// step boundaries; the job ends Paused with its position.
    pub pause: CancellationToken,
    /// Sees every event as it is emitted (progress display).
    pub observer: Option<Observer>,
    /// Called once the job has its id.
    pub on_created: Option<Arc<dyn Fn(JobId) + Send + Sync>>,
    /// Where steps keep artifacts (results directories); default
    /// `$TMPDIR/prova-artifacts`.
    pub artifacts_root: Option<std::path::PathBuf>,
    /// The server instance running the job (recorded as its owner).
    pub server_id: Option<String>,
}

/// Where a job stands: enough to resume it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct JobPosition {
    /// The run in progress, or the next one when `run_started` is false.
    pub run_id: u32,
    pub run_started: bool,
    /// Time left of the wait before that run, when paused during it.
    pub interval_left_ms: Option<u64>,
    /// The test in progress (or next) in the run.
    pub test_index: usize,
    pub test: Option<TestPosition>,
    /// Tests of the current run that finished.
    pub current: RunResult,
    /// Finished runs and their reports.
    pub runs: Vec<RunResult>,
    pub run_reports: Vec<Vec<Report>>,
}

impl JobPosition {
    fn start() -> JobPosition {
        JobPosition {
            run_id: 1,
            current: RunResult {
                run_id: 1,
                tests: Vec::new(),
            },
            ..Default::default()
        }
    }
}

/// How a job ended (or paused).
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub job_id: JobId,
    pub state: JobState,
    /// Why the job failed, if it did.
    pub error: Option<String>,
    pub runs: Vec<RunResult>,
    pub run_reports: Vec<Vec<Report>>,
    pub final_reports: Vec<Report>,
    /// Where a paused job stands.
    pub position: Option<JobPosition>,
    pub writer: WriterStats,
}

impl JobOutcome {
    /// The job's verdict, as its events give it ([`Verdict::of`]).
    pub fn verdict(&self) -> Verdict {
        let infra = self
            .runs
            .iter()
            .flat_map(|r| &r.tests)
            .flat_map(|t| &t.targets)
            .any(|t| t.infra);
        Verdict::of(Some(self.state), &self.run_reports, &self.final_reports).with_infra(infra)
    }

    /// Completed, and every reporter said success.
    pub fn success(&self) -> bool {
        self.verdict() == Verdict::Passed
    }
}

/// Errors before a job could start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("cannot record the job")]
    Store(#[from] prova_store::StoreError),
    #[error("job {0} has no resumable position: {1}")]
    NotResumable(JobId, String),
}

/// Records and runs a prepared job to its end (or pause).
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
    let started = json!({ "Requestor": opts.requestor, "ServerID": opts.server_id });
    Ok(drive_guarded(job_id, &job, store, opts, JobPosition::start(), started).await)
}

/// Continues a paused job from its position.
pub async fn resume_job(
    job_id: JobId,
    job: PreparedJob,
    store: Arc<dyn Store>,
    position: JobPosition,
    opts: RunOptions,
) -> Result<JobOutcome, EngineError> {
    let started =
        json!({ "Requestor": opts.requestor, "ServerID": opts.server_id, "Resumed": true });
    Ok(drive_guarded(job_id, &job, store, opts, position, started).await)
}

/// Runs [`drive`] so that nothing leaves the job `Started`: the owner's
/// lease is taken first (so a dead owner is noticed), and a panic anywhere
/// in the engine or a plugin's own tasks fails the job with the panic's
/// message and frees its targets instead of unwinding into the caller.
async fn drive_guarded(
    job_id: JobId,
    job: &PreparedJob,
    store: Arc<dyn Store>,
    opts: RunOptions,
    pos: JobPosition,
    started: serde_json::Value,
) -> JobOutcome {
    use futures::FutureExt;
    if let Some(owner) = &opts.server_id
        && let Err(e) = store
            .try_lease(job_id, owner, crate::ownership::LEASE_TTL)
            .await
    {
        tracing::error!(job = job_id, "cannot take the job's lease: {e}");
    }
    let run = std::panic::AssertUnwindSafe(drive(job_id, job, store.clone(), opts, pos, started));
    match run.catch_unwind().await {
        Ok(outcome) => outcome,
        Err(panic) => {
            let error = format!(
                "prova failed while running the job (a bug: please report it): {}",
                panic_message(&*panic)
            );
            tracing::error!(job = job_id, "{error}");
            let end = crate::ownership::record_end(
                &*store,
                job_id,
                JobState::Failed,
                json!({ "Error": error }),
            );
            if let Err(e) = end.await {
                tracing::error!(job = job_id, "cannot record that the job failed: {e}");
            }
            JobOutcome {
                job_id,
                state: JobState::Failed,
                error: Some(error),
                runs: Vec::new(),
                run_reports: Vec::new(),
                final_reports: Vec::new(),
                position: None,
                writer: WriterStats::default(),
            }
        }
    }
}

/// The text of a panic payload (`panic!("...")` gives a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// The position recorded by a job's newest `JobStatePaused` event.
pub async fn paused_position(store: &dyn Store, job_id: JobId) -> Result<JobPosition, EngineError> {
    let events = store
        .query_events(&EventQuery {
            job_id: Some(job_id),
            names: vec![JobState::Paused.event_name().to_string()],
            ..Default::default()
        })
        .await?;
    let payload = events
        .last()
        .and_then(|e| e.payload.clone())
        .ok_or_else(|| EngineError::NotResumable(job_id, "it was never paused".into()))?;
    serde_json::from_value(payload.get("Position").cloned().unwrap_or_default()).map_err(|e| {
        EngineError::NotResumable(job_id, format!("its pause record is unreadable: {e}"))
    })
}

async fn drive(
    job_id: JobId,
    job: &PreparedJob,
    store: Arc<dyn Store>,
    opts: RunOptions,
    mut pos: JobPosition,
    started: serde_json::Value,
) -> JobOutcome {
    if let Some(cb) = &opts.on_created {
        cb(job_id);
    }
    let (sink, writer) = EventSink::spawn(store.clone(), opts.observer.clone());
    let cancel = Cancel {
        graceful: opts.cancel.clone(),
        hard: opts.hard_cancel.clone(),
    };
    let artifacts_root: Arc<std::path::Path> = Arc::from(
        opts.artifacts_root
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("prova-artifacts"))
            .as_path(),
    );
    let ctx = JobCtx {
        job_id,
        sink: sink.clone(),
        cancel: cancel.clone(),
        pause: opts.pause.clone(),
        keeper: Arc::new(crate::keep_artifacts::ArtifactKeeper::new(
            store.clone(),
            job_id,
            &artifacts_root,
        )),
        artifacts_root,
        store: store.clone(),
    };
    sink.emit(NewEvent::job(
        job_id,
        JobState::Started.event_name(),
        Some(started),
    ));
    let mut cancel_watch = emit_cancelling_when_asked(job_id, &sink, &cancel.graceful);
    let mut d = Driver {
        job_id,
        job,
        store: &*store,
        ctx: &ctx,
        outcome: JobOutcome {
            job_id,
            state: JobState::Completed,
            error: None,
            runs: Vec::new(),
            run_reports: Vec::new(),
            final_reports: Vec::new(),
            position: None,
            writer: WriterStats::default(),
        },
    };
    let paused = d.run_all(&mut pos).await == Stop::Paused;
    let mut outcome = d.outcome;
    outcome.runs = pos.runs.clone();
    outcome.run_reports = pos.run_reports.clone();
    if paused && outcome.state != JobState::Failed {
        outcome.state = JobState::Paused;
        let payload = json!({ "Position": pos });
        sink.emit(NewEvent::job(
            job_id,
            JobState::Paused.event_name(),
            Some(payload),
        ));
        outcome.position = Some(pos);
        return finish(outcome, sink, writer, cancel_watch, ctx).await;
    }
    if cancel.graceful.is_cancelled() {
        // Let the watcher emit Cancelling before the final state.
        let _ = (&mut cancel_watch).await;
        if outcome.state != JobState::Failed {
            outcome.state = JobState::Cancelled;
        }
    }
    if outcome.state == JobState::Completed {
        outcome.final_reports = final_reports(job_id, job, &*store, &sink, &outcome.runs).await;
    }
    let payload = outcome.error.as_ref().map(|e| json!({ "Error": e }));
    sink.emit(NewEvent::job(job_id, outcome.state.event_name(), payload));
    finish(outcome, sink, writer, cancel_watch, ctx).await
}

/// Emits `JobStateCancelling` the moment cancellation is asked for.
fn emit_cancelling_when_asked(
    job_id: JobId,
    sink: &EventSink,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let (sink, token) = (sink.clone(), cancel.clone());
    tokio::spawn(async move {
        token.cancelled().await;
        sink.emit(NewEvent::job(
            job_id,
            JobState::Cancelling.event_name(),
            None,
        ));
    })
}

/// Why the runs stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Every run done, or cancelled, or failed.
    Ended,
    /// Paused: the position says where to resume.
    Paused,
}

/// The runs of one job, phase by phase, advancing a [`JobPosition`].
struct Driver<'a> {
    job_id: JobId,
    job: &'a PreparedJob,
    store: &'a dyn Store,
    ctx: &'a JobCtx,
    outcome: JobOutcome,
}

impl Driver<'_> {
    /// Runs from `pos` until every run is done, or the job is cancelled,
    /// paused or fails.
    async fn run_all(&mut self, pos: &mut JobPosition) -> Stop {
        let runs = self.job.descriptor.runs;
        loop {
            if runs != 0 && pos.run_id > runs {
                return Stop::Ended;
            }
            if let Some(stop) = self.wait_interval(pos).await {
                return stop;
            }
            if let Some(stop) = self.start_run(pos) {
                return stop;
            }
            if let Some(stop) = self.run_tests(pos).await {
                return stop;
            }
            let run_id = pos.run_id;
            self.ctx
                .sink
                .emit(run_event(self.job_id, run_id, names::RUN_FINISHED, None));
            let run = std::mem::take(&mut pos.current);
            if self.ctx.cancel.graceful.is_cancelled() {
                pos.runs.push(run);
                return Stop::Ended;
            }
            let reports = self.run_reports(run_id, &run).await;
            pos.run_reports.push(reports);
            pos.runs.push(run);
            self.next_run(pos);
        }
    }

    /// The wait before a run (`RunInterval`), cut short by cancel or pause.
    async fn wait_interval(&self, pos: &mut JobPosition) -> Option<Stop> {
        let left = pos.interval_left_ms.take()?;
        self.ctx.sink.emit(run_event(
            self.job_id,
            pos.run_id,
            names::WAITING,
            Some(json!({ "For": "RunInterval", "Seconds": left as f64 / 1000.0 })),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_millis(left);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => None,
            _ = self.ctx.cancel.graceful.cancelled() => Some(Stop::Ended),
            _ = self.ctx.pause.cancelled() => {
                let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
                pos.interval_left_ms = Some(rest.as_millis() as u64);
                Some(Stop::Paused)
            }
        }
    }

    /// Starts the run at `pos`, unless it already started (a resume).
    fn start_run(&self, pos: &mut JobPosition) -> Option<Stop> {
        if pos.run_started {
            return None;
        }
        if self.ctx.cancel.graceful.is_cancelled() {
            return Some(Stop::Ended);
        }
        if self.ctx.pause.is_cancelled() {
            return Some(Stop::Paused);
        }
        self.ctx
            .sink
            .emit(run_event(self.job_id, pos.run_id, names::RUN_STARTED, None));
        pos.run_started = true;
        None
    }

    /// Runs the tests of the current run in order, from `pos.test_index`.
    /// `None` when the run's tests are done (or cancelled, which the
    /// caller sees).
    async fn run_tests(&mut self, pos: &mut JobPosition) -> Option<Stop> {
        let run_id = pos.run_id;
        while pos.test_index < self.job.tests.len() {
            let test = &self.job.tests[pos.test_index];
            if test.disabled {
                pos.current.tests.push(TestResult {
                    name: test.name.clone(),
                    attempts: 0,
                    passed: true,
                    error: None,
                    targets: Vec::new(),
                    skipped: true,
                });
                pos.test_index += 1;
                continue;
            }
            if self.ctx.cancel.graceful.is_cancelled() {
                return None;
            }
            let resume = pos.test.take();
            if resume.is_none() && self.ctx.pause.is_cancelled() {
                return Some(Stop::Paused);
            }
            match run_test(self.ctx, run_id, test, resume).await {
                Ok(TestRun::Done(result)) => {
                    pos.current.tests.push(result);
                    pos.test_index += 1;
                }
                Ok(TestRun::Paused(tp)) => {
                    pos.test = Some(tp);
                    return Some(Stop::Paused);
                }
                Err(e) => {
                    self.outcome.state = JobState::Failed;
                    self.outcome.error = Some(e.to_string());
                    self.ctx
                        .sink
                        .emit(run_event(self.job_id, run_id, names::RUN_FINISHED, None));
                    pos.runs.push(std::mem::take(&mut pos.current));
                    return Some(Stop::Ended);
                }
            }
        }
        None
    }

    /// The run reporters' verdicts on a finished run, each emitted.
    async fn run_reports(&self, run_id: u32, run: &RunResult) -> Vec<Report> {
        let events = if self.job.needs_events() {
            run_events(&self.ctx.sink, self.store, self.job_id, Some(run_id)).await
        } else {
            Vec::new()
        };
        let mut reports = Vec::new();
        for (name, reporter) in &self.job.run_reporters {
            let input = RunReportInput {
                job_id: self.job_id,
                job_name: &self.job.descriptor.job_name,
                run,
                events: &events,
            };
            if let Some(mut report) = reporter.run_report(&input).await {
                report.reporter_name.clone_from(name);
                report.run_id = Some(run_id);
                self.ctx.sink.emit(run_event(
                    self.job_id,
                    run_id,
                    RUN_REPORT,
                    serde_json::to_value(&report).ok(),
                ));
                reports.push(report);
            }
        }
        reports
    }

    /// Moves `pos` to the next run, with its interval to wait.
    fn next_run(&self, pos: &mut JobPosition) {
        pos.run_id += 1;
        pos.run_started = false;
        pos.test_index = 0;
        pos.current = RunResult {
            run_id: pos.run_id,
            tests: Vec::new(),
        };
        let runs = self.job.descriptor.runs;
        let more = runs == 0 || pos.run_id <= runs;
        if more && !self.job.descriptor.run_interval.is_zero() {
            pos.interval_left_ms = Some(self.job.descriptor.run_interval.as_millis() as u64);
        }
    }
}

/// The final reporters' verdicts on the whole job, each emitted.
async fn final_reports(
    job_id: JobId,
    job: &PreparedJob,
    store: &dyn Store,
    sink: &EventSink,
    runs: &[RunResult],
) -> Vec<Report> {
    let mut events = if job.needs_events() {
        run_events(sink, store, job_id, None).await
    } else {
        Vec::new()
    };
    let mut reports = Vec::new();
    for (name, reporter) in &job.final_reporters {
        let input = FinalReportInput {
            job_id,
            job_name: &job.descriptor.job_name,
            runs,
            events: &events,
        };
        if let Some(mut report) = reporter.final_report(&input).await {
            report.reporter_name.clone_from(name);
            report.run_id = None;
            let event = NewEvent::job(job_id, FINAL_REPORT, serde_json::to_value(&report).ok());
            // Reporters listed later see this verdict (the junit file
            // written last carries every final report before it).
            if job.needs_events() {
                events.push(event.clone());
            }
            sink.emit(event);
            reports.push(report);
        }
    }
    reports
}

async fn finish(
    mut outcome: JobOutcome,
    sink: EventSink,
    writer: crate::emit::EventWriter,
    cancel_watch: tokio::task::JoinHandle<()>,
    ctx: JobCtx,
) -> JobOutcome {
    if !cancel_watch.is_finished() {
        cancel_watch.abort();
        let _ = cancel_watch.await;
    }
    drop(ctx);
    drop(sink);
    outcome.writer = writer.finish().await;
    if outcome.writer.lost > 0 {
        tracing::error!(
            "{} events of job {} could not be stored",
            outcome.writer.lost,
            outcome.job_id
        );
    }
    outcome
}

/// Events of a run (or the whole job) from the store, for reporters that
/// read them: everything emitted so far is flushed first. Reading them back
/// (rather than keeping them in memory) keeps memory flat and works across a
/// pause and resume.
async fn run_events(
    sink: &EventSink,
    store: &dyn Store,
    job_id: JobId,
    run_id: Option<u32>,
) -> Vec<NewEvent> {
    sink.flush().await;
    let query = EventQuery {
        job_id: Some(job_id),
        run_id,
        ..Default::default()
    };
    match store.query_events(&query).await {
        Ok(events) => events.into_iter().map(|e| e.event).collect(),
        Err(e) => {
            tracing::error!("cannot read events of job {job_id} for reporters: {e}");
            Vec::new()
        }
    }
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
