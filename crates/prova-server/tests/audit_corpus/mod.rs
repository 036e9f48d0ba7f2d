//! Real audit events from the shared corpus (`/work/shared/corpus/k8s`,
//! reached relative to this crate), as the audit sink's tests and benchmark
//! post them: `EventList` batches.
#![allow(dead_code)] // the test and the bench each use their part

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/k8s")
}

pub fn spec_path() -> PathBuf {
    corpus().join("openapi/v1.36/swagger.json")
}

/// Every audit event of the corpus's audit samples (files holding one
/// event, an array, or JSON lines), in a stable order. Values that are not
/// events (Falco's `{"kind": 0}`) are left out: a sink refuses them.
/// Fixtures that are variants of one event share its `auditID` (APISnoop's
/// five, two Falco pairs); those get a suffix, so each is an event of its own.
pub fn events() -> Vec<Value> {
    let mut files = Vec::new();
    for sub in [
        "audit/apisnoop-testdata",
        "audit/audit2rbac",
        "audit/falco-k8s_audit",
    ] {
        for e in std::fs::read_dir(corpus().join(sub)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let values: Vec<Value> = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(_) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect(),
        };
        out.extend(
            values
                .into_iter()
                .filter(|v| v.get("verb").is_some() && v.get("requestURI").is_some()),
        );
    }
    let mut seen = std::collections::HashSet::new();
    for (i, e) in out.iter_mut().enumerate() {
        let id = e["auditID"].as_str().unwrap().to_string();
        if !seen.insert(id.clone()) {
            e["auditID"] = json!(format!("{id}-variant-{i}"));
        }
    }
    out
}

/// Gives every third event an e2e.test user agent naming a test (a third of
/// those `[Conformance]`), so coverage credits tests as in an e2e run.
pub fn with_e2e_agents(mut events: Vec<Value>) -> Vec<Value> {
    for (i, e) in events.iter_mut().enumerate() {
        if i % 3 == 0 {
            let conf = if i % 9 == 0 { " [Conformance]" } else { "" };
            e["userAgent"] = json!(format!(
                "e2e.test/v1.36.0 (linux/amd64) kubernetes/abc -- [sig-test] corpus test {}{conf}",
                i % 5
            ));
        }
    }
    events
}

/// The webhook's batch: an `audit.k8s.io/v1` `EventList`.
pub fn event_list(items: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": items,
    }))
    .unwrap()
}

/// The events as an audit log file (JSON lines).
pub fn json_lines(events: &[Value]) -> String {
    let mut s = String::new();
    for e in events {
        s.push_str(&serde_json::to_string(e).unwrap());
        s.push('\n');
    }
    s
}
