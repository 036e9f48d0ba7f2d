//! The test runner: acquire targets, run them through the steps, run the
//! cleanup steps, release the targets; retry a failed attempt as
//! `RetryParameters` say. Every event carries the attempt number.

use std::sync::Arc;

use prova_core::Target;
use prova_core::event::names;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::emit::EventSink;
use crate::prepare::PreparedTest;
use crate::runner::pipeline::{Exit, run_pipeline};
use crate::runner::results::{TargetResult, TestResult};
use crate::runner::step_ctx::TestScope;
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
#[derive(Clone)]
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
    pub artifacts_root: Arc<std::path::Path>,
}

/// Runs one test (all its attempts) in one run.
pub async fn run_test(
    job: &JobCtx,
    run_id: u32,
    test: &PreparedTest,
) -> Result<TestResult, TestInfraError> {
    let (job_id, cancel) = (job.job_id, &job.cancel);
    let mut attempt = 0u32;
    loop {
        let scope = TestScope {
            job_id,
            run_id,
            test_name: Arc::from(test.name.as_str()),
            attempt,
        };
        let result = run_attempt(test, &scope, job).await?;
        let retry =
            !result.passed && attempt < test.retry.num_retries && !cancel.graceful.is_cancelled();
        if !retry {
            return Ok(TestResult {
                attempts: attempt + 1,
                ..result
            });
        }
        tracing::info!(test = %test.name, attempt, "test failed; retrying in {:?}", test.retry.retry_interval);
        tokio::select! {
            _ = tokio::time::sleep(test.retry.retry_interval) => {}
            _ = cancel.graceful.cancelled() => return Ok(TestResult { attempts: attempt + 1, ..result }),
        }
        attempt += 1;
    }
}

async fn run_attempt(
    test: &PreparedTest,
    scope: &TestScope,
    job: &JobCtx,
) -> Result<TestResult, TestInfraError> {
    let (sink, cancel) = (&job.sink, &job.cancel);
    sink.emit(scope.event(None, None, names::TEST_STARTED, None));
    let infra = |message: String| TestInfraError {
        test: test.name.clone(),
        message,
    };

    let acquired = tokio::select! {
        r = tokio::time::timeout(test.acquire_timeout, test.targets.acquire(scope.job_id, &cancel.graceful)) => match r {
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
            sink.emit(scope.event(
                None,
                None,
                names::TEST_ERROR,
                Some(json!({ "Error": message })),
            ));
            sink.emit(scope.event(
                None,
                None,
                names::TEST_FINISHED,
                Some(json!({ "Success": false })),
            ));
            return Err(infra(message));
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
        return Err(infra(message));
    }
    for t in &targets {
        sink.emit(scope.event(None, Some(t), names::TARGET_ACQUIRED, None));
    }

    let vars = StepVars::default();
    let outcome = if cancel.graceful.is_cancelled() {
        None
    } else {
        Some(
            run_pipeline(
                &test.steps,
                targets.clone(),
                scope,
                sink,
                &vars,
                &cancel.graceful,
                &job.artifacts_root,
            )
            .await,
        )
    };

    if !test.cleanup.is_empty() {
        // Cleanup always runs, also after a graceful cancel; only a hard
        // cancel stops it.
        let cleanup = run_pipeline(
            &test.cleanup,
            targets.clone(),
            scope,
            sink,
            &vars,
            &cancel.hard,
            &job.artifacts_root,
        )
        .await;
        if let Some(err) = cleanup.test_error {
            sink.emit(scope.event(
                None,
                None,
                names::TEST_ERROR,
                Some(json!({ "Error": format!("cleanup: {err}") })),
            ));
        }
    }

    let released = tokio::time::timeout(
        test.release_timeout,
        test.targets.release(scope.job_id, &targets),
    )
    .await;
    match released {
        Ok(Ok(())) => {
            for t in &targets {
                sink.emit(scope.event(None, Some(t), names::TARGET_RELEASED, None));
            }
        }
        Ok(Err(e)) => {
            let msg = format!("cannot release targets: {e}");
            sink.emit(scope.event(None, None, names::TEST_ERROR, Some(json!({ "Error": msg }))));
        }
        Err(_) => {
            let msg = format!(
                "cannot release targets: timed out after {:?}",
                test.release_timeout
            );
            sink.emit(scope.event(None, None, names::TEST_ERROR, Some(json!({ "Error": msg }))));
        }
    }

    let (results, test_error) = match outcome {
        None => (
            targets
                .iter()
                .map(|t| TargetResult {
                    target: t.clone(),
                    passed: false,
                    failed_step: None,
                    error: Some("cancelled before the steps ran".into()),
                })
                .collect::<Vec<_>>(),
            Some("cancelled".to_string()),
        ),
        Some(o) => {
            let mut by_id: std::collections::HashMap<String, Exit> =
                o.targets.into_iter().map(|(t, e)| (t.id, e)).collect();
            let results = targets
                .iter()
                .map(|t| match by_id.remove(&t.id) {
                    Some(Exit::Passed) => TargetResult {
                        target: t.clone(),
                        passed: true,
                        failed_step: None,
                        error: None,
                    },
                    Some(Exit::Failed { step, error }) => TargetResult {
                        target: t.clone(),
                        passed: false,
                        failed_step: Some(step),
                        error: Some(error),
                    },
                    None => TargetResult {
                        target: t.clone(),
                        passed: false,
                        failed_step: None,
                        error: Some("the target never left the pipeline".into()),
                    },
                })
                .collect();
            (results, o.test_error)
        }
    };
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
    Ok(TestResult {
        name: test.name.clone(),
        attempts: scope.attempt + 1,
        passed,
        error: test_error,
        targets: results,
        skipped: false,
    })
}

fn first_duplicate(targets: &[Target]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    targets
        .iter()
        .find(|t| !seen.insert(t.id.as_str()))
        .map(|t| t.id.as_str())
}
