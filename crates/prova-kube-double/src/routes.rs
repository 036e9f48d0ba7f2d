//! The URL table: which handler serves which path and verb.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{MethodRouter, get};

use crate::rest::{self, Part};
use crate::store::{Kind, Shared};
use crate::wire::{list_or_watch, not_found, parse_query, record};
use crate::{events, exec, jobs, logs, namespaces, statefulsets};

type S = State<Arc<Shared>>;

/// GET of a collection in one namespace: a list or, with `watch=true`, a watch.
fn list_in_ns(kind: Kind) -> MethodRouter<Arc<Shared>> {
    get(
        move |State(s): S, UrlPath(ns): UrlPath<String>, RawQuery(q): RawQuery| async move {
            list_or_watch(s, kind, Some(ns), parse_query(q.as_deref())).await
        },
    )
}

/// GET of a collection across namespaces (or of a cluster-scoped kind).
fn list_all(kind: Kind) -> MethodRouter<Arc<Shared>> {
    get(move |State(s): S, RawQuery(q): RawQuery| async move {
        list_or_watch(s, kind, None, parse_query(q.as_deref())).await
    })
}

/// GET, PUT and PATCH of a namespaced object (`Part::Main`) or of its
/// `/status` subresource.
fn object(kind: Kind, part: Part) -> MethodRouter<Arc<Shared>> {
    get(
        move |State(s): S, UrlPath((ns, name)): UrlPath<(String, String)>| async move {
            rest::get(&s, kind, &ns, &name)
        },
    )
    .put(
        move |State(s): S, UrlPath((ns, name)): UrlPath<(String, String)>, body: Bytes| async move {
            rest::replace(&s, kind, &ns, &name, &body, part)
        },
    )
    .patch(
        move |State(s): S,
              UrlPath((ns, name)): UrlPath<(String, String)>,
              headers: HeaderMap,
              body: Bytes| async move {
            rest::patch(&s, kind, &ns, &name, &headers, &body, part)
        },
    )
}

/// DELETE of a namespaced object; owned pods go too unless the request
/// says `Orphan`.
fn delete_object(kind: Kind) -> MethodRouter<Arc<Shared>> {
    axum::routing::delete(
        move |State(s): S,
              UrlPath((ns, name)): UrlPath<(String, String)>,
              RawQuery(q): RawQuery,
              body: Bytes| async move {
            let q = parse_query(q.as_deref());
            let body: serde_json::Value =
                serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            let orphan = body["propagationPolicy"] == "Orphan"
                || crate::wire::q1(&q, "propagationPolicy") == Some("Orphan");
            let found = if kind == Kind::Pod {
                s.get(Kind::Pod, &ns, &name)
                    .inspect(|p| rest::delete_pod(&s, p.clone()))
            } else {
                rest::delete_now(&s, kind, &ns, &name, orphan)
            };
            match found {
                Some(o) => axum::response::IntoResponse::into_response(axum::Json(o)),
                None => crate::wire::not_found_object(kind, &name),
            }
        },
    )
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let core = "/api/v1/namespaces/{ns}";
    let batch = "/apis/batch/v1/namespaces/{ns}";
    let apps = "/apis/apps/v1/namespaces/{ns}";
    Router::new()
        // Namespaces (cluster-scoped).
        .route(
            "/api/v1/namespaces",
            list_all(Kind::Namespace).post(namespaces::create_namespace),
        )
        .route(
            "/api/v1/namespaces/{name}",
            get(|State(s): S, UrlPath(name): UrlPath<String>| async move {
                rest::get(&s, Kind::Namespace, "", &name)
            })
            .delete(namespaces::delete_namespace),
        )
        // ServiceAccounts.
        .route(
            &format!("{core}/serviceaccounts"),
            list_in_ns(Kind::ServiceAccount).post(
                |State(s): S, UrlPath(ns): UrlPath<String>, body: Bytes| async move {
                    match rest::create(&s, Kind::ServiceAccount, &ns, &body, |_| {}) {
                        Ok(o) => axum::response::IntoResponse::into_response((
                            axum::http::StatusCode::CREATED,
                            axum::Json(o),
                        )),
                        Err(r) => r,
                    }
                },
            ),
        )
        .route(
            &format!("{core}/serviceaccounts/{{name}}"),
            object(Kind::ServiceAccount, Part::Main).merge(delete_object(Kind::ServiceAccount)),
        )
        // Pods, their logs and exec.
        .route(&format!("{core}/pods"), list_in_ns(Kind::Pod))
        .route("/api/v1/pods", list_all(Kind::Pod))
        .route(
            &format!("{core}/pods/{{name}}"),
            object(Kind::Pod, Part::Main).merge(delete_object(Kind::Pod)),
        )
        .route(&format!("{core}/pods/{{name}}/log"), get(logs::pod_log))
        .route(
            &format!("{core}/pods/{{name}}/exec"),
            get(exec::pod_exec).post(exec::pod_exec),
        )
        .route(&format!("{core}/events"), get(events::list_events))
        // batch/v1 Jobs.
        .route(
            &format!("{batch}/jobs"),
            list_in_ns(Kind::Job).post(jobs::create_job),
        )
        .route("/apis/batch/v1/jobs", list_all(Kind::Job))
        .route(
            &format!("{batch}/jobs/{{name}}"),
            object(Kind::Job, Part::Main).delete(jobs::delete_job),
        )
        .route(
            &format!("{batch}/jobs/{{name}}/status"),
            object(Kind::Job, Part::Status),
        )
        // apps/v1 StatefulSets.
        .route(
            &format!("{apps}/statefulsets"),
            list_in_ns(Kind::StatefulSet).post(statefulsets::create),
        )
        .route("/apis/apps/v1/statefulsets", list_all(Kind::StatefulSet))
        .route(
            &format!("{apps}/statefulsets/{{name}}"),
            object(Kind::StatefulSet, Part::Main).merge(delete_object(Kind::StatefulSet)),
        )
        .route(
            &format!("{apps}/statefulsets/{{name}}/status"),
            object(Kind::StatefulSet, Part::Status),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), record))
        .with_state(shared)
}
