//! The `k8sjob` parameters: what they mean, how each value is read, and the
//! [`JobSpec`] they become.
//!
//! Every parameter is a list of strings (ConTest's `{key: [values]}`),
//! templated per target by the engine before the step reads it. Keys match
//! case-insensitively.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PodTemplateSpec, Toleration};
use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;

/// Every parameter `k8sjob` reads; others are warned about.
pub const KEYS: &[&str] = &[
    "image",
    "command",
    "args",
    "env",
    "resources",
    "serviceAccount",
    "namespace",
    "nodeSelector",
    "tolerations",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "labels",
    "results_dir",
    "collector_image",
    "linger",
    "timeout",
    "context",
    "kubeconfig",
    "pod_template",
    "container",
    "max_log_bytes",
    "failed_create_grace",
    "unschedulable_grace",
];

/// The collector image used when `collector_image` is not given.
pub const DEFAULT_COLLECTOR_IMAGE: &str = "prova:latest";
/// How long the collector waits to be fetched, beyond the test's deadline.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(10 * 60);
/// The test container's name when the step builds the pod.
pub const DEFAULT_CONTAINER: &str = "test";
/// Finished Jobs are removed by Kubernetes after this long, unless
/// `ttlSecondsAfterFinished` says otherwise.
pub const DEFAULT_TTL_SECONDS: i32 = 3600;
/// Log bytes turned into `K8sLog` events per target, unless `max_log_bytes`.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 1 << 20;
/// How long the Job may fail to create its pod (`FailedCreate` events:
/// a missing ServiceAccount, a quota) before the step fails.
pub const DEFAULT_FAILED_CREATE_GRACE: Duration = Duration::from_secs(30);
/// How long a pod may stay `Unschedulable` before the step fails (long
/// enough for a cluster autoscaler to add a node in many clusters; raise it
/// where scale-up is slower).
pub const DEFAULT_UNSCHEDULABLE_GRACE: Duration = Duration::from_secs(60);

/// Which prova job, run, test, step and target a Kubernetes Job belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Owner {
    pub job_id: i64,
    pub run_id: u32,
    pub test: String,
    pub attempt: u32,
    pub step: String,
    pub target: String,
}

/// The results directory and its collector.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsSpec {
    /// Where both containers mount the shared emptyDir.
    pub dir: String,
    pub collector_image: String,
    /// The collector's `--linger`, already including the test's deadline.
    pub linger: Duration,
}

/// Everything [`crate::job::build_job`] needs: a concise description of one
/// Job, or a full pod template plus overrides.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobSpec {
    pub name: String,
    pub namespace: String,
    /// The test container's name.
    pub container: String,
    pub image: Option<String>,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// `requests.cpu=500m` → requests\[cpu\] = 500m.
    pub requests: BTreeMap<String, String>,
    pub limits: BTreeMap<String, String>,
    pub service_account: Option<String>,
    pub node_selector: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub active_deadline_seconds: Option<i64>,
    pub ttl_seconds_after_finished: Option<i32>,
    /// The user's labels (prova adds its own).
    pub labels: BTreeMap<String, String>,
    pub owner: Owner,
    pub results: Option<ResultsSpec>,
    /// A full pod template from the descriptor; the fields above override it.
    pub pod_template: Option<PodTemplateSpec>,
}

/// The step's parameters, read for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct StepConfig {
    /// The spec; `name`, `namespace` (when not given) and `owner` are
    /// filled in at run time.
    pub spec: JobSpec,
    pub namespace: Option<String>,
    pub timeout: Option<Duration>,
    pub context: Option<String>,
    pub kubeconfig: Option<String>,
    pub max_log_bytes: u64,
    pub failed_create_grace: Duration,
    pub unschedulable_grace: Duration,
}

impl StepConfig {
    /// Reads expanded parameters.
    pub fn from_params(p: &StepParams) -> Result<StepConfig, String> {
        let one = |k: &str| -> Result<Option<String>, String> {
            match p.get(k) {
                None => Ok(None),
                Some(v) if v.values.len() > 1 => {
                    Err(format!("{k}: expected one value, found {}", v.values.len()))
                }
                Some(v) => Ok(v.values.first().cloned()),
            }
        };
        let many =
            |k: &str| -> Vec<String> { p.get(k).map(|v| v.values.clone()).unwrap_or_default() };
        let with_key = |k: &str, e: String| format!("{k}: {e}");

        let pod_template = one("pod_template")?
            .map(|t| parse_pod_template(&t))
            .transpose()
            .map_err(|e| with_key("pod_template", e))?;
        let image = one("image")?;
        if image.is_none() && pod_template.is_none() {
            return Err("either image or pod_template is required".into());
        }
        let mut env = Vec::new();
        for v in many("env") {
            env.push(parse_kv(&v).map_err(|e| with_key("env", e))?);
        }
        let (mut requests, mut limits) = (BTreeMap::new(), BTreeMap::new());
        for v in many("resources") {
            let (kind, name, qty) = parse_resource(&v).map_err(|e| with_key("resources", e))?;
            match kind {
                ResourceKind::Request => requests.insert(name, qty),
                ResourceKind::Limit => limits.insert(name, qty),
            };
        }
        let mut node_selector = BTreeMap::new();
        for v in many("nodeSelector") {
            let (k, val) = parse_kv(&v).map_err(|e| with_key("nodeSelector", e))?;
            node_selector.insert(k, val);
        }
        let mut labels = BTreeMap::new();
        for v in many("labels") {
            let (k, val) = parse_kv(&v).map_err(|e| with_key("labels", e))?;
            check_label_key(&k).map_err(|e| with_key("labels", e))?;
            check_label_value(&val).map_err(|e| with_key("labels", e))?;
            labels.insert(k, val);
        }
        let mut tolerations = Vec::new();
        for v in many("tolerations") {
            tolerations.push(parse_toleration(&v).map_err(|e| with_key("tolerations", e))?);
        }
        let active_deadline_seconds = one("activeDeadlineSeconds")?
            .map(|v| parse_positive(&v))
            .transpose()
            .map_err(|e| with_key("activeDeadlineSeconds", e))?;
        let ttl_seconds_after_finished = match one("ttlSecondsAfterFinished")? {
            None => Some(DEFAULT_TTL_SECONDS),
            Some(v) if v.trim() == "none" => None,
            Some(v) => Some(
                v.trim()
                    .parse::<i32>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| {
                        format!(
                            "ttlSecondsAfterFinished: expected seconds (0 or more) or \"none\", found {v:?}"
                        )
                    })?,
            ),
        };
        let timeout = one("timeout")?
            .map(|v| parse_duration(&v))
            .transpose()
            .map_err(|e| with_key("timeout", e))?;
        let linger = one("linger")?
            .map(|v| parse_duration(&v))
            .transpose()
            .map_err(|e| with_key("linger", e))?
            .unwrap_or(DEFAULT_LINGER);
        let results = one("results_dir")?
            .map(|dir| -> Result<ResultsSpec, String> {
                check_results_dir(&dir).map_err(|e| with_key("results_dir", e))?;
                // The collector must outlive the test: count its linger from
                // the latest moment the test can still be running.
                let test_bound = active_deadline_seconds
                    .map(|s| Duration::from_secs(s as u64))
                    .or(timeout)
                    .unwrap_or_default();
                Ok(ResultsSpec {
                    dir,
                    collector_image: one("collector_image")?
                        .unwrap_or_else(|| DEFAULT_COLLECTOR_IMAGE.to_string()),
                    linger: linger + test_bound,
                })
            })
            .transpose()?;
        let max_log_bytes = one("max_log_bytes")?
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("max_log_bytes: expected a byte count, found {v:?}"))
            })
            .transpose()?
            .unwrap_or(DEFAULT_MAX_LOG_BYTES);
        let grace = |k: &str, default: Duration| -> Result<Duration, String> {
            Ok(one(k)?
                .map(|v| parse_duration(&v))
                .transpose()
                .map_err(|e| with_key(k, e))?
                .unwrap_or(default))
        };
        let failed_create_grace = grace("failed_create_grace", DEFAULT_FAILED_CREATE_GRACE)?;
        let unschedulable_grace = grace("unschedulable_grace", DEFAULT_UNSCHEDULABLE_GRACE)?;

        Ok(StepConfig {
            spec: JobSpec {
                name: String::new(),
                namespace: String::new(),
                container: one("container")?.unwrap_or_else(|| DEFAULT_CONTAINER.to_string()),
                image,
                command: many("command"),
                args: many("args"),
                env,
                requests,
                limits,
                service_account: one("serviceAccount")?,
                node_selector,
                tolerations,
                active_deadline_seconds,
                ttl_seconds_after_finished,
                labels,
                owner: Owner::default(),
                results,
                pod_template,
            },
            namespace: one("namespace")?,
            timeout,
            context: one("context")?,
            kubeconfig: one("kubeconfig")?,
            max_log_bytes,
            failed_create_grace,
            unschedulable_grace,
        })
    }
}

/// Checks one parameter value.
type Check = fn(&str) -> Result<(), String>;

/// Checks the parameters before the job runs (templated values are checked
/// at run time). Every problem is reported with its field path.
pub fn validate(step: &StepDescriptor, diags: &mut Diagnostics) {
    let p = &step.parameters;
    for v in p.iter() {
        if !KEYS.iter().any(|k| k.eq_ignore_ascii_case(&v.key)) {
            diags.warn(
                &v.path,
                v.pos,
                format!(
                    "unknown k8sjob parameter {:?} (known: {})",
                    v.key,
                    KEYS.join(", ")
                ),
            );
        }
    }
    if p.get("image").is_none() && p.get("pod_template").is_none() {
        diags.error(
            &step.path.key("parameters"),
            step.pos,
            format!(
                "missing: step {:?} (k8sjob) needs parameter \"image\" or \"pod_template\"",
                step.label
            ),
        );
    }
    let singles: &[(&str, Check)] = &[
        ("image", |v| nonempty(v)),
        ("serviceAccount", |v| nonempty(v)),
        ("namespace", |v| check_dns_label(v)),
        ("container", |v| check_dns_label(v)),
        ("context", |v| nonempty(v)),
        ("kubeconfig", |v| nonempty(v)),
        ("collector_image", |v| nonempty(v)),
        ("results_dir", check_results_dir),
        ("activeDeadlineSeconds", |v| parse_positive(v).map(|_| ())),
        ("ttlSecondsAfterFinished", |v| {
            if v.trim() == "none" || v.trim().parse::<u32>().is_ok() {
                Ok(())
            } else {
                Err(format!(
                    "expected seconds (0 or more) or \"none\", found {v:?}"
                ))
            }
        }),
        ("linger", |v| parse_duration(v).map(|_| ())),
        ("timeout", |v| parse_duration(v).map(|_| ())),
        ("failed_create_grace", |v| parse_duration(v).map(|_| ())),
        ("unschedulable_grace", |v| parse_duration(v).map(|_| ())),
        ("max_log_bytes", |v| {
            v.trim()
                .parse::<u64>()
                .map(|_| ())
                .map_err(|_| format!("expected a byte count, found {v:?}"))
        }),
        ("pod_template", |v| parse_pod_template(v).map(|_| ())),
    ];
    for (key, check) in singles {
        prova_engine::plugins::params::check_one(p, key, diags, check);
    }
    let lists: &[(&str, Check)] = &[
        ("env", |v| parse_kv(v).map(|_| ())),
        ("nodeSelector", |v| parse_kv(v).map(|_| ())),
        ("labels", |v| {
            let (k, val) = parse_kv(v)?;
            check_label_key(&k)?;
            check_label_value(&val)
        }),
        ("resources", |v| parse_resource(v).map(|_| ())),
        ("tolerations", |v| parse_toleration(v).map(|_| ())),
    ];
    for (key, check) in lists {
        let Some(pv) = p.get(key) else { continue };
        for (i, v) in pv.values.iter().enumerate() {
            if prova_engine::plugins::params::is_template(v) {
                continue;
            }
            if let Err(e) = check(v) {
                diags.error(&pv.path.index(i), pv.pos, e);
            }
        }
    }
}

fn nonempty(v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err("expected a value, found an empty string".into())
    } else {
        Ok(())
    }
}

fn parse_duration(v: &str) -> Result<Duration, String> {
    prova_engine::plugins::params::parse_duration(v)
}

fn parse_positive(v: &str) -> Result<i64, String> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("expected a whole number of seconds above 0, found {v:?}"))
}

/// `KEY=VALUE` (the value may be empty or contain `=`).
pub fn parse_kv(v: &str) -> Result<(String, String), String> {
    match v.split_once('=') {
        Some((k, val)) if !k.trim().is_empty() => Ok((k.trim().to_string(), val.to_string())),
        _ => Err(format!("expected KEY=VALUE, found {v:?}")),
    }
}

enum ResourceKind {
    Request,
    Limit,
}

/// `requests.cpu=500m`, `limits.memory=1Gi` (also `requests.ephemeral-storage=...`).
fn parse_resource(v: &str) -> Result<(ResourceKind, String, String), String> {
    let err = || {
        format!(
            "expected requests.<resource>=<quantity> or limits.<resource>=<quantity> (e.g. limits.memory=256Mi), found {v:?}"
        )
    };
    let (k, qty) = parse_kv(v).map_err(|_| err())?;
    let (kind, name) = k.split_once('.').ok_or_else(err)?;
    let kind = match kind {
        "requests" | "request" => ResourceKind::Request,
        "limits" | "limit" => ResourceKind::Limit,
        _ => return Err(err()),
    };
    let qty = qty.trim();
    if name.is_empty()
        || qty.is_empty()
        || !qty.starts_with(|c: char| c.is_ascii_digit() || c == '.')
    {
        return Err(err());
    }
    Ok((kind, name.to_string(), qty.to_string()))
}

/// kubectl's taint syntax: `key[=value][:Effect[:seconds]]`; a key without
/// a value tolerates any value (`Exists`); `*` alone tolerates every taint.
/// A JSON object (`{"key": ..., "operator": ...}`) is taken as it is.
pub fn parse_toleration(v: &str) -> Result<Toleration, String> {
    let v = v.trim();
    if v.starts_with('{') {
        return serde_json::from_str(v).map_err(|e| format!("invalid toleration JSON: {e}"));
    }
    if v == "*" {
        return Ok(Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        });
    }
    let mut parts = v.splitn(3, ':');
    let kv = parts.next().unwrap_or_default();
    let effect = parts.next().filter(|e| !e.is_empty());
    let seconds = parts.next();
    if let Some(e) = effect
        && !matches!(e, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
    {
        return Err(format!(
            "unknown taint effect {e:?} in {v:?}: expected NoSchedule, PreferNoSchedule or NoExecute"
        ));
    }
    let toleration_seconds = seconds
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| format!("expected seconds after the effect, found {s:?}"))
        })
        .transpose()?;
    if toleration_seconds.is_some() && effect != Some("NoExecute") {
        return Err(format!("seconds apply only to NoExecute, in {v:?}"));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, val)) => (k, Some(val)),
        None => (kv, None),
    };
    if key.is_empty() {
        return Err(format!("expected key[=value][:Effect], found {v:?}"));
    }
    Ok(Toleration {
        key: Some(key.to_string()),
        operator: Some(if value.is_some() { "Equal" } else { "Exists" }.into()),
        value: value.map(str::to_string),
        effect: effect.map(str::to_string),
        toleration_seconds,
    })
}

/// A pod template as JSON: a `PodTemplateSpec` (`{"metadata":…, "spec":…}`)
/// or a bare `PodSpec` (`{"containers": […]}`).
pub fn parse_pod_template(v: &str) -> Result<PodTemplateSpec, String> {
    let value: serde_json::Value =
        serde_json::from_str(v).map_err(|e| format!("expected a pod template as JSON: {e}"))?;
    let value = if value.get("containers").is_some() {
        serde_json::json!({ "spec": value })
    } else {
        value
    };
    let t: PodTemplateSpec = serde_json::from_value(value)
        .map_err(|e| format!("not a pod template (PodTemplateSpec or PodSpec): {e}"))?;
    match &t.spec {
        Some(s) if !s.containers.is_empty() => Ok(t),
        _ => Err("the pod template has no containers".into()),
    }
}

fn check_results_dir(v: &str) -> Result<(), String> {
    if !v.starts_with('/') || v.split('/').any(|c| c == "..") || v == "/" {
        return Err(format!(
            "expected an absolute directory path such as /results, found {v:?}"
        ));
    }
    Ok(())
}

/// A DNS-1123 label: what namespaces and container names must be.
pub fn check_dns_label(v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a DNS label (lowercase letters, digits and '-', at most 63), found {v:?}"
        ))
    }
}

fn check_label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253)
    {
        return Err(format!("invalid label key prefix in {k:?}"));
    }
    if name.is_empty() || sanitize_label_value(name) != name {
        return Err(format!(
            "invalid label key {k:?}: expected [prefix/]name with letters, digits, '-', '_', '.' (at most 63)"
        ));
    }
    Ok(())
}

fn check_label_value(v: &str) -> Result<(), String> {
    if sanitize_label_value(v) != v {
        return Err(format!(
            "invalid label value {v:?}: expected letters, digits, '-', '_', '.', starting and ending alphanumeric, at most 63"
        ));
    }
    Ok(())
}

/// Makes any text a valid label value: other characters become `-`, the
/// ends are alphanumeric, at most 63 characters. Empty stays empty.
pub fn sanitize_label_value(v: &str) -> String {
    let mapped: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut s = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if s.len() > 63 {
        s = s[..63].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    }
    s.to_string()
}

/// A lowercase DNS-label fragment of `v` for names (may be empty).
pub fn dns_fragment(v: &str, max: usize) -> String {
    let mapped: String = v
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut collapsed = String::new();
    for c in mapped.chars() {
        if !(c == '-' && collapsed.ends_with('-')) {
            collapsed.push(c);
        }
    }
    let s = collapsed.trim_matches('-');
    s[..s.len().min(max)].trim_end_matches('-').to_string()
}

/// The Job's name: `prova-<job>-<run>-<target>-<suffix>`, a DNS label.
pub fn job_name(owner: &Owner, suffix: &str) -> String {
    let head = format!("prova-{}-{}", owner.job_id, owner.run_id);
    let room = 63usize.saturating_sub(head.len() + suffix.len() + 2);
    let target = dns_fragment(&owner.target, room);
    if target.is_empty() {
        format!("{head}-{suffix}")
    } else {
        format!("{head}-{target}-{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerations_follow_taint_syntax() {
        let t = parse_toleration("gpu=true:NoSchedule").unwrap();
        assert_eq!(t.key.as_deref(), Some("gpu"));
        assert_eq!(t.operator.as_deref(), Some("Equal"));
        assert_eq!(t.value.as_deref(), Some("true"));
        assert_eq!(t.effect.as_deref(), Some("NoSchedule"));
        let t = parse_toleration("node.kubernetes.io/unreachable:NoExecute:300").unwrap();
        assert_eq!(t.operator.as_deref(), Some("Exists"));
        assert_eq!(t.toleration_seconds, Some(300));
        assert_eq!(
            parse_toleration("*").unwrap().operator.as_deref(),
            Some("Exists")
        );
        assert!(parse_toleration("a=b:Sometimes").is_err());
        assert!(parse_toleration("a:NoSchedule:5").is_err());
        let t = parse_toleration(r#"{"key":"k","operator":"Exists"}"#).unwrap();
        assert_eq!(t.key.as_deref(), Some("k"));
    }

    #[test]
    fn resources_and_kv() {
        assert!(parse_resource("limits.memory=256Mi").is_ok());
        assert!(parse_resource("requests.cpu=0.5").is_ok());
        assert!(parse_resource("memory=256Mi").is_err());
        assert!(parse_resource("limits.memory=lots").is_err());
        assert_eq!(
            parse_kv("A=b=c").unwrap(),
            ("A".to_string(), "b=c".to_string())
        );
        assert!(parse_kv("novalue").is_err());
    }

    #[test]
    fn label_values_are_sanitized() {
        assert_eq!(sanitize_label_value("node-1.lab"), "node-1.lab");
        assert_eq!(sanitize_label_value("Smoke test #2!"), "Smoke-test--2");
        assert_eq!(sanitize_label_value("__x__"), "x");
        assert_eq!(sanitize_label_value(&"a".repeat(80)).len(), 63);
        assert_eq!(sanitize_label_value("???"), "");
    }

    #[test]
    fn job_names_are_dns_labels() {
        let owner = Owner {
            job_id: 12,
            run_id: 3,
            target: "Node_7.lab.example.com".into(),
            ..Default::default()
        };
        assert_eq!(
            job_name(&owner, "ab1cd"),
            "prova-12-3-node-7-lab-example-com-ab1cd"
        );
        let long = Owner {
            target: "x".repeat(200),
            ..owner
        };
        let n = job_name(&long, "ab1cd");
        assert!(n.len() <= 63, "{n}");
        check_dns_label(&n).unwrap();
    }

    #[test]
    fn pod_template_accepts_pod_spec_or_template() {
        assert!(parse_pod_template(r#"{"containers":[{"name":"t","image":"busybox"}]}"#).is_ok());
        assert!(
            parse_pod_template(
                r#"{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"t"}]}}"#
            )
            .is_ok()
        );
        assert!(parse_pod_template(r#"{"spec":{"containers":[]}}"#).is_err());
        assert!(parse_pod_template("not json").is_err());
    }
}
