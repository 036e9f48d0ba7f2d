//! What a step sees while it runs: who it runs for, how to emit events and
//! set variables, and the cancellation signal.

use std::sync::Arc;

use prova_core::event::EventKind;
use prova_core::{JobId, NewEvent, Target};
use tokio_util::sync::CancellationToken;

use prova_core::template::{Template, TemplateError};

use super::step::EventDecl;
use crate::emit::EventSink;
use crate::vars::StepVars;

/// Where in a job an event happens: job, run, test and attempt.
#[derive(Debug, Clone)]
pub struct TestScope {
    pub job_id: JobId,
    pub run_id: u32,
    pub test_name: Arc<str>,
    pub attempt: u32,
}

impl TestScope {
    /// A test event in this scope, stamped now.
    pub fn event(
        &self,
        step_label: Option<&str>,
        target: Option<&Target>,
        name: &str,
        payload: Option<serde_json::Value>,
    ) -> NewEvent {
        NewEvent {
            kind: EventKind::Test,
            job_id: self.job_id,
            run_id: self.run_id,
            test_name: Some(self.test_name.to_string()),
            test_attempt: Some(self.attempt),
            step_label: step_label.map(str::to_string),
            target: target.cloned(),
            name: name.to_string(),
            payload,
            emit_time: jiff::Timestamp::now(),
        }
    }
}

/// The context of one step of one test attempt.
pub struct StepContext {
    pub scope: TestScope,
    pub step_label: String,
    /// The plugin name, as written in the descriptor.
    pub step_name: String,
    /// Cancelled when the job is cancelled; steps must return promptly.
    pub cancel: CancellationToken,
    /// Cancelled when the job is asked to pause. A resumable step returns
    /// `StepError::Paused(state)` at once; any other step finishes its work.
    pub pause: CancellationToken,
    pub(crate) resume:
        std::sync::Mutex<std::collections::HashMap<String, Option<serde_json::Value>>>,
    pub(crate) sink: EventSink,
    pub(crate) vars: StepVars,
    pub(crate) artifacts_root: Arc<std::path::Path>,
    /// The events the step declared ([`super::Step::events`]).
    pub(crate) declared: Arc<[EventDecl]>,
}

impl StepContext {
    /// Emits a step event about `target` (e.g. `CmdStdout`). The name must
    /// be one the step declared: a debug build (every test) panics on an
    /// undeclared one, a release build logs it and emits it anyway.
    pub fn emit(&self, target: &Target, name: &str, payload: Option<serde_json::Value>) {
        if !self.declared.iter().any(|d| d.name == name) {
            let msg = format!(
                "step {:?} ({}) emitted event {name:?}, which it does not declare",
                self.step_label, self.step_name
            );
            if cfg!(debug_assertions) {
                panic!("{msg}");
            }
            tracing::error!("{msg}");
        }
        self.sink.emit(
            self.scope
                .event(Some(&self.step_label), Some(target), name, payload),
        );
    }

    /// Emits an event of the engine's own (`TargetIn`, ...), which no step
    /// declares.
    pub(crate) fn emit_engine(
        &self,
        target: &Target,
        name: &str,
        payload: Option<serde_json::Value>,
    ) {
        self.sink.emit(
            self.scope
                .event(Some(&self.step_label), Some(target), name, payload),
        );
    }

    /// Waits until every event emitted so far is stored: for records that
    /// must survive this process being killed the next moment (the process
    /// group a command runs in, so a later prova can kill it).
    pub async fn flush(&self) {
        self.sink.flush().await;
    }

    /// Where this step keeps files for `target` (a container's results
    /// directory, ...): `<root>/job-<id>/run-<n>/<test>/attempt-<a>/<step>/<target>`.
    /// Not created until a step creates it.
    pub fn artifacts_dir(&self, target: &Target) -> std::path::PathBuf {
        self.artifacts_root
            .join(format!("job-{}", self.scope.job_id))
            .join(format!("run-{}", self.scope.run_id))
            .join(path_safe(&self.scope.test_name))
            .join(format!("attempt-{}", self.scope.attempt))
            .join(path_safe(&self.step_label))
            .join(path_safe(&target.id))
    }

    /// The state this step recorded for `target` when the job paused, once
    /// (the first call after a resume takes it).
    pub fn take_resume_state(&self, target: &Target) -> Option<serde_json::Value> {
        self.resume
            .lock()
            .expect("resume lock")
            .remove(&target.id)
            .flatten()
    }

    /// Whether `target` resumes inside this step after a pause.
    pub fn is_resuming(&self, target: &Target) -> bool {
        self.resume
            .lock()
            .expect("resume lock")
            .contains_key(&target.id)
    }

    /// Renders a template for `target` (parameters do this through
    /// [`super::Param::get`]).
    pub fn render(&self, template: &Template, target: &Target) -> Result<String, TemplateError> {
        self.vars.render(template, target)
    }

    /// Sets a variable that later steps read as `StringVar "label.name"`.
    pub fn set_var(&self, target: &Target, name: &str, value: serde_json::Value) {
        self.vars.set(target, &self.step_label, name, value);
    }
}

/// A name usable as one path component: anything but letters, digits, `-`,
/// `_` and `.` becomes `_`, and `.`/`..` cannot escape the root.
fn path_safe(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s == "." || s == ".." {
        format!("_{s}")
    } else {
        s
    }
}
