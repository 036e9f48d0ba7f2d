//! The API server's generic REST verbs for any stored kind: get, create,
//! replace (PUT), patch and delete of an object, and its `/status`
//! subresource.
//!
//! As the API server's registry strategies do: a write to the main
//! resource keeps the stored `status`, a write to `/status` keeps the
//! stored `spec` (metadata such as annotations may change through both);
//! `metadata.generation` rises when the spec changes; a write that changes
//! nothing keeps the resourceVersion; a `resourceVersion` in the body that
//! is not the stored one is a 409 Conflict, in a PUT and in a patch alike.

// The error of a request is its HTTP answer, returned as is.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::patch::{self, PatchType};
use crate::store::{Kind, Shared, now, rand_u48};
use crate::wire::{not_found_object, status_body, status_with_details};

/// Which part of an object a write targets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Main,
    Status,
}

pub(crate) fn get(s: &Shared, kind: Kind, ns: &str, name: &str) -> Response {
    match s.get(kind, ns, name) {
        Some(o) => axum::Json(o).into_response(),
        None => not_found_object(kind, name),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(status_body(
            400,
            "BadRequest",
            "the body must be a JSON object",
        )),
        Err(e) => Err(status_body(
            400,
            "BadRequest",
            &format!("error decoding the request body: {e}"),
        )),
    }
}

/// Whether objects may be created in namespace `ns` now: 404 when it does
/// not exist, 403 while it terminates, as the NamespaceLifecycle admission.
pub(crate) fn check_namespace(s: &Shared, ns: &str) -> Result<(), Response> {
    match s.get(Kind::Namespace, "", ns) {
        None => Err(not_found_object(Kind::Namespace, ns)),
        Some(n) if n["status"]["phase"] == "Terminating" => Err(status_body(
            403,
            "Forbidden",
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// Creates an object from a request body: names it (`generateName`),
/// fills the metadata the API server owns, applies `defaults`, stores it.
/// `ns` is "" for a cluster-scoped kind. Returns the stored object.
pub(crate) fn create(
    s: &Shared,
    kind: Kind,
    ns: &str,
    body: &[u8],
    defaults: impl FnOnce(&mut Value),
) -> Result<Value, Response> {
    let mut obj = parse_body(body)?;
    if kind != Kind::Namespace {
        check_namespace(s, ns)?;
    }
    let name = match (
        obj["metadata"]["name"].as_str(),
        obj["metadata"]["generateName"].as_str(),
    ) {
        (Some(n), _) if !n.is_empty() => n.to_string(),
        (_, Some(g)) if !g.is_empty() => format!("{g}{}", suffix()),
        _ => {
            return Err(status_body(
                422,
                "Invalid",
                &format!(
                    "{} is invalid: metadata.name: Required value: name or generateName is required",
                    kind.type_meta().0
                ),
            ));
        }
    };
    if s.get(kind, ns, &name).is_some() {
        let resource = kind.resource();
        let (res, group) = resource.split_once('.').unwrap_or((resource, ""));
        return Err(status_with_details(
            409,
            "AlreadyExists",
            &format!("{resource} \"{name}\" already exists"),
            json!({"name": name, "group": group, "kind": res}),
        ));
    }
    let (kind_name, api_version) = kind.type_meta();
    obj["kind"] = json!(kind_name);
    obj["apiVersion"] = json!(api_version);
    let m = &mut obj["metadata"];
    m["name"] = json!(name);
    if !ns.is_empty() {
        m["namespace"] = json!(ns);
    }
    m["uid"] = json!(uid());
    m["creationTimestamp"] = json!(now());
    if matches!(kind, Kind::Job | Kind::StatefulSet) {
        m["generation"] = json!(1);
    }
    if let Some(meta) = m.as_object_mut() {
        meta.remove("resourceVersion");
        meta.remove("deletionTimestamp");
    }
    defaults(&mut obj);
    Ok(s.put(kind, "ADDED", obj))
}

/// A fresh object uid.
pub(crate) fn uid() -> String {
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        rand_u48() & 0xffff_ffff,
        rand_u48() & 0xffff,
        rand_u48() & 0xfff,
        rand_u48() & 0xfff,
        rand_u48()
    )
}

/// The five-character suffix of `generateName` (the API server's alphabet:
/// no vowels, no look-alikes).
pub(crate) fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut n = rand_u48().wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

fn conflict(kind: Kind, name: &str) -> Response {
    let resource = kind.resource();
    let (res, group) = resource.split_once('.').unwrap_or((resource, ""));
    status_with_details(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
        json!({"name": name, "group": group, "kind": res}),
    )
}

/// Stores `new` as the next version of `old` (both whole objects), as a
/// write to `part`; see the module docs for the rules.
fn write(s: &Shared, kind: Kind, old: &Value, mut new: Value, part: Part) -> Response {
    let name = old["metadata"]["name"].as_str().unwrap_or("").to_string();
    let old_rv = &old["metadata"]["resourceVersion"];
    match new["metadata"]["resourceVersion"].as_str() {
        Some(rv) if !rv.is_empty() && Some(rv) != old_rv.as_str() => return conflict(kind, &name),
        _ => {}
    }
    if let Some(n) = new["metadata"]["name"].as_str()
        && n != name
    {
        return status_body(
            400,
            "BadRequest",
            &format!("the name of the object ({n}) does not match the name on the URL ({name})"),
        );
    }
    let (kind_name, api_version) = kind.type_meta();
    new["kind"] = json!(kind_name);
    new["apiVersion"] = json!(api_version);
    // What a client cannot change.
    for field in [
        "uid",
        "creationTimestamp",
        "namespace",
        "name",
        "deletionTimestamp",
    ] {
        match old["metadata"].get(field) {
            Some(v) => new["metadata"][field] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    let kept = match part {
        Part::Main => "status",
        Part::Status => "spec",
    };
    match old.get(kept) {
        Some(v) => new[kept] = v.clone(),
        None => {
            if let Some(m) = new.as_object_mut() {
                m.remove(kept);
            }
        }
    }
    let generation = old["metadata"]["generation"].as_i64();
    if let Some(g) = generation {
        let bumped = part == Part::Main && new.get("spec") != old.get("spec");
        new["metadata"]["generation"] = json!(if bumped { g + 1 } else { g });
    }
    new["metadata"]["resourceVersion"] = old_rv.clone();
    if &new == old {
        return axum::Json(new).into_response();
    }
    let stored = s.put(kind, "MODIFIED", new);
    axum::Json(stored).into_response()
}

/// PUT of an object or its `/status`.
pub(crate) fn replace(
    s: &Shared,
    kind: Kind,
    ns: &str,
    name: &str,
    body: &[u8],
    part: Part,
) -> Response {
    let new = match parse_body(body) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(old) = s.get(kind, ns, name) else {
        return not_found_object(kind, name);
    };
    write(s, kind, &old, new, part)
}

/// PATCH of an object or its `/status`, by the request's content type.
pub(crate) fn patch(
    s: &Shared,
    kind: Kind,
    ns: &str,
    name: &str,
    headers: &HeaderMap,
    body: &Bytes,
    part: Part,
) -> Response {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(patch_type) = PatchType::from_content_type(ct) else {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            [("content-type", "application/json")],
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {ct:?})"),
                "reason": "UnsupportedMediaType", "code": 415
            })
            .to_string(),
        )
            .into_response();
    };
    let Some(old) = s.get(kind, ns, name) else {
        return not_found_object(kind, name);
    };
    match patch::apply(patch_type, &old, body) {
        Ok(new) => write(s, kind, &old, new, part),
        Err(e) => status_body(
            e.code,
            if e.code == 422 {
                "Invalid"
            } else {
                "BadRequest"
            },
            &e.message,
        ),
    }
}

/// Removes an object now and, unless `orphan`, the pods it owns (the
/// garbage collector's background propagation). Returns the object as
/// it was deleted.
pub(crate) fn delete_now(
    s: &Shared,
    kind: Kind,
    ns: &str,
    name: &str,
    orphan: bool,
) -> Option<Value> {
    let obj = s.get(kind, ns, name)?;
    s.stop_sim(ns, name);
    let obj = s.put(kind, "DELETED", obj);
    if !orphan {
        let uid = obj["metadata"]["uid"].clone();
        let owned: Vec<Value> = s
            .inner
            .lock()
            .unwrap()
            .all(Kind::Pod)
            .filter(|p| {
                p["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
            })
            .cloned()
            .collect();
        for p in owned {
            delete_pod(s, p);
        }
    }
    Some(obj)
}

/// Deletes a pod and stops what the kubelet runs for it.
pub(crate) fn delete_pod(s: &Shared, pod: Value) {
    let name = pod["metadata"]["name"].as_str().unwrap_or("").to_string();
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("")
        .to_string();
    if let Some(rt) = s.inner.lock().unwrap().pod_rt.get_mut(&name) {
        if let Some(stop) = rt.stop_wait.take() {
            let _ = stop.send(());
        }
        rt.log_done = true;
    }
    s.stop_sim(&ns, &name);
    s.put(Kind::Pod, "DELETED", pod);
}
