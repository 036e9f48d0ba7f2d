//! Conformance metadata: `conformance.yaml`, `ineligible_endpoints.yaml` and
//! `pending_eligible_endpoints.yaml` from kubernetes/kubernetes
//! `test/conformance/testdata/`.
//!
//! * `conformance.yaml`: list of `{testname, codename, description, release,
//!   file}`. A test seen in the audit log is a conformance test when its name
//!   equals a `codename` (APISnoop's join). Older logs carry the bracketed tags
//!   in another order (`[Serial] [Conformance]` in the middle); prova also
//!   matches a name whose text and set of `[tags]` are the same.
//!   `release` (`v1.29`, `v1.17, v1.21, v1.27`, `"1.25"`) becomes the
//!   promotion release `1.29.0` (the first listed).
//! * `ineligible_endpoints.yaml`: list of `{endpoint, reason, link}`; these
//!   stable endpoints are not eligible for conformance.
//! * `pending_eligible_endpoints.yaml`: a list of operation ids that are
//!   eligible but not yet required; reported separately.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use saphyr::{LoadableYamlNode, Yaml};

/// Errors reading a conformance yaml file.
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not YAML.
    #[error("{path}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// Parser message (with line and column).
        message: String,
    },
    /// YAML of the wrong shape.
    #[error("{path}: {message}")]
    Shape {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// A conformance test from conformance.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceTest {
    /// Human name (`testname`).
    pub testname: String,
    /// The test's full name as in the user agent (`codename`).
    pub codename: String,
    /// Go file of the test.
    pub file: Option<String>,
    /// Release it was promoted in, `1.29.0` form.
    pub promotion_release: Option<String>,
}

/// An ineligible endpoint and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ineligible {
    /// Why it cannot be conformance tested.
    pub reason: String,
    /// Issue link.
    pub link: String,
}

/// All conformance metadata (each part optional).
#[derive(Debug, Default, Clone)]
pub struct ConformanceData {
    tests: HashMap<String, usize>,
    normalized: HashMap<String, usize>,
    list: Vec<ConformanceTest>,
    /// Ineligible endpoints by operation id.
    pub ineligible: BTreeMap<String, Ineligible>,
    /// Pending-eligible operation ids.
    pub pending: BTreeSet<String>,
}

fn with_yaml<T>(path: &Path, f: impl FnOnce(&[Yaml<'_>]) -> T) -> Result<T, ConformanceError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConformanceError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let docs = Yaml::load_from_str(&text).map_err(|e| ConformanceError::Yaml {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    match docs.first() {
        None | Some(Yaml::BadValue) | Some(Yaml::Value(saphyr::Scalar::Null)) => Ok(f(&[])),
        Some(Yaml::Sequence(s)) => Ok(f(s)),
        Some(_) => Err(ConformanceError::Shape {
            path: path.display().to_string(),
            message: "expected a YAML list at the top level".into(),
        }),
    }
}

/// A scalar as text (strings, numbers, booleans).
fn scalar_string(y: &Yaml<'_>) -> Option<String> {
    match y {
        Yaml::Value(saphyr::Scalar::String(s)) => Some(s.to_string()),
        Yaml::Value(saphyr::Scalar::Integer(i)) => Some(i.to_string()),
        Yaml::Value(saphyr::Scalar::FloatingPoint(f)) => Some(f.to_string()),
        Yaml::Value(saphyr::Scalar::Boolean(b)) => Some(b.to_string()),
        Yaml::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

fn get(y: &Yaml<'_>, key: &str) -> Option<String> {
    y.as_mapping_get(key).and_then(scalar_string)
}

/// `v1.29` → `1.29.0`; `v1.17, v1.21` → `1.17.0`; `"1.25"` → `1.25.0`.
pub fn promotion_release(raw: &str) -> Option<String> {
    let first = raw.split(',').next()?.trim().trim_start_matches('v');
    if first.is_empty() {
        return None;
    }
    Some(if first.matches('.').count() == 1 {
        format!("{first}.0")
    } else {
        first.to_string()
    })
}

/// The test name with its `[tags]` removed and the tags sorted at the end, so
/// that old and new tag orders compare equal.
pub fn normalize_test_name(name: &str) -> String {
    let mut text = String::new();
    let mut tags = Vec::new();
    let mut rest = name;
    while let Some(start) = rest.find('[') {
        text.push_str(&rest[..start]);
        match rest[start..].find(']') {
            Some(end) => {
                tags.push(&rest[start..start + end + 1]);
                rest = &rest[start + end + 1..];
            }
            None => {
                text.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    text.push_str(rest);
    tags.sort_unstable();
    let mut out: Vec<&str> = text.split_whitespace().collect();
    out.extend(tags);
    out.join(" ")
}

impl ConformanceData {
    /// Reads conformance.yaml (list of tests).
    pub fn load_tests(&mut self, path: &Path) -> Result<(), ConformanceError> {
        let tests = with_yaml(path, |items| {
            items
                .iter()
                .filter_map(|item| {
                    Some(ConformanceTest {
                        codename: get(item, "codename")?,
                        testname: get(item, "testname").unwrap_or_default(),
                        file: get(item, "file"),
                        promotion_release: get(item, "release").and_then(|r| promotion_release(&r)),
                    })
                })
                .collect::<Vec<_>>()
        })?;
        for t in tests {
            self.add_test(t);
        }
        Ok(())
    }

    /// Adds one conformance test.
    pub fn add_test(&mut self, t: ConformanceTest) {
        let i = self.list.len();
        self.tests.insert(t.codename.clone(), i);
        self.normalized.insert(normalize_test_name(&t.codename), i);
        self.list.push(t);
    }

    /// Reads ineligible_endpoints.yaml.
    pub fn load_ineligible(&mut self, path: &Path) -> Result<(), ConformanceError> {
        let items = with_yaml(path, |items| {
            items
                .iter()
                .filter_map(|item| {
                    let ep = get(item, "endpoint").or_else(|| scalar_string(item))?;
                    Some((
                        ep,
                        Ineligible {
                            reason: get(item, "reason").unwrap_or_default(),
                            link: get(item, "link").unwrap_or_default(),
                        },
                    ))
                })
                .collect::<Vec<_>>()
        })?;
        self.ineligible.extend(items);
        Ok(())
    }

    /// Reads pending_eligible_endpoints.yaml.
    pub fn load_pending(&mut self, path: &Path) -> Result<(), ConformanceError> {
        let items = with_yaml(path, |items| {
            items
                .iter()
                .filter_map(|item| scalar_string(item).or_else(|| get(item, "endpoint")))
                .collect::<Vec<_>>()
        })?;
        self.pending.extend(items);
        Ok(())
    }

    /// Whether any conformance.yaml was loaded.
    pub fn has_tests(&self) -> bool {
        !self.list.is_empty()
    }

    /// The conformance test with this name (exact, then tag-order-insensitive).
    pub fn test(&self, name: &str) -> Option<&ConformanceTest> {
        self.tests
            .get(name)
            .or_else(|| self.normalized.get(&normalize_test_name(name)))
            .map(|&i| &self.list[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(promotion_release("v1.29").as_deref(), Some("1.29.0"));
        assert_eq!(
            promotion_release("v1.17, v1.21, v1.27").as_deref(),
            Some("1.17.0")
        );
        assert_eq!(promotion_release("1.25").as_deref(), Some("1.25.0"));
        assert_eq!(promotion_release("v1.9.1").as_deref(), Some("1.9.1"));
        assert_eq!(promotion_release(""), None);
    }

    #[test]
    fn normalized_names() {
        assert_eq!(
            normalize_test_name("[sig-x] A [Serial] [Conformance] does b"),
            normalize_test_name("[sig-x] A does b [Conformance] [Serial]")
        );
        assert_ne!(
            normalize_test_name("[sig-x] A does b [Conformance]"),
            normalize_test_name("[sig-x] A does c [Conformance]")
        );
    }
}
