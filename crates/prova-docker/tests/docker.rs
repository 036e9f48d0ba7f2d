//! The `docker` step against the real Docker engine, driven through the
//! engine on a real SQLite store.
//!
//! The image is built here (`support`): `tests/fixture/fixture.c` compiled
//! with `gcc -static`, alone in an image FROM scratch (no shell, no tar),
//! built through the Engine API from an in-memory context. Every test labels
//! its containers `ptest=<test>` and checks that none remain afterwards,
//! listing them by prova's own label (`prova.managed=true`) and its own.
//!
//! Docker must be reachable: an unreachable engine fails these tests, unless
//! `PROVA_SKIP_DOCKER=1` is set.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prova_core::JobState;
use prova_engine::runner::RunOptions;
use support::{IMAGE, assert_none_left, containers, docker, image, job, run};

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
    let res = ran.one("DockerResults");
    assert_eq!(res["Files"], 3);
    assert_eq!(res["Bytes"], art["Bytes"]);
    for k in ["FetchMs", "WaitToResultsMs", "ExitToResultsMs"] {
        assert!(res[k].as_f64().is_some_and(|ms| ms >= 0.0), "{k}: {res}");
    }
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

/// Watches for the test's container to appear under prova's label while
/// the job runs: whether it did within 30 s.
fn seen(docker: &bollard::Docker, name: &'static str) -> tokio::task::JoinHandle<bool> {
    let docker = docker.clone();
    tokio::spawn(async move {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if !containers(&docker, name).await.is_empty() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    })
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
    let watch = seen(&docker, "timeout");
    let t0 = Instant::now();
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(
        watch.await.unwrap(),
        "no container labelled prova.managed=true ran"
    );
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
    // The engine's OOMKilled flag, or (when the engine missed the kernel's
    // OOM event, as it can on a busy cgroup v2 host) the SIGKILL under the
    // limit named as most likely out of memory.
    if ran.one("DockerEnd")["OOMKilled"] == true {
        assert!(
            err.starts_with("killed: out of memory (limit 16m)"),
            "{err}"
        );
    } else {
        assert!(
            err.starts_with("killed by SIGKILL (exit status 137) under a memory limit of 16m: most likely out of memory"),
            "{err}"
        );
    }
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
async fn junit_nested_2000_deep_is_reported_and_the_container_removed() {
    // It used to overflow the stack: the process aborted and the
    // container was left behind.
    let Some(docker) = docker().await else { return };
    image();
    let deep = format!(
        "{}{}",
        "<testsuite>".repeat(2000),
        "</testsuite>".repeat(2000)
    );
    let yaml = job(
        "deepxml",
        &format!(
            r#"args: ["write:/results/deep.xml:{deep}", "write:/results/ok.xml:<testsuite name='s'><testcase name='b'/></testsuite>"],
           results_dir: /results"#
        ),
        "",
    );
    let ran = run(&yaml, RunOptions::default()).await;
    let err = ran.target_err();
    assert!(
        err.starts_with("results file deep.xml could not be read: deep.xml: line 1, column 705: elements nested more than 64 deep"),
        "{err}"
    );
    assert_eq!(ran.named("TestCaseResult").len(), 1);
    assert_none_left(&docker, "deepxml").await;
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
async fn an_image_without_a_shell_brings_its_results_back() {
    let Some(docker) = docker().await else { return };
    image();
    // The image holds one static binary and nothing else: no shell, no tar,
    // no sleep. Checked on a container made from it (never started).
    let probe = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            bollard::models::ContainerCreateBody {
                image: Some(IMAGE.into()),
                labels: Some([("ptest".to_string(), "nosh-probe".to_string())].into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let stat = |path: &'static str| {
        let docker = docker.clone();
        let id = probe.id.clone();
        async move {
            let opts = bollard::query_parameters::ContainerArchiveInfoOptionsBuilder::new()
                .path(path)
                .build();
            docker.get_container_archive_info(&id, Some(opts)).await
        }
    };
    assert!(stat("/fixture").await.is_ok());
    for absent in [
        "/bin",
        "/bin/sh",
        "/usr/bin/tar",
        "/bin/tar",
        "/bin/sleep",
        "/usr",
    ] {
        assert!(stat(absent).await.is_err(), "{absent} is in the image");
    }
    let rm = bollard::query_parameters::RemoveContainerOptionsBuilder::new()
        .force(true)
        .build();
    docker.remove_container(&probe.id, Some(rm)).await.unwrap();

    // That image runs and its results come back.
    let yaml = job(
        "nosh",
        r#"args: ["junit:/results/junit.xml:4:0:1", "gen:/results/data:20:200000"], results_dir: /results"#,
        "",
    );
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    assert_eq!(ran.named("TestCaseResult").len(), 5);
    assert_eq!(ran.one("Artifacts")["Files"], 21);
    assert_none_left(&docker, "nosh").await;

    // A program that is not in it (a shell) cannot start: the engine says
    // so, and the container is still removed.
    let yaml = job("nosh2", r#"command: ["/bin/sh", "-c", "echo hi"]"#, "");
    let ran = run(&yaml, RunOptions::default()).await;
    let err = ran.target_err();
    assert!(err.starts_with("cannot start the container"), "{err}");
    assert_none_left(&docker, "nosh2").await;
}

#[tokio::test]
async fn a_failing_suite_fails_and_still_reports_its_cases() {
    let Some(docker) = docker().await else { return };
    image();
    // The usual failing suite: cases fail, the report is written, the
    // process exits 1.
    let yaml = job(
        "failing",
        r#"args: ["junit:/results/junit.xml:2:1:1", "err:1 test failed", "exit:1"], results_dir: /results"#,
        "",
    );
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(!ran.outcome.success());
    let err = ran.target_err();
    assert!(err.starts_with("exit status 1; output: "), "{err}");
    assert!(err.contains("1 test failed"), "{err}");
    assert_eq!(ran.one("DockerEnd")["ExitCode"], 1);
    let cases = ran.named("TestCaseResult");
    assert_eq!(cases.len(), 4);
    let failed: Vec<_> = cases.iter().filter(|c| c["Status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["Name"], "fail_0");
    assert_eq!(failed[0]["Message"], "expected 1, got 2");
    let sum = ran.one("TestCasesSummary");
    assert_eq!(
        (
            sum["Passed"].as_u64(),
            sum["Failed"].as_u64(),
            sum["Skipped"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(ran.one("Artifacts")["Files"], 1);
    assert_none_left(&docker, "failing").await;
}

#[tokio::test]
async fn a_100_mb_results_directory_comes_out_intact() {
    let Some(docker) = docker().await else { return };
    image();
    // 100 MiB of incompressible bytes: one 40 MiB file and 2,000 files of
    // 7-100 KiB in 14 directories, plus a JUnit file.
    const BIG: u64 = 40 << 20;
    const MANY: (u64, u64) = (2000, 60 << 20);
    let yaml = job(
        "big",
        &format!(
            r#"args: ["gen:/results/big:1:{BIG}", "gen:/results/many:{}:{}", "junit:/results/junit.xml:3:0:1"],
               results_dir: /results"#,
            MANY.0, MANY.1
        ),
        "",
    );
    let mut expected = std::collections::BTreeMap::new();
    for (dir, (n, bytes)) in [("big", (1, BIG)), ("many", MANY)] {
        for (path, v) in support::gen_files(n, bytes) {
            expected.insert(format!("{dir}/{path}"), v);
        }
    }
    let watch = seen(&docker, "big");
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(
        watch.await.unwrap(),
        "no container labelled prova.managed=true ran"
    );
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));

    let art = ran.one("Artifacts");
    let path = PathBuf::from(art["Path"].as_str().unwrap());
    let mut got = support::tree(&path);
    let junit = got.remove("junit.xml").expect("junit.xml came back");
    // Count, every size and every byte (a sha256 per file, and one over the
    // tree).
    assert_eq!(got.len(), expected.len());
    let total: u64 = got.values().map(|(s, _)| s).sum();
    assert_eq!(total, 100 << 20);
    for (p, v) in &expected {
        assert_eq!(got.get(p), Some(v), "{p}");
    }
    assert_eq!(support::tree_digest(&got), support::tree_digest(&expected));
    assert_eq!(art["Files"], 2002);
    assert_eq!(art["Bytes"], (100 << 20) + junit.0);
    let res = ran.one("DockerResults");
    assert_eq!(res["Bytes"], art["Bytes"]);
    eprintln!("100 MiB results: {res}");
    assert_eq!(ran.one("TestCasesSummary")["Total"], 4);
    assert_none_left(&docker, "big").await;
}

#[tokio::test]
async fn the_example_builds_and_runs() {
    let Some(docker) = docker().await else { return };
    // examples/docker: its script builds the image (through the docker CLI),
    // its descriptor runs it. Tagged apart from the example's own tag.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let tag = "prova-test/example-suite:1";
    let built = std::process::Command::new(root.join("examples/docker/build-image.sh"))
        .env("PROVA_EXAMPLE_IMAGE", tag)
        .output();
    match built {
        Ok(o) if o.status.success() => {}
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("docker: command not found") => {
            eprintln!("skipped: no docker CLI for build-image.sh");
            return;
        }
        Ok(o) => panic!(
            "build-image.sh failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run build-image.sh: {e}"),
    }
    let yaml = std::fs::read_to_string(root.join("examples/docker/docker.yaml")).unwrap();
    assert!(yaml.contains("image: [prova-example/junit-suite:1]"));
    let yaml = yaml.replace(
        "image: [prova-example/junit-suite:1]",
        &format!("image: [{tag}]\n            labels: [ptest=example]"),
    );
    let ran = run(&yaml, RunOptions::default()).await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    let cases = ran.named("TestCaseResult");
    assert_eq!(cases.len(), 5);
    assert_eq!(cases.iter().filter(|c| c["Status"] == "passed").count(), 4);
    assert_eq!(cases.iter().filter(|c| c["Status"] == "skipped").count(), 1);
    assert!(cases.iter().all(|c| c["Suite"] == "checkout-api"));
    assert_none_left(&docker, "example").await;
}
