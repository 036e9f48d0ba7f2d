//! The `k8sjob` parameters: what they mean, how each value is read, and the
//! [`JobSpec`] they become.
//!
//! Every parameter is a list of strings (ConTest's `{key: [values]}`). They
//! are read once, while the job is prepared ([`ConfigParams::read`]): fixed
//! values are checked there, templates parsed; per target only templates
//! are rendered ([`ConfigParams::config`]). Keys match case-insensitively.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{PodTemplateSpec, Toleration};
use prova_engine::plugin::{Param, ParamList, Params, Render, StepError, Target};

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

/// The step's parameters as prepared.
pub struct ConfigParams {
    pod_template: Option<Param<PodTemplateSpec>>,
    image: Option<Param<String>>,
    command: ParamList<String>,
    args: ParamList<String>,
    env: ParamList<(String, String)>,
    resources: ParamList<(ResourceKind, String, String)>,
    node_selector: ParamList<(String, String)>,
    labels: ParamList<(String, String)>,
    tolerations: ParamList<Toleration>,
    active_deadline_seconds: Option<Param<i64>>,
    ttl_seconds_after_finished: Option<Param<Option<i32>>>,
    timeout: Option<Param<Duration>>,
    linger: Param<Duration>,
    results_dir: Option<Param<String>>,
    collector_image: Option<Param<String>>,
    max_log_bytes: Param<u64>,
    failed_create_grace: Param<Duration>,
    unschedulable_grace: Param<Duration>,
    container: Option<Param<String>>,
    service_account: Option<Param<String>>,
    namespace: Option<Param<String>>,
    context: Option<Param<String>>,
    kubeconfig: Option<Param<String>>,
}

fn text(check: fn(&str) -> Result<(), String>) -> impl Fn(&str) -> Result<String, String> {
    move |v| check(v).map(|()| v.to_string())
}

impl ConfigParams {
    /// Reads every parameter, recording what is wrong in `p`.
    pub fn read(p: &mut Params<'_>) -> Option<ConfigParams> {
        let read = ConfigParams {
            pod_template: p.optional_with("pod_template", parse_pod_template),
            image: p.optional_with("image", text(nonempty)),
            command: p.list("command"),
            args: p.list("args"),
            env: p.list_with("env", parse_kv),
            resources: p.list_with("resources", parse_resource),
            node_selector: p.list_with("nodeSelector", parse_kv),
            labels: p.list_with("labels", |v| {
                let (k, val) = parse_kv(v)?;
                check_label_key(&k)?;
                check_label_value(&val)?;
                Ok((k, val))
            }),
            tolerations: p.list_with("tolerations", parse_toleration),
            active_deadline_seconds: p.optional_with("activeDeadlineSeconds", parse_positive),
            ttl_seconds_after_finished: p.optional_with("ttlSecondsAfterFinished", |v| {
                match v.trim() {
                    "none" => Ok(None),
                    t => t
                        .parse::<i32>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .map(Some)
                        .ok_or_else(|| {
                            format!("expected seconds (0 or more) or \"none\", found {v:?}")
                        }),
                }
            }),
            timeout: p.optional("timeout"),
            linger: p.or("linger", DEFAULT_LINGER),
            results_dir: p.optional_with("results_dir", text(check_results_dir)),
            collector_image: p.optional_with("collector_image", text(nonempty)),
            max_log_bytes: p
                .optional_with("max_log_bytes", |v| {
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("expected a byte count, found {v:?}"))
                })
                .unwrap_or_else(|| Param::fixed(DEFAULT_MAX_LOG_BYTES)),
            failed_create_grace: p.or("failed_create_grace", DEFAULT_FAILED_CREATE_GRACE),
            unschedulable_grace: p.or("unschedulable_grace", DEFAULT_UNSCHEDULABLE_GRACE),
            container: p.optional_with("container", text(check_dns_label)),
            service_account: p.optional_with("serviceAccount", text(nonempty)),
            namespace: p.optional_with("namespace", text(check_dns_label)),
            context: p.optional_with("context", text(nonempty)),
            kubeconfig: p.optional_with("kubeconfig", text(nonempty)),
        };
        let written = |k: &str| p.step().parameters.get(k).is_some();
        if !written("image") && !written("pod_template") {
            let label = p.step().label.clone();
            p.step_error(format!(
                "missing: step {label:?} (k8sjob) needs parameter \"image\" or \"pod_template\""
            ));
        }
        p.ok().then_some(read)
    }

    /// The configuration for `target`: templates rendered and checked.
    pub fn config(
        &self,
        r: &(impl Render + ?Sized),
        target: &Target,
    ) -> Result<StepConfig, StepError> {
        let opt = |p: &Option<Param<String>>| p.as_ref().map(|p| p.get(r, target)).transpose();
        let pod_template = self
            .pod_template
            .as_ref()
            .map(|p| p.get(r, target))
            .transpose()?;
        let image = opt(&self.image)?;
        let (mut requests, mut limits) = (BTreeMap::new(), BTreeMap::new());
        for (kind, name, qty) in self.resources.get(r, target)? {
            match kind {
                ResourceKind::Request => requests.insert(name, qty),
                ResourceKind::Limit => limits.insert(name, qty),
            };
        }
        let active_deadline_seconds = self
            .active_deadline_seconds
            .as_ref()
            .map(|p| p.get(r, target))
            .transpose()?;
        let ttl_seconds_after_finished = match &self.ttl_seconds_after_finished {
            None => Some(DEFAULT_TTL_SECONDS),
            Some(p) => p.get(r, target)?,
        };
        let timeout = self
            .timeout
            .as_ref()
            .map(|p| p.get(r, target))
            .transpose()?;
        let results = match opt(&self.results_dir)? {
            None => None,
            Some(dir) => {
                // The collector must outlive the test: count its linger from
                // the latest moment the test can still be running.
                let test_bound = active_deadline_seconds
                    .map(|s| Duration::from_secs(s as u64))
                    .or(timeout)
                    .unwrap_or_default();
                Some(ResultsSpec {
                    dir,
                    collector_image: opt(&self.collector_image)?
                        .unwrap_or_else(|| DEFAULT_COLLECTOR_IMAGE.to_string()),
                    linger: self.linger.get(r, target)? + test_bound,
                })
            }
        };
        Ok(StepConfig {
            spec: JobSpec {
                name: String::new(),
                namespace: String::new(),
                container: opt(&self.container)?.unwrap_or_else(|| DEFAULT_CONTAINER.to_string()),
                image,
                command: self.command.get(r, target)?,
                args: self.args.get(r, target)?,
                env: self.env.get(r, target)?,
                requests,
                limits,
                service_account: opt(&self.service_account)?,
                node_selector: self.node_selector.get(r, target)?.into_iter().collect(),
                tolerations: self.tolerations.get(r, target)?,
                active_deadline_seconds,
                ttl_seconds_after_finished,
                labels: self.labels.get(r, target)?.into_iter().collect(),
                owner: Owner::default(),
                results,
                pod_template,
            },
            namespace: opt(&self.namespace)?,
            timeout,
            context: opt(&self.context)?,
            kubeconfig: opt(&self.kubeconfig)?,
            max_log_bytes: self.max_log_bytes.get(r, target)?,
            failed_create_grace: self.failed_create_grace.get(r, target)?,
            unschedulable_grace: self.unschedulable_grace.get(r, target)?,
        })
    }
}

fn nonempty(v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err("expected a value, found an empty string".into())
    } else {
        Ok(())
    }
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

#[derive(Debug, Clone, Copy)]
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
