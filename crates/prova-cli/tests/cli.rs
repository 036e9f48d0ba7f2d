//! The real `prova` binary on the examples and the ConTest corpus: output,
//! exit codes and stored events.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

mod support;
use support::{Env, job_id, root, running};

fn corpus(name: &str) -> PathBuf {
    root()
        .join("../shared/corpus/contest/descriptors")
        .join(name)
}

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

#[test]
fn examples_run_with_the_documented_exit_codes() {
    let env = Env::new();
    for (file, want) in [
        ("hello.yaml", 0),
        ("csv-inventory.json", 0),
        ("retry.yaml", 0),
        ("variables.yaml", 0),
        ("cleanup.yaml", 1),
    ] {
        let (code, out, err) = env.run(&["run", &example(file)]);
        assert_eq!(code, want, "{file}\n{out}\n{err}");
        assert!(out.contains("Completed"), "{file}: {out}");
    }
    let (code, out, _) = env.run(&["jobs", "--json"]);
    assert_eq!(code, 0);
    let jobs: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(jobs.len(), 5);
    assert!(jobs.iter().all(|j| j["State"] == "Completed"));
}

#[test]
fn hello_world_stores_every_event_and_rebuilds_status() {
    let env = Env::new();
    let (code, _, err) = env.run(&["run", &example("hello.yaml")]);
    assert_eq!(code, 0, "{err}");
    let id = job_id(&err);
    let out = env.events(id, &["--name", "CmdStdout"]);
    let mut msgs: Vec<String> = out
        .iter()
        .map(|e| e["Payload"]["Msg"].as_str().unwrap().to_string())
        .collect();
    msgs.sort();
    assert_eq!(msgs[0], "hello from alpha (ALPHA.EXAMPLE.ORG)\n");
    for e in &out {
        for field in [
            "JobID",
            "RunID",
            "TestName",
            "TestAttempt",
            "TestStepLabel",
            "Target",
            "EventName",
            "EmitTime",
        ] {
            assert!(e.get(field).is_some(), "{field} missing in {e}");
        }
    }
    let (code, st, _) = env.run(&["status", &id.to_string(), "--json"]);
    assert_eq!(code, 0);
    let st: Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["State"], "Completed");
    assert_eq!(
        st["RunStatuses"][0]["TestStatuses"][0]["TargetStatuses"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(st["JobReport"]["RunReports"][0][0]["Success"], true);
    let (_, tree, _) = env.run(&["status", &id.to_string()]);
    assert!(tree.contains("step hello: 3 ok, 0 failed"), "{tree}");
    // Filters narrow.
    let only = env.events(id, &["--target", "beta", "--step", "hello"]);
    assert!(!only.is_empty());
    assert!(
        only.iter()
            .all(|e| e["Target"]["ID"] == "beta" && e["TestStepLabel"] == "hello")
    );
}

#[test]
fn invalid_descriptors_report_every_error_with_file_path_and_line() {
    let env = Env::new();
    let bad = env.write(
        "bad.yaml",
        "JobName: x\nTags: [ok, _reserved, ok]\nTestDescriptors:\n  - TargetManagerName: Nope\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps:\n        - name: cmd\n          label: 1bad\n        - name: sleep\n          label: s\n          parameters: {duration: [soon]}\nReporting: {}\n",
    );
    let (code, out, _) = env.run(&["validate", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    for want in [
        "bad.yaml:2:12: Tags[1]: invalid tag \"_reserved\"",
        "bad.yaml:2:23: Tags[2]: duplicate tag \"ok\"",
        "bad.yaml:4:24: TestDescriptors[0].TargetManagerName: unknown target manager \"Nope\"",
        "TestDescriptors[0].TestFetcherFetchParameters.Steps[0].label: invalid step label \"1bad\"",
        "TestDescriptors[0].TestFetcherFetchParameters.Steps[0].parameters.executable: missing",
        "Steps[1].parameters.duration[0]: invalid duration \"soon\"",
        "Reporting: expected at least one run or final reporter",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // `run` refuses it too, with exit 2, before anything runs.
    let (code, _, err) = env.run(&["run", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid job descriptor (7 errors)"), "{err}");
    assert!(!env.db().exists(), "nothing recorded for an invalid job");
}

#[test]
fn corpus_descriptors_contest_accepts_are_accepted() {
    let env = Env::new();
    for f in [
        "start-literal.json",
        "start-literal.yaml",
        "start-literal-with-cleanup.json",
        "test-simple.yaml",
        "test-variables.yaml",
        "randecho.json",
    ] {
        let (code, out, _) = env.run(&["validate", corpus(f).to_str().unwrap()]);
        assert_eq!(code, 0, "{f}: {out}");
    }
    // start.json expects ConTest's server layout: test_samples/ beside it.
    let dir = env.dir.path().join("contest");
    std::fs::create_dir_all(dir.join("test_samples")).unwrap();
    std::fs::copy(corpus("start.json"), dir.join("start.json")).unwrap();
    std::fs::copy(corpus("hosts.csv"), dir.join("hosts.csv")).unwrap();
    std::fs::copy(
        corpus("randecho.json"),
        dir.join("test_samples/randecho.json"),
    )
    .unwrap();
    let (code, out, _) = env.run(&["validate", dir.join("start.json").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn corpus_descriptors_contest_rejects_get_clear_errors() {
    let env = Env::new();
    for (f, want) in [
        (
            "lspci.json",
            "Steps[0].label: missing: every step needs a label",
        ),
        ("sleep.json", "invalid step label \"sleeping...\""),
        ("debug.json", "steps[0].parameters.text: missing"),
        ("sshhostname.json", "invalid step label \"some label\""),
        ("terminalexpect.json", "unknown step \"terminalexpect\""),
        ("slowecho.json", "unknown step \"slowecho\""),
        (
            "test-resume.yaml",
            "unknown target manager \"TargetListWithState\"",
        ),
    ] {
        let (code, out, _) = env.run(&["validate", corpus(f).to_str().unwrap()]);
        assert_eq!(code, 2, "{f}: {out}");
        assert!(out.contains(want), "{f}: missing {want:?} in {out}");
        assert!(
            out.contains(&format!("{f}:")),
            "{f}: errors name the file: {out}"
        );
    }
}

/// ConTest's e2e expectation for test-simple.yaml: per run and test,
/// TargetAcquired, then CmdStdout of each step in order, then TargetReleased.
#[test]
fn test_simple_yields_contests_event_order() {
    let env = Env::new();
    let (code, out, err) = env.run(&["run", corpus("test-simple.yaml").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let id = job_id(&err);
    let events = env.events(
        id,
        &[
            "--name",
            "TargetAcquired",
            "--name",
            "CmdStdout",
            "--name",
            "TargetReleased",
        ],
    );
    let got: Vec<String> = events
        .iter()
        .map(|e| {
            let msg = e["Payload"]["Msg"]
                .as_str()
                .map(|m| format!(" {}", m.trim()))
                .unwrap_or_default();
            format!(
                "{} {} {}{msg}",
                e["RunID"],
                e["TestName"].as_str().unwrap(),
                e["EventName"].as_str().unwrap()
            )
        })
        .collect();
    let mut want = Vec::new();
    for run in 1..=2 {
        for t in 1..=2 {
            want.push(format!("{run} Test {t} TargetAcquired"));
            for s in 1..=2 {
                want.push(format!(
                    "{run} Test {t} CmdStdout Test {t}, Step {s}, target T{t}"
                ));
            }
            want.push(format!("{run} Test {t} TargetReleased"));
        }
    }
    assert_eq!(got, want);
}

#[test]
fn test_variables_prints_hello() {
    let env = Env::new();
    let (code, _, err) = env.run(&["run", corpus("test-variables.yaml").to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let events = env.events(job_id(&err), &["--name", "CmdStdout"]);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["Payload"]["Msg"], "Hello\n");
}

/// ConTest's e2e retry test: the waited-for port opens only after the first
/// attempt failed.
#[test]
fn test_retry_fails_then_passes_on_the_second_attempt() {
    let env = Env::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(corpus("test-retry.yaml"))
        .unwrap()
        .replace("[[ .WaitPort]]", &port.to_string())
        .replace("TargetListWithState", "TargetList");
    let file = env.write("test-retry.yaml", &text);
    // The port opens once the first attempt has failed at Step2 (watched in
    // the store), however slow the machine is.
    let db = env.db();
    let opener = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "the first attempt never failed");
            // Never open the store before `prova run` has created it (two
            // processes migrating one new file would race).
            if !db.exists() {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            let out = Command::cargo_bin("prova")
                .unwrap()
                .env("PROVA_DB", &db)
                .args(["events", "1", "--json", "--name", "TargetErr"])
                .output()
                .unwrap();
            if !out.stdout.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let l = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        // Keep it open until the job is surely done.
        std::thread::sleep(Duration::from_secs(30));
        drop(l);
    });
    let (code, out, err) = env.run(&["run", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let events = env.events(
        job_id(&err),
        &[
            "--name",
            "TargetAcquired",
            "--name",
            "CmdStdout",
            "--name",
            "TargetOut",
            "--name",
            "TargetErr",
            "--name",
            "TargetReleased",
        ],
    );
    let got: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["TestAttempt"],
                e["EventName"].as_str().unwrap(),
                e["TestStepLabel"].as_str().unwrap_or("-")
            )
        })
        .collect();
    let want = [
        "0 TargetAcquired -",
        "0 CmdStdout Step1",
        "0 TargetOut Step1",
        "0 TargetErr Step2",
        "0 TargetReleased -",
        "1 TargetAcquired -",
        "1 CmdStdout Step1",
        "1 TargetOut Step1",
        "1 TargetOut Step2",
        "1 CmdStdout Step3",
        "1 TargetOut Step3",
        "1 TargetReleased -",
    ];
    assert_eq!(got, want);
    drop(opener);
}

#[test]
fn junit_output_has_a_suite_per_test_and_run_and_a_case_per_target_and_step() {
    let env = Env::new();
    let junit = env.dir.path().join("out/junit.xml");
    let (code, _, err) = env.run(&[
        "run",
        &example("cleanup.yaml"),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuite name=\"provision and fail (run 1)\""),
        "{xml}"
    );
    assert!(xml.contains("testcase name=\"provision [box1]\""), "{xml}");
    assert!(
        xml.contains("testcase name=\"failOnPurpose [box2]\""),
        "{xml}"
    );
    assert!(xml.contains("<failure"), "{xml}");
    assert!(xml.contains("exit status 1"), "{xml}");
    assert!(
        xml.contains("provisioning box1"),
        "step output is kept: {xml}"
    );
    assert!(xml.contains("testcase name=\"teardown [box1]\""), "{xml}");
}

fn sigint(child: &std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

fn long_job(env: &Env, cleanup_secs: u32) -> PathBuf {
    env.write(
        "long.yaml",
        &format!(
            "JobName: long\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps:\n        - {{name: cmd, label: wait, parameters: {{executable: [sleep], args: [\"60\"]}}}}\n    CleanupFetcherName: literal\n    CleanupFetcherFetchParameters:\n      Steps:\n        - {{name: cmd, label: tidy, parameters: {{executable: [sleep], args: [\"{cleanup_secs}\"]}}}}\nReporting:\n  RunReporters: [{{name: noop}}]\n"
        ),
    )
}

#[test]
fn first_ctrl_c_cancels_gracefully() {
    let env = Env::new();
    let file = long_job(&env, 0);
    let child = env
        .cmd()
        .args(["run", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.wait_for_step(1, "wait");
    let start = Instant::now();
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, st, _) = env.run(&["status", "1", "--json"]);
    let st: Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["State"], "Cancelled");
    let names: Vec<String> = env
        .events(1, &[])
        .iter()
        .map(|e| e["EventName"].as_str().unwrap().to_string())
        .collect();
    assert!(names.contains(&"JobStateCancelling".to_string()));
    assert!(names.contains(&"TargetReleased".to_string()));
    let tidy = env.events(1, &["--step", "tidy", "--name", "TargetOut"]);
    assert_eq!(tidy.len(), 1, "cleanup ran");
}

#[test]
fn second_ctrl_c_exits_at_once_and_kills_children() {
    let env = Env::new();
    let file = long_job(&env, 60);
    let child = env
        .cmd()
        .args(["run", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.wait_for_step(1, "wait");
    sigint(&child);
    env.wait_for_step(1, "tidy");
    let start = Instant::now();
    sigint(&child);
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(out.status.code(), Some(130));
    let ev = env.events(1, &["--step", "tidy", "--name", "CmdStart"]);
    let pid = ev[0]["Payload"]["Pid"].as_i64().unwrap() as i32;
    std::thread::sleep(Duration::from_millis(200));
    assert!(!running(pid), "cleanup's sleep (pid {pid}) still runs");
}

#[test]
fn every_command_help_has_an_example() {
    let env = Env::new();
    for cmd in [
        "run",
        "validate",
        "jobs",
        "status",
        "events",
        "serve",
        "start",
        "list",
        "stop",
        "pause",
        "resume",
        "retry",
        "collector",
        "bench",
        "coverage endpoints",
        "coverage report",
        "coverage untested",
        "coverage tests",
        "coverage diff",
        "coverage bench",
    ] {
        let mut args: Vec<&str> = cmd.split(' ').collect();
        args.push("--help");
        let (code, out, _) = env.run(&args);
        assert_eq!(code, 0);
        assert!(
            out.contains("Example"),
            "{cmd} --help has no example:\n{out}"
        );
    }
    let (_, out, _) = env.run(&["--help"]);
    assert!(out.contains("Exit codes"), "{out}");
}

#[test]
fn status_of_an_unknown_job_is_a_clear_error() {
    let env = Env::new();
    let (code, _, err) = env.run(&["status", "42"]);
    assert_eq!(code, 2);
    assert!(err.contains("job 42 not found"), "{err}");
}

#[test]
fn a_coverage_report_attached_to_a_job_is_one_of_its_events() {
    let env = Env::new();
    let (code, _, err) = env.run(&["run", &example("hello.yaml")]);
    assert_eq!(code, 0, "{err}");
    let id = job_id(&err);
    let k8s = root().join("../shared/corpus/k8s");
    let spec = k8s.join("openapi/v1.36/swagger.json");
    let audit = k8s.join("audit/apisnoop-testdata/audit_event.json");
    let report = |job: &str| {
        env.run(&[
            "coverage",
            "report",
            "--spec",
            spec.to_str().unwrap(),
            "--audit",
            audit.to_str().unwrap(),
            "--job",
            job,
            "--run",
            "1",
        ])
    };
    let (code, _, err) = report(&id.to_string());
    assert_eq!(code, 0, "{err}");
    let events = env.events(id, &["--name", "CoverageReport"]);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(
        (e["Kind"].as_str(), e["RunID"].as_u64()),
        (Some("Job"), Some(1))
    );
    assert_eq!(e["Payload"]["total endpoints"], 908, "{e}");
    // The job's status is rebuilt as before: the report is not a state.
    assert_eq!(env.status(id)["State"], "Completed");

    let (code, _, err) = report("4242");
    assert_ne!(code, 0);
    assert!(err.contains("job 4242 is not in the store"), "{err}");
}

#[test]
fn a_target_manager_failure_fails_the_job_with_exit_3() {
    let env = Env::new();
    env.write("hosts.csv", "1,a.lab,,\n");
    let file = env.write(
        "csv.yaml",
        "JobName: csv\nRuns: 2\nRunInterval: 2s\nTestDescriptors:\n  - TargetManagerName: CSVFileTargetManager\n    TargetManagerAcquireParameters: {FileURI: hosts.csv}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: echo, label: e, parameters: {text: [hi]}}]\nReporting:\n  RunReporters: [{name: noop}]\n",
    );
    let child = env
        .cmd()
        .args(["run", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Once run 1 is over, the inventory disappears.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "run 1 never finished");
        if env.db().exists()
            && !env
                .run(&["events", "1", "--json", "--name", "RunFinished"])
                .1
                .trim()
                .is_empty()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::fs::remove_file(env.dir.path().join("hosts.csv")).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (_, st, _) = env.run(&["status", "1", "--json"]);
    let st: Value = serde_json::from_str(&st).unwrap();
    assert_eq!(st["State"], "Failed");
    assert!(
        st["StateErrMsg"]
            .as_str()
            .unwrap()
            .contains("cannot acquire targets"),
        "{st}"
    );
    assert!(
        st["StateErrMsg"].as_str().unwrap().contains("hosts.csv"),
        "{st}"
    );
}

#[test]
fn kubernetes_examples_and_deploy_descriptors_are_valid() {
    let env = Env::new();
    for f in [
        "examples/k8s/node-junit.yaml",
        "examples/k8s/pytest-service.yaml",
        "deploy/k8s/example-job.yaml",
        "deploy/k8s/example-suite.yaml",
    ] {
        let path = root().join(f);
        let (code, out, err) = env.run(&["validate", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{f}: {out}{err}");
    }
}

/// `prova bench store` on a small job, on SQLite and PostgreSQL: it
/// checks what it measures (a second read of all events equals the first,
/// the status `prova status` reads equals the one rebuilt from every
/// event) and fails otherwise. 5,000 events are read in parts (on
/// PostgreSQL by `COPY`).
#[test]
fn bench_store_reads_back_what_it_wrote_on_both_backends() {
    let env = Env::new();
    let small = [
        "bench",
        "store",
        "--events",
        "5000",
        "--repeat",
        "1",
        "--status-runs",
        "1",
        "--no-python",
    ];
    let (code, out, err) = env.run(&small);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("5000 events, SQLite"), "{out}");
    assert!(out.contains("read all events:"), "{out}");
    let Some(url) = support::postgres_db("bench_store") else {
        return;
    };
    let mut args = small.to_vec();
    args.extend(["--db", &url]);
    let (code, out, err) = env.run(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("5000 events, PostgreSQL"), "{out}");
    assert!(out.contains("`prova status ID` as a process"), "{out}");
}
