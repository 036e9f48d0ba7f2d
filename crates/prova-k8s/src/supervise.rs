//! Watching one Job to its end: the Job, its pods and their Events are
//! watched (never polled); each update goes to a small handler that does
//! one thing (scheduling, disruption, a container that cannot start, the
//! log, the test container's end, the results, a pod that cannot be
//! created or scheduled).

use std::collections::{HashMap, HashSet};
use std::pin::{Pin, pin};
use std::sync::Mutex;
use std::time::Duration;

use futures::stream::{BoxStream, SelectAll};
use futures::{StreamExt, future};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, LogParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use prova_core::Target;
use prova_engine::plugin::StepContext;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, Sleep};

use crate::collector::DEFAULT_CONTROL_DIR;
use crate::exec::{exec_ok, fetch_results};
use crate::job::{COLLECTOR_BINARY, COLLECTOR_CONTAINER, labels};
use crate::logs::{LogMsg, LogReader};
use crate::pending::Pending;
use crate::spec::{JobSpec, StepConfig};
use crate::status::{self, Disruption, JobEnd, Terminated};
use crate::step::events;

/// How long to wait for the last log lines once the container ended.
const LOG_DRAIN: Duration = Duration::from_secs(15);
/// How long to wait for the Job's final condition once the outcome is known.
const FINISH_GRACE: Duration = Duration::from_secs(60);
/// How long to keep reading pod updates after the Job finished, for the
/// test container's final state.
const POD_GRACE: Duration = Duration::from_secs(10);
/// Pods whose Events are watched (the first pod and a few replacements).
const MAX_WATCHED_PODS: usize = 4;
/// Distinct warnings turned into `K8sWarning` events.
const MAX_WARNINGS: usize = 32;
/// The collector's log lines quoted when it is gone before the fetch.
const COLLECTOR_TAIL_LINES: i64 = 10;

/// Why the step stopped before the Job ended by itself: the Job is deleted.
pub enum Abort {
    Cancelled,
    TimedOut(Duration),
    Failed(String),
}

/// How the supervision ended: the verdict, and whether the Job finished.
pub struct Outcome {
    pub verdict: Result<(), String>,
    pub finished: bool,
}

/// One Job being supervised.
pub struct Run<'a> {
    pub ctx: &'a StepContext,
    pub target: &'a Target,
    pub cfg: &'a StepConfig,
    pub spec: &'a JobSpec,
    pub jobs: Api<Job>,
    pub pods: Api<Pod>,
    pub events: Api<Event>,
    pub job_uid: String,
    /// What holds the pod back, kept up to date so a timeout can name it.
    pub cause: Mutex<Option<String>>,
}

/// What the step tracks of each pod of its Job.
#[derive(Default)]
struct PodTrack {
    scheduled: bool,
    logs: LogState,
    disrupted: bool,
    terminated: bool,
    /// Tells the pod's log reader that the test container terminated.
    ended: Option<watch::Sender<bool>>,
}

/// Where a pod's log is: each log is read once, from its start.
#[derive(Default, PartialEq, Eq, Clone, Copy)]
enum LogState {
    #[default]
    Idle,
    Reading,
    Done,
}

type EventStream = BoxStream<'static, Result<watcher::Event<Event>, watcher::Error>>;

// One value at a time, moved straight into a match: size does not matter.
#[allow(clippy::large_enum_variant)]
enum Seen {
    Job(Result<watcher::Event<Job>, watcher::Error>),
    Pod(Result<watcher::Event<Pod>, watcher::Error>),
    Event(Result<watcher::Event<Event>, watcher::Error>),
    Log(String, LogMsg),
    GraceOver,
    Stuck,
}

/// What a handler decided.
enum Flow {
    Continue,
    /// The outcome is known: stop watching.
    Done,
}

/// Everything seen so far.
struct State {
    pods: HashMap<String, PodTrack>,
    term: Option<Terminated>,
    job_end: Option<JobEnd>,
    disruption: Option<Disruption>,
    results_error: Option<String>,
    log_budget: LogBudget,
    grace: Option<Pin<Box<Sleep>>>,
    pending: Pending,
    warnings: HashSet<String>,
    /// Pods (by uid) whose Events are watched; new ones wait in `to_watch`.
    watched: HashSet<String>,
    to_watch: Vec<String>,
    log_tx: mpsc::Sender<(String, LogMsg)>,
}

impl Run<'_> {
    fn emit(&self, name: &str, payload: serde_json::Value) {
        self.ctx.emit(self.target, name, Some(payload));
    }

    /// Watches the Job and its pods until the Job has finished (or the
    /// outcome is known and the Job does not finish in time). `Err` when
    /// the Job must be deleted.
    pub async fn supervise(&self) -> Result<Outcome, Abort> {
        let name = &self.spec.name;
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
        let mut event_streams: SelectAll<EventStream> = SelectAll::new();
        event_streams.push(self.watch_events(&self.job_uid));

        let (log_tx, mut log_rx) = mpsc::channel::<(String, LogMsg)>(64);
        let mut st = State {
            pods: HashMap::new(),
            term: None,
            job_end: None,
            disruption: None,
            results_error: None,
            log_budget: LogBudget::new(self.cfg.max_log_bytes),
            grace: None,
            pending: Pending::new(self.cfg.failed_create_grace, self.cfg.unschedulable_grace),
            warnings: HashSet::new(),
            watched: HashSet::new(),
            to_watch: Vec::new(),
            log_tx,
        };

        loop {
            let stuck_at = st.pending.deadline();
            let next = tokio::select! {
                biased;
                Some((pod, msg)) = log_rx.recv() => Seen::Log(pod, msg),
                e = seen.next() => match e {
                    Some(e) => e,
                    None => return Err(Abort::Failed("the watch ended".into())),
                },
                Some(e) = event_streams.next() => Seen::Event(e),
                _ = sleep_opt(&mut st.grace) => Seen::GraceOver,
                _ = sleep_until_opt(stuck_at) => Seen::Stuck,
            };
            let flow = match next {
                Seen::Log(pod, msg) => {
                    self.on_log(&mut st, &pod, msg);
                    Flow::Continue
                }
                Seen::GraceOver => Flow::Done,
                Seen::Stuck => match st.pending.expired(Instant::now()) {
                    Some(why) => return Err(Abort::Failed(why)),
                    None => Flow::Continue,
                },
                Seen::Job(Err(e)) | Seen::Pod(Err(e)) if is_fatal(&e) => {
                    return Err(Abort::Failed(format!("watching Job {name}: {e}")));
                }
                Seen::Job(Err(e)) | Seen::Pod(Err(e)) | Seen::Event(Err(e)) => {
                    tracing::warn!("watching Job {name}: {e}");
                    Flow::Continue
                }
                Seen::Job(Ok(ev)) => self.on_job(&mut st, ev)?,
                Seen::Pod(Ok(ev)) => self.on_pod(&mut st, ev, &mut log_rx).await?,
                Seen::Event(Ok(ev)) => {
                    self.on_event(&mut st, ev);
                    Flow::Continue
                }
            };
            for uid in st.to_watch.drain(..) {
                event_streams.push(self.watch_events(&uid));
            }
            *self.cause.lock().unwrap_or_else(|e| e.into_inner()) = st.pending.cause();
            if let Flow::Done = flow {
                break;
            }
        }
        Ok(self.outcome(st))
    }

    /// The verdict from what was seen.
    fn outcome(&self, st: State) -> Outcome {
        let verdict = status::verdict(
            st.term.as_ref(),
            st.job_end.as_ref(),
            st.disruption.as_ref(),
        );
        // The test never ended: say what held its pod back, if known.
        let verdict = match (verdict, &st.term, st.pending.cause()) {
            (Err(v), None, Some(cause)) => Err(format!("{v}; {cause}")),
            (v, _, _) => v,
        };
        let verdict = match (verdict, st.results_error) {
            (Ok(()), Some(e)) => Err(format!("results: {e}")),
            (Err(v), Some(e)) => Err(format!("{v}; results: {e}")),
            (v, None) => v,
        };
        Outcome {
            verdict,
            finished: st.job_end.is_some_and(|j| j.finished),
        }
    }

    /// Warning Events about one object (the Job, a pod), by its uid. A
    /// watch the step may not make (no RBAC for events) ends quietly: the
    /// Events only make messages better.
    fn watch_events(&self, uid: &str) -> EventStream {
        let cfg = watcher::Config::default().fields(&format!("involvedObject.uid={uid}"));
        watcher(self.events.clone(), cfg)
            .default_backoff()
            .take_while(|e| {
                let go_on = !matches!(e, Err(e) if is_fatal(e));
                if !go_on {
                    tracing::warn!("not watching Events: {e:?}");
                }
                future::ready(go_on)
            })
            .boxed()
    }

    fn on_log(&self, st: &mut State, pod: &str, msg: LogMsg) {
        match msg {
            LogMsg::Lines(text) => st.log_budget.emit(self, pod, text),
            LogMsg::Gap(text) => self.emit(
                events::LOG,
                json!({ "Pod": pod, "Msg": text, "Incomplete": true }),
            ),
            end => {
                if let Some(t) = st.pods.get_mut(pod) {
                    t.logs = match end {
                        LogMsg::OpenFailed if !t.terminated => LogState::Idle,
                        _ => LogState::Done,
                    };
                }
            }
        }
    }

    fn on_event(&self, st: &mut State, ev: watcher::Event<Event>) {
        let event = match ev {
            watcher::Event::Apply(e) | watcher::Event::InitApply(e) => e,
            _ => return,
        };
        let Some(warning) = st.pending.on_event(&event, Instant::now()) else {
            return;
        };
        if st.warnings.len() >= MAX_WARNINGS || !st.warnings.insert(warning) {
            return;
        }
        let obj = &event.involved_object;
        self.emit(
            events::WARNING,
            json!({
                "Kind": obj.kind,
                "Name": obj.name,
                "Reason": event.reason,
                "Message": event.message,
            }),
        );
    }

    fn on_job(&self, st: &mut State, ev: watcher::Event<Job>) -> Result<Flow, Abort> {
        match ev {
            watcher::Event::Apply(job) | watcher::Event::InitApply(job) => {
                let Some(end) = status::job_end(&job) else {
                    return Ok(Flow::Continue);
                };
                let finished = end.finished;
                st.job_end = Some(end);
                if finished {
                    if st.term.is_some() || st.pods.is_empty() {
                        return Ok(Flow::Done);
                    }
                    // The pod's final state may still be on its way.
                    st.grace = Some(Box::pin(tokio::time::sleep(POD_GRACE)));
                }
                Ok(Flow::Continue)
            }
            watcher::Event::Delete(_) => Err(Abort::Failed(format!(
                "the Job {} was deleted while it ran",
                self.spec.name
            ))),
            _ => Ok(Flow::Continue),
        }
    }

    async fn on_pod(
        &self,
        st: &mut State,
        ev: watcher::Event<Pod>,
        log_rx: &mut mpsc::Receiver<(String, LogMsg)>,
    ) -> Result<Flow, Abort> {
        let pod = match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => p,
            watcher::Event::Delete(p) => {
                st.pending
                    .pod_gone(p.metadata.name.as_deref().unwrap_or_default());
                return Ok(Flow::Continue);
            }
            _ => return Ok(Flow::Continue),
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        st.pending.pod_created();
        st.pending
            .on_pod(&pod_name, status::unschedulable(&pod), Instant::now());
        if let Some(uid) = pod.metadata.uid.clone()
            && st.watched.len() < MAX_WATCHED_PODS
            && st.watched.insert(uid.clone())
        {
            st.to_watch.push(uid);
        }
        self.note_scheduled(st, &pod, &pod_name);
        self.note_disruption(st, &pod, &pod_name);
        self.check_containers_can_start(&pod)?;
        self.start_log(st, &pod, &pod_name);
        let track = st.pods.entry(pod_name.clone()).or_default();
        if track.terminated || track.disrupted {
            return Ok(Flow::Continue);
        }
        let Some(t) = status::terminated(&pod, &self.spec.container) else {
            return Ok(Flow::Continue);
        };
        track.terminated = true;
        self.on_test_terminated(st, &pod, &pod_name, t, log_rx)
            .await
    }

    fn note_scheduled(&self, st: &mut State, pod: &Pod, pod_name: &str) {
        let track = st.pods.entry(pod_name.to_string()).or_default();
        if !track.scheduled
            && let Some(node) = status::scheduled_node(pod)
        {
            track.scheduled = true;
            self.emit(
                events::POD_SCHEDULED,
                json!({ "Pod": pod_name, "Node": node }),
            );
        }
    }

    fn note_disruption(&self, st: &mut State, pod: &Pod, pod_name: &str) {
        let track = st.pods.entry(pod_name.to_string()).or_default();
        if !track.disrupted
            && let Some(d) = status::disruption(pod)
        {
            track.disrupted = true;
            self.emit(
                events::POD_DISRUPTED,
                json!({ "Pod": pod_name, "Reason": d.reason, "Message": d.message }),
            );
            st.disruption = Some(d);
        }
    }

    /// A container waiting with a reason it will not get out of by itself.
    fn check_containers_can_start(&self, pod: &Pod) -> Result<(), Abort> {
        if let Some((reason, message)) = status::fatal_waiting(pod, &self.spec.container) {
            return Err(Abort::Failed(if message.is_empty() {
                format!("{reason}: the test container cannot start")
            } else {
                format!("{reason}: {message}")
            }));
        }
        if let Some(results) = &self.spec.results
            && let Some((reason, message)) = status::fatal_waiting(pod, COLLECTOR_CONTAINER)
        {
            return Err(Abort::Failed(format!(
                "{reason}: the collector container ({}) cannot start: {message}",
                results.collector_image
            )));
        }
        Ok(())
    }

    /// Reads the test container's log once, from its start (also when the
    /// container ran and ended between two updates).
    fn start_log(&self, st: &mut State, pod: &Pod, pod_name: &str) {
        let track = st.pods.entry(pod_name.to_string()).or_default();
        if track.logs != LogState::Idle || !status::started(pod, &self.spec.container) {
            return;
        }
        track.logs = LogState::Reading;
        let ended = status::terminated(pod, &self.spec.container).is_some();
        let (tx, rx) = watch::channel(ended);
        track.ended = Some(tx);
        LogReader {
            pods: self.pods.clone(),
            pod: pod_name.to_string(),
            container: self.spec.container.clone(),
            terminated: rx,
            tx: st.log_tx.clone(),
        }
        .spawn();
    }

    /// The test container ended: the rest of its log, its termination, its
    /// results.
    async fn on_test_terminated(
        &self,
        st: &mut State,
        pod: &Pod,
        pod_name: &str,
        t: Terminated,
        log_rx: &mut mpsc::Receiver<(String, LogMsg)>,
    ) -> Result<Flow, Abort> {
        self.drain_log(st, pod_name, log_rx).await;
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
        let job_failing = st.job_end.as_ref().is_some_and(|j| !j.complete);
        if self.spec.results.is_some()
            && !job_failing
            && let Err(e) = self.collect(pod, pod_name, t.exit_code).await
        {
            st.results_error = Some(e);
        }
        st.term = Some(t);
        if st.job_end.as_ref().is_some_and(|j| j.finished) {
            return Ok(Flow::Done);
        }
        if st.grace.is_none() {
            st.grace = Some(Box::pin(tokio::time::sleep(FINISH_GRACE)));
        }
        Ok(Flow::Continue)
    }

    /// Tells the pod's log reader that the container ended and emits what
    /// it still sends, until it says the log ended (bounded).
    async fn drain_log(
        &self,
        st: &mut State,
        pod_name: &str,
        log_rx: &mut mpsc::Receiver<(String, LogMsg)>,
    ) {
        let Some(track) = st.pods.get_mut(pod_name) else {
            return;
        };
        if let Some(ended) = &track.ended {
            ended.send_replace(true);
        }
        if track.logs != LogState::Reading {
            return;
        }
        let drain = async {
            while let Some((pod, msg)) = log_rx.recv().await {
                let last = pod == pod_name && matches!(msg, LogMsg::End | LogMsg::OpenFailed);
                self.on_log(st, &pod, msg);
                if last {
                    break;
                }
            }
        };
        if tokio::time::timeout(LOG_DRAIN, drain).await.is_err() {
            self.emit(
                events::LOG,
                json!({
                    "Pod": pod_name,
                    "Msg": format!("[prova: the log of pod {pod_name} did not end within {LOG_DRAIN:?} of its container; lines may be missing]\n"),
                    "Incomplete": true,
                }),
            );
        }
        if let Some(t) = st.pods.get_mut(pod_name) {
            t.logs = LogState::Done;
        }
    }

    /// Fetches the results directory, then lets the collector exit.
    async fn collect(&self, pod: &Pod, pod_name: &str, exit_code: i32) -> Result<(), String> {
        let Some(results) = self.spec.results.as_ref() else {
            return Ok(());
        };
        if !status::running(pod, COLLECTOR_CONTAINER) {
            return Err(self.collector_gone(pod, pod_name).await);
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

    /// Everything known about a collector that is gone before the fetch:
    /// its state from the pod status and the end of its log.
    async fn collector_gone(&self, pod: &Pod, pod_name: &str) -> String {
        let state = status::not_running(pod, COLLECTOR_CONTAINER);
        let head = if status::terminated(pod, COLLECTOR_CONTAINER).is_some() {
            format!("the collector had already exited ({state})")
        } else {
            format!("the collector container is not running ({state})")
        };
        let lp = LogParams {
            container: Some(COLLECTOR_CONTAINER.into()),
            tail_lines: Some(COLLECTOR_TAIL_LINES),
            limit_bytes: Some(4096),
            ..Default::default()
        };
        match self.pods.logs(pod_name, &lp).await {
            Ok(log) if !log.trim().is_empty() => {
                let lines: Vec<&str> = log.lines().map(str::trim_end).collect();
                format!("{head}; its log ends with: {}", lines.join(" | "))
            }
            Ok(_) => format!("{head}; its log is empty"),
            Err(e) => format!("{head}; its log could not be read: {e}"),
        }
    }
}

async fn sleep_opt(grace: &mut Option<Pin<Box<Sleep>>>) {
    match grace.as_mut() {
        Some(s) => s.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
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
