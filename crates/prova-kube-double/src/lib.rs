//! A Kubernetes API test double that speaks the real wire protocol over
//! HTTP on 127.0.0.1, for prova's tests: the `k8sjob` step's and the
//! `prova e2e` suite's. Dev-only (`publish = false`).
//!
//! What it serves (each module says more):
//! - [`rest`]: create/get/list/`?watch=true` (chunked JSON lines,
//!   `{"type":"ADDED","object":…}`, from a `resourceVersion`)/replace/
//!   patch/delete of Namespaces, ServiceAccounts, Pods, Events, batch/v1
//!   Jobs and apps/v1 StatefulSets, with field and label selectors; the
//!   `/status` subresources of Jobs and StatefulSets (GET, PUT with
//!   resourceVersion conflicts → 409, PATCH); status writes keep the spec,
//!   main-resource writes keep the status, as the API server's strategies.
//! - [`patch`]: merge (RFC 7396), JSON (RFC 6902) and strategic merge
//!   patches.
//! - [`namespaces`]: the namespace lifecycle and the ServiceAccount
//!   controller's `default` account.
//! - [`kubelet`]: the Job controller and kubelet for one-pod Jobs driven
//!   by the test container's env (`SCENARIO=…`), with logs ([`logs`]),
//!   exec ([`exec`]) and Events ([`events`]).
//! - [`workloads`]: pods that run until deleted, for Jobs with
//!   parallelism > 1 and for the StatefulSet controller (an image naming
//!   [`UNPULLABLE`] stays Pending in `ErrImagePull`).
//!
//! Objects have the shapes the API server returns (see
//! `shared/corpus/k8s/objects`): lists without item kinds, status
//! conditions with `lastTransitionTime`, ownerReferences and the
//! controllers' pod labels. Every request is recorded with its
//! `User-Agent` ([`Double::requests`], [`Double::agents`]) and, with
//! [`Double::send_audit_to`], sent as an audit event to a sink the way
//! kube-apiserver's audit webhook does ([`AuditWebhook`]), and
//! [`Double::reject`] makes chosen requests fail, to test failure paths.
//!
//! ```no_run
//! # async fn demo() {
//! let d = prova_kube_double::Double::start(Default::default()).await;
//! let client = kube::Client::try_from(d.config()).unwrap();
//! # }
//! ```

mod audit;
mod events;
mod exec;
mod jobs;
mod kubelet;
mod logs;
mod namespaces;
mod patch;
mod rest;
mod routes;
mod statefulsets;
mod store;
mod wire;
mod workloads;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

pub use audit::{AuditStats, AuditWebhook};
pub use exec::Collector;
pub use store::Shared;
use store::{Fault, Inner, Kind};
pub use workloads::UNPULLABLE;

/// Files the simulated test writes into its results directory.
pub const RESULT_FILES: &[(&str, &str)] = &[
    (
        "junit.xml",
        "<testsuite name=\"smoke\" tests=\"1\"><testcase name=\"ok\"/></testsuite>\n",
    ),
    ("logs/run.log", "all good\n"),
];

/// Namespaces a fresh cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

#[derive(Clone, Default)]
pub struct Options {
    /// Flip one byte of the results stream's data.
    pub corrupt_results: bool,
    /// The collector container's program (prova-k8s's tests supply the
    /// real one); a pod with a `prova-collector` container needs it.
    pub collector: Option<Arc<dyn Collector>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeleteSeen {
    pub namespace: String,
    pub name: String,
    pub propagation_policy: Option<String>,
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
    /// Starts the double on a free port of 127.0.0.1, with the namespaces
    /// of a fresh cluster ([`SYSTEM_NAMESPACES`]).
    pub async fn start(opts: Options) -> Double {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                rv: 1000,
                ..Default::default()
            }),
            changed: watch::channel(1000).0,
            audit: Default::default(),
            opts,
        });
        for ns in SYSTEM_NAMESPACES {
            namespaces::create_now(&shared, ns);
        }
        let app = routes::router(shared.clone());
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

    /// A kubeconfig file for the double, with a context named `double`
    /// (namespace `e2e`) and a current context `other` that points nowhere.
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

    /// Every request, `METHOD path?query`, in order.
    pub fn requests(&self) -> Vec<String> {
        self.shared.inner.lock().unwrap().requests.clone()
    }

    /// The `User-Agent` of every request, in order.
    pub fn agents(&self) -> Vec<Option<String>> {
        self.shared.inner.lock().unwrap().agents.clone()
    }

    /// From now on, every request served is audited and its event sent to
    /// `webhook` in `EventList` batches (see [`AuditWebhook`]). Once per
    /// double: a second call is refused.
    pub fn send_audit_to(&self, webhook: AuditWebhook) -> Result<(), AuditWebhook> {
        let url = webhook.url.clone();
        self.shared
            .audit
            .set(audit::Backend::start(webhook))
            .map_err(|_| AuditWebhook::new(url, None))
    }

    /// What the audit webhook did so far (`None` without one).
    pub fn audit_stats(&self) -> Option<Arc<AuditStats>> {
        self.shared.audit.get().map(|b| b.stats.clone())
    }

    /// Waits until every audit event made so far was sent or dropped
    /// (bounded by `timeout`); false when the time ran out.
    pub async fn audit_flushed(&self, timeout: Duration) -> bool {
        let Some(stats) = self.audit_stats() else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + timeout;
        while stats.pending() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Creates a namespace now (with its `default` ServiceAccount).
    pub fn add_namespace(&self, name: &str) {
        namespaces::create_now(&self.shared, name);
    }

    /// Creates a ServiceAccount: a Job waiting for it can make its pod.
    pub fn add_service_account(&self, ns: &str, name: &str) {
        namespaces::create_service_account(&self.shared, ns, name);
    }

    /// Answers every later `method` request whose path ends with
    /// `path_suffix` with `code` and a `Status` body, instead of serving it.
    pub fn reject(&self, method: &str, path_suffix: &str, code: u16) {
        self.shared.inner.lock().unwrap().faults.push(Fault {
            method: method.to_string(),
            path_suffix: path_suffix.to_string(),
            code,
        });
    }

    fn objects(&self, kind: Kind) -> Vec<Value> {
        self.shared
            .inner
            .lock()
            .unwrap()
            .all(kind)
            .cloned()
            .collect()
    }

    pub fn events(&self) -> Vec<Value> {
        self.objects(Kind::Event)
    }

    pub fn execs(&self) -> Vec<Vec<String>> {
        self.shared.inner.lock().unwrap().execs.clone()
    }

    pub fn jobs(&self) -> Vec<Value> {
        self.objects(Kind::Job)
    }

    pub fn pods(&self) -> Vec<Value> {
        self.objects(Kind::Pod)
    }

    pub fn namespaces(&self) -> Vec<Value> {
        self.objects(Kind::Namespace)
    }

    pub fn service_accounts(&self) -> Vec<Value> {
        self.objects(Kind::ServiceAccount)
    }

    pub fn stateful_sets(&self) -> Vec<Value> {
        self.objects(Kind::StatefulSet)
    }

    /// A receiver that changes whenever the double's state does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Waits until `pred` holds for the double's state (bounded).
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&Double) -> bool) {
        self.wait_for(what, || pred(self)).await;
    }

    /// Waits until `pred` holds, asking again at each change of the
    /// double's state; panics naming `what` after 20 s.
    pub async fn wait_for(&self, what: &str, pred: impl Fn() -> bool) {
        let mut rx = self.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !pred() {
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                panic!("timed out waiting for {what}");
            }
        }
    }
}
