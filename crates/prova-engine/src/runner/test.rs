//! The test runner: acquire targets, run them through the steps, run the
//! cleanup steps, release the targets; retry a failed attempt as
//! `RetryParameters` say. Every event carries the attempt number.
//!
//! A pause stops the test where it stands and returns its position
//! ([`TestPosition`]): the targets it holds, where each one is in the steps
//! or the cleanup, the step variables. Resuming from that position emits no
//! event twice: targets are not acquired again, and a target that waited at
//! a step's door enters it for the first time.

use std::sync::Arc;
use std::time::Duration;

use prova_core::Target;
use prova_core::event::names;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::emit::EventSink;
use crate::locks::{AnnouncingLocker, Refresher, StoreLocker};
use crate::plugin::TargetLocker;
use crate::plugin::TestScope;
use crate::prepare::PreparedTest;
use crate::runner::pipeline::{Entry, Exit, PipelineEnv, PipelineOutcome, run_pipeline};
use crate::runner::results::{TargetResult, TestResult};
use crate::vars::StepVars;

/// The test could not run at all (targets could not be acquired): the job
/// fails, as in ConTest.
#[derive(Debug, Clone, thiserror::Error)]
#[error("test {test:?}: {message}")]
pub struct TestInfraError {
    pub test: String,
    pub message: String,
}

/// Cancellation signals a test runner obeys.
#[derive(Clone, Default)]
pub struct Cancel {
    /// Graceful: steps stop, cleanup runs, targets are released.
    pub graceful: CancellationToken,
    /// Hard: cleanup stops too.
    pub hard: CancellationToken,
}

/// What every test of a job shares.
#[derive(Clone)]
pub struct JobCtx {
    pub job_id: prova_core::JobId,
    pub sink: EventSink,
    pub cancel: Cancel,
    /// Asked to pause: steps stop at their boundaries, resumable ones at once.
    pub pause: CancellationToken,
    pub artifacts_root: Arc<std::path::Path>,
    pub store: Arc<dyn prova_store::Store>,
    /// Copies steps' artifacts into the store.
    pub keeper: Arc<crate::keep_artifacts::ArtifactKeeper>,
}

impl JobCtx {
    fn locker(&self) -> StoreLocker {
        StoreLocker {
            store: self.store.clone(),
            job_id: self.job_id,
        }
    }
}

/// Where a paused test stood.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestPosition {
    pub attempt: u32,
    /// `None`: paused before the attempt acquired targets.
    pub held: Option<HeldTargets>,
}

/// Which steps a paused attempt was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    Steps,
    Cleanup,
}

/// The targets a paused attempt holds and where each one is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldTargets {
    pub targets: Vec<Target>,
    pub phase: Phase,
    /// Targets still to go through `phase`, from where they stopped.
    pub entries: Vec<Entry>,
    /// Targets already out of the test steps, and how.
    pub exits: Vec<(String, Exit)>,
    pub test_error: Option<String>,
    pub vars: Vec<(String, String, String, serde_json::Value)>,
}

/// How a test run ended.
#[derive(Debug, Clone)]
pub enum TestRun {
    Done(TestResult),
    Paused(TestPosition),
}

/// Runs one test (all its attempts) in one run, or resumes it.
pub async fn run_test(
    job: &JobCtx,
    run_id: u32,
    test: &PreparedTest,
    mut resume: Option<TestPosition>,
) -> Result<TestRun, TestInfraError> {
    let mut attempt = resume.as_ref().map_or(0, |p| p.attempt);
    loop {
        let scope = TestScope {
            job_id: job.job_id,
            run_id,
            test_name: Arc::from(test.name.as_str()),
            attempt,
        };
        let held = resume.take().and_then(|p| p.held);
        if held.is_none() && job.pause.is_cancelled() {
            return Ok(TestRun::Paused(TestPosition {
                attempt,
                held: None,
            }));
        }
        let result = match run_attempt(test, &scope, job, held).await? {
            Attempt::Done(r) => r,
            Attempt::Paused(held) => {
                return Ok(TestRun::Paused(TestPosition {
                    attempt,
                    held: Some(held),
                }));
            }
        };
        let cancel = &job.cancel;
        let retry =
            !result.passed && attempt < test.retry.num_retries && !cancel.graceful.is_cancelled();
        if !retry {
            return Ok(TestRun::Done(TestResult {
                attempts: attempt + 1,
                ..result
            }));
        }
        tracing::info!(test = %test.name, attempt, "test failed; retrying in {:?}", test.retry.retry_interval);
        if !test.retry.retry_interval.is_zero() {
            job.sink.emit(scope.event(
                None,
                None,
                names::WAITING,
                Some(json!({
                    "For": "RetryInterval",
                    "Seconds": test.retry.retry_interval.as_secs_f64(),
                })),
            ));
        }
        tokio::select! {
            _ = tokio::time::sleep(test.retry.retry_interval) => {}
            _ = cancel.graceful.cancelled() => return Ok(TestRun::Done(TestResult { attempts: attempt + 1, ..result })),
            // The wait between attempts is resumable: the next attempt
            // starts afresh after the pause.
            _ = job.pause.cancelled() => return Ok(TestRun::Paused(TestPosition { attempt: attempt + 1, held: None })),
        }
        attempt += 1;
    }
}

enum Attempt {
    Done(TestResult),
    Paused(HeldTargets),
}

/// The test's targets, or `None` when the job was cancelled first.
async fn acquire(
    test: &PreparedTest,
    scope: &TestScope,
    job: &JobCtx,
) -> Result<Option<Vec<Target>>, TestInfraError> {
    let (sink, cancel) = (&job.sink, &job.cancel);
    let infra = |message: String| TestInfraError {
        test: test.name.clone(),
        message,
    };
    let locker = AnnouncingLocker::new(job.locker(), sink.clone(), scope.clone());
    let acquired = tokio::select! {
        r = tokio::time::timeout(test.acquire_timeout, test.targets.acquire(scope.job_id, &cancel.graceful, &locker)) => match r {
            Ok(Ok(targets)) if targets.is_empty() => Err("the target manager returned no targets".to_string()),
            Ok(Ok(targets)) => Ok(targets),
            Ok(Err(e)) => Err(format!("cannot acquire targets: {e}")),
            Err(_) => Err(format!("cannot acquire targets: timed out after {:?}", test.acquire_timeout)),
        },
        _ = cancel.graceful.cancelled() => Err("cancelled while acquiring targets".to_string()),
    };
    let targets = match acquired {
        Ok(t) => t,
        Err(message) => {
            sink.emit(scope.event(
                None,
                None,
                names::TARGET_ACQUIRE_FAILED,
                Some(json!({ "Error": message })),
            ));
            // A cancel while waiting for targets ends the test, not in
            // error: the job is cancelled (ConTest's JobStateCancelled),
            // not failed.
            let cancelled = cancel.graceful.is_cancelled();
            if !cancelled {
                sink.emit(scope.event(
                    None,
                    None,
                    names::TEST_ERROR,
                    Some(json!({ "Error": message })),
                ));
            }
            sink.emit(scope.event(
                None,
                None,
                names::TEST_FINISHED,
                Some(json!({ "Success": false })),
            ));
            return if cancelled {
                Ok(None)
            } else {
                Err(infra(message))
            };
        }
    };
    if let Some(dup) = first_duplicate(&targets) {
        let message = format!("the target manager returned target {dup} twice");
        sink.emit(scope.event(
            None,
            None,
            names::TEST_ERROR,
            Some(json!({ "Error": message })),
        ));
        let _ = test.targets.release(scope.job_id, &targets).await;
        let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
        let _ = job.locker().unlock(&ids).await;
        return Err(infra(message));
    }
    for t in &targets {
        sink.emit(scope.event(None, Some(t), names::TARGET_ACQUIRED, None));
    }
    Ok(Some(targets))
}

fn split_paused(outcome: PipelineOutcome) -> (Vec<(String, Exit)>, Vec<Entry>, Option<String>) {
    let mut exits = Vec::new();
    let mut paused = Vec::new();
    for (target, exit) in outcome.targets {
        match exit {
            Exit::Paused {
                stage,
                inside,
                state,
            } => paused.push(Entry {
                target,
                stage,
                inside,
                state,
            }),
            other => exits.push((target.id, other)),
        }
    }
    paused.sort_by(|a, b| a.target.id.cmp(&b.target.id));
    (exits, paused, outcome.test_error)
}

async fn run_attempt(
    test: &PreparedTest,
    scope: &TestScope,
    job: &JobCtx,
    held: Option<HeldTargets>,
) -> Result<Attempt, TestInfraError> {
    let (sink, cancel) = (&job.sink, &job.cancel);
    let (targets, vars, phase, entries, mut exits, mut test_error) = match held {
        Some(h) => {
            relock(test, job, &h.targets).await?;
            (
                h.targets,
                StepVars::restore(h.vars),
                h.phase,
                h.entries,
                h.exits,
                h.test_error,
            )
        }
        None => {
            sink.emit(scope.event(None, None, names::TEST_STARTED, None));
            let Some(targets) = acquire(test, scope, job).await? else {
                return Ok(Attempt::Done(TestResult {
                    name: test.name.clone(),
                    attempts: 0,
                    passed: false,
                    error: Some("cancelled while acquiring targets".into()),
                    targets: Vec::new(),
                    skipped: false,
                }));
            };
            let entries = targets.iter().cloned().map(Entry::fresh).collect();
            (
                targets,
                StepVars::default(),
                Phase::Steps,
                entries,
                Vec::new(),
                None,
            )
        }
    };
    let _refresher = Refresher::start(job.store.clone(), job.job_id);
    let env = PipelineEnv {
        scope: scope.clone(),
        sink: sink.clone(),
        vars: vars.clone(),
        cancel: cancel.graceful.clone(),
        pause: job.pause.clone(),
        artifacts_root: job.artifacts_root.clone(),
        keeper: job.keeper.clone(),
    };
    let mut cancelled_before_steps = false;
    let cleanup_entries = if phase == Phase::Steps {
        if cancel.graceful.is_cancelled() {
            cancelled_before_steps = true;
        } else {
            let (done, paused, err) = split_paused(run_pipeline(&test.steps, entries, &env).await);
            exits.extend(done);
            if test_error.is_none() {
                test_error = err;
            }
            if !paused.is_empty() {
                return Ok(Attempt::Paused(HeldTargets {
                    targets,
                    phase: Phase::Steps,
                    entries: paused,
                    exits,
                    test_error,
                    vars: vars.snapshot(),
                }));
            }
        }
        targets.iter().cloned().map(Entry::fresh).collect()
    } else {
        entries
    };

    if !test.cleanup.is_empty() {
        // Cleanup always runs, also after a graceful cancel; only a hard
        // cancel stops it.
        let cleanup_env = PipelineEnv {
            cancel: cancel.hard.clone(),
            ..env.clone()
        };
        let (_, paused, err) =
            split_paused(run_pipeline(&test.cleanup, cleanup_entries, &cleanup_env).await);
        if let Some(err) = err {
            sink.emit(scope.event(
                None,
                None,
                names::TEST_ERROR,
                Some(json!({ "Error": format!("cleanup: {err}") })),
            ));
        }
        if !paused.is_empty() {
            return Ok(Attempt::Paused(HeldTargets {
                targets,
                phase: Phase::Cleanup,
                entries: paused,
                exits,
                test_error,
                vars: vars.snapshot(),
            }));
        }
    }

    release(test, scope, sink, &targets).await;
    let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    if let Err(e) = job.locker().unlock(&ids).await {
        tracing::warn!("{e}");
    }
    Ok(Attempt::Done(finish(
        test,
        scope,
        sink,
        &targets,
        exits,
        test_error,
        cancelled_before_steps,
    )))
}

async fn release(test: &PreparedTest, scope: &TestScope, sink: &EventSink, targets: &[Target]) {
    let released = tokio::time::timeout(
        test.release_timeout,
        test.targets.release(scope.job_id, targets),
    )
    .await;
    let error = match released {
        Ok(Ok(())) => {
            for t in targets {
                sink.emit(scope.event(None, Some(t), names::TARGET_RELEASED, None));
            }
            return;
        }
        Ok(Err(e)) => format!("cannot release targets: {e}"),
        Err(_) => format!(
            "cannot release targets: timed out after {:?}",
            test.release_timeout
        ),
    };
    sink.emit(scope.event(
        None,
        None,
        names::TEST_ERROR,
        Some(json!({ "Error": error })),
    ));
}

fn finish(
    test: &PreparedTest,
    scope: &TestScope,
    sink: &EventSink,
    targets: &[Target],
    exits: Vec<(String, Exit)>,
    mut test_error: Option<String>,
    cancelled_before_steps: bool,
) -> TestResult {
    if cancelled_before_steps {
        test_error = Some("cancelled".into());
    }
    let mut by_id: std::collections::HashMap<String, Exit> = exits.into_iter().collect();
    let results: Vec<TargetResult> = targets
        .iter()
        .map(|t| {
            let (passed, failed_step, error, infra) = match by_id.remove(&t.id) {
                Some(Exit::Passed) => (true, None, None, false),
                Some(Exit::Failed { step, error, infra }) => {
                    (false, Some(step), Some(error), infra)
                }
                _ if cancelled_before_steps => (
                    false,
                    None,
                    Some("cancelled before the steps ran".into()),
                    false,
                ),
                _ => (
                    false,
                    None,
                    Some("the target never left the pipeline".into()),
                    false,
                ),
            };
            TargetResult {
                target: t.clone(),
                passed,
                failed_step,
                error,
                infra,
            }
        })
        .collect();
    if let Some(err) = &test_error {
        sink.emit(scope.event(None, None, names::TEST_ERROR, Some(json!({ "Error": err }))));
    }
    let passed = test_error.is_none() && results.iter().all(|r| r.passed);
    let ok = results.iter().filter(|r| r.passed).count();
    sink.emit(scope.event(
        None,
        None,
        names::TEST_FINISHED,
        Some(json!({ "Success": passed, "PassedTargets": ok, "TotalTargets": results.len() })),
    ));
    TestResult {
        name: test.name.clone(),
        attempts: scope.attempt + 1,
        passed,
        error: test_error,
        targets: results,
        skipped: false,
    }
}

fn first_duplicate(targets: &[Target]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    targets
        .iter()
        .find(|t| !seen.insert(t.id.as_str()))
        .map(|t| t.id.as_str())
}

/// Resuming: the held targets are ours again once locked (another job may
/// have taken one while the locks expired during the pause).
async fn relock(
    test: &PreparedTest,
    job: &JobCtx,
    targets: &[Target],
) -> Result<(), TestInfraError> {
    let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    let locked = tokio::time::timeout(test.acquire_timeout, async {
        loop {
            match job.locker().lock_all(&ids).await {
                Ok(true) => return Ok(()),
                Ok(false) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    let message = match locked {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => "cannot lock the targets again after a pause: another job holds them".into(),
    };
    Err(TestInfraError {
        test: test.name.clone(),
        message,
    })
}
