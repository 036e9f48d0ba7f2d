//! The ConTest job descriptor, typed, and the checks that need no plugin.
//!
//! Decoding walks the [`Node`] tree by hand so that keys match
//! case-insensitively (as Go's `encoding/json` does), every error is
//! collected with its field path and position, and unknown keys become
//! warnings. Plugin parameters stay as nodes: each plugin decodes and
//! validates its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;

use crate::diag::{Diagnostics, FieldPath};
use crate::duration::parse_go_duration;
use crate::node::{Node, Pos, Value};

/// The descriptor version prova understands (ConTest's current one).
pub const CURRENT_VERSION: &str = "1.0";
/// ConTest's limit on job names.
pub const MAX_JOB_NAME_LEN: usize = 64;

static TAG_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_-]+$").unwrap());
static LABEL_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z]\w*$").unwrap());

/// A whole job descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct JobDescriptor {
    pub version: String,
    pub job_name: String,
    pub tags: Vec<String>,
    /// 0 means run until stopped.
    pub runs: u32,
    pub run_interval: Duration,
    pub tests: Vec<TestDescriptor>,
    pub reporting: Reporting,
}

/// One entry of `TestDescriptors`.
#[derive(Debug, Clone, PartialEq)]
pub struct TestDescriptor {
    /// `TestDescriptors[i]`, for diagnostics.
    pub path: FieldPath,
    pub target_manager: PluginRef,
    /// `TargetManagerReleaseParameters`, decoded by the target manager.
    pub target_manager_release: Node,
    pub test_fetcher: PluginRef,
    pub cleanup_fetcher: Option<PluginRef>,
    pub disabled: bool,
    pub retry: RetryParameters,
    pub acquire_timeout: Duration,
    pub release_timeout: Duration,
}

/// A plugin named in a descriptor with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRef {
    pub name: String,
    pub name_path: FieldPath,
    pub name_pos: Option<Pos>,
    /// The parameters as written; `Null` when absent.
    pub params: Node,
    pub params_path: FieldPath,
}

/// `RetryParameters`: how often a failed test is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetryParameters {
    pub num_retries: u32,
    pub retry_interval: Duration,
}

/// `Reporting`: reporters run after each run and once at the end.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reporting {
    pub run_reporters: Vec<PluginRef>,
    pub final_reporters: Vec<PluginRef>,
}

/// A test step: `{name, label, parameters: {key: [values]}}`.
#[derive(Debug, Clone, PartialEq)]
pub struct StepDescriptor {
    pub name: String,
    pub label: String,
    pub parameters: StepParams,
    /// prova extension: fail the target if the step holds it longer.
    pub timeout: Option<Duration>,
    pub path: FieldPath,
    pub pos: Option<Pos>,
}

/// Step parameters as ConTest has them: every key maps to a list of values
/// (a scalar counts as a one-element list). Keys are matched
/// case-insensitively.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepParams {
    entries: BTreeMap<String, ParamValues>,
}

/// The values of one step parameter, with where they were written.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamValues {
    pub key: String,
    pub values: Vec<String>,
    pub path: FieldPath,
    pub pos: Option<Pos>,
}

impl StepParams {
    pub fn insert(&mut self, values: ParamValues) {
        self.entries.insert(values.key.to_ascii_lowercase(), values);
    }

    pub fn get(&self, key: &str) -> Option<&ParamValues> {
        self.entries.get(&key.to_ascii_lowercase())
    }

    /// The single value of `key`, if present.
    pub fn one(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(|v| v.values.first())
            .map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ParamValues> {
        self.entries.values()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// As ConTest's JSON: `{key: [values]}`.
    pub fn to_json(&self) -> serde_json::Value {
        self.entries
            .values()
            .map(|p| (p.key.clone(), serde_json::Value::from(p.values.clone())))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

impl StepDescriptor {
    /// As ConTest's JSON: `{name, label, parameters}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("label".into(), self.label.clone().into());
        m.insert("parameters".into(), self.parameters.to_json());
        if let Some(t) = self.timeout {
            m.insert("timeout".into(), format!("{}ms", t.as_millis()).into());
        }
        m.into()
    }
}

/// Defaults that ConTest's server applies when a descriptor is silent.
pub mod defaults {
    use std::time::Duration;
    pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(60);
}

/// Decodes a job descriptor and runs every check that needs no plugin.
/// Returns `None` only when the document is not a map at all; otherwise a
/// descriptor with best-effort values, and every problem in `diags`.
pub fn decode_job(root: &Node, diags: &mut Diagnostics) -> Option<JobDescriptor> {
    let path = FieldPath::root();
    let Some(map) = root.as_map() else {
        diags.error(
            &path,
            root.pos,
            format!("expected a job descriptor (a map with JobName, TestDescriptors, Reporting), found {}", root.type_name()),
        );
        return None;
    };
    check_keys(
        map,
        &path,
        &[
            "JobName",
            "Version",
            "Tags",
            "Runs",
            "RunInterval",
            "TestDescriptors",
            "Reporting",
            "TargetManagerAcquireTimeout",
            "TargetManagerReleaseTimeout",
        ],
        diags,
    );

    let version = match root.entry_ci("Version") {
        None => CURRENT_VERSION.to_string(),
        Some((_, n)) => {
            let v = n.scalar_text();
            if !version_supported(&v) {
                diags.error(
                    &path.key("Version"),
                    n.pos,
                    format!("unsupported descriptor version {v:?}: expected \"{CURRENT_VERSION}\" (major 1, minor 0)"),
                );
            }
            v
        }
    };

    let job_name = req_string(root, &path, "JobName", diags).unwrap_or_default();
    if job_name.chars().count() > MAX_JOB_NAME_LEN {
        let (_, n) = root.entry_ci("JobName").expect("present");
        diags.error(
            &path.key("JobName"),
            n.pos,
            format!(
                "job name is {} characters long: expected at most {MAX_JOB_NAME_LEN}",
                job_name.chars().count()
            ),
        );
    } else if root.entry_ci("JobName").is_some() && job_name.trim().is_empty() {
        diags.error(
            &path.key("JobName"),
            root.get_ci("JobName").and_then(|n| n.pos),
            "expected a non-empty job name",
        );
    }

    let tags = decode_tags(root, &path, diags);
    let runs = opt_u32(root, &path, "Runs", diags).unwrap_or(1);
    let run_interval = opt_duration(root, &path, "RunInterval", diags).unwrap_or_default();
    let job_acquire = opt_duration(root, &path, "TargetManagerAcquireTimeout", diags)
        .unwrap_or(defaults::ACQUIRE_TIMEOUT);
    let job_release = opt_duration(root, &path, "TargetManagerReleaseTimeout", diags)
        .unwrap_or(defaults::RELEASE_TIMEOUT);

    let tests_path = path.key("TestDescriptors");
    let mut tests = Vec::new();
    match root.get_ci("TestDescriptors") {
        None => diags.error(
            &tests_path,
            root.pos,
            "missing: expected a list of test descriptors",
        ),
        Some(n) => match n.as_seq() {
            Some([]) => diags.error(&tests_path, n.pos, "expected at least one test descriptor"),
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(t) =
                        decode_test(item, &tests_path.index(i), job_acquire, job_release, diags)
                    {
                        tests.push(t);
                    }
                }
            }
            None => diags.error(
                &tests_path,
                n.pos,
                format!(
                    "expected a list of test descriptors, found {}",
                    n.type_name()
                ),
            ),
        },
    }

    let reporting = decode_reporting(root, &path, diags);

    Some(JobDescriptor {
        version,
        job_name,
        tags,
        runs,
        run_interval,
        tests,
        reporting,
    })
}

/// ConTest accepts "1.0" and any "1.x" with x <= 0.
fn version_supported(v: &str) -> bool {
    let mut parts = v.trim().splitn(2, '.');
    let major = parts.next().and_then(|m| m.parse::<u32>().ok());
    let minor = parts.next().map(|m| m.parse::<u32>().ok());
    matches!((major, minor), (Some(1), Some(Some(0))))
}

fn decode_tags(root: &Node, path: &FieldPath, diags: &mut Diagnostics) -> Vec<String> {
    let tags_path = path.key("Tags");
    let Some(n) = root.get_ci("Tags") else {
        return Vec::new();
    };
    if n.is_null() {
        return Vec::new();
    }
    let Some(items) = n.as_seq() else {
        diags.error(
            &tags_path,
            n.pos,
            format!("expected a list of tags, found {}", n.type_name()),
        );
        return Vec::new();
    };
    let mut tags: Vec<String> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let p = tags_path.index(i);
        let Some(tag) = item.as_str() else {
            diags.error(
                &p,
                item.pos,
                format!("expected a tag string, found {}", item.type_name()),
            );
            continue;
        };
        if !TAG_RE.is_match(tag) {
            diags.error(
                &p,
                item.pos,
                format!("invalid tag {tag:?}: expected letters, digits, '_' and '-' only"),
            );
        } else if tag.starts_with('_') {
            diags.error(
                &p,
                item.pos,
                format!("invalid tag {tag:?}: tags starting with '_' are reserved"),
            );
        }
        if !seen.insert(tag) {
            diags.error(&p, item.pos, format!("duplicate tag {tag:?}"));
        }
        tags.push(tag.to_string());
    }
    tags
}

fn decode_test(
    node: &Node,
    path: &FieldPath,
    job_acquire: Duration,
    job_release: Duration,
    diags: &mut Diagnostics,
) -> Option<TestDescriptor> {
    let Some(map) = node.as_map() else {
        diags.error(
            path,
            node.pos,
            format!(
                "expected a test descriptor (a map), found {}",
                node.type_name()
            ),
        );
        return None;
    };
    check_keys(
        map,
        path,
        &[
            "TargetManagerName",
            "TargetManagerAcquireParameters",
            "TargetManagerReleaseParameters",
            "TestFetcherName",
            "TestFetcherFetchParameters",
            "CleanupFetcherName",
            "CleanupFetcherFetchParameters",
            "Disabled",
            "RetryParameters",
            "TargetManagerAcquireTimeout",
            "TargetManagerReleaseTimeout",
        ],
        diags,
    );
    let target_manager = plugin_ref(
        node,
        path,
        "TargetManagerName",
        "TargetManagerAcquireParameters",
        true,
        diags,
    );
    let test_fetcher = plugin_ref(
        node,
        path,
        "TestFetcherName",
        "TestFetcherFetchParameters",
        true,
        diags,
    );
    let cleanup_fetcher = if node
        .get_ci("CleanupFetcherName")
        .is_some_and(|n| !n.is_null())
    {
        Some(plugin_ref(
            node,
            path,
            "CleanupFetcherName",
            "CleanupFetcherFetchParameters",
            false,
            diags,
        ))
    } else {
        if let Some((k, _)) = node.entry_ci("CleanupFetcherFetchParameters")
            && !node
                .get_ci("CleanupFetcherFetchParameters")
                .is_some_and(Node::is_null)
        {
            diags.error(
                &path.key("CleanupFetcherName"),
                k.pos,
                "missing: CleanupFetcherFetchParameters is set, so a CleanupFetcherName is expected",
            );
        }
        None
    };
    let disabled = match node.get_ci("Disabled") {
        None => false,
        Some(n) => match n.value {
            Value::Bool(b) => b,
            Value::Null => false,
            _ => {
                diags.error(
                    &path.key("Disabled"),
                    n.pos,
                    format!("expected true or false, found {}", n.type_name()),
                );
                false
            }
        },
    };
    let retry = match node.get_ci("RetryParameters") {
        None => RetryParameters::default(),
        Some(n) if n.is_null() => RetryParameters::default(),
        Some(n) => {
            let rp = path.key("RetryParameters");
            if let Some(m) = n.as_map() {
                check_keys(m, &rp, &["NumRetries", "RetryInterval"], diags);
                RetryParameters {
                    num_retries: opt_u32(n, &rp, "NumRetries", diags).unwrap_or(0),
                    retry_interval: opt_duration(n, &rp, "RetryInterval", diags)
                        .unwrap_or_default(),
                }
            } else {
                diags.error(
                    &rp,
                    n.pos,
                    format!(
                        "expected a map {{NumRetries, RetryInterval}}, found {}",
                        n.type_name()
                    ),
                );
                RetryParameters::default()
            }
        }
    };
    Some(TestDescriptor {
        path: path.clone(),
        target_manager,
        target_manager_release: node
            .get_ci("TargetManagerReleaseParameters")
            .cloned()
            .unwrap_or(Node::new(Value::Null)),
        test_fetcher,
        cleanup_fetcher,
        disabled,
        retry,
        acquire_timeout: opt_duration(node, path, "TargetManagerAcquireTimeout", diags)
            .unwrap_or(job_acquire),
        release_timeout: opt_duration(node, path, "TargetManagerReleaseTimeout", diags)
            .unwrap_or(job_release),
    })
}

fn plugin_ref(
    node: &Node,
    path: &FieldPath,
    name_key: &str,
    params_key: &str,
    required: bool,
    diags: &mut Diagnostics,
) -> PluginRef {
    let name_path = path.key(name_key);
    let (name, name_pos) = match node.get_ci(name_key) {
        Some(n) => match n.as_str() {
            Some(s) if !s.trim().is_empty() => (s.to_string(), n.pos),
            _ => {
                diags.error(
                    &name_path,
                    n.pos,
                    format!("expected a plugin name, found {}", n.type_name()),
                );
                (String::new(), n.pos)
            }
        },
        None => {
            if required {
                diags.error(&name_path, node.pos, "missing: expected a plugin name");
            }
            (String::new(), node.pos)
        }
    };
    PluginRef {
        name,
        name_path,
        name_pos,
        params: node
            .get_ci(params_key)
            .cloned()
            .unwrap_or(Node::new(Value::Null)),
        params_path: path.key(params_key),
    }
}

fn decode_reporting(root: &Node, path: &FieldPath, diags: &mut Diagnostics) -> Reporting {
    let rpath = path.key("Reporting");
    let Some(n) = root.get_ci("Reporting") else {
        diags.error(
            &rpath,
            root.pos,
            "missing: expected at least one run or final reporter",
        );
        return Reporting::default();
    };
    let Some(map) = n.as_map() else {
        diags.error(
            &rpath,
            n.pos,
            format!(
                "expected a map {{RunReporters, FinalReporters}}, found {}",
                n.type_name()
            ),
        );
        return Reporting::default();
    };
    check_keys(map, &rpath, &["RunReporters", "FinalReporters"], diags);
    let reporting = Reporting {
        run_reporters: decode_reporters(n, &rpath, "RunReporters", diags),
        final_reporters: decode_reporters(n, &rpath, "FinalReporters", diags),
    };
    if reporting.run_reporters.is_empty() && reporting.final_reporters.is_empty() {
        diags.error(&rpath, n.pos, "expected at least one run or final reporter");
    }
    reporting
}

fn decode_reporters(
    n: &Node,
    path: &FieldPath,
    key: &str,
    diags: &mut Diagnostics,
) -> Vec<PluginRef> {
    let p = path.key(key);
    let Some(list) = n.get_ci(key) else {
        return Vec::new();
    };
    if list.is_null() {
        return Vec::new();
    }
    let Some(items) = list.as_seq() else {
        diags.error(
            &p,
            list.pos,
            format!("expected a list of reporters, found {}", list.type_name()),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let ip = p.index(i);
            let Some(m) = item.as_map() else {
                diags.error(
                    &ip,
                    item.pos,
                    format!(
                        "expected a reporter {{Name, Parameters}}, found {}",
                        item.type_name()
                    ),
                );
                return None;
            };
            check_keys(m, &ip, &["Name", "Parameters"], diags);
            Some(plugin_ref(item, &ip, "Name", "Parameters", true, diags))
        })
        .collect()
}

/// Decodes a list of steps (`Steps` of the literal fetcher, `steps` of a
/// URI-fetched document).
pub fn decode_steps(node: &Node, path: &FieldPath, diags: &mut Diagnostics) -> Vec<StepDescriptor> {
    let Some(items) = node.as_seq() else {
        diags.error(
            path,
            node.pos,
            format!("expected a list of steps, found {}", node.type_name()),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| decode_step(item, &path.index(i), diags))
        .collect()
}

fn decode_step(node: &Node, path: &FieldPath, diags: &mut Diagnostics) -> Option<StepDescriptor> {
    let Some(map) = node.as_map() else {
        diags.error(
            path,
            node.pos,
            format!(
                "expected a step {{name, label, parameters}}, found {}",
                node.type_name()
            ),
        );
        return None;
    };
    check_keys(
        map,
        path,
        &["name", "label", "parameters", "timeout"],
        diags,
    );
    let name = req_string(node, path, "name", diags).unwrap_or_default();
    let label = match node.get_ci("label") {
        None => {
            diags.error(
                &path.key("label"),
                node.pos,
                "missing: every step needs a label matching ^[a-zA-Z]\\w*$",
            );
            String::new()
        }
        Some(n) => {
            let label = n.scalar_text();
            if !LABEL_RE.is_match(&label) {
                diags.error(
                    &path.key("label"),
                    n.pos,
                    format!("invalid step label {label:?}: expected a letter followed by letters, digits or '_' (^[a-zA-Z]\\w*$)"),
                );
            }
            label
        }
    };
    let ppath = path.key("parameters");
    let mut parameters = StepParams::default();
    if let Some(pn) = node.get_ci("parameters") {
        match &pn.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (k, v) in entries {
                    let vp = ppath.key(&k.name);
                    let values = match &v.value {
                        Value::Seq(items) => items
                            .iter()
                            .enumerate()
                            .map(|(i, item)| {
                                if matches!(item.value, Value::Map(_) | Value::Seq(_)) {
                                    diags.warn(
                                        &vp.index(i),
                                        item.pos,
                                        "a structured value is passed to the step as JSON text",
                                    );
                                }
                                item.scalar_text()
                            })
                            .collect(),
                        Value::Null => Vec::new(),
                        // ConTest requires a list; a scalar is accepted as a one-element list.
                        _ => vec![v.scalar_text()],
                    };
                    parameters.insert(ParamValues {
                        key: k.name.clone(),
                        values,
                        path: vp,
                        pos: v.pos.or(k.pos),
                    });
                }
            }
            _ => diags.error(
                &ppath,
                pn.pos,
                format!(
                    "expected a map of parameters {{key: [values]}}, found {}",
                    pn.type_name()
                ),
            ),
        }
    }
    let timeout = opt_duration(node, path, "timeout", diags);
    Some(StepDescriptor {
        name,
        label,
        parameters,
        timeout,
        path: path.clone(),
        pos: node.pos,
    })
}

/// ConTest's rule: step labels are unique across a test's steps and its
/// cleanup steps.
pub fn check_unique_labels<'a>(
    steps: impl IntoIterator<Item = &'a StepDescriptor>,
    diags: &mut Diagnostics,
) {
    let mut seen: HashMap<&str, &FieldPath> = HashMap::new();
    for s in steps {
        if s.label.is_empty() {
            continue;
        }
        if let Some(first) = seen.get(s.label.as_str()) {
            diags.error(
                &s.path.key("label"),
                s.pos,
                format!("duplicate step label {:?}: already used at {first}; labels must be unique across test and cleanup steps", s.label),
            );
        } else {
            seen.insert(&s.label, &s.path);
        }
    }
}

/// Unknown keys are warnings: ConTest ignores them, but a typo should not
/// pass silently.
pub fn check_keys(
    map: &[(crate::node::Key, Node)],
    path: &FieldPath,
    known: &[&str],
    diags: &mut Diagnostics,
) {
    for (k, _) in map {
        if !known.iter().any(|n| n.eq_ignore_ascii_case(&k.name)) {
            diags.warn(
                &path.key(&k.name),
                k.pos,
                format!(
                    "unknown key {:?} ignored; known keys: {}",
                    k.name,
                    known.join(", ")
                ),
            );
        }
    }
}

fn req_string(node: &Node, path: &FieldPath, key: &str, diags: &mut Diagnostics) -> Option<String> {
    match node.get_ci(key) {
        None => {
            diags.error(&path.key(key), node.pos, "missing: expected a string");
            None
        }
        Some(n) => match &n.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => Some(n.scalar_text()),
            _ => {
                diags.error(
                    &path.key(key),
                    n.pos,
                    format!("expected a string, found {}", n.type_name()),
                );
                None
            }
        },
    }
}

/// An optional non-negative integer field.
pub fn opt_u32(node: &Node, path: &FieldPath, key: &str, diags: &mut Diagnostics) -> Option<u32> {
    let n = node.get_ci(key)?;
    match &n.value {
        Value::Null => None,
        Value::Int(i) if *i >= 0 && *i <= u32::MAX as i64 => Some(*i as u32),
        Value::Str(s) if s.trim().parse::<u32>().is_ok() => s.trim().parse().ok(),
        _ => {
            diags.error(
                &path.key(key),
                n.pos,
                format!("expected a non-negative integer, found {}", describe(n)),
            );
            None
        }
    }
}

/// An optional Go duration field (`"5s"`); an integer is read as
/// nanoseconds, as Go's `time.Duration` unmarshals it.
pub fn opt_duration(
    node: &Node,
    path: &FieldPath,
    key: &str,
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let n = node.get_ci(key)?;
    match &n.value {
        Value::Null => None,
        Value::Str(s) => match parse_go_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                diags.error(
                    &path.key(key),
                    n.pos,
                    format!("{e}: expected a duration such as \"500ms\", \"5s\" or \"1m30s\""),
                );
                None
            }
        },
        Value::Int(i) if *i >= 0 => Some(Duration::from_nanos(*i as u64)),
        _ => {
            diags.error(
                &path.key(key),
                n.pos,
                format!("expected a duration such as \"5s\", found {}", describe(n)),
            );
            None
        }
    }
}

fn describe(n: &Node) -> String {
    match &n.value {
        Value::Str(s) => format!("{s:?}"),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => n.type_name().to_string(),
    }
}

/// A test-steps document as the URI fetcher reads it: `{"steps": [...]}`.
/// Returns whether `root` looks like one (a map whose only key is `steps`),
/// so `prova validate` can check such files on their own.
pub fn is_steps_document(root: &Node) -> bool {
    root.as_map().is_some_and(|m| {
        !m.is_empty() && m.iter().all(|(k, _)| k.name.eq_ignore_ascii_case("steps"))
    })
}

/// Decodes a test-steps document.
pub fn decode_steps_document(root: &Node, diags: &mut Diagnostics) -> Vec<StepDescriptor> {
    let path = FieldPath::root();
    match root.get_ci("steps") {
        Some(steps) => {
            let s = decode_steps(steps, &path.key("steps"), diags);
            check_unique_labels(&s, diags);
            s
        }
        None => {
            diags.error(
                &path.key("steps"),
                root.pos,
                "missing: expected a list of steps",
            );
            Vec::new()
        }
    }
}

/// Resolves a file named in a descriptor: relative paths are relative to the
/// descriptor's own folder.
pub fn resolve_relative(descriptor_dir: Option<&Path>, file: &str) -> std::path::PathBuf {
    let p = Path::new(file);
    match descriptor_dir {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests;
