//! A job around SSH steps, run on a real SQLite store.

use std::sync::Arc;

use prova_core::node::Format;
use prova_core::{Event, EventQuery};
use prova_engine::prepare::{PreparedJob, prepare_str};
use prova_engine::runner::{JobOutcome, RunOptions, run_job};
use prova_ssh::{Pool, PoolOptions};
use prova_store::{SqlStore, Store};
use serde_json::{Value, json};

use crate::support::Sshd;

/// The engine's plugins and the SSH steps on `pool`, or on a pool of their
/// own: each test has its own tokio runtime, and a connection dies with the
/// runtime it was opened on, so tests do not share the process-wide pool.
pub fn registry(pool: Option<Pool>) -> prova_engine::Registry {
    let mut r = prova_engine::plugins::registry();
    let pool = pool.unwrap_or_else(|| Pool::new(PoolOptions::default()));
    prova_ssh::register_with_pool(&mut r, pool);
    r
}

/// The login parameters that reach the test server with its key and known_hosts.
pub fn login(sshd: &Sshd) -> Value {
    json!({
        "host": ["{{ .FQDN }}"],
        "port": [sshd.port.to_string()],
        "user": [sshd.user],
        "private_key_file": [sshd.key.display().to_string()],
        "known_hosts": [sshd.known_hosts.display().to_string()],
        "use_agent": ["false"],
    })
}

/// `base` with `extra`'s keys added or replaced.
pub fn with(base: &Value, extra: Value) -> Value {
    let mut out = base.clone();
    for (k, v) in extra.as_object().unwrap() {
        out[k] = v.clone();
    }
    out
}

/// A step `{name, label, parameters}`.
pub fn step(name: &str, label: &str, parameters: Value) -> Value {
    json!({ "name": name, "label": label, "parameters": parameters })
}

/// A job of one test with `steps` over targets `ids` (all at the test
/// server's address).
pub fn job(sshd: &Sshd, ids: &[&str], steps: Vec<Value>) -> Value {
    let targets: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "ID": id, "FQDN": sshd.host }))
        .collect();
    json!({
        "JobName": "ssh",
        "Runs": 1,
        "TestDescriptors": [{
            "TargetManagerName": "TargetList",
            "TargetManagerAcquireParameters": { "Targets": targets },
            "TargetManagerReleaseParameters": {},
            "TestFetcherName": "literal",
            "TestFetcherFetchParameters": { "TestName": "T", "Steps": steps },
        }],
        "Reporting": {
            "RunReporters": [{ "Name": "TargetSuccess", "Parameters": { "SuccessExpression": "=100%" } }]
        }
    })
}

pub fn prepare(job: &Value, pool: Option<Pool>) -> PreparedJob {
    prepare_str(&job.to_string(), Format::Json, None, &registry(pool))
        .unwrap_or_else(|e| panic!("{e}"))
}

pub struct Ran {
    pub outcome: JobOutcome,
    pub events: Vec<Event>,
    pub artifacts: tempfile::TempDir,
}

impl Ran {
    pub fn named(&self, name: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e.name == name)
            .filter_map(|e| e.payload.as_ref())
            .collect()
    }

    pub fn one(&self, name: &str) -> &Value {
        let v = self.named(name);
        assert_eq!(v.len(), 1, "expected one {name} event, found {v:?}");
        v[0]
    }

    /// The one target error's text.
    pub fn target_err(&self) -> String {
        self.one("TargetErr")["Error"].as_str().unwrap().to_string()
    }
}

/// Runs one step of plugin `name` on target `t1`.
pub async fn run_step(sshd: &Sshd, name: &str, params: Value) -> Ran {
    run(
        &job(sshd, &["t1"], vec![step(name, "run", params)]),
        None,
        RunOptions::default(),
    )
    .await
}

pub async fn run(job: &Value, pool: Option<Pool>, opts: RunOptions) -> Ran {
    run_prepared(prepare(job, pool), opts).await
}

pub async fn run_prepared(prepared: PreparedJob, opts: RunOptions) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let artifacts = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        artifacts_root: Some(artifacts.path().to_path_buf()),
        ..opts
    };
    let outcome = run_job(prepared, store.clone(), opts).await.unwrap();
    let events = store
        .query_events(&EventQuery::for_job(outcome.job_id))
        .await
        .unwrap();
    Ran {
        outcome,
        events,
        artifacts,
    }
}
