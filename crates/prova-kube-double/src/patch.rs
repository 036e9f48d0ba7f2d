//! The three patch types of `PATCH` requests, applied to a stored object:
//! JSON merge patch (RFC 7396) and JSON patch (RFC 6902) by the json-patch
//! crate, and Kubernetes' strategic merge patch, written here because no
//! Rust crate implements it.
//!
//! The strategic merge covers what the built-in types' patch strategies
//! say for the fields the double serves: maps merge recursively and `null`
//! deletes a key; lists with a patch merge key merge item by item on that
//! key (`conditions` by `type`, as `JobStatus`, `StatefulSetStatus` and
//! `PodStatus` declare; `containers`, `initContainers`, `env`, `volumes`
//! and `ports`… by their keys; `ownerReferences` by `uid`); `finalizers`
//! merge as a set; every other list is replaced. Directives:
//! `$patch: replace` (a map or list item replaces instead of merging),
//! `$patch: delete` (a list item, by key, or a map is removed) and
//! `$retainKeys` (ignored, as no field here uses it).

use serde_json::{Map, Value};

/// Deepest nesting a strategic merge follows; patches are small objects,
/// so this only bounds a hostile request.
const MAX_DEPTH: usize = 64;

/// The content types of `PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchType {
    Merge,
    Json,
    StrategicMerge,
}

impl PatchType {
    /// From a `Content-Type` header; `None` for an unsupported type.
    pub(crate) fn from_content_type(ct: &str) -> Option<PatchType> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            _ => None,
        }
    }
}

/// Why a patch could not be applied; `code` is the API server's answer.
#[derive(Debug)]
pub(crate) struct PatchError {
    pub(crate) code: u16,
    pub(crate) message: String,
}

fn bad_request(message: String) -> PatchError {
    PatchError { code: 400, message }
}

/// Applies `body` (the request's bytes) of `kind` to `doc`.
pub(crate) fn apply(kind: PatchType, doc: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("error decoding patch: {e}")))?;
    let mut out = doc.clone();
    match kind {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(bad_request("a merge patch must be a JSON object".into()));
            }
            json_patch::merge(&mut out, &patch);
        }
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| bad_request(format!("error decoding JSON patch: {e}")))?;
            // The API server answers 422 when a well-formed patch cannot apply.
            json_patch::patch(&mut out, &ops).map_err(|e| PatchError {
                code: 422,
                message: e.to_string(),
            })?;
        }
        PatchType::StrategicMerge => {
            let Value::Object(p) = patch else {
                return Err(bad_request(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            };
            out = strategic_merge_map(&out, &p, 0)?;
        }
    }
    Ok(out)
}

/// The patch merge key of a list field, by its name.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "conditions" => "type",
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "ownerReferences" => "uid",
        "tolerations" => "key",
        _ => return None,
    })
}

fn strategic_merge_map(
    doc: &Value,
    patch: &Map<String, Value>,
    depth: usize,
) -> Result<Value, PatchError> {
    if depth > MAX_DEPTH {
        return Err(bad_request(format!(
            "strategic merge patch nested deeper than {MAX_DEPTH}"
        )));
    }
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut p = patch.clone();
            p.remove("$patch");
            return Ok(Value::Object(p));
        }
        Some("delete") => return Ok(Value::Null),
        Some(other) => {
            return Err(bad_request(format!("unknown patch directive {other:?}")));
        }
        None => {}
    }
    let mut out = match doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for (k, pv) in patch {
        if k.starts_with('$') {
            continue;
        }
        if pv.is_null() {
            out.remove(k);
            continue;
        }
        let current = out.get(k).cloned().unwrap_or(Value::Null);
        let merged = match pv {
            Value::Object(pm) => strategic_merge_map(&current, pm, depth + 1)?,
            Value::Array(items) => merge_list(k, &current, items, depth + 1)?,
            scalar => scalar.clone(),
        };
        if merged.is_null() {
            out.remove(k);
        } else {
            out.insert(k.clone(), merged);
        }
    }
    Ok(Value::Object(out))
}

fn merge_list(
    field: &str,
    current: &Value,
    items: &[Value],
    depth: usize,
) -> Result<Value, PatchError> {
    let existing = current.as_array().cloned().unwrap_or_default();
    if field == "finalizers" {
        let mut out = existing;
        for i in items {
            if !out.contains(i) {
                out.push(i.clone());
            }
        }
        return Ok(Value::Array(out));
    }
    let Some(key) = merge_key(field) else {
        return Ok(Value::Array(items.to_vec()));
    };
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        let kept = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return Ok(Value::Array(kept));
    }
    let mut out = existing;
    for item in items {
        let Some(obj) = item.as_object() else {
            return Err(bad_request(format!(
                "{field}: items must be objects with the merge key {key:?}"
            )));
        };
        let Some(id) = obj.get(key) else {
            return Err(bad_request(format!(
                "{field}: an item has no merge key {key:?}"
            )));
        };
        let pos = out.iter().position(|e| e.get(key) == Some(id));
        let delete = obj.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(p), true) => {
                out.remove(p);
            }
            (None, true) => {}
            (Some(p), false) => out[p] = strategic_merge_map(&out[p], obj, depth)?,
            (None, false) => out.push(strategic_merge_map(&Value::Null, obj, depth)?),
        }
    }
    Ok(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(doc: Value, patch: Value) -> Value {
        apply(
            PatchType::StrategicMerge,
            &doc,
            patch.to_string().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn strategic_merge_merges_conditions_by_type() {
        let doc = json!({"status": {"replicas": 1, "conditions": [
            {"type": "A", "status": "True"}, {"type": "B", "status": "False"}
        ]}});
        let out = smp(
            doc,
            json!({"status": {"conditions": [
                {"type": "B", "status": "True", "reason": "R"}, {"type": "C", "status": "True"}
            ]}}),
        );
        assert_eq!(
            out,
            json!({"status": {"replicas": 1, "conditions": [
                {"type": "A", "status": "True"},
                {"type": "B", "status": "True", "reason": "R"},
                {"type": "C", "status": "True"}
            ]}})
        );
    }

    #[test]
    fn merge_patch_replaces_lists_where_strategic_merges_them() {
        let doc = json!({"status": {"conditions": [{"type": "A", "status": "True"}]}});
        let patch = json!({"status": {"conditions": [{"type": "B", "status": "True"}]}});
        let merged = apply(PatchType::Merge, &doc, patch.to_string().as_bytes()).unwrap();
        assert_eq!(merged["status"]["conditions"].as_array().unwrap().len(), 1);
        assert_eq!(
            smp(doc, patch)["status"]["conditions"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn strategic_directives_delete_and_replace() {
        let doc = json!({"status": {"conditions": [{"type": "A"}, {"type": "B"}]},
                         "metadata": {"labels": {"x": "1", "y": "2"}, "finalizers": ["f"]}});
        let out = smp(
            doc,
            json!({"status": {"conditions": [{"type": "A", "$patch": "delete"}]},
                   "metadata": {"labels": {"x": null}, "finalizers": ["g", "f"]}}),
        );
        assert_eq!(out["status"]["conditions"], json!([{"type": "B"}]));
        assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
        assert_eq!(out["metadata"]["finalizers"], json!(["f", "g"]));
        let out = smp(
            out,
            json!({"metadata": {"labels": {"z": "3", "$patch": "replace"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"z": "3"}));
    }

    #[test]
    fn json_patch_applies_and_a_failed_test_is_422() {
        let doc = json!({"status": {"conditions": []}});
        let ok = apply(
            PatchType::Json,
            &doc,
            br#"[{"op":"add","path":"/status/conditions/-","value":{"type":"X"}}]"#,
        )
        .unwrap();
        assert_eq!(ok["status"]["conditions"][0]["type"], "X");
        let err = apply(
            PatchType::Json,
            &doc,
            br#"[{"op":"test","path":"/status/conditions","value":[1]}]"#,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert_eq!(apply(PatchType::Json, &doc, b"{").unwrap_err().code, 400);
    }

    #[test]
    fn a_patch_deeper_than_the_bound_is_refused() {
        let mut p = json!("x");
        for _ in 0..100 {
            p = json!({ "a": p });
        }
        let err = apply(
            PatchType::StrategicMerge,
            &json!({}),
            p.to_string().as_bytes(),
        )
        .unwrap_err();
        assert_eq!(err.code, 400, "{}", err.message);
    }
}
