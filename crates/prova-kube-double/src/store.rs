//! The double's object store: every object by kind, namespace and name,
//! one resourceVersion counter for all of them (as etcd's revision), and
//! the history of changes that watches replay from a resourceVersion.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{DeleteSeen, Options};

/// The kinds of object the double stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Job,
    Pod,
    Event,
    Namespace,
    ServiceAccount,
    StatefulSet,
}

impl Kind {
    /// `kind` and `apiVersion` of an object of this kind.
    pub(crate) fn type_meta(self) -> (&'static str, &'static str) {
        match self {
            Kind::Job => ("Job", "batch/v1"),
            Kind::Pod => ("Pod", "v1"),
            Kind::Event => ("Event", "v1"),
            Kind::Namespace => ("Namespace", "v1"),
            Kind::ServiceAccount => ("ServiceAccount", "v1"),
            Kind::StatefulSet => ("StatefulSet", "apps/v1"),
        }
    }

    /// The resource as the API server names it in messages
    /// (`jobs.batch "x" not found`).
    pub(crate) fn resource(self) -> &'static str {
        match self {
            Kind::Job => "jobs.batch",
            Kind::Pod => "pods",
            Kind::Event => "events",
            Kind::Namespace => "namespaces",
            Kind::ServiceAccount => "serviceaccounts",
            Kind::StatefulSet => "statefulsets.apps",
        }
    }
}

/// One change, as a watch reports it.
pub(crate) struct Record {
    pub(crate) rv: u64,
    pub(crate) kind: Kind,
    pub(crate) type_: &'static str,
    pub(crate) object: Value,
}

/// What the simulated kubelet keeps about a pod besides its object.
pub(crate) struct PodRt {
    pub(crate) results: tempfile::TempDir,
    pub(crate) control: tempfile::TempDir,
    pub(crate) results_mount: Option<String>,
    pub(crate) stop_wait: Option<std::sync::mpsc::Sender<()>>,
    /// (timestamp, bytes): one entry per write, each a line with its
    /// newline except perhaps the last.
    pub(crate) log: Vec<(String, Vec<u8>)>,
    pub(crate) log_done: bool,
    pub(crate) test_started: bool,
    pub(crate) collector_log: Vec<(String, Vec<u8>)>,
    /// Log requests served so far.
    pub(crate) log_requests: usize,
    pub(crate) drop_after: Option<usize>,
    pub(crate) refuse_resume: bool,
}

/// A request the double answers with an error instead of serving it.
#[derive(Debug, Clone)]
pub(crate) struct Fault {
    pub(crate) method: String,
    pub(crate) path_suffix: String,
    pub(crate) code: u16,
}

#[derive(Default)]
pub(crate) struct Inner {
    pub(crate) rv: u64,
    pub(crate) objects: HashMap<Kind, BTreeMap<(String, String), Value>>,
    pub(crate) history: Vec<Record>,
    pub(crate) deletes: Vec<DeleteSeen>,
    pub(crate) pod_rt: HashMap<String, PodRt>,
    /// Controller tasks by (namespace, name) of the object they drive.
    pub(crate) sims: HashMap<(String, String), tokio::task::AbortHandle>,
    /// Every request, `METHOD path?query`.
    pub(crate) requests: Vec<String>,
    /// The `User-Agent` of each request in `requests`.
    pub(crate) agents: Vec<Option<String>>,
    pub(crate) execs: Vec<Vec<String>>,
    pub(crate) faults: Vec<Fault>,
}

impl Inner {
    pub(crate) fn map(&self, kind: Kind) -> Option<&BTreeMap<(String, String), Value>> {
        self.objects.get(&kind)
    }

    /// The objects of `kind`, in (namespace, name) order.
    pub(crate) fn all(&self, kind: Kind) -> impl Iterator<Item = &Value> {
        self.map(kind).into_iter().flat_map(|m| m.values())
    }
}

pub struct Shared {
    pub(crate) inner: Mutex<Inner>,
    /// The audit webhook, once [`crate::Double::send_audit_to`] set it.
    pub(crate) audit: std::sync::OnceLock<crate::audit::Backend>,
    pub(crate) changed: watch::Sender<u64>,
    pub(crate) opts: Options,
}

/// Now, to the second, as object timestamps are written.
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap()
        .to_string()
}

/// The (namespace, name) key of an object; a cluster-scoped object has
/// namespace "".
fn key_of(obj: &Value) -> (String, String) {
    (
        obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
    )
}

impl Shared {
    /// Stores `obj` (new resourceVersion) and records a watch event.
    pub(crate) fn put(&self, kind: Kind, type_: &'static str, mut obj: Value) -> Value {
        let mut inner = self.inner.lock().unwrap();
        inner.rv += 1;
        let rv = inner.rv;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = key_of(&obj);
        let map = inner.objects.entry(kind).or_default();
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

    pub(crate) fn bump(&self) {
        let rv = self.inner.lock().unwrap().rv;
        self.changed.send_replace(rv);
    }

    pub(crate) fn get(&self, kind: Kind, ns: &str, name: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        inner
            .map(kind)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Changes a stored object (if it still exists) and records MODIFIED.
    pub(crate) fn modify(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> bool {
        let Some(mut obj) = self.get(kind, ns, name) else {
            return false;
        };
        f(&mut obj);
        self.put(kind, "MODIFIED", obj);
        true
    }

    /// Stops the controller task driving (namespace, name), if any.
    pub(crate) fn stop_sim(&self, ns: &str, name: &str) {
        if let Some(sim) = self
            .inner
            .lock()
            .unwrap()
            .sims
            .remove(&(ns.to_string(), name.to_string()))
        {
            sim.abort();
        }
    }

    pub(crate) fn add_sim(&self, ns: &str, name: &str, task: tokio::task::JoinHandle<()>) {
        self.inner
            .lock()
            .unwrap()
            .sims
            .insert((ns.to_string(), name.to_string()), task.abort_handle());
    }
}

/// A fresh unique number for uids and name suffixes.
pub(crate) fn rand_u48() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0x1a2b3c);
    N.fetch_add(0x1f3d5, Ordering::SeqCst) & 0xffff_ffff_ffff
}
