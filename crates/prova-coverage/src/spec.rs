//! OpenAPI v2 (swagger.json) → the list of Kubernetes API endpoints.
//!
//! Rules, as APISnoop's `load_open_api` applies them:
//!
//! * One endpoint per operation (`paths.<path>.<method>`) that has at least one
//!   tag; the endpoint name is its `operationId`. The path item's
//!   `parameters` entry is not an operation.
//! * `level`: `alpha` if the path contains `alpha`, else `beta` if it contains
//!   `beta`, else `beta` for the two ServiceAccountIssuer OpenID discovery
//!   operations (`getServiceAccountIssuerOpenIDConfiguration`,
//!   `getServiceAccountIssuerOpenIDKeyset`, not yet marked beta in their
//!   paths), else `stable`.
//! * `category`: the first tag up to its first `_` (`batch_v1` → `batch`).
//! * `group`/`version`/`kind` from `x-kubernetes-group-version-kind` (absent →
//!   `null`), `action` from `x-kubernetes-action`.
//! * `deprecated`: the description contains `deprecated`, in any case. All of
//!   these are the `watch*` operations; they are left out of coverage.
//!
//! Every operation (tagged or not, deprecated or not) also goes into the
//! [`Router`](crate::mapping::Router) used to map audit events, in spec order.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::mapping::{Method, Router};

/// Errors reading an OpenAPI spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read spec {path}: {source}")]
    Io {
        /// The spec file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a swagger document.
    #[error("{path}: not an OpenAPI v2 spec: {error}")]
    Parse {
        /// The spec file.
        path: String,
        /// The JSON error (with line and column; nesting is limited to 128
        /// levels by serde_json).
        error: serde_json::Error,
    },
}

/// Stability level of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Level {
    /// Path contains `alpha`.
    Alpha,
    /// Path contains `beta` (or OpenID discovery).
    Beta,
    /// Everything else.
    Stable,
}

impl Level {
    /// `alpha`, `beta` or `stable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Alpha => "alpha",
            Level::Beta => "beta",
            Level::Stable => "stable",
        }
    }

    /// All levels, stable first (APISnoop's `order by level desc`).
    pub const ALL: [Level; 3] = [Level::Stable, Level::Beta, Level::Alpha];
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two operations APISnoop forces to `beta`.
pub const OPENID_BETA: [&str; 2] = [
    "getServiceAccountIssuerOpenIDConfiguration",
    "getServiceAccountIssuerOpenIDKeyset",
];

/// One operation of the spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// The `operationId` (empty when the spec has none).
    pub endpoint: String,
    /// HTTP method.
    pub method: Method,
    /// The spec path, e.g. `/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status`.
    pub path: String,
    /// Stability level.
    pub level: Level,
    /// First tag up to its first `_`; `None` when the operation has no tags.
    pub category: Option<String>,
    /// `x-kubernetes-group-version-kind.group`.
    pub group: Option<String>,
    /// `x-kubernetes-group-version-kind.version`.
    pub version: Option<String>,
    /// `x-kubernetes-group-version-kind.kind`.
    pub kind: Option<String>,
    /// `x-kubernetes-action`.
    pub action: Option<String>,
    /// The operation's description.
    pub description: Option<String>,
    /// Description mentions "deprecated" (any case).
    pub deprecated: bool,
}

impl Operation {
    /// Counted in coverage: has tags (is an APISnoop endpoint) and is not deprecated.
    pub fn is_endpoint(&self) -> bool {
        self.category.is_some() && !self.deprecated
    }
}

/// A parsed spec: operations in spec order plus the router built from them.
#[derive(Debug)]
pub struct Spec {
    /// `info.version` of the spec (e.g. `unversioned` or `v1.36.0`).
    pub release: String,
    /// Where the spec was read from.
    pub source: String,
    /// Every operation, in spec order (paths in file order, then methods).
    pub operations: Vec<Operation>,
    /// Maps request paths to operations.
    pub router: Router,
}

impl Spec {
    /// Reads a swagger.json file.
    pub fn from_file(path: &Path) -> Result<Spec, SpecError> {
        let bytes = std::fs::read(path).map_err(|source| SpecError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Spec::from_slice(&bytes, &path.display().to_string())
    }

    /// Parses swagger JSON bytes; `source` names them in errors.
    pub fn from_slice(bytes: &[u8], source: &str) -> Result<Spec, SpecError> {
        let raw: RawSpec = serde_json::from_slice(bytes).map_err(|e| SpecError::Parse {
            path: source.to_string(),
            error: e,
        })?;
        let mut operations = Vec::new();
        let mut router = Router::default();
        for (path, item) in raw.paths.0 {
            for (key, value) in item.0 {
                let Some(method) = Method::from_spec_key(&key) else {
                    continue;
                };
                let op = operation(&path, method, &value);
                router.insert(&path, method, operations.len() as u32);
                operations.push(op);
            }
        }
        Ok(Spec {
            release: raw
                .info
                .and_then(|i| i.version)
                .unwrap_or_else(|| "unknown".into()),
            source: source.to_string(),
            operations,
            router,
        })
    }

    /// Indices of the operations counted in coverage (tagged, not deprecated).
    pub fn endpoint_indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.operations
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_endpoint())
            .map(|(i, _)| i)
    }

    /// The coverage endpoints (tagged, not deprecated), in spec order.
    pub fn endpoints(&self) -> Vec<&Operation> {
        self.operations.iter().filter(|o| o.is_endpoint()).collect()
    }

    /// Operation ids of all operations, for validating yaml lists.
    pub fn operation_ids(&self) -> HashSet<&str> {
        self.operations
            .iter()
            .map(|o| o.endpoint.as_str())
            .collect()
    }
}

fn level_of(path: &str, op_id: &str) -> Level {
    if path.contains("alpha") {
        Level::Alpha
    } else if path.contains("beta") || OPENID_BETA.contains(&op_id) {
        Level::Beta
    } else {
        Level::Stable
    }
}

fn operation(path: &str, method: Method, v: &serde_json::Value) -> Operation {
    let s = |key: &str| v.get(key).and_then(|x| x.as_str()).map(str::to_string);
    let gvk = v.get("x-kubernetes-group-version-kind");
    let g = |key: &str| {
        gvk.and_then(|x| x.get(key))
            .and_then(|x| x.as_str())
            .map(str::to_string)
    };
    let endpoint = s("operationId").unwrap_or_default();
    let description = s("description");
    let category = v
        .get("tags")
        .and_then(|t| t.as_array())
        .and_then(|t| t.first())
        .and_then(|t| t.as_str())
        .map(|t| t.split('_').next().unwrap_or_default().to_string());
    Operation {
        level: level_of(path, &endpoint),
        deprecated: description
            .as_deref()
            .is_some_and(|d| d.to_lowercase().contains("deprecated")),
        endpoint,
        method,
        path: path.to_string(),
        category,
        group: g("group"),
        version: g("version"),
        kind: g("kind"),
        action: s("x-kubernetes-action"),
        description,
    }
}

#[derive(Deserialize)]
struct RawSpec {
    #[serde(default)]
    info: Option<RawInfo>,
    paths: Ordered<Ordered<serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawInfo {
    #[serde(default)]
    version: Option<String>,
}

/// A JSON object read with its key order kept (serde_json's map sorts keys
/// unless the workspace-wide `preserve_order` feature is on).
struct Ordered<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level_of("/apis/x/v1alpha1/y", "a"), Level::Alpha);
        assert_eq!(level_of("/apis/x/v1beta1/y", "a"), Level::Beta);
        assert_eq!(level_of("/apis/x/v1alpha1beta/y", "a"), Level::Alpha);
        assert_eq!(
            level_of(
                "/.well-known/openid-configuration/",
                "getServiceAccountIssuerOpenIDConfiguration"
            ),
            Level::Beta
        );
        assert_eq!(
            level_of("/api/v1/pods", "listCoreV1PodForAllNamespaces"),
            Level::Stable
        );
    }

    #[test]
    fn small_spec() {
        let spec = br#"{"info":{"version":"v9"},"paths":{
          "/b/{x}":{"get":{"operationId":"getB","tags":["b_v1"],"description":"Deprecated thing"},
                    "parameters":[{"name":"x"}]},
          "/a/{y}":{"put":{"operationId":"putA","tags":["apps_v1"],
                    "x-kubernetes-action":"put",
                    "x-kubernetes-group-version-kind":{"group":"apps","version":"v1","kind":"A"}},
                    "get":{"operationId":"untagged"}}}}"#;
        let s = Spec::from_slice(spec, "t").unwrap();
        assert_eq!(s.release, "v9");
        let ids: Vec<_> = s.operations.iter().map(|o| o.endpoint.as_str()).collect();
        assert_eq!(ids, ["getB", "putA", "untagged"]);
        assert!(s.operations[0].deprecated);
        assert_eq!(s.operations[1].category.as_deref(), Some("apps"));
        assert_eq!(s.operations[1].kind.as_deref(), Some("A"));
        assert_eq!(s.operations[2].category, None);
        let eps: Vec<_> = s.endpoints().iter().map(|o| o.endpoint.clone()).collect();
        assert_eq!(eps, ["putA"]);
    }
}
