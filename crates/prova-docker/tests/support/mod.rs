//! What the Docker tests and the results benchmark share: the fixture image
//! (`tests/fixture/fixture.c` built with `gcc -static`, alone in an image
//! FROM scratch: no shell, no tar), a one-target job around the `docker`
//! step, running it on a real SQLite store, and the contents the fixture's
//! `gen` action writes.
//!
//! Docker must be reachable: an unreachable engine fails, unless
//! `PROVA_SKIP_DOCKER=1` is set.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, ListContainersOptionsBuilder};
use futures::StreamExt;
use prova_core::node::Format;
use prova_core::{Event, EventQuery};
use prova_engine::prepare::prepare_str;
use prova_engine::runner::{JobOutcome, RunOptions, run_job};
use prova_store::{SqlStore, Store};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub const IMAGE: &str = "prova-test/docker-fixture:latest";

pub fn registry() -> prova_engine::Registry {
    let mut r = prova_engine::plugins::registry();
    prova_docker::register(&mut r);
    r
}

/// A Docker client, or `None` when Docker is unreachable and
/// `PROVA_SKIP_DOCKER=1` says that is fine.
pub async fn docker() -> Option<Docker> {
    let skip = std::env::var("PROVA_SKIP_DOCKER").is_ok_and(|v| v == "1");
    let d = match Docker::connect_with_defaults() {
        Ok(d) => d,
        Err(e) if skip => {
            eprintln!("skipped: Docker unreachable ({e}) and PROVA_SKIP_DOCKER=1");
            return None;
        }
        Err(e) => panic!("cannot reach the Docker engine: {e}; set PROVA_SKIP_DOCKER=1 to skip"),
    };
    match d.negotiate_version().await {
        Ok(d) => Some(d),
        Err(e) if skip => {
            eprintln!("skipped: Docker unreachable ({e}) and PROVA_SKIP_DOCKER=1");
            None
        }
        Err(e) => panic!(
            "cannot reach the Docker engine (DOCKER_HOST or /var/run/docker.sock): {e}; \
             these tests need it; set PROVA_SKIP_DOCKER=1 to skip them"
        ),
    }
}

/// Builds the fixture image once per test binary (on its own runtime, as
/// each test has its own).
pub fn image() -> &'static str {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let r = BUILT.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(build_image())
        })
        .join()
        .unwrap_or_else(|_| Err("building the image panicked".into()))
    });
    if let Err(e) = r {
        panic!("cannot build the test image: {e}");
    }
    IMAGE
}

pub async fn build_image() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixture/fixture.c");
    let bin = dir.path().join("fixture");
    let out = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .map_err(|e| format!("cannot run gcc (needed to build the fixture): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "gcc -static failed (are glibc's static libraries installed?): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let binary = std::fs::read(&bin).map_err(|e| e.to_string())?;
    let dockerfile = b"FROM scratch\nCOPY fixture /fixture\nENTRYPOINT [\"/fixture\"]\n";
    let mut ctx = tar::Builder::new(Vec::new());
    for (name, data, mode) in [
        ("Dockerfile", &dockerfile[..], 0o644),
        ("fixture", &binary[..], 0o755),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_cksum();
        ctx.append_data(&mut h, name, data)
            .map_err(|e| e.to_string())?;
    }
    let ctx = ctx.into_inner().map_err(|e| e.to_string())?;
    let docker = docker().await.ok_or("Docker unreachable")?;
    let opts = BuildImageOptionsBuilder::new()
        .t(IMAGE)
        .rm(true)
        .forcerm(true)
        .build();
    let mut build = docker.build_image(opts, None, Some(bollard::body_full(ctx.into())));
    while let Some(step) = build.next().await {
        let info = step.map_err(|e| format!("docker build: {e}"))?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            return Err(format!("docker build: {e}"));
        }
    }
    Ok(())
}

/// Containers prova manages (`prova.managed=true`) that a test labelled
/// `ptest=<name>`, running or not. Both labels must be on a container for
/// it to be listed, so a test that sees its container here also proves the
/// step labelled it.
pub async fn containers(docker: &Docker, name: &str) -> Vec<String> {
    let filters = HashMap::from([(
        "label",
        vec![
            format!("{}=true", prova_docker::LABEL_MANAGED),
            format!("ptest={name}"),
        ],
    )]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(opts))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

pub async fn assert_none_left(docker: &Docker, name: &str) {
    let left = containers(docker, name).await;
    assert!(
        left.is_empty(),
        "containers left behind (label {}=true, ptest={name}): {left:?}",
        prova_docker::LABEL_MANAGED
    );
}

/// A one-target job with one docker step labelled `run`. `params` is a
/// YAML flow mapping body; `step_extra` adds keys to the step (timeout).
pub fn job(name: &str, params: &str, step_extra: &str) -> String {
    format!(
        "JobName: docker-{name}
Runs: 1
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters:
      Targets:
        - ID: t1
          FQDN: t1.lab
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: T
      Steps:
        - name: docker
          label: run
{step_extra}          parameters: {{image: \"{IMAGE}\", labels: [\"ptest={name}\"], {params}}}
Reporting:
  RunReporters:
    - name: TargetSuccess
      parameters: {{SuccessExpression: \"=100%\"}}
"
    )
}

pub struct Ran {
    pub outcome: JobOutcome,
    pub events: Vec<Event>,
    pub artifacts: tempfile::TempDir,
}

impl Ran {
    pub fn named(&self, name: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e.name == name)
            .filter_map(|e| e.payload.as_ref())
            .collect()
    }
    pub fn one(&self, name: &str) -> &Value {
        let v = self.named(name);
        assert_eq!(v.len(), 1, "expected one {name} event, found {}", v.len());
        v[0]
    }
    pub fn target_err(&self) -> String {
        self.one("TargetErr")["Error"].as_str().unwrap().to_string()
    }
}

pub async fn run(yaml: &str, opts: RunOptions) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let prepared =
        prepare_str(yaml, Format::Yaml, None, &registry()).unwrap_or_else(|e| panic!("{e}"));
    let artifacts = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        artifacts_root: Some(artifacts.path().to_path_buf()),
        ..opts
    };
    let outcome = run_job(prepared, store.clone(), opts).await.unwrap();
    let events = store
        .query_events(&EventQuery::for_job(outcome.job_id))
        .await
        .unwrap();
    Ran {
        outcome,
        events,
        artifacts,
    }
}

/// What the fixture's `gen:DIR:N:BYTES` action writes, relative to DIR:
/// `d<k%7>/f<k>.bin` → its bytes' (size, sha256), computed here from the
/// same generator (see `tests/fixture/fixture.c`).
pub fn gen_files(n: u64, bytes: u64) -> BTreeMap<String, (u64, String)> {
    let weight = |k: u64| 1 + (k * 7919) % 13;
    let total_w: u64 = (0..n).map(weight).sum();
    let mut written = 0;
    let mut out = BTreeMap::new();
    let mut buf = vec![0u8; 1 << 16];
    for k in 0..n {
        let size = if k + 1 == n {
            bytes - written
        } else {
            bytes * weight(k) / total_w
        };
        written += size;
        let mut s = (k + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (n * 1_000_003 + bytes);
        if s == 0 {
            s = 1;
        }
        let mut hasher = Sha256::new();
        let mut left = size as usize;
        while left > 0 {
            let chunk = left.min(buf.len());
            for i in (0..chunk).step_by(8) {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let le = s.to_le_bytes();
                let m = (chunk - i).min(8);
                buf[i..i + m].copy_from_slice(&le[..m]);
            }
            hasher.update(&buf[..chunk]);
            left -= chunk;
        }
        out.insert(
            format!("d{}/f{k}.bin", k % 7),
            (size, hex(&hasher.finalize())),
        );
    }
    out
}

/// Every regular file below `dir` (relative, `/`-separated) → (size,
/// sha256). Fails on anything that is neither a file nor a directory.
pub fn tree(dir: &Path) -> BTreeMap<String, (u64, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            let p = e.path();
            if t.is_dir() {
                stack.push(p);
            } else {
                assert!(t.is_file(), "not a regular file: {}", p.display());
                let mut f = std::fs::File::open(&p).unwrap();
                let mut hasher = Sha256::new();
                let size = std::io::copy(&mut f, &mut hasher).unwrap();
                let rel = p
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, (size, hex(&hasher.finalize())));
            }
        }
    }
    out
}

/// One checksum over a whole tree: sha256 of its sorted `path size sha256`
/// lines.
pub fn tree_digest(files: &BTreeMap<String, (u64, String)>) -> String {
    let mut h = Sha256::new();
    for (path, (size, sum)) in files {
        h.update(format!("{path} {size} {sum}\n"));
    }
    hex(&h.finalize())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
