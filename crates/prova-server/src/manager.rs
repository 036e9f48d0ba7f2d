//! The job manager: starts jobs, and cancels, pauses, resumes and retries
//! them; pauses them all when the server stops and resumes them when it
//! starts again.
//!
//! Ownership: every job records the server ID of the instance running it
//! (`ServerID` in its `JobStateStarted` payload). A server ID is stable
//! across restarts of one machine, so a starting server knows which jobs
//! were its own: those it paused on shutdown are resumed where they stood;
//! those left `Started` (the previous process was killed) are zombies and
//! fail with a clear error.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prova_core::node::Format;
use prova_core::{EventQuery, JobId, JobState, NewEvent};
use prova_engine::Registry;
use prova_engine::emit::Observer;
use prova_engine::ownership;
use prova_engine::prepare::{PreparedJob, descriptor_from_extended};
use prova_engine::retry_failed;
use prova_engine::runner::{RunOptions, paused_position, resume_job, run_job};
use prova_store::{JobFilter, Store, StoreError};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ServerConfig;
use crate::metrics::Metrics;
use crate::validate::{self, Submission, panic_message};

/// How long a job's lease lasts without a heartbeat, and how often the
/// leases of running jobs are renewed (the same for `prova run`).
pub use prova_engine::ownership::{HEARTBEAT, LEASE_TTL};
/// How often expired leases (dead instances' jobs) are looked for.
const TAKEOVER_SCAN: Duration = Duration::from_secs(2);

/// Job events the manager records (besides the engine's).
pub mod names {
    /// Someone asked to cancel: payload `{Requestor}`.
    pub const CANCEL_REQUESTED: &str = "CancelRequested";
    /// Someone (or the server stopping) asked to pause: `{Requestor, Reason}`.
    pub const PAUSE_REQUESTED: &str = "PauseRequested";
    pub const RESUME_REQUESTED: &str = "ResumeRequested";
    /// Another instance took the job over: `{From, To}`.
    pub const TAKEN_OVER: &str = "TakenOver";
}

/// Why a request about a job was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    #[error("job {0} not found")]
    NotFound(JobId),
    #[error("job {id} is {state}: {what}")]
    WrongState {
        id: JobId,
        state: String,
        what: &'static str,
    },
    #[error(transparent)]
    Invalid(#[from] prova_core::diag::InvalidDescriptor),
    #[error("the server is stopping")]
    Stopping,
    /// `retry?failed=true` of a job in which no test's last attempt failed.
    #[error(
        "job {0}: no test failed (its last attempt), so there is nothing to retry; retry the whole job instead"
    )]
    NothingFailed(JobId),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

#[derive(Clone)]
struct Control {
    cancel: CancellationToken,
    hard: CancellationToken,
    pause: CancellationToken,
}

/// Runs jobs for one server instance.
pub struct Manager {
    store: Arc<dyn Store>,
    registry: Registry,
    server_id: String,
    files_root: Option<PathBuf>,
    artifacts_root: PathBuf,
    metrics: Arc<Metrics>,
    running: Mutex<HashMap<JobId, Control>>,
    tasks: TaskTracker,
    stopping: CancellationToken,
}

impl Manager {
    pub fn new(
        store: Arc<dyn Store>,
        registry: Registry,
        config: &ServerConfig,
        metrics: Arc<Metrics>,
    ) -> Arc<Manager> {
        Arc::new(Manager {
            store,
            registry,
            server_id: config.server_id.clone(),
            files_root: config.files_root.clone(),
            artifacts_root: config.artifacts_root.clone(),
            metrics,
            running: Mutex::new(HashMap::new()),
            tasks: TaskTracker::new(),
            stopping: CancellationToken::new(),
        })
    }

    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// Jobs this instance is running now.
    pub fn running(&self) -> Vec<JobId> {
        let mut ids: Vec<JobId> = self
            .running
            .lock()
            .expect("running lock")
            .keys()
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Validates a descriptor (JSON or YAML) and starts it; returns the new
    /// job's id once it is recorded.
    pub async fn submit(
        self: &Arc<Self>,
        text: &str,
        requestor: &str,
    ) -> Result<JobId, ManagerError> {
        self.submit_from(text, requestor, None).await
    }

    /// [`Manager::submit`] of a descriptor that a client read from `source`
    /// (`prova start FILE`): files it names resolve beside it, as they do
    /// for `prova run`, when that folder is on this machine beneath the
    /// files root; otherwise (a client elsewhere) relative to the root.
    pub async fn submit_from(
        self: &Arc<Self>,
        text: &str,
        requestor: &str,
        source: Option<&std::path::Path>,
    ) -> Result<JobId, ManagerError> {
        if self.stopping.is_cancelled() {
            return Err(ManagerError::Stopping);
        }
        let format = if text.trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Yaml
        };
        let prepared = validate::prepare(
            Submission {
                text: text.to_string(),
                format,
                source: source.and_then(|s| self.beneath_root(s)),
                files_root: self.files_root.clone(),
            },
            &self.registry,
        )
        .await?;
        self.start(prepared, requestor, None).await
    }

    /// `source` if its folder exists here beneath the files root.
    fn beneath_root(&self, source: &std::path::Path) -> Option<PathBuf> {
        let root = self.files_root.as_ref()?.canonicalize().ok()?;
        let dir = source.parent()?.canonicalize().ok()?;
        let name = source.file_name()?;
        dir.starts_with(&root).then(|| dir.join(name))
    }

    /// A new job from a stored job's extended descriptor (its steps as they
    /// were fetched then).
    pub async fn retry(
        self: &Arc<Self>,
        id: JobId,
        requestor: &str,
    ) -> Result<JobId, ManagerError> {
        let prepared = self.prepare_stored(id, None).await?;
        self.start(prepared, requestor, None).await
    }

    /// A new job from an ended job's extended descriptor with only the
    /// tests whose last attempt failed (see [`retry_failed::failed_tests`]);
    /// returns its id and those tests' names.
    pub async fn retry_failed(
        self: &Arc<Self>,
        id: JobId,
        requestor: &str,
    ) -> Result<(JobId, Vec<String>), ManagerError> {
        let status = prova_engine::status::load_status(&*self.store, id)
            .await?
            .ok_or(ManagerError::NotFound(id))?;
        // While a job runs, which tests fail is not known yet.
        if !status.state.is_some_and(JobState::is_final) {
            return Err(ManagerError::WrongState {
                id,
                state: status
                    .state
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "unknown".into()),
                what: "only an ended job's failed tests can be retried",
            });
        }
        let failed = retry_failed::failed_tests(&status);
        if failed.is_empty() {
            return Err(ManagerError::NothingFailed(id));
        }
        let prepared = self.prepare_stored(id, Some(&failed)).await?;
        let new = self.start(prepared, requestor, None).await?;
        Ok((new, failed.into_iter().collect()))
    }

    /// A stored job's descriptor, prepared again; with `only`, cut down to
    /// those tests.
    async fn prepare_stored(
        &self,
        id: JobId,
        only: Option<&BTreeSet<String>>,
    ) -> Result<PreparedJob, ManagerError> {
        let job = self
            .store
            .get_job(id)
            .await?
            .ok_or(ManagerError::NotFound(id))?;
        let mut desc =
            descriptor_from_extended(&job.extended_descriptor).map_err(ManagerError::Internal)?;
        if let Some(only) = only {
            retry_failed::only_tests(&mut desc, only)
                .map_err(|e| ManagerError::Internal(format!("job {id}: {e}")))?;
        }
        let source = job.source_path.as_ref().map(PathBuf::from);
        validate::prepare(
            Submission {
                text: desc.to_string(),
                format: Format::Json,
                source,
                files_root: self.files_root.clone(),
            },
            &self.registry,
        )
        .await
    }

    fn options(self: &Arc<Self>, requestor: &str, control: &Control) -> RunOptions {
        RunOptions {
            requestor: requestor.to_string(),
            cancel: control.cancel.clone(),
            hard_cancel: control.hard.clone(),
            pause: control.pause.clone(),
            observer: Some(self.observer()),
            on_created: None,
            artifacts_root: Some(self.artifacts_root.clone()),
            server_id: Some(self.server_id.clone()),
        }
    }

    fn observer(&self) -> Observer {
        let metrics = self.metrics.clone();
        Arc::new(move |ev: &NewEvent| metrics.observe(ev))
    }

    /// Starts a new job (`resume` None) or resumes a paused one.
    async fn start(
        self: &Arc<Self>,
        prepared: PreparedJob,
        requestor: &str,
        resume: Option<JobId>,
    ) -> Result<JobId, ManagerError> {
        let control = Control {
            cancel: CancellationToken::new(),
            hard: CancellationToken::new(),
            pause: CancellationToken::new(),
        };
        let mut opts = self.options(requestor, &control);
        let (id_tx, id_rx) = tokio::sync::oneshot::channel();
        let id_tx = Arc::new(Mutex::new(Some(id_tx)));
        let me = self.clone();
        let ctl = control.clone();
        // The job's id once recorded, for the panic guard below.
        let created = Arc::new(std::sync::OnceLock::new());
        let created_id = created.clone();
        opts.on_created = Some(Arc::new(move |id| {
            let _ = created_id.set(id);
            me.running
                .lock()
                .expect("running lock")
                .insert(id, ctl.clone());
            // The engine takes the job's lease (for `server_id`) before the
            // job starts.
            if let Some(tx) = id_tx.lock().expect("id lock").take() {
                let _ = tx.send(id);
            }
        }));
        let me = self.clone();
        let position = match resume {
            Some(id) => Some(
                paused_position(&*self.store, id)
                    .await
                    .map_err(|e| ManagerError::Internal(e.to_string()))?,
            ),
            None => None,
        };
        self.metrics.running_jobs.inc();
        self.tasks.spawn(async move {
            // The job runs in a task of its own so that a panic in it comes
            // back here as a JoinError: the job then fails with the reason
            // instead of staying `Started` with nobody running it.
            let store = me.store.clone();
            let job = tokio::spawn(async move {
                match (resume, position) {
                    (Some(id), Some(pos)) => resume_job(id, prepared, store, pos, opts).await,
                    _ => run_job(prepared, store, opts).await,
                }
            });
            let result = match job.await {
                Ok(result) => result,
                Err(join) => {
                    me.metrics.running_jobs.dec();
                    me.job_task_died(created.get().copied(), join).await;
                    return;
                }
            };
            me.metrics.running_jobs.dec();
            match result {
                Ok(outcome) => {
                    tracing::info!(job = outcome.job_id, state = %outcome.state, "job ended");
                    if outcome.state.is_final() {
                        me.metrics.job_ended(outcome.verdict());
                    }
                    me.running
                        .lock()
                        .expect("running lock")
                        .remove(&outcome.job_id);
                    // A job paused at shutdown keeps naming this server in
                    // its lease (if it comes back first it resumes the
                    // job), but the lease expires now: another instance
                    // may resume it at once, not only when a lease runs out.
                    let paused_at_shutdown =
                        outcome.state == JobState::Paused && me.stopping.is_cancelled();
                    let let_go = if paused_at_shutdown {
                        me.store
                            .hand_over_lease(outcome.job_id, &me.server_id)
                            .await
                    } else {
                        me.store.release_lease(outcome.job_id, &me.server_id).await
                    };
                    if let Err(e) = let_go {
                        tracing::warn!(
                            job = outcome.job_id,
                            "cannot let go of the job's lease: {e}"
                        );
                    }
                }
                Err(e) => tracing::error!("job could not run: {e}"),
            }
        });
        id_rx
            .await
            .map_err(|_| ManagerError::Internal("the job ended before it was recorded".into()))
    }

    /// A job's task panicked (or was aborted): the job fails with the
    /// reason, leaves the running set and lets go of its lease. Without an
    /// id the job was never recorded, and `start` reports the failure.
    async fn job_task_died(&self, id: Option<JobId>, join: tokio::task::JoinError) {
        let reason = if join.is_panic() {
            format!("the job panicked: {}", panic_message(&*join.into_panic()))
        } else {
            "the job's task was aborted".to_string()
        };
        let Some(id) = id else {
            tracing::error!("a job died before it was recorded: {reason}");
            return;
        };
        tracing::error!(job = id, "{reason}");
        self.metrics.job_ended(prova_core::status::Verdict::Error);
        self.running.lock().expect("running lock").remove(&id);
        let ended = match self.store.get_job(id).await {
            Ok(Some(job)) => job.state.is_some_and(JobState::is_final),
            _ => false,
        };
        if !ended && let Err(e) = self.fail(id, &reason).await {
            tracing::error!(job = id, "cannot record that the job failed: {e}");
        }
        if let Err(e) = self.store.release_lease(id, &self.server_id).await {
            tracing::warn!(job = id, "cannot let go of the job's lease: {e}");
        }
    }

    /// Records who asked, then signals a running job. `what` names the verb
    /// for errors.
    async fn request(
        &self,
        id: JobId,
        event: &str,
        payload: serde_json::Value,
        what: &'static str,
    ) -> Result<Control, ManagerError> {
        let control = self.running.lock().expect("running lock").get(&id).cloned();
        let Some(control) = control else {
            let job = self
                .store
                .get_job(id)
                .await?
                .ok_or(ManagerError::NotFound(id))?;
            let state = job
                .state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into());
            return Err(ManagerError::WrongState { id, state, what });
        };
        self.store
            .append_events(&[NewEvent::job(id, event, Some(payload))])
            .await?;
        Ok(control)
    }

    pub async fn cancel(&self, id: JobId, requestor: &str) -> Result<(), ManagerError> {
        let c = self
            .request(
                id,
                names::CANCEL_REQUESTED,
                json!({ "Requestor": requestor }),
                "only a running job can be cancelled",
            )
            .await?;
        c.cancel.cancel();
        Ok(())
    }

    pub async fn pause(&self, id: JobId, requestor: &str) -> Result<(), ManagerError> {
        let c = self
            .request(
                id,
                names::PAUSE_REQUESTED,
                json!({ "Requestor": requestor, "Reason": "api" }),
                "only a running job can be paused",
            )
            .await?;
        c.pause.cancel();
        Ok(())
    }

    /// Resumes a paused job from where it stood.
    pub async fn resume(self: &Arc<Self>, id: JobId, requestor: &str) -> Result<(), ManagerError> {
        if self.stopping.is_cancelled() {
            return Err(ManagerError::Stopping);
        }
        let job = self
            .store
            .get_job(id)
            .await?
            .ok_or(ManagerError::NotFound(id))?;
        if job.state != Some(JobState::Paused)
            || self.running.lock().expect("running lock").contains_key(&id)
        {
            let state = job
                .state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into());
            return Err(ManagerError::WrongState {
                id,
                state,
                what: "only a paused job can be resumed",
            });
        }
        if !self.store.try_lease(id, &self.server_id, LEASE_TTL).await? {
            return Err(ManagerError::WrongState {
                id,
                state: "leased by another instance".into(),
                what: "it is resumed by the instance that holds its lease",
            });
        }
        self.store
            .append_events(&[NewEvent::job(
                id,
                names::RESUME_REQUESTED,
                Some(json!({ "Requestor": requestor })),
            )])
            .await?;
        let prepared = self.prepare_stored(id, None).await?;
        self.start(prepared, requestor, Some(id)).await?;
        Ok(())
    }

    /// Cancels every running job at once (a second SIGTERM).
    pub async fn cancel_all(&self) {
        let controls: Vec<Control> = self
            .running
            .lock()
            .expect("running lock")
            .values()
            .cloned()
            .collect();
        for c in controls {
            c.cancel.cancel();
            c.hard.cancel();
        }
        self.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tasks.wait()).await;
    }

    /// Pauses every running job (recording why), waits up to `timeout` for
    /// them to reach a step boundary, and cancels those that did not.
    pub async fn shutdown(&self, timeout: Duration) {
        self.stopping.cancel();
        let running: Vec<(JobId, Control)> = self
            .running
            .lock()
            .expect("running lock")
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        let requests: Vec<NewEvent> = running
            .iter()
            .map(|(id, _)| {
                NewEvent::job(
                    *id,
                    names::PAUSE_REQUESTED,
                    Some(json!({ "Requestor": self.server_id, "Reason": "shutdown" })),
                )
            })
            .collect();
        if let Err(e) = self.store.append_events(&requests).await {
            tracing::error!("cannot record the shutdown pause requests: {e}");
        }
        for (_, c) in &running {
            c.pause.cancel();
        }
        self.tasks.close();
        if tokio::time::timeout(timeout, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "pause timeout ({timeout:?}) expired: cancelling the jobs still running"
            );
            for c in self.running.lock().expect("running lock").values() {
                c.cancel.cancel();
            }
            if tokio::time::timeout(Duration::from_secs(30), self.tasks.wait())
                .await
                .is_err()
            {
                for c in self.running.lock().expect("running lock").values() {
                    c.hard.cancel();
                }
                self.tasks.wait().await;
            }
        }
    }

    /// Renews this instance's leases, and takes over the jobs of instances
    /// whose leases expired: a paused job is resumed where it stood; a job
    /// that was running cannot be (its position died with its instance) and
    /// fails with the reason.
    pub fn spawn_background(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            let mut beat = tokio::time::interval(HEARTBEAT);
            let mut scan = tokio::time::interval(TAKEOVER_SCAN);
            loop {
                tokio::select! {
                    _ = me.stopping.cancelled() => break,
                    _ = beat.tick() => {
                        if let Err(e) = me.store.renew_leases(&me.server_id, LEASE_TTL).await {
                            tracing::error!("cannot renew job leases: {e}");
                        }
                    }
                    _ = scan.tick() => {
                        if let Err(e) = me.take_over_expired().await {
                            tracing::error!("cannot look for jobs to take over: {e}");
                        }
                    }
                }
            }
            // Still stopping: keep our leases alive until the jobs paused.
            while !me.tasks.is_empty() {
                let _ = me.store.renew_leases(&me.server_id, LEASE_TTL).await;
                tokio::time::sleep(HEARTBEAT).await;
            }
        });
    }

    async fn take_over_expired(self: &Arc<Self>) -> Result<(), StoreError> {
        // Jobs of `prova run` processes that died: ended, never resumed.
        ownership::reap_abandoned_runs(&*self.store, &self.server_id).await?;
        for (id, owner) in self.store.expired_leases().await? {
            if owner == self.server_id
                || self.running.lock().expect("running lock").contains_key(&id)
            {
                continue;
            }
            let Some(job) = self.store.get_job(id).await? else {
                continue;
            };
            let state = job.state;
            if state.is_some_and(JobState::is_final) {
                self.store.release_lease(id, &owner).await?;
                continue;
            }
            if !self.store.try_lease(id, &self.server_id, LEASE_TTL).await? {
                continue; // another instance was faster
            }
            tracing::warn!(job = id, from = %owner, "taking over a job whose owner stopped renewing its lease");
            self.store
                .append_events(&[NewEvent::job(
                    id,
                    names::TAKEN_OVER,
                    Some(json!({ "From": owner, "To": self.server_id })),
                )])
                .await?;
            if state == Some(JobState::Paused) {
                if let Err(e) = self.resume(id, &self.server_id.clone()).await {
                    self.fail(
                        id,
                        &format!("taken over from {owner}, but cannot be resumed: {e}"),
                    )
                    .await?;
                    self.store.release_lease(id, &self.server_id).await?;
                }
            } else {
                let msg = format!(
                    "server {owner} stopped renewing its lease while the job ran (it died?); {} took the job over, \
                     but a job that was not paused cannot be resumed",
                    self.server_id
                );
                ownership::end_abandoned(&*self.store, id, &msg).await?;
            }
        }
        Ok(())
    }

    /// On start: fail this instance's zombie jobs, resume the jobs it paused
    /// when it stopped.
    pub async fn recover(self: &Arc<Self>) -> Result<Recovery, StoreError> {
        let mut recovery = Recovery::default();
        let jobs = self
            .store
            .list_jobs(&JobFilter {
                states: vec![JobState::Started, JobState::Cancelling, JobState::Paused],
                ..Default::default()
            })
            .await?;
        for job in jobs {
            if self.owner(job.id).await?.as_deref() != Some(self.server_id.as_str()) {
                continue;
            }
            match job.state {
                Some(JobState::Paused) => {
                    if self.pause_reason(job.id).await?.as_deref() != Some("shutdown") {
                        continue; // paused through the API: stays paused
                    }
                    tracing::info!(job = job.id, "resuming a job paused at shutdown");
                    if let Err(e) = self.resume(job.id, &self.server_id.clone()).await {
                        if self.leased_elsewhere(job.id).await? {
                            continue; // another instance resumed it first
                        }
                        let msg = format!("cannot resume after a restart: {e}");
                        tracing::warn!(job = job.id, "{msg}");
                        self.fail(job.id, &msg).await?;
                        recovery.failed.push((job.id, msg));
                    } else {
                        recovery.resumed.push(job.id);
                    }
                }
                _ => {
                    if !self
                        .store
                        .try_lease(job.id, &self.server_id, LEASE_TTL)
                        .await?
                    {
                        continue; // another instance is ending it
                    }
                    let msg = format!(
                        "zombie job: server {} stopped without pausing it (killed?); it cannot be resumed",
                        self.server_id
                    );
                    tracing::warn!(job = job.id, "{msg}");
                    ownership::end_abandoned(&*self.store, job.id, &msg).await?;
                    recovery.failed.push((job.id, msg));
                }
            }
        }
        recovery.log();
        Ok(recovery)
    }

    /// Whether another instance holds the job's lease now.
    async fn leased_elsewhere(&self, id: JobId) -> Result<bool, StoreError> {
        Ok(matches!(
            self.store.lease_owner(id).await?,
            Some((owner, false)) if owner != self.server_id
        ))
    }

    async fn fail(&self, id: JobId, msg: &str) -> Result<(), StoreError> {
        self.store
            .append_events(&[NewEvent::job(
                id,
                JobState::Failed.event_name(),
                Some(json!({ "Error": msg })),
            )])
            .await
    }

    async fn newest_job_event(
        &self,
        id: JobId,
        name: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let events = self
            .store
            .query_events(&EventQuery {
                job_id: Some(id),
                names: vec![name.to_string()],
                ..Default::default()
            })
            .await?;
        Ok(events.last().and_then(|e| e.payload.clone()))
    }

    /// The server that last started (or resumed) the job.
    pub async fn owner(&self, id: JobId) -> Result<Option<String>, StoreError> {
        Ok(self
            .newest_job_event(id, JobState::Started.event_name())
            .await?
            .and_then(|p| {
                p.get("ServerID")
                    .and_then(|s| s.as_str())
                    .map(str::to_string)
            }))
    }

    async fn pause_reason(&self, id: JobId) -> Result<Option<String>, StoreError> {
        Ok(self
            .newest_job_event(id, names::PAUSE_REQUESTED)
            .await?
            .and_then(|p| p.get("Reason").and_then(|s| s.as_str()).map(str::to_string)))
    }
}

/// What a restart did with the jobs this instance had (see
/// [`Manager::recover`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Jobs paused at shutdown, resumed where they stood.
    pub resumed: Vec<JobId>,
    /// Jobs that could not go on (killed while running, or not resumable),
    /// failed with the reason.
    pub failed: Vec<(JobId, String)>,
}

impl Recovery {
    /// One line an operator sees at the default log level, naming the jobs.
    fn log(&self) {
        if self.resumed.is_empty() && self.failed.is_empty() {
            tracing::info!("restart: no job of this server to resume or fail");
            return;
        }
        let ids = |v: &mut dyn Iterator<Item = JobId>| {
            v.map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
        };
        let line = format!(
            "restart: resumed {} job(s) paused at shutdown [{}]; failed {} job(s) that cannot go on [{}]",
            self.resumed.len(),
            ids(&mut self.resumed.iter().copied()),
            self.failed.len(),
            ids(&mut self.failed.iter().map(|(id, _)| *id)),
        );
        if self.failed.is_empty() {
            tracing::info!("{line}");
        } else {
            tracing::warn!("{line}");
        }
    }
}
