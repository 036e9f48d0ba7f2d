//! The `k8sjob` step: one Kubernetes batch/v1 Job per target.
//!
//! For each target the step builds a Job ([`crate::job::build_job`]),
//! creates it, and **watches** the Job and its pod (no polling). While the
//! test container runs, its log becomes `K8sLog` events (bounded by
//! `max_log_bytes`). Once the pod status says the test container has
//! terminated, the step fetches the results directory from the collector
//! through the pod exec API (`prova collector send`: a tar stream with a
//! SHA-256 trailer), verifies and extracts it into the step's artifacts
//! directory, and tells the collector to exit (`prova collector done`) so
//! the Job finishes. The verdict comes from container state and Job
//! conditions ([`crate::status::verdict`]), never from log text. On cancel,
//! timeout or an unrecoverable pod state the Job is deleted with background
//! propagation.

use std::collections::HashMap;
use std::sync::Mutex;

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use prova_engine::plugin::hard_exit::{HardExitGuard, on_hard_exit};
use prova_engine::plugin::*;
use serde_json::json;

use crate::job::build_job;
use crate::spec::{self, ConfigParams, Owner, StepConfig};
use crate::supervise::{Abort, Outcome, Run};
use crate::user_agent;

/// Event names the step emits.
pub mod events {
    /// `{Namespace, Name}`
    pub const JOB_CREATED: &str = "K8sJobCreated";
    /// `{Pod, Node}`
    pub const POD_SCHEDULED: &str = "K8sPodScheduled";
    /// `{Pod, Msg}`: one or more whole lines of the test container's log
    /// (the last may lack its newline, as the container wrote it). A line
    /// over `logs::lines::MAX_LINE_BYTES` comes alone, cut, with a marker.
    /// `{Pod, Msg, Truncated: true}`: `max_log_bytes` was reached.
    /// `{Pod, Msg, Incomplete: true}`: lines may be missing, and why.
    pub const LOG: &str = "K8sLog";
    /// `{Pod, Container, ExitCode, Reason, Message, Signal}`
    pub const CONTAINER_TERMINATED: &str = "K8sContainerTerminated";
    /// `{Pod, Reason, Message}`: evicted or disrupted; the Job makes a new pod.
    pub const POD_DISRUPTED: &str = "K8sPodDisrupted";
    /// `{Kind, Name, Reason, Message}`: a Warning Event about the Job or
    /// its pod (`FailedCreate`, `FailedScheduling`, `FailedMount`, ...),
    /// each distinct one once.
    pub const WARNING: &str = "K8sWarning";
    /// `{Files, Bytes, Sha256, Dir}`
    pub const RESULTS_FETCHED: &str = "K8sResultsFetched";
    /// `{Namespace, Name, Reason}`
    pub const JOB_DELETED: &str = "K8sJobDeleted";
}

/// Every event the step emits, with the results' events.
const EVENTS: &[EventDecl] = &[
    EventDecl::new(
        events::JOB_CREATED,
        "{Namespace, Name}: the Job was created",
    ),
    EventDecl::new(
        events::POD_SCHEDULED,
        "{Pod, Node}: the Job's pod was scheduled",
    ),
    EventDecl::new(
        events::LOG,
        "{Pod, Msg[, Truncated | Incomplete]}: whole lines of the test container's log",
    ),
    EventDecl::new(
        events::CONTAINER_TERMINATED,
        "{Pod, Container, ExitCode, Reason, Message, Signal}: the test container ended",
    ),
    EventDecl::new(
        events::POD_DISRUPTED,
        "{Pod, Reason, Message}: the pod was evicted or disrupted; the Job makes a new one",
    ),
    EventDecl::new(
        events::WARNING,
        "{Kind, Name, Reason, Message}: a Warning Event about the Job or its pod, each once",
    ),
    EventDecl::new(
        events::RESULTS_FETCHED,
        "{Files, Bytes, Sha256, Dir}: the results directory was fetched from the collector",
    ),
    EventDecl::new(
        events::JOB_DELETED,
        "{Namespace, Name, Reason}: the Job was deleted",
    ),
];

/// (kubeconfig, context)
type ConfigKey = (Option<String>, Option<String>);

/// The `k8sjob` step. Configurations are read once per (kubeconfig,
/// context); each run gets a client whose `User-Agent` names it.
#[derive(Default, Clone)]
pub struct K8sJob {
    clusters: Arc<Clusters>,
}

/// Where the step finds its clusters.
#[derive(Default)]
struct Clusters {
    config: Option<Config>,
    configs: Mutex<HashMap<ConfigKey, Config>>,
}

impl K8sJob {
    /// A step that finds its cluster as kubectl does (see [`Clusters::config`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A step that always uses `config` (tests, embedding).
    pub fn with_config(config: Config) -> Self {
        K8sJob {
            clusters: Arc::new(Clusters {
                config: Some(config),
                configs: Mutex::default(),
            }),
        }
    }
}

impl Step for K8sJob {
    fn events(&self) -> Vec<EventDecl> {
        [EVENTS, prova_results::EVENTS].concat()
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        Prepared::per_target(K8sJobRun {
            clusters: self.clusters.clone(),
            params: ConfigParams::read(p)?,
        })
    }
}

/// The `k8sjob` step, prepared.
struct K8sJobRun {
    clusters: Arc<Clusters>,
    params: ConfigParams,
}

impl Clusters {
    /// The cluster configuration. Without a fixed config, as kubectl: the
    /// `kubeconfig` parameter, else `KUBECONFIG` or `~/.kube/config`, else
    /// the in-cluster service account; `context` picks a kubeconfig context.
    async fn config(&self, cfg: &StepConfig) -> Result<Config, String> {
        if let Some(c) = &self.config {
            return Ok(c.clone());
        }
        let key = (cfg.kubeconfig.clone(), cfg.context.clone());
        if let Some(c) = self
            .configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let opts = KubeConfigOptions {
            context: cfg.context.clone(),
            ..Default::default()
        };
        let config = match (&cfg.kubeconfig, &cfg.context) {
            (Some(path), _) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| format!("reading kubeconfig {path}: {e}"))?;
                Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .map_err(|e| format!("kubeconfig {path}: {e}"))?
            }
            (None, Some(ctx)) => Config::from_kubeconfig(&opts)
                .await
                .map_err(|e| format!("kubeconfig context {ctx:?}: {e}"))?,
            (None, None) => Config::infer()
                .await
                .map_err(|e| format!("no Kubernetes configuration found: {e}"))?,
        };
        self.configs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, config.clone());
        Ok(config)
    }

    /// A client for one run, and its default namespace. Every request it
    /// makes carries prova's `User-Agent` with the job, run, test, step and
    /// target ([`user_agent::for_owner`]), so audit logs attribute it.
    async fn client(&self, cfg: &StepConfig, owner: &Owner) -> Result<(Client, String), String> {
        let mut config = self.config(cfg).await?;
        config
            .headers
            .retain(|(name, _)| name != http::header::USER_AGENT);
        config
            .headers
            .push((http::header::USER_AGENT, user_agent::header(owner)));
        let ns = config.default_namespace.clone();
        let client = Client::try_from(config)
            .map_err(|e| format!("cannot make a Kubernetes client: {e}"))?;
        Ok((client, ns))
    }
}

#[async_trait]
impl PreparedStep for K8sJobRun {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        let cfg = self.params.config(ctx, target)?;
        let owner = Owner {
            job_id: ctx.scope.job_id,
            run_id: ctx.scope.run_id,
            test: ctx.scope.test_name.to_string(),
            attempt: ctx.scope.attempt,
            step: ctx.step_label.clone(),
            target: target.id.clone(),
        };
        let (client, default_ns) = self
            .clusters
            .client(&cfg, &owner)
            .await
            .map_err(StepError::infra)?;
        let mut spec = cfg.spec.clone();
        spec.name = spec::job_name(&owner, &random_suffix());
        spec.owner = owner;
        spec.namespace = cfg.namespace.clone().unwrap_or(default_ns);
        let jobs: Api<Job> = Api::namespaced(client.clone(), &spec.namespace);
        let created = jobs
            .create(&PostParams::default(), &build_job(&spec))
            .await
            .map_err(|e| {
                StepError::infra(format!(
                    "cannot create Job {}/{}: {e}",
                    spec.namespace, spec.name
                ))
            })?;
        ctx.emit(
            target,
            events::JOB_CREATED,
            Some(json!({ "Namespace": spec.namespace, "Name": spec.name })),
        );
        let guard = delete_on_drop(jobs.clone(), spec.name.clone());
        let run = Run {
            ctx,
            target,
            cfg: &cfg,
            spec: &spec,
            jobs: jobs.clone(),
            pods: Api::namespaced(client.clone(), &spec.namespace),
            events: Api::namespaced(client, &spec.namespace),
            job_uid: created.metadata.uid.unwrap_or_default(),
            cause: Mutex::new(None),
        };
        let timeout = async {
            match cfg.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            r = run.supervise() => r,
            _ = ctx.cancel.cancelled() => Err(Abort::Cancelled),
            _ = timeout => Err(Abort::TimedOut(cfg.timeout.unwrap_or_default())),
        };
        guard.disarm();
        match ended {
            Ok(outcome) => finish(&run, outcome).await,
            Err(abort) => {
                let cause = run.cause.lock().unwrap_or_else(|e| e.into_inner()).take();
                stop(&run, abort, cause).await
            }
        }
    }
}

/// The Job ended (or its outcome is known): the verdict. A Job that has
/// not finished (a collector that never ran, ...) is not left behind.
async fn finish(run: &Run<'_>, outcome: Outcome) -> Result<(), StepError> {
    if !outcome.finished {
        delete_and_say(run, "the Job did not finish after its test container ended").await;
    }
    outcome.verdict.map_err(StepError::failed)
}

/// Cancelled, timed out or failed for good: the Job is deleted. A timeout
/// names what held the pod back when that is known.
async fn stop(run: &Run<'_>, abort: Abort, cause: Option<String>) -> Result<(), StepError> {
    let reason = match &abort {
        Abort::Cancelled => "cancelled".to_string(),
        Abort::TimedOut(t) => format!("timed out after {t:?}"),
        Abort::Failed(m) => m.clone(),
    };
    delete_and_say(run, &reason).await;
    match abort {
        Abort::Cancelled => Err(StepError::Cancelled),
        Abort::TimedOut(_) => Err(StepError::failed(match cause {
            Some(c) => format!("{reason}; the Job was deleted; {c}"),
            None => format!("{reason}; the Job was deleted"),
        })),
        Abort::Failed(m) => Err(StepError::failed(m)),
    }
}

async fn delete_and_say(run: &Run<'_>, reason: &str) {
    match delete_job(&run.jobs, &run.spec.name).await {
        Ok(()) => run.ctx.emit(
            run.target,
            events::JOB_DELETED,
            Some(json!({
                "Namespace": run.spec.namespace,
                "Name": run.spec.name,
                "Reason": reason,
            })),
        ),
        Err(e) => tracing::warn!("deleting Job {}: {e}", run.spec.name),
    }
}

async fn delete_job(jobs: &Api<Job>, name: &str) -> Result<(), kube::Error> {
    match jobs.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes the Job if the step's future is dropped mid-way (the engine's
/// step `timeout`, a hard stop).
/// Deletes the Job if the step's future is dropped before it ends the Job
/// itself (the engine's step timeout, a second Ctrl-C): `prova run` waits
/// for that deletion before it exits.
fn delete_on_drop(jobs: Api<Job>, name: String) -> HardExitGuard {
    on_hard_exit(
        format!("delete Kubernetes Job {name}"),
        move || async move {
            if let Err(e) = delete_job(&jobs, &name).await {
                tracing::warn!("deleting Job {name}: {e}");
            }
        },
    )
}

fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}
