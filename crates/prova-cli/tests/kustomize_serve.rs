//! The Deployment of deploy/kustomize starts a working `prova serve`: its
//! container's args and env (rendered by the real `kubectl kustomize`) run
//! the real binary, with the volumes' mount paths moved under a temporary
//! folder, the Secret's values filled in and `--listen` moved to a free
//! loopback port. A typo in a flag, an env var prova does not read or a
//! path it cannot write shows here, where the OpenAPI check cannot see it.
//!
//! Needs kubectl (`PROVA_KUBECTL`, else `PATH`; skipped without it unless
//! `PROVA_REQUIRE_KUBECTL` is set). The store is PostgreSQL when
//! `PROVA_TEST_POSTGRES_URL` is set (scripts/test.sh), else SQLite.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use prova_core::node::{Format, parse_document};
use serde_json::Value;

mod support;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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
    assert!(
        std::env::var_os("PROVA_REQUIRE_KUBECTL").is_none(),
        "PROVA_REQUIRE_KUBECTL is set but {} does not run (scripts/test.sh installs it)",
        candidate.display()
    );
    eprintln!("skipped: no kubectl (set PROVA_KUBECTL)");
    None
}

/// The rendered Deployment `prova` of `dir`.
fn deployment(kubectl: &Path, dir: &str) -> Value {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(root().join(dir))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // kubectl separates documents with a `---` line and writes no other.
    text.split("\n---\n")
        .map(|doc| {
            parse_document(doc, Format::Yaml)
                .unwrap_or_else(|e| panic!("{dir}: {e}"))
                .to_json()
        })
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "prova")
        .unwrap_or_else(|| panic!("{dir}: no Deployment prova"))
}

/// `path` under `fake_root` when it lies under one of the volumes' mount
/// paths, else unchanged.
fn relocate(value: &str, mounts: &[String], fake_root: &Path) -> String {
    for m in mounts {
        if let Some(rest) = value.strip_prefix(m.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{}{m}{rest}", fake_root.display());
        }
    }
    value.to_string()
}

struct Serve {
    child: Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the container of `deploy` as `prova`, returning once it listens.
fn start(deploy: &Value, db: &str, token: &str, fake_root: &Path) -> Serve {
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    let mounts: Vec<String> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap().to_string())
        .collect();
    for m in &mounts {
        std::fs::create_dir_all(format!("{}{m}", fake_root.display())).unwrap();
    }
    let mut cmd = Command::cargo_bin("prova").unwrap();
    // The image's entrypoint is /prova: the args are prova's.
    let port = c["ports"][0]["containerPort"].as_i64().unwrap();
    let mut listens = 0;
    for arg in c["args"].as_array().unwrap() {
        let arg = arg.as_str().unwrap();
        let arg = match arg.split_once('=') {
            // The pod listens on all addresses at its container port; here
            // a free port on loopback.
            Some(("--listen", v)) => {
                assert_eq!(v, format!("0.0.0.0:{port}"), "--listen");
                listens += 1;
                "--listen=127.0.0.1:0".to_string()
            }
            Some((flag, v)) => format!("{flag}={}", relocate(v, &mounts, fake_root)),
            None => relocate(arg, &mounts, fake_root),
        };
        cmd.arg(arg);
    }
    assert_eq!(listens, 1, "one --listen=ADDR in the args");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PROVA_") || k == "XDG_DATA_HOME" || k == "TMPDIR" {
            cmd.env_remove(k);
        }
    }
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let value = if let Some(v) = e["value"].as_str() {
            relocate(v, &mounts, fake_root)
        } else if let Some(r) = e["valueFrom"]["secretKeyRef"].as_object() {
            match r["key"].as_str().unwrap() {
                "db-url" => db.to_string(),
                "token" => token.to_string(),
                other => panic!("the Secret has no key {other}"),
            }
        } else if e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" {
            "prova-6d4f9c7b8-x2kqz".to_string()
        } else {
            panic!("env {name}: a source this test does not fill in: {e}");
        };
        cmd.env(name, value);
    }
    let mut child = cmd
        .current_dir(fake_root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = support::listening_url(&mut child);
    Serve { child, url }
}

#[tokio::test]
async fn the_deployments_command_line_serves_and_runs_a_job() {
    let Some(kubectl) = kubectl() else { return };
    let deploy = deployment(&kubectl, "deploy/kustomize/base");
    let dir = tempfile::tempdir().unwrap();
    let db = support::postgres_db("kustomize")
        .unwrap_or_else(|| dir.path().join("prova.db").display().to_string());
    let token = "k8s-test-token-7f3a9c";
    let serve = start(&deploy, &db, token, dir.path());
    let http = reqwest::Client::new();

    // Every probe's path answers without the token.
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let path = c[probe]["httpGet"]["path"].as_str().unwrap();
        let r = http
            .get(format!("{}{path}", serve.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{probe} {path}");
    }
    // The token from the Secret guards the API.
    let jobs = format!("{}/api/v1/jobs", serve.url);
    assert_eq!(http.get(&jobs).send().await.unwrap().status(), 401);

    // A job in the scratch image's reach (built-in steps) runs to the end.
    let suite = std::fs::read_to_string(root().join("deploy/k8s/example-suite.yaml")).unwrap();
    let r = http
        .post(&jobs)
        .bearer_auth(token)
        .body(suite)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let id = r.json::<Value>().await.unwrap()["JobID"].as_i64().unwrap();
    let started = Instant::now();
    let state = loop {
        let status: Value = http
            .get(format!("{jobs}/{id}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = status["State"].as_str().unwrap_or("").to_string();
        if state != "Started" && !state.is_empty() || started.elapsed() > Duration::from_secs(30) {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(state, "Completed");

    // SIGTERM (what the kubelet sends) ends it cleanly within the grace.
    let grace = deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    let mut serve = serve;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(serve.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(s) = serve.child.try_wait().unwrap() {
            break s.code();
        }
        assert!(
            started.elapsed() < Duration::from_secs(grace),
            "still running after {grace}s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}
