//! A Kubernetes API test double that speaks the real wire protocol, for
//! what the `k8sjob` step uses: create/get/delete Jobs; list and
//! `?watch=true` (chunked JSON lines, `{"type":"ADDED","object":…}`) for
//! Jobs and Pods with field and label selectors; pod logs (`follow`,
//! chunked); pod exec over WebSocket (`v5.channel.k8s.io` or
//! `v4.channel.k8s.io`: channel-prefixed binary frames, 1 stdout, 2 stderr,
//! 3 a `metav1.Status`).
//!
//! Objects have the shapes the API server returns (see
//! `shared/corpus/k8s/objects`): lists without item kinds, status
//! conditions with `lastTransitionTime`, `FailureTarget` before `Failed`,
//! `SuccessCriteriaMet` before `Complete`, ownerReferences and the Job
//! controller's pod labels.
//!
//! For each Job the double plays the Job controller and the kubelet with
//! one pod. The test container's env picks what happens:
//! `SCENARIO=pass|fail|oom|deadline|pullerror|collectorpull|collectorcrash|unschedulable|hang`,
//! `EXIT_CODE=n` (fail), `LOG_LINES=n`, `LOG_INTERVAL_MS=n` (a pause after
//! each line), `LOG_LONG_LINE=n` (one more line of n bytes), `LOG_NO_EOL=1`
//! (the last line has no newline), `LOG_DROP_AFTER=n` (the first followed
//! log connection is cut after n lines), `LOG_REFUSE_RESUME=1` (every log
//! request after the first fails).
//!
//! Logs behave as the kubelet's: `timestamps=true` prefixes each line with
//! its RFC 3339 time (9 fraction digits; lines written together share one),
//! `sinceTime` keeps lines at or after it, and a followed log holds back an
//! unfinished last line and ends without it when the container stops; only
//! a read without `follow` returns it.
//!
//! Events (core/v1, list and watch with `involvedObject.*` field
//! selectors) are recorded as the controllers do: `FailedCreate` on the Job,
//! repeated with a growing `count`, when the pod template names a
//! ServiceAccount that does not exist (only `default` exists unless
//! [`Double::add_service_account`]); `FailedScheduling` on an unschedulable
//! pod. With a collector container the pod's results directory
//! is a temp dir holding `junit.xml` and `logs/run.log`; the collector
//! container runs the REAL `prova_k8s::collector::wait`, and exec of
//! `collector send` / `collector done` runs the REAL functions, so
//! framing, checksum and the control socket are tested end to end.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Files the simulated test writes into its results directory.
pub const RESULT_FILES: &[(&str, &str)] = &[
    (
        "junit.xml",
        "<testsuite name=\"smoke\" tests=\"1\"><testcase name=\"ok\"/></testsuite>\n",
    ),
    ("logs/run.log", "all good\n"),
];

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Flip one byte of the results stream's data.
    pub corrupt_results: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeleteSeen {
    pub namespace: String,
    pub name: String,
    pub propagation_policy: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Job,
    Pod,
    Event,
}

struct Record {
    rv: u64,
    kind: Kind,
    type_: &'static str,
    object: Value,
}

struct PodRt {
    results: tempfile::TempDir,
    control: tempfile::TempDir,
    results_mount: Option<String>,
    stop_wait: Option<std::sync::mpsc::Sender<()>>,
    /// (timestamp, bytes): one entry per write, each a line with its
    /// newline except perhaps the last.
    log: Vec<(String, Vec<u8>)>,
    log_done: bool,
    test_started: bool,
    collector_log: Vec<(String, Vec<u8>)>,
    /// Log requests served so far.
    log_requests: usize,
    drop_after: Option<usize>,
    refuse_resume: bool,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    jobs: BTreeMap<(String, String), Value>,
    pods: BTreeMap<(String, String), Value>,
    events: BTreeMap<(String, String), Value>,
    history: Vec<Record>,
    deletes: Vec<DeleteSeen>,
    pod_rt: HashMap<String, PodRt>,
    sims: HashMap<String, tokio::task::AbortHandle>,
    /// Every request, `METHOD path?query`.
    requests: Vec<String>,
    /// The `User-Agent` of each request in `requests`.
    agents: Vec<Option<String>>,
    /// (namespace, name) of the ServiceAccounts that exist besides `default`.
    service_accounts: Vec<(String, String)>,
    execs: Vec<Vec<String>>,
}

pub struct Shared {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
    opts: Options,
}

/// A running double on 127.0.0.1.
pub struct Double {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Double {
    fn drop(&mut self) {
        self.server.abort();
        let inner = self.shared.inner.lock().unwrap();
        for s in inner.sims.values() {
            s.abort();
        }
        for rt in inner.pod_rt.values() {
            if let Some(stop) = &rt.stop_wait {
                let _ = stop.send(());
            }
        }
    }
}

impl Double {
    pub async fn start(opts: Options) -> Double {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 1000,
                ..Default::default()
            }),
            changed: watch::channel(1000).0,
            opts,
        });
        let app = Router::new()
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs",
                get(list_jobs).post(create_job),
            )
            .route(
                "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
                get(get_job).delete(delete_job),
            )
            .route("/api/v1/namespaces/{ns}/pods", get(list_pods))
            .route("/api/v1/namespaces/{ns}/events", get(list_events))
            .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
            .route(
                "/api/v1/namespaces/{ns}/pods/{name}/exec",
                get(pod_exec).post(pod_exec),
            )
            .fallback(not_found)
            .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Double {
            addr,
            shared,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube config pointing at the double.
    pub fn config(&self) -> kube::Config {
        kube::Config::new(self.url().parse().unwrap())
    }

    /// A kubeconfig file for the double, with a context named `double`.
    pub fn write_kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {}\ncontexts:\n- name: double\n  context:\n    cluster: double\n    user: u\n    namespace: e2e\n- name: other\n  context:\n    cluster: nowhere\n    user: u\nusers:\n- name: u\n  user: {{}}\ncurrent-context: other\n",
                self.url()
            ),
        )
        .unwrap();
        path
    }

    pub fn deletes(&self) -> Vec<DeleteSeen> {
        self.shared.inner.lock().unwrap().deletes.clone()
    }

    pub fn requests(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    /// The `User-Agent` of every request, in order.
    pub fn agents(&self) -> Vec<Option<String>> {
        self.shared.inner.lock().unwrap().agents.clone()
    }

    /// Creates a ServiceAccount: a Job waiting for it can make its pod.
    pub fn add_service_account(&self, ns: &str, name: &str) {
        self.shared
            .inner
            .lock()
            .unwrap()
            .service_accounts
            .push((ns.to_string(), name.to_string()));
    }

    pub fn events(&self) -> Vec<Value> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .events
            .values()
            .cloned()
            .collect()
    }

    pub fn execs(&self) -> Vec<Vec<String>> {
        self.shared.inner.lock().unwrap().execs.clone()
    }

    pub fn jobs(&self) -> Vec<Value> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .jobs
            .values()
            .cloned()
            .collect()
    }

    pub fn pods(&self) -> Vec<Value> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .pods
            .values()
            .cloned()
            .collect()
    }

    /// Waits until `pred` holds for the double's state (bounded).
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&Double) -> bool) {
        let mut rx = self.shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !pred(self) {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                panic!("timed out waiting for {what}");
            }
        }
    }
}

async fn record(
    State(s): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let line = format!(
        "{} {}",
        req.method(),
        req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("")
    );
    let agent = req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    {
        let mut inner = s.inner.lock().unwrap();
        inner.requests.push(line);
        inner.agents.push(agent);
    }
    next.run(req).await
}

fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string()
}

fn status_body(code: u16, reason: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        [("content-type", "application/json")],
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason, "code": code
        })
        .to_string(),
    )
        .into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    status_body(
        404,
        "NotFound",
        &format!("the server could not find the requested resource ({method} {uri})"),
    )
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(h, 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn q1<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

fn matches(obj: &Value, q: &[(String, String)]) -> bool {
    if let Some(fs) = q1(q, "fieldSelector") {
        for term in fs.split(',').filter(|t| !t.is_empty()) {
            let (k, v) = term.split_once('=').unwrap();
            // `metadata.name`, `involvedObject.uid`, ...: a path into the object.
            let actual = k.split('.').fold(obj, |o, part| &o[part]).as_str();
            if actual != Some(v) {
                return false;
            }
        }
    }
    if let Some(ls) = q1(q, "labelSelector") {
        for term in ls.split(',').filter(|t| !t.is_empty()) {
            let (k, v) = term.split_once('=').unwrap();
            if obj["metadata"]["labels"][k].as_str() != Some(v) {
                return false;
            }
        }
    }
    true
}

impl Shared {
    /// Stores `obj` (new resourceVersion) and records a watch event.
    fn put(&self, kind: Kind, type_: &'static str, mut obj: Value) -> Value {
        let mut inner = self.inner.lock().unwrap();
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = (
            obj["metadata"]["namespace"].as_str().unwrap().to_string(),
            obj["metadata"]["name"].as_str().unwrap().to_string(),
        );
        let map = match kind {
            Kind::Job => &mut inner.jobs,
            Kind::Pod => &mut inner.pods,
            Kind::Event => &mut inner.events,
        };
        if type_ == "DELETED" {
            map.remove(&key);
        } else {
            map.insert(key, obj.clone());
        }
        inner.history.push(Record {
            rv,
            kind,
            type_,
            object: obj.clone(),
        });
        drop(inner);
        self.changed.send_replace(rv);
        obj
    }

    fn service_account_exists(&self, ns: &str, name: &str) -> bool {
        name == "default"
            || self
                .inner
                .lock()
                .unwrap()
                .service_accounts
                .iter()
                .any(|(n, a)| n == ns && a == name)
    }

    fn bump(&self) {
        let rv = self.inner.lock().unwrap().rv;
        self.changed.send_replace(rv);
    }

    fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        let map = match kind {
            Kind::Job => &inner.jobs,
            Kind::Pod => &inner.pods,
            Kind::Event => &inner.events,
        };
        map.get(&(ns.to_string(), name.to_string())).cloned()
    }

    /// Changes a stored object (if it still exists) and records MODIFIED.
    fn modify(&self, kind: Kind, ns: &str, name: &str, f: impl FnOnce(&mut Value)) -> bool {
        let Some(mut obj) = self.get(kind, ns, name) else {
            return false;
        };
        f(&mut obj);
        self.put(kind, "MODIFIED", obj);
        true
    }
}

async fn list_jobs(
    State(s): State<Arc<Shared>>,
    UrlPath(ns): UrlPath<String>,
    RawQuery(q): RawQuery,
) -> Response {
    list_or_watch(s, Kind::Job, ns, parse_query(q.as_deref())).await
}

async fn list_events(
    State(s): State<Arc<Shared>>,
    UrlPath(ns): UrlPath<String>,
    RawQuery(q): RawQuery,
) -> Response {
    list_or_watch(s, Kind::Event, ns, parse_query(q.as_deref())).await
}

async fn list_pods(
    State(s): State<Arc<Shared>>,
    UrlPath(ns): UrlPath<String>,
    RawQuery(q): RawQuery,
) -> Response {
    list_or_watch(s, Kind::Pod, ns, parse_query(q.as_deref())).await
}

async fn list_or_watch(
    s: Arc<Shared>,
    kind: Kind,
    ns: String,
    q: Vec<(String, String)>,
) -> Response {
    let in_ns = |o: &Value| o["metadata"]["namespace"].as_str() == Some(ns.as_str());
    if q1(&q, "watch") != Some("true") && q1(&q, "watch") != Some("1") {
        let inner = s.inner.lock().unwrap();
        let map = match kind {
            Kind::Job => &inner.jobs,
            Kind::Pod => &inner.pods,
            Kind::Event => &inner.events,
        };
        let items: Vec<Value> = map
            .values()
            .filter(|o| in_ns(o) && matches(o, &q))
            .map(|o| {
                // Items of a typed list carry no kind or apiVersion.
                let mut o = o.clone();
                let m = o.as_object_mut().unwrap();
                m.remove("kind");
                m.remove("apiVersion");
                o
            })
            .collect();
        let (list_kind, api_version) = match kind {
            Kind::Job => ("JobList", "batch/v1"),
            Kind::Pod => ("PodList", "v1"),
            Kind::Event => ("EventList", "v1"),
        };
        return axum::Json(json!({
            "kind": list_kind, "apiVersion": api_version,
            "metadata": {"resourceVersion": inner.rv.to_string()},
            "items": items,
        }))
        .into_response();
    }
    let from: u64 = q1(&q, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rx = s.changed.subscribe();
    let stream = futures::stream::unfold(
        (s, rx, from, q, ns),
        move |(s, mut rx, mut cursor, q, ns)| async move {
            loop {
                let mut out = Vec::new();
                {
                    let inner = s.inner.lock().unwrap();
                    let from = cursor;
                    for r in inner.history.iter().filter(|r| r.rv > from) {
                        cursor = r.rv;
                        if r.kind == kind
                            && r.object["metadata"]["namespace"].as_str() == Some(ns.as_str())
                            && matches(&r.object, &q)
                        {
                            let line = json!({"type": r.type_, "object": r.object}).to_string();
                            out.extend_from_slice(line.as_bytes());
                            out.push(b'\n');
                        }
                    }
                }
                if !out.is_empty() {
                    return Some((
                        Ok::<_, std::io::Error>(Bytes::from(out)),
                        (s, rx, cursor, q, ns),
                    ));
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn get_job(
    State(s): State<Arc<Shared>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
) -> Response {
    match s.get(Kind::Job, &ns, &name) {
        Some(j) => axum::Json(j).into_response(),
        None => status_body(404, "NotFound", &format!("jobs.batch \"{name}\" not found")),
    }
}

async fn delete_job(
    State(s): State<Arc<Shared>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let q = parse_query(q.as_deref());
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let policy = body["propagationPolicy"]
        .as_str()
        .or(q1(&q, "propagationPolicy"))
        .map(str::to_string);
    s.inner.lock().unwrap().deletes.push(DeleteSeen {
        namespace: ns.clone(),
        name: name.clone(),
        propagation_policy: policy.clone(),
    });
    let Some(job) = s.get(Kind::Job, &ns, &name) else {
        return status_body(404, "NotFound", &format!("jobs.batch \"{name}\" not found"));
    };
    if let Some(sim) = s.inner.lock().unwrap().sims.remove(&name) {
        sim.abort();
    }
    let job = s.put(Kind::Job, "DELETED", job);
    // Background propagation: the garbage collector removes the pods.
    if policy.as_deref() == Some("Background") || policy.as_deref() == Some("Foreground") {
        let pods: Vec<Value> = s
            .inner
            .lock()
            .unwrap()
            .pods
            .values()
            .filter(|p| p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == json!(name))
            .cloned()
            .collect();
        for p in pods {
            let pod_name = p["metadata"]["name"].as_str().unwrap().to_string();
            if let Some(rt) = s.inner.lock().unwrap().pod_rt.get_mut(&pod_name) {
                if let Some(stop) = rt.stop_wait.take() {
                    let _ = stop.send(());
                }
                rt.log_done = true;
            }
            s.put(Kind::Pod, "DELETED", p);
        }
    }
    axum::Json(job).into_response()
}

async fn create_job(
    State(s): State<Arc<Shared>>,
    UrlPath(ns): UrlPath<String>,
    axum::Json(mut job): axum::Json<Value>,
) -> Response {
    let name = job["metadata"]["name"].as_str().unwrap_or("").to_string();
    if s.get(Kind::Job, &ns, &name).is_some() {
        return status_body(
            409,
            "AlreadyExists",
            &format!("jobs.batch \"{name}\" already exists"),
        );
    }
    let uid = format!("00000000-0000-4000-8000-{:012x}", rand_u48());
    let m = &mut job["metadata"];
    m["namespace"] = json!(ns);
    m["uid"] = json!(uid);
    m["generation"] = json!(1);
    m["creationTimestamp"] = json!(now());
    job["kind"] = json!("Job");
    job["apiVersion"] = json!("batch/v1");
    // Defaults the API server fills in.
    let spec = &mut job["spec"];
    spec["completions"] = json!(1);
    spec["parallelism"] = json!(1);
    spec["completionMode"] = json!("NonIndexed");
    spec["suspend"] = json!(false);
    spec["podReplacementPolicy"] = json!("Failed");
    spec["manualSelector"] = json!(false);
    spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    job["status"] = json!({});
    let job = s.put(Kind::Job, "ADDED", job);
    let sim = tokio::spawn(simulate(s.clone(), ns, job.clone()));
    s.inner
        .lock()
        .unwrap()
        .sims
        .insert(name, sim.abort_handle());
    (StatusCode::CREATED, axum::Json(job)).into_response()
}

fn rand_u48() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0x1a2b3c);
    N.fetch_add(0x1f3d5, Ordering::SeqCst) & 0xffff_ffff_ffff
}

fn env_of(container: &Value, key: &str) -> Option<String> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == json!(key))
        .and_then(|e| e["value"].as_str().map(str::to_string))
}

fn set_container_state(pod: &mut Value, name: &str, state: Value, ready: bool) {
    let statuses = pod["status"]["containerStatuses"].as_array_mut().unwrap();
    for cs in statuses.iter_mut() {
        if cs["name"] == json!(name) {
            cs["state"] = state.clone();
            cs["ready"] = json!(ready);
            cs["started"] = json!(state.get("running").is_some());
        }
    }
}

fn terminated(code: i32, reason: &str, message: Option<&str>) -> Value {
    let mut t = json!({
        "exitCode": code, "reason": reason,
        "startedAt": now(), "finishedAt": now(),
        "containerID": "containerd://0f3c9a"
    });
    if let Some(m) = message {
        t["message"] = json!(m);
    }
    json!({ "terminated": t })
}

fn job_condition(type_: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": type_, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": now(), "lastTransitionTime": now()
    })
}

/// Plays the Job controller and the kubelet for one Job with one pod.
async fn simulate(s: Arc<Shared>, ns: String, job: Value) {
    let job_name = job["metadata"]["name"].as_str().unwrap().to_string();
    let uid = job["metadata"]["uid"].as_str().unwrap().to_string();
    let tpl = job["spec"]["template"].clone();
    let containers = tpl["spec"]["containers"].as_array().unwrap().clone();
    let test = containers
        .iter()
        .find(|c| c["name"] != json!("prova-collector"))
        .unwrap()
        .clone();
    let test_name = test["name"].as_str().unwrap().to_string();
    let collector = containers
        .iter()
        .find(|c| c["name"] == json!("prova-collector"))
        .cloned();
    let scenario = env_of(&test, "SCENARIO").unwrap_or_else(|| "pass".into());
    let exit_code: i32 = env_of(&test, "EXIT_CODE")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let log_lines: usize = env_of(&test, "LOG_LINES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let pod_name = format!("{job_name}-x7k2p");
    let tick = || tokio::time::sleep(Duration::from_millis(20));

    // The Job controller cannot make the pod while its ServiceAccount is
    // missing: it says so in Events on the Job and tries again.
    let job_ref = json!({
        "kind": "Job", "namespace": ns, "name": job_name, "uid": uid,
        "apiVersion": "batch/v1", "resourceVersion": job["metadata"]["resourceVersion"]
    });
    if let Some(sa) = tpl["spec"]["serviceAccountName"].as_str() {
        while !s.service_account_exists(&ns, sa) {
            let message = format!(
                "Error creating: pods \"{pod_name}\" is forbidden: error looking up service account {ns}/{sa}: serviceaccount \"{sa}\" not found"
            );
            record_event(&s, &job_ref, "FailedCreate", &message, "job-controller");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // The Job controller makes the pod.
    let mut labels = tpl["metadata"]["labels"].clone();
    labels["batch.kubernetes.io/controller-uid"] = json!(uid);
    labels["batch.kubernetes.io/job-name"] = json!(job_name);
    labels["controller-uid"] = json!(uid);
    labels["job-name"] = json!(job_name);
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"], "imageID": "",
                "lastState": {}, "ready": false, "restartCount": 0, "started": false,
                "state": {"waiting": {"reason": "ContainerCreating"}}
            })
        })
        .collect();
    let pod = json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": pod_name, "generateName": format!("{job_name}-"), "namespace": ns,
            "uid": format!("11111111-0000-4000-8000-{:012x}", rand_u48()),
            "creationTimestamp": now(), "labels": labels,
            "annotations": tpl["metadata"]["annotations"],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": uid,
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": tpl["spec"],
        "status": {"phase": "Pending", "qosClass": "BestEffort"}
    });
    {
        let mut inner = s.inner.lock().unwrap();
        let results_mount = collector.as_ref().and_then(|c| {
            c["volumeMounts"]
                .as_array()?
                .iter()
                .find(|m| m["name"] == json!("prova-results"))
                .and_then(|m| m["mountPath"].as_str().map(str::to_string))
        });
        inner.pod_rt.insert(
            pod_name.clone(),
            PodRt {
                results: tempfile::tempdir().unwrap(),
                control: tempfile::tempdir().unwrap(),
                results_mount,
                stop_wait: None,
                log: Vec::new(),
                log_done: false,
                test_started: false,
                collector_log: Vec::new(),
                log_requests: 0,
                drop_after: env_of(&test, "LOG_DROP_AFTER").and_then(|v| v.parse().ok()),
                refuse_resume: env_of(&test, "LOG_REFUSE_RESUME").is_some(),
            },
        );
    }
    s.put(Kind::Pod, "ADDED", pod);
    s.modify(Kind::Job, &ns, &job_name, |j| {
        j["status"] = json!({
            "active": 1, "ready": 0, "terminating": 0, "startTime": now(),
            "uncountedTerminatedPods": {}
        });
    });
    tick().await;

    if scenario == "unschedulable" {
        let message = "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
        s.modify(Kind::Pod, &ns, &pod_name, |p| {
            p["status"]["conditions"] = json!([{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": message, "lastProbeTime": null, "lastTransitionTime": now()
            }]);
        });
        let pod_ref = {
            let p = s.get(Kind::Pod, &ns, &pod_name).unwrap();
            json!({
                "kind": "Pod", "namespace": ns, "name": pod_name,
                "uid": p["metadata"]["uid"], "apiVersion": "v1",
                "resourceVersion": p["metadata"]["resourceVersion"]
            })
        };
        loop {
            record_event(
                &s,
                &pod_ref,
                "FailedScheduling",
                message,
                "default-scheduler",
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    // Scheduled.
    s.modify(Kind::Pod, &ns, &pod_name, |p| {
        p["spec"]["nodeName"] = json!("node-1");
        p["status"]["conditions"] = json!([{
            "type": "PodScheduled", "status": "True",
            "lastProbeTime": null, "lastTransitionTime": now()
        }]);
        p["status"]["containerStatuses"] = json!(statuses);
        p["status"]["hostIP"] = json!("10.0.0.7");
    });
    tick().await;

    if scenario == "pullerror" || scenario == "collectorpull" {
        let (which, image) = if scenario == "collectorpull" {
            let c = collector.as_ref().expect("a collector");
            (
                "prova-collector".to_string(),
                c["image"].as_str().unwrap_or("").to_string(),
            )
        } else {
            (
                test_name.clone(),
                test["image"].as_str().unwrap_or("").to_string(),
            )
        };
        for (reason, msg) in [
            (
                "ErrImagePull",
                format!(
                    "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
                ),
            ),
            (
                "ImagePullBackOff",
                format!("Back-off pulling image \"{image}\""),
            ),
        ] {
            s.modify(Kind::Pod, &ns, &pod_name, |p| {
                set_container_state(
                    p,
                    &which,
                    json!({"waiting": {"reason": reason, "message": msg}}),
                    false,
                );
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        return std::future::pending().await;
    }

    // Running: the collector waits (the real `wait`), the test writes results.
    let wait = if let Some(c) = &collector {
        let cmd: Vec<String> = c["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let linger = cmd
            .iter()
            .position(|a| a == "--linger")
            .map(|i| prova_core::duration::parse_go_duration(&cmd[i + 1]).unwrap())
            .unwrap();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel();
        let (opts, results) = {
            let mut inner = s.inner.lock().unwrap();
            let rt = inner.pod_rt.get_mut(&pod_name).unwrap();
            rt.stop_wait = Some(stop_tx);
            (
                prova_k8s::collector::WaitOptions {
                    control_dir: rt.control.path().to_path_buf(),
                    linger,
                    termination_log: rt.control.path().join("termination-log"),
                },
                rt.results.path().to_path_buf(),
            )
        };
        for (rel, text) in RESULT_FILES {
            let p = results.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let sock = opts.control_dir.join(prova_k8s::collector::SOCKET_NAME);
        let h =
            tokio::task::spawn_blocking(move || prova_k8s::collector::wait(&opts, Some(stop_rx)));
        while !sock.exists() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Some(h)
    } else {
        None
    };
    // The kubelet serves the log from the moment the container runs.
    s.inner
        .lock()
        .unwrap()
        .pod_rt
        .get_mut(&pod_name)
        .unwrap()
        .test_started = true;
    s.modify(Kind::Pod, &ns, &pod_name, |p| {
        p["status"]["phase"] = json!("Running");
        p["status"]["startTime"] = json!(now());
        p["status"]["podIP"] = json!("10.244.1.17");
        for c in &containers {
            set_container_state(
                p,
                c["name"].as_str().unwrap(),
                json!({"running": {"startedAt": now()}}),
                true,
            );
        }
    });
    s.modify(Kind::Job, &ns, &job_name, |j| {
        j["status"]["ready"] = json!(1);
    });

    // The test writes its log: lines written together share a timestamp.
    let interval = env_of(&test, "LOG_INTERVAL_MS")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let no_eol = env_of(&test, "LOG_NO_EOL").is_some();
    let long_line: Option<usize> = env_of(&test, "LOG_LONG_LINE").and_then(|v| v.parse().ok());
    let mut ts = log_time();
    for i in 0..log_lines {
        if i % 16 == 0 || interval.is_some() {
            ts = log_time();
        }
        let last = i + 1 == log_lines && long_line.is_none();
        let text = if last && no_eol {
            format!("line {i}")
        } else {
            format!("line {i}\n")
        };
        write_log(&s, &pod_name, &ts, text.into_bytes());
        match interval {
            Some(d) => tokio::time::sleep(d).await,
            None if i % 16 == 15 => tokio::time::sleep(Duration::from_millis(3)).await,
            None => {}
        }
    }
    if let Some(n) = long_line {
        let mut line = vec![b'x'; n];
        if !no_eol {
            line.push(b'\n');
        }
        write_log(&s, &pod_name, &log_time(), line);
    }

    if scenario == "collectorcrash" {
        // The collector fails on its own, before anyone fetched.
        let stop = s
            .inner
            .lock()
            .unwrap()
            .pod_rt
            .get_mut(&pod_name)
            .unwrap()
            .stop_wait
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        {
            let mut inner = s.inner.lock().unwrap();
            let rt = inner.pod_rt.get_mut(&pod_name).unwrap();
            for line in [
                "prova collector: waiting for the results in /results",
                "prova: error: control socket /run/prova/collector.sock: No space left on device (os error 28)",
            ] {
                rt.collector_log
                    .push((log_time(), format!("{line}\n").into_bytes()));
            }
        }
        s.modify(Kind::Pod, &ns, &pod_name, |p| {
            set_container_state(p, "prova-collector", terminated(1, "Error", None), false);
        });
        tick().await;
    }

    let deadline = job["spec"]["activeDeadlineSeconds"].as_u64();
    let (code, reason) = match scenario.as_str() {
        "pass" | "collectorcrash" => (0, "Completed"),
        "fail" => (exit_code, "Error"),
        "oom" => (137, "OOMKilled"),
        "deadline" => {
            tokio::time::sleep(Duration::from_secs(deadline.unwrap_or(1))).await;
            let msg = "Job was active longer than specified deadline";
            s.modify(Kind::Job, &ns, &job_name, |j| {
                j["status"]["conditions"] =
                    json!([job_condition("FailureTarget", "DeadlineExceeded", msg)]);
                j["status"]["terminating"] = json!(1);
                j["status"]["active"] = json!(0);
            });
            tick().await;
            end_log(&s, &pod_name);
            if let Some(stop) = s
                .inner
                .lock()
                .unwrap()
                .pod_rt
                .get_mut(&pod_name)
                .unwrap()
                .stop_wait
                .take()
            {
                let _ = stop.send(());
            }
            s.modify(Kind::Pod, &ns, &pod_name, |p| {
                p["status"]["phase"] = json!("Failed");
                for c in &containers {
                    set_container_state(
                        p,
                        c["name"].as_str().unwrap(),
                        terminated(137, "Error", None),
                        false,
                    );
                }
            });
            tick().await;
            s.modify(Kind::Job, &ns, &job_name, |j| {
                let c = j["status"]["conditions"][0].clone();
                j["status"]["conditions"] =
                    json!([c, job_condition("Failed", "DeadlineExceeded", msg)]);
                j["status"]["terminating"] = json!(0);
                j["status"]["failed"] = json!(1);
                j["status"]["ready"] = json!(0);
            });
            return;
        }
        _ => return std::future::pending().await, // "hang"
    };

    // The test container terminates.
    tick().await;
    end_log(&s, &pod_name);
    s.modify(Kind::Pod, &ns, &pod_name, |p| {
        set_container_state(p, &test_name, terminated(code, reason, None), false);
    });
    if collector.is_none() {
        s.modify(Kind::Pod, &ns, &pod_name, |p| {
            p["status"]["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
        });
    }

    // The collector exits (done, or its linger time), then the pod ends.
    if let Some(h) = wait {
        let summary = h.await.unwrap().unwrap();
        let message = std::fs::read_to_string(
            s.inner.lock().unwrap().pod_rt[&pod_name]
                .control
                .path()
                .join("termination-log"),
        )
        .unwrap();
        let _ = summary;
        let crashed = scenario == "collectorcrash";
        s.modify(Kind::Pod, &ns, &pod_name, |p| {
            if !crashed {
                set_container_state(
                    p,
                    "prova-collector",
                    terminated(0, "Completed", Some(&message)),
                    false,
                );
            }
            p["status"]["phase"] = json!(if code == 0 && !crashed {
                "Succeeded"
            } else {
                "Failed"
            });
        });
    }
    tick().await;
    s.modify(Kind::Job, &ns, &job_name, |j| {
        let st = &mut j["status"];
        st["active"] = json!(0);
        st["ready"] = json!(0);
        if scenario == "collectorcrash" {
            let msg = "Job has reached the specified backoff limit";
            st["failed"] = json!(1);
            st["conditions"] = json!([
                job_condition("FailureTarget", "BackoffLimitExceeded", msg),
                job_condition("Failed", "BackoffLimitExceeded", msg),
            ]);
        } else if code == 0 {
            st["succeeded"] = json!(1);
            st["completionTime"] = json!(now());
            st["conditions"] = json!([
                job_condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                job_condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
            ]);
        } else {
            let msg = format!(
                "Container {test_name} for pod {ns}/{pod_name} failed with exit code {code} matching FailJob rule at index 1"
            );
            st["failed"] = json!(1);
            st["conditions"] = json!([
                job_condition("FailureTarget", "PodFailurePolicy", &msg),
                job_condition("Failed", "PodFailurePolicy", &msg),
            ]);
        }
    });
}

/// The kubelet's timestamp form (`RFC3339NanoFixed`).
fn log_time() -> String {
    let t = jiff::Timestamp::now();
    format!(
        "{}.{:09}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_nanosecond()
    )
}

fn write_log(s: &Shared, pod: &str, ts: &str, bytes: Vec<u8>) {
    {
        let mut inner = s.inner.lock().unwrap();
        let rt = inner.pod_rt.get_mut(pod).unwrap();
        rt.log.push((ts.to_string(), bytes));
    }
    s.bump();
}

/// Records a Warning Event about `involved` as a controller does: the
/// same (object, reason) again raises `count` and `lastTimestamp`.
fn record_event(s: &Shared, involved: &Value, reason: &str, message: &str, component: &str) {
    let ns = involved["namespace"].as_str().unwrap();
    let name = format!(
        "{}.{:016x}",
        involved["name"].as_str().unwrap(),
        reason
            .bytes()
            .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64)
                .wrapping_mul(0x100000001b3))
    );
    if s.modify(Kind::Event, ns, &name, |e| {
        e["count"] = json!(e["count"].as_u64().unwrap_or(1) + 1);
        e["lastTimestamp"] = json!(now());
        e["message"] = json!(message);
    }) {
        return;
    }
    s.put(
        Kind::Event,
        "ADDED",
        json!({
            "kind": "Event", "apiVersion": "v1",
            "metadata": {
                "name": name, "namespace": ns, "creationTimestamp": now(),
                "uid": format!("22222222-0000-4000-8000-{:012x}", rand_u48())
            },
            "involvedObject": involved,
            "reason": reason, "message": message,
            "source": {"component": component},
            "firstTimestamp": now(), "lastTimestamp": now(), "count": 1,
            "type": "Warning", "eventTime": null,
            "reportingComponent": component, "reportingInstance": ""
        }),
    );
}

fn end_log(s: &Shared, pod: &str) {
    s.inner
        .lock()
        .unwrap()
        .pod_rt
        .get_mut(pod)
        .unwrap()
        .log_done = true;
    s.bump();
}

async fn pod_log(
    State(s): State<Arc<Shared>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = parse_query(q.as_deref());
    let opts = LogOpts {
        follow: q1(&q, "follow") == Some("true"),
        timestamps: q1(&q, "timestamps") == Some("true"),
        since: q1(&q, "sinceTime").map(|v| v.parse().expect("sinceTime is RFC 3339")),
    };
    let tail: Option<usize> = q1(&q, "tailLines").and_then(|v| v.parse().ok());
    let container = q1(&q, "container").unwrap_or("").to_string();
    let drop_after = {
        let mut inner = s.inner.lock().unwrap();
        if !inner.pods.contains_key(&(ns.clone(), name.clone())) {
            return status_body(404, "NotFound", &format!("pods \"{name}\" not found"));
        }
        let rt = match inner.pod_rt.get_mut(&name) {
            Some(rt) if rt.test_started => rt,
            _ => {
                return status_body(
                    400,
                    "BadRequest",
                    &format!(
                        "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
                    ),
                );
            }
        };
        if container == "prova-collector" {
            // The collector's log, read whole (it has ended when prova asks).
            let skip = tail.map_or(0, |t| rt.collector_log.len().saturating_sub(t));
            let body: Vec<u8> = rt.collector_log[skip..]
                .iter()
                .flat_map(|(ts, b)| opts.render(ts, b))
                .collect();
            return Response::builder()
                .header("content-type", "text/plain")
                .body(Body::from(body))
                .unwrap();
        }
        rt.log_requests += 1;
        if rt.refuse_resume && rt.log_requests > 1 {
            return status_body(
                500,
                "InternalError",
                "Internal error occurred: error dialing backend: connection refused",
            );
        }
        if opts.follow && rt.log_requests == 1 {
            rt.drop_after
        } else {
            None
        }
    };
    let rx = s.changed.subscribe();
    let stream = futures::stream::unfold(
        (s, rx, 0usize, 0usize, name, false),
        move |(s, mut rx, mut idx, mut sent, name, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let (out, done, cut) = {
                    let inner = s.inner.lock().unwrap();
                    let rt = inner.pod_rt.get(&name)?;
                    let mut out = Vec::new();
                    let mut cut = false;
                    while let Some((ts, bytes)) = rt.log.get(idx) {
                        // Following, the kubelet holds back an unfinished line.
                        if opts.follow && !bytes.ends_with(b"\n") {
                            break;
                        }
                        if drop_after == Some(sent) {
                            cut = true;
                            break;
                        }
                        idx += 1;
                        if opts.keeps(ts) {
                            out.extend(opts.render(ts, bytes));
                            sent += 1;
                        }
                    }
                    (out, rt.log_done, cut)
                };
                if !out.is_empty() {
                    return Some((
                        Ok::<_, std::io::Error>(Bytes::from(out)),
                        (s, rx, idx, sent, name, false),
                    ));
                }
                if cut {
                    // The connection breaks mid-stream.
                    return Some((
                        Err(std::io::Error::other("connection reset")),
                        (s, rx, idx, sent, name, true),
                    ));
                }
                if done || !opts.follow {
                    return None;
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Response::builder()
        .header("content-type", "text/plain")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// How a log request wants its lines.
#[derive(Clone, Copy)]
struct LogOpts {
    follow: bool,
    timestamps: bool,
    since: Option<jiff::Timestamp>,
}

impl LogOpts {
    /// `sinceTime`: lines at or after it.
    fn keeps(&self, ts: &str) -> bool {
        let t: jiff::Timestamp = ts.parse().unwrap();
        self.since.is_none_or(|since| t >= since)
    }

    fn render(&self, ts: &str, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + 32);
        if self.timestamps {
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(bytes);
        out
    }
}

async fn pod_exec(
    State(s): State<Arc<Shared>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let q = parse_query(q.as_deref());
    let command: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let container = q1(&q, "container").unwrap_or("").to_string();
    s.inner.lock().unwrap().execs.push(command.clone());
    if s.get(Kind::Pod, &ns, &name).is_none() {
        return status_body(404, "NotFound", &format!("pods \"{name}\" not found"));
    }
    if container != "prova-collector" {
        return status_body(
            400,
            "BadRequest",
            &format!("container {container} is not valid for pod {name}"),
        );
    }
    let offered = headers
        .get("sec-websocket-protocol")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !offered.contains("v5.channel.k8s.io") && !offered.contains("v4.channel.k8s.io") {
        return status_body(400, "BadRequest", "unsupported streaming protocol");
    }
    ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"])
        .on_upgrade(move |socket| run_exec(s, name, command, socket))
}

async fn run_exec(s: Arc<Shared>, pod: String, command: Vec<String>, mut socket: WebSocket) {
    // Ready: one empty message on the lowest writable channel.
    let _ = socket.send(Message::Binary(Bytes::from_static(&[1]))).await;
    let (results, control, mount) = {
        let inner = s.inner.lock().unwrap();
        let rt = &inner.pod_rt[&pod];
        (
            rt.results.path().to_path_buf(),
            rt.control.path().to_path_buf(),
            rt.results_mount.clone(),
        )
    };
    let arg = |flag: &str| {
        command
            .iter()
            .position(|a| a == flag)
            .and_then(|i| command.get(i + 1).cloned())
    };
    let sub: Vec<&str> = command.iter().skip(1).take(2).map(String::as_str).collect();
    let result: Result<(), String> = match sub.as_slice() {
        ["collector", "send"] => {
            if arg("--dir") != mount {
                Err(format!("no results mount at {:?}", arg("--dir")))
            } else {
                let corrupt = s.opts.corrupt_results;
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
                let sender = tokio::task::spawn_blocking(move || {
                    let w = ChanWriter { tx, corrupt };
                    prova_k8s::collector::send_and_report(&results, &control, w)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                });
                while let Some(chunk) = rx.recv().await {
                    let mut frame = Vec::with_capacity(chunk.len() + 1);
                    frame.push(1);
                    frame.extend_from_slice(&chunk);
                    if socket.send(Message::Binary(frame.into())).await.is_err() {
                        return;
                    }
                }
                sender.await.unwrap()
            }
        }
        ["collector", "done"] => {
            let code = arg("--exit-code").and_then(|c| c.parse().ok());
            tokio::task::spawn_blocking(move || {
                prova_k8s::collector::done(&control, code).map_err(|e| e.to_string())
            })
            .await
            .unwrap()
        }
        _ => Err(format!("unknown command {command:?}")),
    };
    let status = match &result {
        Ok(()) => json!({"metadata": {}, "status": "Success"}),
        Err(e) => {
            let mut frame = vec![2];
            frame.extend_from_slice(format!("prova: error: {e}\n").as_bytes());
            let _ = socket.send(Message::Binary(frame.into())).await;
            json!({
                "metadata": {}, "status": "Failure",
                "message": "command terminated with non-zero exit code: error executing command [...], exit code 1",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "1"}]}
            })
        }
    };
    let mut frame = vec![3];
    frame.extend_from_slice(status.to_string().as_bytes());
    let _ = socket.send(Message::Binary(frame.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// Hands what `send` writes to the WebSocket side, one chunk per write.
struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    corrupt: bool,
}

impl std::io::Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut chunk = buf.to_vec();
        if self.corrupt && chunk.len() > 600 {
            chunk[550] ^= 0x01;
            self.corrupt = false;
        }
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("connection gone"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
