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

/// Furthest column where a line's content may start in a metadata YAML file.
/// Every block level (a mapping indented under its key, a `- ` entry) moves
/// the content at least one column right, so this bounds the nesting depth.
pub const MAX_YAML_INDENT: usize = 256;

/// Checks that no line's content starts after column `limit`, skipping
/// indentation and compact block indicators (`- `, `? `, `: `). Returns the
/// 1-based line and column of the first offending line.
fn check_block_indent(text: &str, limit: usize) -> Result<(), (usize, usize)> {
    for (n, line) in text.lines().enumerate() {
        let b = line.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b' ' | b'\t' => i += 1,
                b'-' | b'?' | b':' if matches!(b.get(i + 1), Some(b' ' | b'\t') | None) => i += 1,
                _ => break,
            }
            if i > limit {
                return Err((n + 1, i + 1));
            }
        }
    }
    Ok(())
}

fn with_yaml<T>(path: &Path, f: impl FnOnce(&[Yaml<'_>]) -> T) -> Result<T, ConformanceError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConformanceError::Io {
        path: path.display().to_string(),
        source,
    })?;
    // saphyr bounds flow nesting (`[[[…`) but recurses on block nesting
    // without a limit: a file nested 10,000 levels deep overflows the stack.
    if let Err((line, col)) = check_block_indent(&text, MAX_YAML_INDENT) {
        return Err(ConformanceError::Yaml {
            path: path.display().to_string(),
            message: format!(
                "nested too deep at line {line} column {col}: content starts after column {MAX_YAML_INDENT}"
            ),
        });
    }
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

    fn load_ineligible_text(text: &str) -> Result<ConformanceData, ConformanceError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ineligible.yaml");
        std::fs::write(&p, text).unwrap();
        let mut d = ConformanceData::default();
        d.load_ineligible(&p).map(|()| d)
    }

    #[test]
    fn deep_yaml_is_an_error_not_a_crash() {
        // Block mappings 10,000 deep, one space per level.
        let block: String = (0..10_000)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect();
        // Compact sequences on one line: no indentation at all.
        let compact = format!("{}x\n", "- ".repeat(10_000));
        let flow = format!("{}{}\n", "[".repeat(30_000), "]".repeat(30_000));
        for text in [block, compact, flow] {
            let err = load_ineligible_text(&text).unwrap_err().to_string();
            assert!(err.contains("ineligible.yaml"), "{err}");
            assert!(err.contains("line 1") || err.contains("line 258"), "{err}");
        }
        // Nesting up to the limit still loads (as a wrong shape, not a crash).
        let ok: String = (0..MAX_YAML_INDENT)
            .map(|i| format!("{}a:\n", " ".repeat(i)))
            .collect();
        let err = load_ineligible_text(&ok).unwrap_err().to_string();
        assert!(err.contains("expected a YAML list"), "{err}");
    }

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
