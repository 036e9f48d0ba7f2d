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
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use futures::{AsyncReadExt as _, StreamExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, DeleteParams, LogParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Config};
use prova_core::Target;
use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;
use prova_engine::plugin::{Step, StepError};
use prova_engine::runner::step_ctx::StepContext;
use serde_json::json;
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;

use crate::archive;
use crate::collector::DEFAULT_CONTROL_DIR;
use crate::framing::{Decoder, Trailer};
use crate::job::{COLLECTOR_BINARY, COLLECTOR_CONTAINER, build_job, labels};
use crate::spec::{self, Owner, StepConfig};
use crate::status::{self, Disruption, JobEnd, Terminated};

/// Event names the step emits.
pub mod events {
    /// `{Namespace, Name}`
    pub const JOB_CREATED: &str = "K8sJobCreated";
    /// `{Pod, Node}`
    pub const POD_SCHEDULED: &str = "K8sPodScheduled";
    /// `{Pod, Msg}`: one or more whole lines of the test container's log.
    pub const LOG: &str = "K8sLog";
    /// `{Pod, Container, ExitCode, Reason, Message, Signal}`
    pub const CONTAINER_TERMINATED: &str = "K8sContainerTerminated";
    /// `{Pod, Reason, Message}`: evicted or disrupted; the Job makes a new pod.
    pub const POD_DISRUPTED: &str = "K8sPodDisrupted";
    /// `{Files, Bytes, Sha256, Dir}`
    pub const RESULTS_FETCHED: &str = "K8sResultsFetched";
    /// `{Namespace, Name, Reason}`
    pub const JOB_DELETED: &str = "K8sJobDeleted";
}

/// How long to wait for the last log bytes once the container ended.
const LOG_DRAIN: Duration = Duration::from_secs(10);
/// How long to wait for the Job's final condition once the outcome is known.
const FINISH_GRACE: Duration = Duration::from_secs(60);
/// How long to keep reading pod updates after the Job finished, for the
/// test container's final state.
const POD_GRACE: Duration = Duration::from_secs(10);
/// Longest line kept whole in a `K8sLog` event.
const MAX_LINE: usize = 64 * 1024;

/// (kubeconfig, context)
type ClientKey = (Option<String>, Option<String>);

/// The `k8sjob` step. Clients are made once per (kubeconfig, context).
#[derive(Default)]
pub struct K8sJob {
    config: Option<Config>,
    clients: Mutex<HashMap<ClientKey, (Client, String)>>,
}

impl K8sJob {
    /// A step that finds its cluster as kubectl does (see [`Self::client`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A step that always uses `config` (tests, embedding).
    pub fn with_config(config: Config) -> Self {
        K8sJob {
            config: Some(config),
            clients: Mutex::default(),
        }
    }

    /// A client and its default namespace. Without a fixed config, as
    /// kubectl: the `kubeconfig` parameter, else `KUBECONFIG` or
    /// `~/.kube/config`, else the in-cluster service account; `context`
    /// picks a kubeconfig context.
    async fn client(&self, cfg: &StepConfig) -> Result<(Client, String), String> {
        let key = (cfg.kubeconfig.clone(), cfg.context.clone());
        if let Some(c) = self.clients.lock().expect("clients lock").get(&key) {
            return Ok(c.clone());
        }
        let opts = KubeConfigOptions {
            context: cfg.context.clone(),
            ..Default::default()
        };
        let config = match (&self.config, &cfg.kubeconfig, &cfg.context) {
            (Some(c), _, _) => c.clone(),
            (None, Some(path), _) => {
                let kc = Kubeconfig::read_from(path)
                    .map_err(|e| format!("reading kubeconfig {path}: {e}"))?;
                Config::from_custom_kubeconfig(kc, &opts)
                    .await
                    .map_err(|e| format!("kubeconfig {path}: {e}"))?
            }
            (None, None, Some(ctx)) => Config::from_kubeconfig(&opts)
                .await
                .map_err(|e| format!("kubeconfig context {ctx:?}: {e}"))?,
            (None, None, None) => Config::infer()
                .await
                .map_err(|e| format!("no Kubernetes configuration found: {e}"))?,
        };
        let ns = config.default_namespace.clone();
        let client = Client::try_from(config)
            .map_err(|e| format!("cannot make a Kubernetes client: {e}"))?;
        self.clients
            .lock()
            .expect("clients lock")
            .insert(key, (client.clone(), ns.clone()));
        Ok((client, ns))
    }
}

#[async_trait]
impl Step for K8sJob {
    fn validate(&self, step: &StepDescriptor, diags: &mut Diagnostics) {
        spec::validate(step, diags);
    }

    async fn run(
        &self,
        ctx: &StepContext,
        target: &Target,
        params: &StepParams,
    ) -> Result<(), StepError> {
        let cfg = StepConfig::from_params(params).map_err(StepError::Params)?;
        let (client, default_ns) = self.client(&cfg).await.map_err(StepError::Failed)?;
        let mut spec = cfg.spec.clone();
        spec.owner = Owner {
            job_id: ctx.scope.job_id,
            run_id: ctx.scope.run_id,
            test: ctx.scope.test_name.to_string(),
            attempt: ctx.scope.attempt,
            step: ctx.step_label.clone(),
            target: target.id.clone(),
        };
        spec.name = spec::job_name(&spec.owner, &random_suffix());
        spec.namespace = cfg.namespace.clone().unwrap_or(default_ns);
        let job = build_job(&spec);
        let jobs: Api<Job> = Api::namespaced(client.clone(), &spec.namespace);
        let pods: Api<Pod> = Api::namespaced(client, &spec.namespace);

        jobs.create(&PostParams::default(), &job)
            .await
            .map_err(|e| {
                StepError::Failed(format!(
                    "cannot create Job {}/{}: {e}",
                    spec.namespace, spec.name
                ))
            })?;
        ctx.emit(
            target,
            events::JOB_CREATED,
            Some(json!({ "Namespace": spec.namespace, "Name": spec.name })),
        );
        let mut guard = DeleteGuard {
            jobs: Some(jobs.clone()),
            name: spec.name.clone(),
        };

        let run = Run {
            ctx,
            target,
            cfg: &cfg,
            spec: &spec,
            jobs: jobs.clone(),
            pods,
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
        match ended {
            Ok((verdict, finished)) => {
                guard.disarm();
                // The outcome is known but the Job hangs on (a collector that
                // never ran, ...): do not leave it behind.
                if !finished {
                    match delete_job(&jobs, &spec.name).await {
                        Ok(()) => ctx.emit(
                            target,
                            events::JOB_DELETED,
                            Some(json!({
                                "Namespace": spec.namespace,
                                "Name": spec.name,
                                "Reason": "the Job did not finish after its test container ended",
                            })),
                        ),
                        Err(e) => tracing::warn!("deleting Job {}: {e}", spec.name),
                    }
                }
                verdict.map_err(StepError::Failed)
            }
            Err(abort) => {
                guard.disarm();
                let reason = match &abort {
                    Abort::Cancelled => "cancelled".to_string(),
                    Abort::TimedOut(t) => format!("timed out after {t:?}"),
                    Abort::Failed(m) => m.clone(),
                };
                match delete_job(&jobs, &spec.name).await {
                    Ok(()) => ctx.emit(
                        target,
                        events::JOB_DELETED,
                        Some(json!({
                            "Namespace": spec.namespace,
                            "Name": spec.name,
                            "Reason": reason,
                        })),
                    ),
                    Err(e) => tracing::warn!("deleting Job {}: {e}", spec.name),
                }
                match abort {
                    Abort::Cancelled => Err(StepError::Cancelled),
                    Abort::TimedOut(_) => {
                        Err(StepError::Failed(format!("{reason}; the Job was deleted")))
                    }
                    Abort::Failed(m) => Err(StepError::Failed(m)),
                }
            }
        }
    }
}

/// Why the step stopped before the Job ended by itself: the Job is deleted.
enum Abort {
    Cancelled,
    TimedOut(Duration),
    Failed(String),
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
struct DeleteGuard {
    jobs: Option<Api<Job>>,
    name: String,
}

impl DeleteGuard {
    fn disarm(&mut self) {
        self.jobs = None;
    }
}

impl Drop for DeleteGuard {
    fn drop(&mut self) {
        if let Some(jobs) = self.jobs.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let name = std::mem::take(&mut self.name);
            rt.spawn(async move {
                if let Err(e) = delete_job(&jobs, &name).await {
                    tracing::warn!("deleting Job {name}: {e}");
                }
            });
        }
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// One Job being supervised.
struct Run<'a> {
    ctx: &'a StepContext,
    target: &'a Target,
    cfg: &'a StepConfig,
    spec: &'a spec::JobSpec,
    jobs: Api<Job>,
    pods: Api<Pod>,
}

/// What the step tracks of each pod of its Job.
#[derive(Default)]
struct PodTrack {
    scheduled: bool,
    logs: LogState,
    disrupted: bool,
    terminated: bool,
}

/// Where a pod's log is: each log is followed once, from its start.
#[derive(Default, PartialEq, Eq, Clone, Copy)]
enum LogState {
    #[default]
    Idle,
    Following,
    Done,
}

/// What the log followers send.
enum LogMsg {
    Chunk(String),
    /// The log ended (the container terminated).
    End,
    /// The log could not be opened; it may be tried again.
    OpenFailed,
}

// One value at a time, moved straight into a match: size does not matter.
#[allow(clippy::large_enum_variant)]
enum Seen {
    Job(Result<watcher::Event<Job>, watcher::Error>),
    Pod(Result<watcher::Event<Pod>, watcher::Error>),
    Log(String, LogMsg),
    GraceOver,
}

impl Run<'_> {
    fn emit(&self, name: &str, payload: serde_json::Value) {
        self.ctx.emit(self.target, name, Some(payload));
    }

    /// Watches the Job and its pods until the Job has finished (or the
    /// outcome is known and the Job does not finish in time). Returns the
    /// verdict; `Err` when the Job must be deleted.
    async fn supervise(&self) -> Result<(Result<(), String>, bool), Abort> {
        let name = &self.spec.name;
        let container = &self.spec.container;
        let job_events = watcher(
            self.jobs.clone(),
            watcher::Config::default().fields(&format!("metadata.name={name}")),
        )
        .default_backoff()
        .map(Seen::Job);
        let pod_events = watcher(
            self.pods.clone(),
            watcher::Config::default().labels(&format!("{}={name}", labels::K8S_JOB)),
        )
        .default_backoff()
        .map(Seen::Pod);
        let mut seen = pin!(futures::stream::select(job_events, pod_events));

        let mut pods: HashMap<String, PodTrack> = HashMap::new();
        let mut term: Option<Terminated> = None;
        let mut job_end: Option<JobEnd> = None;
        let mut disruption: Option<Disruption> = None;
        let mut results_error: Option<String> = None;
        let mut log_budget = LogBudget::new(self.cfg.max_log_bytes);
        let mut grace: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        // Log chunks of every pod, in the order they arrive; `None` ends a pod's log.
        let (log_tx, mut log_rx) = mpsc::channel::<(String, LogMsg)>(64);

        loop {
            let grace_over = async {
                match grace.as_mut() {
                    Some(s) => s.as_mut().await,
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                biased;
                Some((pod, chunk)) = log_rx.recv() => Seen::Log(pod, chunk),
                e = seen.next() => match e {
                    Some(e) => e,
                    None => return Err(Abort::Failed("the watch ended".into())),
                },
                _ = grace_over => Seen::GraceOver,
            };
            match event {
                Seen::Log(pod, LogMsg::Chunk(chunk)) => log_budget.emit(self, &pod, chunk),
                Seen::Log(pod, end) => {
                    if let Some(t) = pods.get_mut(&pod) {
                        t.logs = match end {
                            LogMsg::OpenFailed if !t.terminated => LogState::Idle,
                            _ => LogState::Done,
                        };
                    }
                }
                Seen::GraceOver => break,
                Seen::Job(Err(e)) | Seen::Pod(Err(e)) if is_fatal(&e) => {
                    return Err(Abort::Failed(format!("watching Job {name}: {e}")));
                }
                Seen::Job(Err(e)) | Seen::Pod(Err(e)) => {
                    tracing::warn!("watching Job {name}: {e}");
                }
                Seen::Job(Ok(ev)) => match ev {
                    watcher::Event::Apply(job) | watcher::Event::InitApply(job) => {
                        if let Some(end) = status::job_end(&job) {
                            let finished = end.finished;
                            job_end = Some(end);
                            if finished {
                                if term.is_some() || pods.is_empty() {
                                    break;
                                }
                                // The pod's final state may still be on its way.
                                grace = Some(Box::pin(tokio::time::sleep(POD_GRACE)));
                            }
                        }
                    }
                    watcher::Event::Delete(_) => {
                        return Err(Abort::Failed(format!(
                            "the Job {name} was deleted while it ran"
                        )));
                    }
                    _ => {}
                },
                Seen::Pod(Ok(ev)) => {
                    let pod = match ev {
                        watcher::Event::Apply(p) | watcher::Event::InitApply(p) => p,
                        _ => continue,
                    };
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    let track = pods.entry(pod_name.clone()).or_default();
                    if !track.scheduled
                        && let Some(node) = status::scheduled_node(&pod)
                    {
                        track.scheduled = true;
                        self.emit(
                            events::POD_SCHEDULED,
                            json!({ "Pod": pod_name, "Node": node }),
                        );
                    }
                    if !track.disrupted
                        && let Some(d) = status::disruption(&pod)
                    {
                        track.disrupted = true;
                        self.emit(
                            events::POD_DISRUPTED,
                            json!({ "Pod": pod_name, "Reason": d.reason, "Message": d.message }),
                        );
                        disruption = Some(d);
                    }
                    if let Some((reason, message)) = status::fatal_waiting(&pod, container) {
                        return Err(Abort::Failed(if message.is_empty() {
                            format!("{reason}: the test container cannot start")
                        } else {
                            format!("{reason}: {message}")
                        }));
                    }
                    if self.spec.results.is_some()
                        && let Some((reason, message)) =
                            status::fatal_waiting(&pod, COLLECTOR_CONTAINER)
                    {
                        return Err(Abort::Failed(format!(
                            "{reason}: the collector container ({}) cannot start: {message}",
                            self.spec
                                .results
                                .as_ref()
                                .map(|r| r.collector_image.as_str())
                                .unwrap_or_default()
                        )));
                    }
                    // Follow the log once, from its start (also when the
                    // container ran and ended between two updates).
                    if track.logs == LogState::Idle && status::started(&pod, container) {
                        track.logs = LogState::Following;
                        self.stream_log(&pod_name, log_tx.clone());
                    }
                    if track.terminated || track.disrupted {
                        continue;
                    }
                    let Some(t) = status::terminated(&pod, container) else {
                        continue;
                    };
                    track.terminated = true;
                    // The log ends with the container: emit what is left first.
                    if track.logs == LogState::Following {
                        track.logs = LogState::Done;
                        let drain = async {
                            while let Some((pod, msg)) = log_rx.recv().await {
                                match msg {
                                    LogMsg::Chunk(c) => log_budget.emit(self, &pod, c),
                                    _ if pod == pod_name => break,
                                    _ => {}
                                }
                            }
                        };
                        let _ = tokio::time::timeout(LOG_DRAIN, drain).await;
                    }
                    self.emit(
                        events::CONTAINER_TERMINATED,
                        json!({
                            "Pod": pod_name,
                            "Container": t.container,
                            "ExitCode": t.exit_code,
                            "Reason": t.reason,
                            "Message": t.message,
                            "Signal": t.signal,
                        }),
                    );
                    let job_failing = job_end.as_ref().is_some_and(|j| !j.complete);
                    if self.spec.results.is_some()
                        && !job_failing
                        && let Err(e) = self.collect(&pod, &pod_name, t.exit_code).await
                    {
                        results_error = Some(e);
                    }
                    term = Some(t);
                    if job_end.as_ref().is_some_and(|j| j.finished) {
                        break;
                    }
                    if grace.is_none() {
                        grace = Some(Box::pin(tokio::time::sleep(FINISH_GRACE)));
                    }
                }
            }
        }

        let verdict = status::verdict(term.as_ref(), job_end.as_ref(), disruption.as_ref());
        let verdict = match (verdict, results_error) {
            (Ok(()), Some(e)) => Err(format!("results: {e}")),
            (Err(v), Some(e)) => Err(format!("{v}; results: {e}")),
            (v, None) => v,
        };
        Ok((verdict, job_end.is_some_and(|j| j.finished)))
    }

    /// Fetches the results directory, then lets the collector exit.
    async fn collect(&self, pod: &Pod, pod_name: &str, exit_code: i32) -> Result<(), String> {
        let results = self.spec.results.as_ref().expect("results");
        if !status::running(pod, COLLECTOR_CONTAINER) {
            let why = status::terminated(pod, COLLECTOR_CONTAINER)
                .map(|t| {
                    format!(
                        "the collector had already exited ({}): {}",
                        t.reason.unwrap_or_default(),
                        t.message.unwrap_or_default()
                    )
                })
                .unwrap_or_else(|| "the collector container is not running".into());
            return Err(why);
        }
        let dest = self.ctx.artifacts_dir(self.target);
        let fetched = fetch_results(&self.pods, pod_name, &results.dir, &dest).await;
        // Let the collector go whatever happened, so the Job can finish.
        let told = exec_ok(
            &self.pods,
            pod_name,
            vec![
                COLLECTOR_BINARY.to_string(),
                "collector".into(),
                "done".into(),
                "--control-dir".into(),
                DEFAULT_CONTROL_DIR.into(),
                "--exit-code".into(),
                exit_code.to_string(),
            ],
        )
        .await;
        let (trailer, counts) = fetched?;
        self.emit(
            events::RESULTS_FETCHED,
            json!({
                "Pod": pod_name,
                "Files": counts.files,
                "Bytes": counts.bytes,
                "Sha256": trailer.sha256,
                "Dir": dest.display().to_string(),
            }),
        );
        crate::results::publish(self.ctx, self.target, &dest, &trailer.sha256)?;
        told.map_err(|e| format!("telling the collector to exit: {e}"))
    }

    /// Follows the test container's log: chunks of whole lines go to `tx`,
    /// then [`LogMsg::End`] (or [`LogMsg::OpenFailed`]).
    fn stream_log(&self, pod: &str, tx: mpsc::Sender<(String, LogMsg)>) {
        let pods = self.pods.clone();
        let lp = LogParams {
            container: Some(self.spec.container.clone()),
            follow: true,
            ..Default::default()
        };
        let pod = pod.to_string();
        tokio::spawn(async move {
            let end = follow_log(&pods, &pod, &lp, &tx).await;
            let _ = tx.send((pod, end)).await;
        });
    }
}

async fn follow_log(
    pods: &Api<Pod>,
    pod: &str,
    lp: &LogParams,
    tx: &mpsc::Sender<(String, LogMsg)>,
) -> LogMsg {
    let stream = match pods.log_stream(pod, lp).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("log of {pod}: {e}");
            return LogMsg::OpenFailed;
        }
    };
    let mut stream = pin!(stream);
    let mut buf = vec![0u8; 16 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        partial.extend_from_slice(&buf[..n]);
        let cut = match memrchr(b'\n', &partial) {
            Some(i) => i + 1,
            None if partial.len() >= MAX_LINE => partial.len(),
            None => continue,
        };
        let rest = partial.split_off(cut);
        let chunk = String::from_utf8_lossy(&partial).into_owned();
        partial = rest;
        if tx
            .send((pod.to_string(), LogMsg::Chunk(chunk)))
            .await
            .is_err()
        {
            return LogMsg::End;
        }
    }
    if !partial.is_empty() {
        let chunk = String::from_utf8_lossy(&partial).into_owned();
        let _ = tx.send((pod.to_string(), LogMsg::Chunk(chunk))).await;
    }
    LogMsg::End
}

fn memrchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().rposition(|b| *b == needle)
}

fn is_fatal(e: &watcher::Error) -> bool {
    // Forbidden or not found: retrying will not help.
    matches!(e, watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        if s.code == 403 || s.code == 404)
}

/// Caps the log bytes turned into events; says once that it cut.
struct LogBudget {
    left: u64,
    cut: bool,
}

impl LogBudget {
    fn new(max: u64) -> Self {
        LogBudget {
            left: max,
            cut: false,
        }
    }

    fn emit(&mut self, run: &Run<'_>, pod: &str, chunk: String) {
        if self.cut {
            return;
        }
        let len = chunk.len() as u64;
        if len <= self.left {
            self.left -= len;
            run.emit(events::LOG, json!({ "Pod": pod, "Msg": chunk }));
            return;
        }
        self.cut = true;
        // Keep the whole lines that still fit.
        let fit = chunk.as_bytes()[..self.left as usize]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        if fit > 0 {
            run.emit(events::LOG, json!({ "Pod": pod, "Msg": &chunk[..fit] }));
        }
        self.left = 0;
        run.emit(
            events::LOG,
            json!({
                "Pod": pod,
                "Msg": format!("[prova: log cut at max_log_bytes={}; `kubectl logs` has the rest]\n", run.cfg.max_log_bytes),
                "Truncated": true,
            }),
        );
    }
}

/// Runs a command in the collector container; `Ok` when it exits 0.
async fn exec_ok(pods: &Api<Pod>, pod: &str, command: Vec<String>) -> Result<(), String> {
    let ap = AttachParams::default()
        .container(COLLECTOR_CONTAINER)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut proc = pods
        .exec(pod, command, &ap)
        .await
        .map_err(|e| format!("exec in {pod}: {e}"))?;
    let out = read_all(proc.stdout(), 64 * 1024);
    let err = read_all(proc.stderr(), 64 * 1024);
    let status = proc.take_status().expect("status");
    let (_, stderr, status) = tokio::join!(out, err, status);
    check_status(status, &stderr)
}

async fn read_all(r: Option<impl tokio::io::AsyncRead + Unpin>, max: usize) -> String {
    let Some(mut r) = r else {
        return String::new();
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if out.len() < max {
            out.extend_from_slice(&buf[..n.min(max - out.len())]);
        }
    }
    String::from_utf8_lossy(&out).trim().to_string()
}

/// The exec status (channel 3): Success, or a failure with its exit code
/// from `details.causes` (never from the message text).
fn check_status(
    status: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
    stderr: &str,
) -> Result<(), String> {
    let Some(s) = status else {
        return Err(format!(
            "the exec connection closed without an exit status{}",
            stderr_note(stderr)
        ));
    };
    if s.status.as_deref() == Some("Success") {
        return Ok(());
    }
    let code = s
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.clone());
    Err(match code {
        Some(c) => format!("exited with code {c}{}", stderr_note(stderr)),
        None => format!(
            "failed: {}{}",
            s.message.unwrap_or_default(),
            stderr_note(stderr)
        ),
    })
}

fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    }
}

/// Fetches the results directory of `pod` into `dest`: the collector
/// stream is written to a temporary file while its digest is computed,
/// verified, and only then extracted.
async fn fetch_results(
    pods: &Api<Pod>,
    pod: &str,
    dir: &str,
    dest: &Path,
) -> Result<(Trailer, archive::Counts), String> {
    let parent = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(&parent)
        .map_err(|e| format!("temporary file in {}: {e}", parent.display()))?;
    let ap = AttachParams::default()
        .container(COLLECTOR_CONTAINER)
        .stdin(false)
        .stdout(true)
        .stderr(true)
        .max_stdout_buf_size(256 * 1024);
    let command = vec![
        COLLECTOR_BINARY.to_string(),
        "collector".into(),
        "send".into(),
        "--dir".into(),
        dir.to_string(),
        "--control-dir".into(),
        DEFAULT_CONTROL_DIR.into(),
    ];
    let mut proc = pods
        .exec(pod, command, &ap)
        .await
        .map_err(|e| format!("exec `prova collector send` in {pod}: {e}"))?;
    let stderr = tokio::spawn(read_all(proc.stderr(), 64 * 1024));
    let status = proc.take_status().expect("status");
    let mut stdout = proc.stdout().expect("stdout");
    let file = tmp.reopen().map_err(|e| format!("temporary file: {e}"))?;
    let mut decoder = Decoder::new(std::io::BufWriter::new(file));
    let mut buf = vec![0u8; 64 * 1024];
    let mut decode_error = None;
    loop {
        match stdout.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if decode_error.is_none()
                    && let Err(e) = decoder.push(&buf[..n])
                {
                    // Keep reading so the exec ends cleanly.
                    decode_error = Some(e);
                }
            }
            Err(e) => return Err(format!("reading the results stream: {e}")),
        }
    }
    let status = status.await;
    let stderr = stderr.await.unwrap_or_default();
    if let Some(e) = decode_error {
        return Err(format!("bad results stream: {e}"));
    }
    check_status(status, &stderr).map_err(|e| format!("`prova collector send` {e}"))?;
    let (trailer, _) = decoder
        .finish()
        .map_err(|e| format!("bad results stream: {e}"))?;
    let (tar_path, dest_owned): (PathBuf, PathBuf) = (tmp.path().to_path_buf(), dest.to_path_buf());
    let counts = tokio::task::spawn_blocking(move || archive::extract(&tar_path, &dest_owned))
        .await
        .map_err(|e| format!("extracting: {e}"))?
        .map_err(|e| format!("extracting results: {e}"))?;
    drop(tmp);
    if counts.files != trailer.files {
        return Err(format!(
            "the archive holds {} files but its trailer says {}",
            counts.files, trailer.files
        ));
    }
    Ok((trailer, counts))
}
