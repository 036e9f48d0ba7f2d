//! What the `k8sjob` tests share: running a one-step job through the real
//! engine against the double, and reading its events.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use crate::double::Double;
use prova_core::node::Format;
use prova_core::{Event, EventQuery};
use prova_engine::prepare::prepare_str;
use prova_engine::runner::{JobOutcome, RunOptions, run_job};
use prova_k8s::K8sJob;
use prova_store::{SqlStore, Store};
use serde_json::Value;

pub struct Ran {
    pub outcome: JobOutcome,
    pub events: Vec<Event>,
    pub _dir: tempfile::TempDir,
}

impl Ran {
    /// The step's own events, in order.
    pub fn k8s(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.name.starts_with("K8s"))
            .collect()
    }
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.k8s().iter().map(|e| e.name.as_str()).collect();
        names.dedup();
        names
    }
    pub fn one(&self, name: &str) -> &Value {
        let found: Vec<_> = self.events.iter().filter(|e| e.name == name).collect();
        assert_eq!(found.len(), 1, "{name}: {:?}", self.names());
        found[0].payload.as_ref().unwrap()
    }
    pub fn has(&self, name: &str) -> bool {
        self.events.iter().any(|e| e.name == name)
    }
    pub fn target_err(&self) -> String {
        self.events
            .iter()
            .find(|e| e.name == "TargetErr")
            .and_then(|e| e.payload.as_ref()?["Error"].as_str().map(str::to_string))
            .unwrap_or_default()
    }
    pub fn log_text(&self) -> String {
        self.events
            .iter()
            .filter(|e| e.name == "K8sLog")
            .map(|e| e.payload.as_ref().unwrap()["Msg"].as_str().unwrap())
            .collect()
    }
}

pub fn descriptor(params: &str) -> String {
    format!(
        "JobName: k8s\nRuns: 1\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters:\n      Targets:\n        - ID: node-1\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: Smoke\n      Steps:\n        - name: k8sjob\n          label: e2e\n          parameters:\n{params}Reporting:\n  RunReporters:\n    - name: TargetSuccess\n      parameters: {{SuccessExpression: \"=100%\"}}\n"
    )
}

/// Parameters as YAML lines under `parameters:`.
pub fn params(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("            {l}\n")).collect()
}

pub async fn run_with(step: K8sJob, params_yaml: &str, mut opts: RunOptions) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let mut registry = prova_engine::plugins::registry();
    registry.step("k8sjob", step);
    let prepared = prepare_str(&descriptor(params_yaml), Format::Yaml, None, &registry)
        .unwrap_or_else(|e| panic!("{e}"));
    opts.artifacts_root = Some(dir.path().join("artifacts"));
    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        run_job(prepared, store.clone(), opts),
    )
    .await
    .expect("the job did not end within 60s")
    .unwrap();
    let events = store
        .query_events(&EventQuery::for_job(outcome.job_id))
        .await
        .unwrap();
    Ran {
        outcome,
        events,
        _dir: dir,
    }
}

pub async fn run(d: &Double, lines: &[&str]) -> Ran {
    run_with(
        K8sJob::with_config(d.config()),
        &params(lines),
        RunOptions::default(),
    )
    .await
}

pub fn collector_message(d: &Double) -> Option<String> {
    let pods = d.pods();
    let statuses = pods.first()?["status"]["containerStatuses"]
        .as_array()?
        .clone();
    statuses.iter().find(|c| c["name"] == "prova-collector")?["state"]["terminated"]["message"]
        .as_str()
        .map(str::to_string)
}

pub fn job_condition(d: &Double) -> Vec<String> {
    d.jobs()
        .first()
        .and_then(|j| j["status"]["conditions"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|c| c["type"].as_str().unwrap().to_string())
        .collect()
}
