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
//! `SCENARIO=pass|fail|oom|deadline|pullerror|collectorpull|hang`, `EXIT_CODE=n` (fail),
//! `LOG_LINES=n`. With a collector container the pod's results directory
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
    log: Vec<u8>,
    log_done: bool,
    test_started: bool,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    jobs: BTreeMap<(String, String), Value>,
    pods: BTreeMap<(String, String), Value>,
    history: Vec<Record>,
    deletes: Vec<DeleteSeen>,
    pod_rt: HashMap<String, PodRt>,
    sims: HashMap<String, tokio::task::AbortHandle>,
    /// Every request, `METHOD path?query`.
    requests: Vec<String>,
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
    s.inner.lock().unwrap().requests.push(line);
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
            let actual = match k {
                "metadata.name" => obj["metadata"]["name"].as_str(),
                "metadata.namespace" => obj["metadata"]["namespace"].as_str(),
                _ => None,
            };
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

    fn bump(&self) {
        let rv = self.inner.lock().unwrap().rv;
        self.changed.send_replace(rv);
    }

    fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        let map = match kind {
            Kind::Job => &inner.jobs,
            Kind::Pod => &inner.pods,
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

    // The test writes its log.
    for i in 0..log_lines {
        {
            let mut inner = s.inner.lock().unwrap();
            let rt = inner.pod_rt.get_mut(&pod_name).unwrap();
            rt.log.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        s.bump();
        if i % 16 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }

    let deadline = job["spec"]["activeDeadlineSeconds"].as_u64();
    let (code, reason) = match scenario.as_str() {
        "pass" => (0, "Completed"),
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
        s.modify(Kind::Pod, &ns, &pod_name, |p| {
            set_container_state(
                p,
                "prova-collector",
                terminated(0, "Completed", Some(&message)),
                false,
            );
            p["status"]["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
        });
    }
    tick().await;
    s.modify(Kind::Job, &ns, &job_name, |j| {
        let st = &mut j["status"];
        st["active"] = json!(0);
        st["ready"] = json!(0);
        if code == 0 {
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
    let follow = q1(&q, "follow") == Some("true");
    let container = q1(&q, "container").unwrap_or("").to_string();
    {
        let inner = s.inner.lock().unwrap();
        if !inner.pods.contains_key(&(ns.clone(), name.clone())) {
            return status_body(404, "NotFound", &format!("pods \"{name}\" not found"));
        }
        match inner.pod_rt.get(&name) {
            Some(rt) if rt.test_started => {}
            _ => {
                return status_body(
                    400,
                    "BadRequest",
                    &format!(
                        "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
                    ),
                );
            }
        }
    }
    let rx = s.changed.subscribe();
    let stream = futures::stream::unfold(
        (s, rx, 0usize, name, false),
        move |(s, mut rx, sent, name, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let (chunk, done) = {
                    let inner = s.inner.lock().unwrap();
                    let rt = inner.pod_rt.get(&name)?;
                    (rt.log[sent..].to_vec(), rt.log_done)
                };
                if !chunk.is_empty() {
                    let n = sent + chunk.len();
                    return Some((
                        Ok::<_, std::io::Error>(Bytes::from(chunk)),
                        (s, rx, n, name, false),
                    ));
                }
                if done || !follow {
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
