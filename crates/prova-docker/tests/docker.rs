//! The `docker` step against the real Docker engine, driven through the
//! engine on a real SQLite store.
//!
//! The image is built here: `tests/fixture/fixture.c` compiled with
//! `gcc -static`, alone in an image FROM scratch (no shell, no tar), built
//! through the Engine API from an in-memory context. Every test labels its
//! containers `ptest=<test>` and checks that none remain afterwards.
//!
//! Docker must be reachable: an unreachable engine fails these tests, unless
//! `PROVA_SKIP_DOCKER=1` is set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::{BuildImageOptionsBuilder, ListContainersOptionsBuilder};
use futures::StreamExt;
use prova_core::node::Format;
use prova_core::{Event, EventQuery, JobState};
use prova_engine::prepare::prepare_str;
use prova_engine::runner::{JobOutcome, RunOptions, run_job};
use prova_store::{SqlStore, Store};
use serde_json::Value;

const IMAGE: &str = "prova-test/docker-fixture:latest";

fn registry() -> prova_engine::Registry {
    let mut r = prova_engine::plugins::registry();
    prova_docker::register(&mut r);
    r
}

/// A Docker client, or `None` when Docker is unreachable and
/// `PROVA_SKIP_DOCKER=1` says that is fine.
async fn docker() -> Option<Docker> {
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
fn image() -> &'static str {
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

async fn build_image() -> Result<(), String> {
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

/// Containers labelled `ptest=<name>`, running or not.
async fn containers(docker: &Docker, name: &str) -> Vec<String> {
    let filters = HashMap::from([("label", vec![format!("ptest={name}")])]);
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

async fn assert_none_left(docker: &Docker, name: &str) {
    let left = containers(docker, name).await;
    assert!(left.is_empty(), "containers left behind: {left:?}");
}

/// A one-target job with one docker step labelled `run`. `params` is a
/// YAML flow mapping body; `step_extra` adds keys to the step (timeout).
fn job(name: &str, params: &str, step_extra: &str) -> String {
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

struct Ran {
    outcome: JobOutcome,
    events: Vec<Event>,
    artifacts: tempfile::TempDir,
}

impl Ran {
    fn named(&self, name: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e.name == name)
            .filter_map(|e| e.payload.as_ref())
            .collect()
    }
    fn one(&self, name: &str) -> &Value {
        let v = self.named(name);
        assert_eq!(v.len(), 1, "expected one {name} event, found {}", v.len());
        v[0]
    }
    fn target_err(&self) -> String {
        self.one("TargetErr")["Error"].as_str().unwrap().to_string()
    }
}

async fn run(yaml: &str, opts: RunOptions) -> Ran {
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

#[tokio::test]
async fn a_passing_run_brings_results_and_cases_back() {
    let Some(docker) = docker().await else { return };
    let yaml = job(
        "pass",
        r#"args: ["out:hello from the container", "err:a warning", "junit:/results/junit.xml:2:0:1",
                 "write:/results/logs/extra.txt:some log", "write:/results/coverage.xml:<coverage/>"],
           results_dir: /results/"#,
        "",
    );
    let image = image();
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    let start = ran.one("DockerStart");
    assert_eq!(start["Image"], image);
    assert_eq!(start["ContainerID"].as_str().unwrap().len(), 64);
    assert!(
        ran.one("DockerStdout")["Msg"]
            .as_str()
            .unwrap()
            .contains("hello from the container")
    );
    assert_eq!(ran.one("DockerStderr")["Msg"], "a warning\n");
    let end = ran.one("DockerEnd");
    assert_eq!(end["ExitCode"], 0);
    assert_eq!(end["OOMKilled"], false);
    assert!(end["DurationMs"].as_u64().is_some());

    let art = ran.one("Artifacts");
    assert_eq!(art["Files"], 3);
    assert_eq!(art["Sha256"].as_str().unwrap().len(), 64);
    let path = Path::new(art["Path"].as_str().unwrap());
    assert!(path.starts_with(ran.artifacts.path()));
    assert_eq!(
        std::fs::read_to_string(path.join("logs/extra.txt")).unwrap(),
        "some log"
    );
    assert!(path.join("junit.xml").is_file());

    let cases = ran.named("TestCaseResult");
    assert_eq!(cases.len(), 3);
    assert!(cases.iter().all(|c| c["Suite"] == "fixture-suite"));
    assert_eq!(cases.iter().filter(|c| c["Status"] == "skipped").count(), 1);
    assert_eq!(cases[0]["File"], "junit.xml");
    let sum = ran.one("TestCasesSummary");
    assert_eq!(
        (sum["Total"].as_u64(), sum["Passed"].as_u64()),
        (Some(3), Some(2))
    );
    assert!(ran.named("ResultsFileError").is_empty());
    assert_none_left(&docker, "pass").await;
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_the_code_and_the_output_tail() {
    let Some(docker) = docker().await else { return };
    let yaml = job(
        "exit",
        r#"args: ["out:working", "err:something broke badly", "envexit:CODE"], env: ["CODE=3"]"#,
        "",
    );
    image();
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(!ran.outcome.success());
    let err = ran.target_err();
    assert!(err.contains("exit status 3"), "{err}");
    assert!(err.contains("something broke badly"), "{err}");
    assert_eq!(ran.one("DockerEnd")["ExitCode"], 3);
    assert_none_left(&docker, "exit").await;
}

#[tokio::test]
async fn a_timeout_is_named_and_the_container_removed() {
    let Some(docker) = docker().await else { return };
    let yaml = job(
        "timeout",
        r#"args: ["out:started", "sleep:60"], timeout: 1500ms"#,
        "",
    );
    image();
    let t0 = Instant::now();
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    let err = ran.target_err();
    assert!(err.starts_with("timed out after 1500ms"), "{err}");
    assert!(err.contains("started"), "{err}");
    assert_eq!(ran.one("DockerEnd")["TimedOut"], true);
    assert_none_left(&docker, "timeout").await;
}

#[tokio::test]
async fn an_oom_kill_is_named() {
    let Some(docker) = docker().await else { return };
    let yaml = job("oom", r#"args: ["alloc"], memory: 16m"#, "");
    image();
    let ran = run(&yaml, RunOptions::default()).await;
    let err = ran.target_err();
    assert!(
        err.starts_with("killed: out of memory (limit 16m)"),
        "{err}"
    );
    assert_eq!(ran.one("DockerEnd")["OOMKilled"], true);
    assert_none_left(&docker, "oom").await;
}

#[tokio::test]
async fn cancelling_the_job_removes_the_container() {
    let Some(docker) = docker().await else { return };
    let yaml = job("cancel", r#"args: ["sleep:60"]"#, "");
    image();
    let opts = RunOptions::default();
    let cancel = opts.cancel.clone();
    let watcher = {
        let docker = docker.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            while containers(&docker, "cancel").await.is_empty() {
                assert!(
                    t0.elapsed() < Duration::from_secs(30),
                    "no container started"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            cancel.cancel();
        })
    };
    let t0 = Instant::now();
    let ran = run(&yaml, opts).await;
    watcher.await.unwrap();
    assert_eq!(ran.outcome.state, JobState::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert_none_left(&docker, "cancel").await;
}

#[tokio::test]
async fn the_engines_step_timeout_drops_the_step_and_the_guard_removes_it() {
    let Some(docker) = docker().await else { return };
    let yaml = job("guard", r#"args: ["sleep:60"]"#, "          timeout: 2s\n");
    image();
    let ran = run(&yaml, RunOptions::default()).await;
    let err = ran.target_err();
    assert!(err.contains("timed out after 2s"), "{err}");
    // The guard removes it in the background.
    let t0 = Instant::now();
    while !containers(&docker, "guard").await.is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the container outlived its step"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_missing_results_dir_fails_clearly() {
    let Some(docker) = docker().await else { return };
    let yaml = job(
        "nores",
        r#"args: ["out:no results"], results_dir: /results"#,
        "",
    );
    image();
    let ran = run(&yaml, RunOptions::default()).await;
    assert_eq!(
        ran.target_err(),
        "results directory /results not found in the container"
    );
    assert!(ran.named("Artifacts").is_empty());
    assert_none_left(&docker, "nores").await;
}

#[tokio::test]
async fn failing_cases_fail_the_target_unless_told_otherwise() {
    let Some(docker) = docker().await else { return };
    image();
    let yaml = job(
        "cases",
        r#"args: ["junit:/results/junit.xml:1:2:0"], results_dir: /results"#,
        "",
    );
    let ran = run(&yaml, RunOptions::default()).await;
    let err = ran.target_err();
    assert!(
        err.starts_with(
            "2 of 3 test cases failed: fixture-suite: fail_0 (expected 1, got 2); fixture-suite: fail_1"
        ),
        "{err}"
    );
    assert_eq!(ran.one("DockerEnd")["ExitCode"], 0);
    assert_eq!(ran.named("TestCaseResult").len(), 3);

    let yaml = job(
        "cases2",
        r#"args: ["junit:/results/junit.xml:1:2:0"], results_dir: /results, fail_on_test_failures: false"#,
        "",
    );
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    let cases = ran.named("TestCaseResult");
    assert_eq!(cases.iter().filter(|c| c["Status"] == "failed").count(), 2);
    let failed = cases.iter().find(|c| c["Status"] == "failed").unwrap();
    assert_eq!(failed["Message"], "expected 1, got 2");
    assert_eq!(failed["Output"], "assertion trace 0");
    assert_none_left(&docker, "cases").await;
    assert_none_left(&docker, "cases2").await;
}

#[tokio::test]
async fn a_malformed_junit_file_is_reported() {
    let Some(docker) = docker().await else { return };
    image();
    let yaml = job(
        "badxml",
        r#"args: ["write:/results/junit.xml:<testsuite><testcase name='a'>", "write:/results/ok.xml:<testsuite name='s'><testcase name='b'/></testsuite>"],
           results_dir: /results"#,
        "",
    );
    let ran = run(&yaml, RunOptions::default()).await;
    let err = ran.target_err();
    assert!(
        err.starts_with("results file junit.xml could not be read: invalid JUnit XML"),
        "{err}"
    );
    assert_eq!(ran.one("ResultsFileError")["File"], "junit.xml");
    assert_eq!(ran.named("TestCaseResult").len(), 1);
    assert_none_left(&docker, "badxml").await;
}

#[tokio::test]
async fn mounts_workdir_and_env_reach_the_container() {
    let Some(docker) = docker().await else { return };
    image();
    let input = tempfile::tempdir().unwrap();
    std::fs::write(input.path().join("data.txt"), "from the host").unwrap();
    let yaml = job(
        "mounts",
        &format!(
            r#"args: ["copy:/in/data.txt:/results/data.txt", "write:/results/target.txt:{{{{ .FQDN }}}}", "cwdexit"],
               mounts: ["{}:/in:ro"], workdir: /work, user: "0:0", network: none, cpus: "0.5",
               results_dir: /results"#,
            input.path().display()
        ),
        "",
    );
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    let path = PathBuf::from(ran.one("Artifacts")["Path"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(path.join("data.txt")).unwrap(),
        "from the host"
    );
    assert_eq!(
        std::fs::read_to_string(path.join("target.txt")).unwrap(),
        "t1.lab"
    );
    assert_none_left(&docker, "mounts").await;
}

#[tokio::test]
async fn output_is_bounded() {
    let Some(docker) = docker().await else { return };
    image();
    // ~2.2 MB of stdout.
    let yaml = job("spam", r#"args: ["spam:40000"], emit_output: true"#, "");
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    let out = ran.one("DockerStdout");
    let msg = out["Msg"].as_str().unwrap();
    assert!(msg.len() <= prova_docker::MAX_OUTPUT, "{}", msg.len());
    assert!(out["DroppedBytes"].as_u64().unwrap() > 0);
    assert!(
        msg.trim_end()
            .ends_with("line 39999 of spam, padded to look like a log line")
    );

    let yaml = job("quiet", r#"args: ["out:hidden"], emit_output: false"#, "");
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(ran.named("DockerStdout").is_empty());
    assert_none_left(&docker, "spam").await;
    assert_none_left(&docker, "quiet").await;
}

#[tokio::test]
async fn a_missing_image_is_not_pulled_by_default() {
    let Some(docker) = docker().await else { return };
    let yaml = job("noimage", "", "").replace(IMAGE, "prova-test/not-here:1");
    let ran = run(&yaml, RunOptions::default()).await;
    let err = ran.target_err();
    assert!(
        err.contains(
            "image \"prova-test/not-here:1\" is not on the Docker engine and pull is \"never\""
        ),
        "{err}"
    );
    assert!(ran.named("DockerStart").is_empty());
    assert_none_left(&docker, "noimage").await;
}

#[tokio::test]
async fn the_image_runs_without_a_shell() {
    let Some(docker) = docker().await else { return };
    image();
    // The entrypoint replaced by a program that does not exist: the engine
    // says so when starting, and the container is still removed.
    let yaml = job("nosh", r#"command: ["/bin/sh", "-c", "echo hi"]"#, "");
    let ran = run(&yaml, RunOptions::default()).await;
    let err = ran.target_err();
    assert!(err.starts_with("cannot start the container"), "{err}");
    assert_none_left(&docker, "nosh").await;
}
