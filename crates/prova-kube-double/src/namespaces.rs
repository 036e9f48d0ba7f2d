//! Namespaces and ServiceAccounts: creation (the ServiceAccount controller
//! adds `default` to a new namespace shortly after), and deletion as the
//! namespace controller does it: the namespace turns `Terminating` (new
//! content is refused), its contents are deleted, then it goes.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::rest;
use crate::store::{Kind, Shared, now};
use crate::wire::{not_found_object, status_body};

/// How long the ServiceAccount controller takes to add `default`, and the
/// namespace controller to start emptying a deleted namespace.
const CONTROLLER_DELAY: Duration = Duration::from_millis(30);

/// Kinds a namespace holds, in the order its deletion removes them
/// (controllers first, so they do not make new pods).
const CONTENTS: &[Kind] = &[
    Kind::Job,
    Kind::StatefulSet,
    Kind::Pod,
    Kind::ServiceAccount,
    Kind::Event,
];

fn namespace_defaults(ns: &mut Value) {
    let name = ns["metadata"]["name"].clone();
    ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    ns["spec"] = json!({"finalizers": ["kubernetes"]});
    ns["status"] = json!({"phase": "Active"});
}

/// Creates namespace `name` and its `default` ServiceAccount at once.
pub(crate) fn create_now(s: &Shared, name: &str) {
    let body = json!({"metadata": {"name": name}}).to_string();
    if rest::create(s, Kind::Namespace, "", body.as_bytes(), namespace_defaults).is_ok() {
        create_service_account(s, name, "default");
    }
}

pub(crate) fn create_service_account(s: &Shared, ns: &str, name: &str) {
    let body = json!({"metadata": {"name": name}}).to_string();
    let _ = rest::create(s, Kind::ServiceAccount, ns, body.as_bytes(), |_| {});
}

/// Whether the Job controller can make a pod that runs as `name`:
/// `default` counts as existing even in a namespace the double was never
/// told about (prova-k8s's tests run Jobs in namespaces as given).
pub(crate) fn service_account_exists(s: &Shared, ns: &str, name: &str) -> bool {
    name == "default" || s.get(Kind::ServiceAccount, ns, name).is_some()
}

pub(crate) async fn create_namespace(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let ns = match rest::create(&s, Kind::Namespace, "", &body, namespace_defaults) {
        Ok(ns) => ns,
        Err(r) => return r,
    };
    let name = ns["metadata"]["name"].as_str().unwrap_or("").to_string();
    let s2 = s.clone();
    tokio::spawn(async move {
        tokio::time::sleep(CONTROLLER_DELAY).await;
        if s2
            .get(Kind::Namespace, "", &name)
            .is_some_and(|n| n["status"]["phase"] == "Active")
        {
            create_service_account(&s2, &name, "default");
        }
    });
    (StatusCode::CREATED, axum::Json(ns)).into_response()
}

pub(crate) async fn delete_namespace(
    State(s): State<Arc<Shared>>,
    UrlPath(name): UrlPath<String>,
) -> Response {
    let Some(ns) = s.get(Kind::Namespace, "", &name) else {
        return not_found_object(Kind::Namespace, &name);
    };
    if ns["status"]["phase"] == "Terminating" {
        return status_body(
            409,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on namespaces \"{name}\": The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system."
            ),
        );
    }
    let mut ns = ns;
    ns["metadata"]["deletionTimestamp"] = json!(now());
    ns["status"]["phase"] = json!("Terminating");
    let ns = s.put(Kind::Namespace, "MODIFIED", ns);
    let s2 = s.clone();
    tokio::spawn(async move {
        tokio::time::sleep(CONTROLLER_DELAY).await;
        empty_and_remove(&s2, &name);
    });
    axum::Json(ns).into_response()
}

/// The namespace controller's work: delete every object in the namespace,
/// then the namespace.
fn empty_and_remove(s: &Shared, name: &str) {
    for &kind in CONTENTS {
        let objects: Vec<Value> = s
            .inner
            .lock()
            .unwrap()
            .all(kind)
            .filter(|o| o["metadata"]["namespace"] == name)
            .cloned()
            .collect();
        for o in objects {
            if kind == Kind::Pod {
                rest::delete_pod(s, o);
            } else {
                let n = o["metadata"]["name"].as_str().unwrap_or("");
                rest::delete_now(s, kind, name, n, true);
            }
        }
    }
    if let Some(ns) = s.get(Kind::Namespace, "", name) {
        s.put(Kind::Namespace, "DELETED", ns);
    }
}
