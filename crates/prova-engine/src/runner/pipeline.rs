//! The step pipeline: targets flow through the steps of a test, each step a
//! stage of its own, so a target enters step N+1 as soon as it leaves step N.
//! A target that fails leaves the pipeline.
//!
//! Each stage watches its step: a step that panics, returns a target it was
//! never given (or twice), ends while holding targets, or holds a target
//! past its timeout fails that target — or, where the step as a whole is
//! broken, the test — with an error that says so. The process never fails.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use prova_core::Target;
use prova_core::descriptor::StepDescriptor;
use prova_core::event::names;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::emit::EventSink;
use crate::keep_artifacts::ArtifactKeeper;
use crate::plugin::{EventDecl, Prepared, PreparedStep, StepContext, StepError, TestScope};
use crate::vars::StepVars;

/// How long a cancelled step may take to return by itself before it is
/// dropped (which kills what it started).
const CANCEL_GRACE: Duration = Duration::from_secs(5);
/// Extra time a batch step gets past its timeout before the stage gives up
/// on a target (per-target steps are timed out precisely by their driver).
const BATCH_TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// A step ready to run: as written, and as its plugin prepared it.
#[derive(Clone)]
pub struct PipelineStep {
    pub desc: Arc<StepDescriptor>,
    pub prepared: Prepared,
    /// The events the plugin declared.
    pub events: Arc<[EventDecl]>,
}

/// How a target left the pipeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Exit {
    Passed,
    Failed {
        step: String,
        error: String,
        /// The infrastructure failed, not the target (`TargetErr` says
        /// `Infra: true`).
        infra: bool,
    },
    /// The job is pausing: the target stopped before step `stage` (`inside`
    /// false: it never entered it) or in it (a resumable step, with the
    /// step's `state`).
    Paused {
        stage: usize,
        inside: bool,
        state: Option<serde_json::Value>,
    },
}

/// A target entering a pipeline: new (stage 0) or resumed where a pause left
/// it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub target: Target,
    pub stage: usize,
    /// Resuming inside the step (it already emitted `TargetIn`), with the
    /// state the step recorded when it paused.
    pub inside: bool,
    pub state: Option<serde_json::Value>,
}

impl Entry {
    pub fn fresh(target: Target) -> Entry {
        Entry {
            target,
            stage: 0,
            inside: false,
            state: None,
        }
    }
}

/// The result of running targets through a pipeline.
#[derive(Debug, Default)]
pub struct PipelineOutcome {
    /// Every target given, in the order they left.
    pub targets: Vec<(Target, Exit)>,
    /// A step misbehaved in a way that fails the whole test.
    pub test_error: Option<String>,
}

impl PipelineOutcome {
    pub fn paused(&self) -> bool {
        self.targets
            .iter()
            .any(|(_, e)| matches!(e, Exit::Paused { .. }))
    }
}

/// What a pipeline runs in.
#[derive(Clone)]
pub struct PipelineEnv {
    pub scope: TestScope,
    pub sink: EventSink,
    pub vars: StepVars,
    pub cancel: CancellationToken,
    pub pause: CancellationToken,
    pub artifacts_root: Arc<std::path::Path>,
    /// Copies what a step kept for a target into the store once the step
    /// returns it.
    pub keeper: Arc<ArtifactKeeper>,
}

enum Input {
    Fresh(Target),
    /// Resumed inside the step: no `TargetIn` again.
    Inside(Target),
}

/// Runs targets through `steps`, each entering at its stage.
pub async fn run_pipeline(
    steps: &[PipelineStep],
    entries: Vec<Entry>,
    env: &PipelineEnv,
) -> PipelineOutcome {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Target, Exit)>();
    if steps.is_empty() {
        return PipelineOutcome {
            targets: entries
                .into_iter()
                .map(|e| (e.target, Exit::Passed))
                .collect(),
            test_error: None,
        };
    }
    let channels: Vec<_> = steps
        .iter()
        .map(|_| mpsc::unbounded_channel::<Input>())
        .collect();
    let senders: Vec<_> = channels.iter().map(|(tx, _)| tx.clone()).collect();
    let mut stages = JoinSet::new();
    for (i, (step, (_, rx))) in steps.iter().zip(channels).enumerate() {
        let resume: HashMap<String, Option<serde_json::Value>> = entries
            .iter()
            .filter(|e| e.stage == i && e.inside)
            .map(|e| (e.target.id.clone(), e.state.clone()))
            .collect();
        let ctx = Arc::new(StepContext {
            scope: env.scope.clone(),
            step_label: step.desc.label.clone(),
            step_name: step.desc.name.clone(),
            cancel: env.cancel.clone(),
            pause: env.pause.clone(),
            resume: std::sync::Mutex::new(resume),
            sink: env.sink.clone(),
            vars: env.vars.clone(),
            artifacts_root: env.artifacts_root.clone(),
            declared: step.events.clone(),
        });
        let stage = Stage {
            index: i,
            step: step.clone(),
            ctx,
            input: rx,
            next: senders.get(i + 1).cloned(),
            done: done_tx.clone(),
            keeper: env.keeper.clone(),
        };
        stages.spawn(stage.run());
    }
    drop(done_tx);
    for e in entries {
        if e.stage >= steps.len() {
            let _ = senders.last().map(|_| ());
            continue;
        }
        let msg = if e.inside {
            Input::Inside(e.target)
        } else {
            Input::Fresh(e.target)
        };
        let _ = senders[e.stage].send(msg);
    }
    drop(senders);

    let mut outcome = PipelineOutcome::default();
    while let Some(res) = stages.join_next().await {
        match res {
            Ok(Some(err)) => {
                outcome.test_error.get_or_insert(err);
            }
            Ok(None) => {}
            Err(e) => {
                outcome
                    .test_error
                    .get_or_insert(format!("internal error: a pipeline stage failed: {e}"));
            }
        }
    }
    while let Ok(item) = done_rx.try_recv() {
        outcome.targets.push(item);
    }
    outcome
}

struct Stage {
    index: usize,
    step: PipelineStep,
    ctx: Arc<StepContext>,
    input: mpsc::UnboundedReceiver<Input>,
    /// The next stage, or `None` for the last step.
    next: Option<mpsc::UnboundedSender<Input>>,
    done: mpsc::UnboundedSender<(Target, Exit)>,
    keeper: Arc<ArtifactKeeper>,
}

#[derive(Default)]
struct StageState {
    in_flight: HashMap<String, InFlight>,
    /// Targets failed by the stage's timeout; a late result is ignored.
    timed_out: HashSet<String>,
    returned: HashSet<String>,
    /// Why the step is broken; later targets fail at once with this.
    broken: Option<String>,
    /// Artifacts being copied into the store (see [`ArtifactKeeper`]); the
    /// stage ends once they are, so they are stored before the job ends.
    keeping: JoinSet<()>,
}

struct InFlight {
    target: Target,
    deadline: Option<Instant>,
}

impl Stage {
    /// Runs the stage; returns a test error if the step misbehaved.
    async fn run(mut self) -> Option<String> {
        let label = self.step.desc.label.clone();
        let (step_in_tx, step_in_rx) = mpsc::channel::<Target>(1 << 16);
        let (step_out_tx, mut step_out_rx) =
            mpsc::channel::<(Target, Result<(), StepError>)>(1 << 16);
        let mut step_in_tx = Some(step_in_tx);
        let mut step_task = tokio::spawn(drive(
            self.step.clone(),
            self.ctx.clone(),
            step_in_rx,
            step_out_tx,
        ));
        let mut st = StageState::default();
        let mut input_open = true;
        let mut out_open = true;
        let mut step_done = false;

        while input_open || !st.in_flight.is_empty() {
            let next_deadline = st.in_flight.values().filter_map(|f| f.deadline).min();
            tokio::select! {
                t = self.input.recv(), if input_open => match t {
                    Some(input) => self.on_input(&label, input, &mut st, &step_in_tx).await,
                    None => input_open = false,
                },
                r = step_out_rx.recv(), if out_open => match r {
                    Some((target, result)) => self.on_result(&label, target, result, &mut st),
                    None => out_open = false,
                },
                res = &mut step_task, if !step_done => {
                    step_done = true;
                    step_in_tx = None;
                    self.on_step_ended(&label, task_error(&label, res), &mut step_out_rx, &mut st);
                },
                _ = sleep_until(next_deadline), if next_deadline.is_some() => {
                    self.on_deadlines(&label, &mut st);
                }
            }
            if !input_open && st.in_flight.is_empty() {
                // Nothing more to give: let the step see its input close.
                step_in_tx = None;
            }
        }
        drop(step_in_tx);
        if !step_done {
            // Every target is out; give the step a moment to end by itself.
            match tokio::time::timeout(CANCEL_GRACE, &mut step_task).await {
                Ok(res) => {
                    if let Some(err) = task_error(&label, res) {
                        st.broken.get_or_insert(err);
                    }
                }
                Err(_) => step_task.abort(),
            }
        }
        // Late results (after a timeout) are ignored; anything else is a bug.
        while let Ok((target, result)) = step_out_rx.try_recv() {
            self.on_result(&label, target, result, &mut st);
        }
        while st.keeping.join_next().await.is_some() {}
        st.broken
    }

    /// A target arrives at the stage: it waits at the door when the job is
    /// pausing, fails at once when the step is broken, else enters it.
    async fn on_input(
        &self,
        label: &str,
        input: Input,
        st: &mut StageState,
        step_in: &Option<mpsc::Sender<Target>>,
    ) {
        let (target, inside) = match input {
            Input::Fresh(t) => (t, false),
            Input::Inside(t) => (t, true),
        };
        if self.ctx.pause.is_cancelled() {
            // Pausing: the target waits at this step's door (or stays
            // inside it, with its state untouched).
            let state = if inside {
                self.ctx.take_resume_state(&target)
            } else {
                None
            };
            let _ = self.done.send((
                target,
                Exit::Paused {
                    stage: self.index,
                    inside,
                    state,
                },
            ));
            return;
        }
        if !inside {
            self.ctx.emit_engine(&target, names::TARGET_IN, None);
        }
        if let Some(err) = &st.broken {
            self.fail(label, target, err.clone());
            return;
        }
        let deadline = match self.step.prepared {
            Prepared::Batch(_) => self
                .step
                .desc
                .timeout
                .map(|t| Instant::now() + t + BATCH_TIMEOUT_GRACE),
            Prepared::PerTarget(_) => None,
        };
        st.in_flight.insert(
            target.id.clone(),
            InFlight {
                target: target.clone(),
                deadline,
            },
        );
        let sent = match step_in {
            Some(tx) => tx.send(target.clone()).await.is_ok(),
            None => false,
        };
        if !sent {
            st.in_flight.remove(&target.id);
            let err = st
                .broken
                .clone()
                .unwrap_or_else(|| format!("step {label} stopped accepting targets"));
            self.fail(label, target, err);
        }
    }

    /// The step's task ended: what it still returned counts, every target
    /// still inside fails with the reason.
    fn on_step_ended(
        &self,
        label: &str,
        error: Option<String>,
        step_out: &mut mpsc::Receiver<(Target, Result<(), StepError>)>,
        st: &mut StageState,
    ) {
        if let Some(err) = error {
            st.broken.get_or_insert(err);
        }
        while let Ok((target, result)) = step_out.try_recv() {
            self.on_result(label, target, result, st);
        }
        let err = st
            .broken
            .clone()
            .unwrap_or_else(|| format!("step {label} ended without returning the target"));
        self.fail_all(label, &mut st.in_flight, err);
    }

    /// Fails the targets a batch step held past its timeout.
    fn on_deadlines(&self, label: &str, st: &mut StageState) {
        let now = Instant::now();
        let expired: Vec<String> = st
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline.is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        let timeout = self.step.desc.timeout.unwrap_or_default();
        for id in expired {
            if let Some(f) = st.in_flight.remove(&id) {
                self.fail(
                    label,
                    f.target,
                    format!("step {label} timed out after {timeout:?}"),
                );
                st.timed_out.insert(id);
            }
        }
    }

    fn on_result(
        &self,
        label: &str,
        target: Target,
        result: Result<(), StepError>,
        st: &mut StageState,
    ) {
        match st.in_flight.get(&target.id) {
            Some(f) if f.target == target => {
                st.in_flight.remove(&target.id);
                st.returned.insert(target.id.clone());
                if !matches!(result, Err(StepError::Paused(_))) {
                    // The step is done with the target: what it kept for
                    // it is complete. (A paused step finishes, and keeps,
                    // when the job resumes.)
                    let keeper = self.keeper.clone();
                    let dir = self.ctx.artifacts_dir(&target);
                    st.keeping.spawn(async move { keeper.keep(dir).await });
                }
                match result {
                    Ok(()) => self.pass(target),
                    Err(StepError::Paused(state)) => {
                        let _ = self.done.send((
                            target,
                            Exit::Paused {
                                stage: self.index,
                                inside: true,
                                state,
                            },
                        ));
                    }
                    Err(e) if e.is_infra() => self.fail_infra(label, target, e.to_string()),
                    Err(e) => self.fail(label, target, e.to_string()),
                }
            }
            _ if st.timed_out.contains(&target.id) => {
                tracing::debug!(
                    "step {label} returned target {} after its timeout",
                    target.id
                );
            }
            _ => {
                let err = if st.returned.contains(&target.id) {
                    format!("step {label} returned target {} twice", target.id)
                } else {
                    format!(
                        "step {label} returned target {} that it was never given",
                        target.id
                    )
                };
                tracing::warn!("{err}");
                st.broken.get_or_insert(err);
            }
        }
    }

    fn pass(&self, target: Target) {
        self.ctx.emit_engine(&target, names::TARGET_OUT, None);
        match &self.next {
            Some(next) => {
                let _ = next.send(Input::Fresh(target));
            }
            None => {
                let _ = self.done.send((target, Exit::Passed));
            }
        }
    }

    fn fail(&self, label: &str, target: Target, error: String) {
        self.fail_as(label, target, error, serde_json::json!({}));
    }

    /// The step could not do its work: the target failed, and `TargetErr`
    /// says it was the infrastructure (`Infra: true`), not the target.
    fn fail_infra(&self, label: &str, target: Target, error: String) {
        self.fail_as(label, target, error, serde_json::json!({ "Infra": true }));
    }

    fn fail_as(&self, label: &str, target: Target, error: String, mut payload: serde_json::Value) {
        payload["Error"] = serde_json::Value::String(error.clone());
        let infra = payload.get("Infra").and_then(|i| i.as_bool()) == Some(true);
        self.ctx
            .emit_engine(&target, names::TARGET_ERR, Some(payload));
        let _ = self.done.send((
            target,
            Exit::Failed {
                step: label.to_string(),
                error,
                infra,
            },
        ));
    }

    fn fail_all(&self, label: &str, in_flight: &mut HashMap<String, InFlight>, error: String) {
        let mut left: Vec<InFlight> = in_flight.drain().map(|(_, f)| f).collect();
        left.sort_by(|a, b| a.target.id.cmp(&b.target.id));
        for f in left {
            self.fail(label, f.target, error.clone());
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The error a finished step task stands for, if any.
fn task_error(
    label: &str,
    res: Result<Result<(), StepError>, tokio::task::JoinError>,
) -> Option<String> {
    match res {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!("step {label} failed: {e}")),
        Err(e) if e.is_panic() => Some(format!(
            "step {label} panicked: {}",
            super::panic_message(&*e.into_panic())
        )),
        Err(_) => Some(format!("step {label} was aborted")),
    }
}

/// Runs a step plugin over the stage's input.
async fn drive(
    step: PipelineStep,
    ctx: Arc<StepContext>,
    input: mpsc::Receiver<Target>,
    output: mpsc::Sender<(Target, Result<(), StepError>)>,
) -> Result<(), StepError> {
    match &step.prepared {
        Prepared::Batch(b) => b.run_batch(ctx, input, output).await,
        Prepared::PerTarget(s) => {
            drive_per_target(s.clone(), step.desc.clone(), ctx, input, output).await
        }
    }
}

/// Runs a per-target step on every target concurrently, catching panics and
/// applying the step's timeout to each target.
async fn drive_per_target(
    step: Arc<dyn PreparedStep>,
    desc: Arc<StepDescriptor>,
    ctx: Arc<StepContext>,
    mut input: mpsc::Receiver<Target>,
    output: mpsc::Sender<(Target, Result<(), StepError>)>,
) -> Result<(), StepError> {
    let mut running = JoinSet::new();
    let mut by_task: HashMap<tokio::task::Id, Target> = HashMap::new();
    let mut input_open = true;
    loop {
        tokio::select! {
            t = input.recv(), if input_open => match t {
                Some(target) => {
                    let (step, desc, ctx, t2) = (step.clone(), desc.clone(), ctx.clone(), target.clone());
                    let handle = running.spawn(async move { run_one(&*step, &desc, &ctx, &t2).await });
                    by_task.insert(handle.id(), target);
                }
                None => input_open = false,
            },
            Some(joined) = running.join_next_with_id(), if !running.is_empty() => {
                let (id, result) = match joined {
                    Ok((id, r)) => (id, r),
                    Err(e) => {
                        let id = e.id();
                        let msg = if e.is_panic() {
                            format!("step {} panicked: {}", desc.label, super::panic_message(&*e.into_panic()))
                        } else {
                            format!("step {} was aborted", desc.label)
                        };
                        (id, Err(StepError::failed(msg)))
                    }
                };
                if let Some(target) = by_task.remove(&id) {
                    let _ = output.send((target, result)).await;
                }
            }
            else => break,
        }
        if !input_open && running.is_empty() {
            break;
        }
    }
    Ok(())
}

/// One target through one step, with the step's timeout; on cancellation a
/// short grace before the step is dropped.
async fn run_one(
    step: &dyn PreparedStep,
    desc: &StepDescriptor,
    ctx: &StepContext,
    target: &Target,
) -> Result<(), StepError> {
    let run = step.run(ctx, target);
    let guarded = async {
        tokio::select! {
            r = run => r,
            _ = async { ctx.cancel.cancelled().await; tokio::time::sleep(CANCEL_GRACE).await } => Err(StepError::Cancelled),
        }
    };
    match desc.timeout {
        Some(t) => tokio::time::timeout(t, guarded).await.unwrap_or_else(|_| {
            Err(StepError::failed(format!(
                "step {} timed out after {t:?}",
                desc.label
            )))
        }),
        None => guarded.await,
    }
}
