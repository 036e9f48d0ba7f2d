//! Checks Kubernetes objects against the API server's OpenAPI v2 document
//! the way `kubectl apply --validate=strict` and the API server's strict
//! field validation do, without a cluster: the definition comes from the
//! object's apiVersion and kind (`x-kubernetes-group-version-kind`), and
//! the object is walked against it, following `$ref`s.
//!
//! What is an error: a field the schema does not have (strict validation
//! rejects unknown fields), a value of the wrong type (int-or-string and
//! quantities accept a number or a string, as the API server does), a
//! required field missing, an int32 out of range, `byte` data that is not
//! base64, and an apiVersion/kind the document does not know.
//!
//! Test code: it serves the deploy/ checks; the document is trusted input
//! (the corpus's swagger.json), the objects are not.

use std::collections::HashMap;
use std::fmt;

use serde_json::Value;

/// `$ref` chains longer than this are a loop in the document.
const MAX_REF_HOPS: usize = 32;
/// Objects nested deeper than this are refused rather than walked.
const MAX_DEPTH: usize = 64;

/// One thing wrong with one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where in the object, as `spec.template.spec.containers[0].image`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(root)"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

/// The definitions of one OpenAPI v2 document, indexed by group/version/kind.
pub struct Schema {
    definitions: serde_json::Map<String, Value>,
    by_gvk: HashMap<(String, String, String), String>,
}

impl Schema {
    /// Reads a swagger.json (Kubernetes' `api/openapi-spec/swagger.json`).
    pub fn from_file(path: &std::path::Path) -> Result<Schema, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let doc: Value =
            serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Schema::from_document(doc).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn from_document(doc: Value) -> Result<Schema, String> {
        let Some(Value::Object(definitions)) = doc.get("definitions").cloned() else {
            return Err("no `definitions` object (not an OpenAPI v2 document?)".into());
        };
        let mut by_gvk = HashMap::new();
        for (name, def) in &definitions {
            let Some(gvks) = def
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array)
            else {
                continue;
            };
            for gvk in gvks {
                let part = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                // The same kind appears under several definitions only for
                // meta types (DeleteOptions, WatchEvent); keep the first.
                by_gvk
                    .entry((part("group"), part("version"), part("kind")))
                    .or_insert_with(|| name.clone());
            }
        }
        Ok(Schema {
            definitions,
            by_gvk,
        })
    }

    /// The definition's name for an apiVersion (`apps/v1`, `v1`) and kind.
    pub fn definition_for(&self, api_version: &str, kind: &str) -> Option<&str> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        self.by_gvk
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }

    /// Every violation in `object`, a whole Kubernetes object.
    pub fn check_object(&self, object: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        let str_field = |k: &str| object.get(k).and_then(Value::as_str);
        let (Some(api_version), Some(kind)) = (str_field("apiVersion"), str_field("kind")) else {
            out.push(Violation {
                path: String::new(),
                message: "apiVersion and kind must be strings".into(),
            });
            return out;
        };
        let Some(def) = self.definition_for(api_version, kind) else {
            out.push(Violation {
                path: String::new(),
                message: format!("no definition for apiVersion {api_version:?} kind {kind:?}"),
            });
            return out;
        };
        let schema = Value::String(format!("#/definitions/{def}"));
        let schema = serde_json::json!({ "$ref": schema });
        self.walk(object, &schema, String::new(), 0, &mut out);
        // Not in the schema's `required`, but the API server refuses an
        // object without a name (kustomize's generators always set one).
        if object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_none()
        {
            out.push(Violation {
                path: "metadata.name".into(),
                message: "required field is missing".into(),
            });
        }
        out
    }

    /// Follows `$ref`s to the schema itself; `None` with a violation if a
    /// reference does not resolve.
    fn resolve<'a>(
        &'a self,
        mut schema: &'a Value,
        path: &str,
        out: &mut Vec<Violation>,
    ) -> Option<(&'a Value, Option<&'a str>)> {
        let mut name = None;
        for _ in 0..MAX_REF_HOPS {
            let Some(r) = schema.get("$ref").and_then(Value::as_str) else {
                return Some((schema, name));
            };
            let Some(def) = r
                .strip_prefix("#/definitions/")
                .and_then(|n| self.definitions.get_key_value(n))
            else {
                out.push(Violation {
                    path: path.to_string(),
                    message: format!("schema reference {r:?} does not resolve"),
                });
                return None;
            };
            name = Some(def.0.as_str());
            schema = def.1;
        }
        out.push(Violation {
            path: path.to_string(),
            message: "schema references loop".into(),
        });
        None
    }

    fn walk(
        &self,
        value: &Value,
        schema: &Value,
        path: String,
        depth: usize,
        out: &mut Vec<Violation>,
    ) {
        let Some((schema, def_name)) = self.resolve(schema, &path, out) else {
            return;
        };
        if depth > MAX_DEPTH {
            out.push(Violation {
                path,
                message: format!("nested deeper than {MAX_DEPTH} levels"),
            });
            return;
        }
        // `null` is what an absent optional field looks like in YAML.
        if value.is_null() {
            return;
        }
        let bad = |want: &str, out: &mut Vec<Violation>| {
            out.push(Violation {
                path: path.clone(),
                message: format!("expected {want}, found {}", type_name(value)),
            })
        };
        let is_quantity = def_name.is_some_and(|n| n.ends_with(".api.resource.Quantity"));
        let format = schema.get("format").and_then(Value::as_str);
        let has_properties = schema.get("properties").is_some();
        let ty = schema
            .get("type")
            .and_then(Value::as_str)
            .or(has_properties.then_some("object"));
        match ty {
            // A schema without a type accepts anything (e.g. JSONSchemaProps).
            None => {}
            Some("string") if is_quantity || format == Some("int-or-string") => {
                let ok = value.is_string() || value.as_i64().is_some() || value.is_f64();
                if !ok {
                    bad(
                        if is_quantity {
                            "a quantity (string or number)"
                        } else {
                            "an integer or a string"
                        },
                        out,
                    );
                } else if let (true, Some(s)) = (is_quantity, value.as_str())
                    && !is_quantity_text(s)
                {
                    out.push(Violation {
                        path,
                        message: format!("{s:?} is not a quantity (e.g. 100m, 128Mi, 2)"),
                    });
                }
            }
            Some("string") => match value.as_str() {
                None => bad("a string", out),
                Some(s) if format == Some("byte") && !is_base64(s) => out.push(Violation {
                    path,
                    message: "expected base64 data".into(),
                }),
                Some(_) => {}
            },
            Some("integer") => match value.as_i64() {
                None => bad("an integer", out),
                Some(i) if format == Some("int32") && i32::try_from(i).is_err() => {
                    out.push(Violation {
                        path,
                        message: format!("{i} does not fit in int32"),
                    })
                }
                Some(_) => {}
            },
            Some("number") if !value.is_number() => bad("a number", out),
            Some("boolean") if !value.is_boolean() => bad("a boolean", out),
            Some("number" | "boolean") => {}
            Some("array") => {
                let Some(items) = value.as_array() else {
                    return bad("an array", out);
                };
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.walk(item, item_schema, format!("{path}[{i}]"), depth + 1, out);
                    }
                }
            }
            Some("object") => {
                let Some(map) = value.as_object() else {
                    return bad("an object", out);
                };
                self.walk_object(map, schema, &path, depth, out);
            }
            Some(other) => out.push(Violation {
                path,
                message: format!("the schema has a type this checker does not know: {other}"),
            }),
        }
    }

    fn walk_object(
        &self,
        map: &serde_json::Map<String, Value>,
        schema: &Value,
        path: &str,
        depth: usize,
        out: &mut Vec<Violation>,
    ) {
        let join = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for key in required.iter().filter_map(Value::as_str) {
                if map.get(key).is_none_or(Value::is_null) {
                    out.push(Violation {
                        path: join(key),
                        message: "required field is missing".into(),
                    });
                }
            }
        }
        match (properties, additional) {
            (Some(props), _) => {
                for (key, v) in map {
                    match props.get(key) {
                        Some(s) => self.walk(v, s, join(key), depth + 1, out),
                        None => out.push(Violation {
                            path: join(key),
                            message: format!(
                                "unknown field (known: {})",
                                props
                                    .keys()
                                    .map(String::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        }),
                    }
                }
            }
            // A map: labels, annotations, nodeSelector, resources.limits.
            (None, Some(s)) if s.is_object() => {
                for (key, v) in map {
                    self.walk(v, s, join(key), depth + 1, out);
                }
            }
            // A free-form object (RawExtension, FieldsV1): anything goes.
            _ => {}
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Kubernetes' quantity grammar: a signed decimal number, an optional
/// exponent or one binary/decimal suffix (`Ki`…`Ei`, `n u m k M G T P E`).
fn is_quantity_text(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number.matches('.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    let suffix_ok = matches!(
        suffix,
        "" | "Ki"
            | "Mi"
            | "Gi"
            | "Ti"
            | "Pi"
            | "Ei"
            | "n"
            | "u"
            | "m"
            | "k"
            | "M"
            | "G"
            | "T"
            | "P"
            | "E"
    ) || suffix
        .strip_prefix(['e', 'E'])
        .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e))
        .is_some_and(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()));
    number_ok && suffix_ok
}

/// Standard base64 with padding, as a Secret's `data` values must be.
/// Line breaks are skipped, as Go's decoder (the API server's) does:
/// kustomize wraps long values at 76 columns.
fn is_base64(s: &str) -> bool {
    let joined: String = s.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
    base64::Engine::decode(&base64::engine::general_purpose::STANDARD, joined).is_ok()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn quantities() {
        for ok in ["100m", "128Mi", "2", "1.5", "1e3", "0.5Gi", "+1k"] {
            assert!(is_quantity_text(ok), "{ok}");
        }
        for bad in ["", "Mi", "1MB", "1.2.3", "one", "1e"] {
            assert!(!is_quantity_text(bad), "{bad}");
        }
    }

    #[test]
    fn base64() {
        assert!(is_base64("cHJvdmE="));
        assert!(is_base64(""));
        assert!(!is_base64("prova"));
        assert!(!is_base64("cHJv dmE="));
        assert!(is_base64("cHJv\ndmE="), "wrapped, as kustomize writes it");
    }
}
