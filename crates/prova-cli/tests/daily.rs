//! prova as a daily tool (issue 12): errors that say what to do, commands
//! that do not surprise, completions and the man page. Each message is
//! asserted as a user sees it.

use std::process::Command;

use serde_json::Value;

mod support;
use support::{Env, job_id, root};

fn example(name: &str) -> String {
    root().join("examples").join(name).display().to_string()
}

/// How often `needle` occurs in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

const TYPO: &str = "JobName: typo\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: cmd, label: c, parameters: {executable: [echo], arg: [hi]}}]\nReporting:\n  RunReporters: [{name: TargetSuccess, parameters: {SuccessExpression: \"=100%\"}}]\n";

#[test]
fn a_missing_file_names_its_cause_once() {
    let env = Env::new();
    let (code, _, err) = env.run(&["run", "nope.yaml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot read nope.yaml"), "{err}");
    assert_eq!(count(&err, "(os error 2)"), 1, "cause once: {err}");

    // A library error that prints its source in its own message too.
    let (code, _, err) = env.run(&["coverage", "endpoints", "--spec", "missing.json"]);
    assert_eq!(
        code, 2,
        "docs/coverage.md: unreadable input is exit 2: {err}"
    );
    assert!(err.contains("missing.json"), "{err}");
    assert_eq!(count(&err, "(os error 2)"), 1, "cause once: {err}");
    assert!(!env.db().exists());
}

#[test]
fn server_without_a_scheme_is_taken_as_http() {
    let env = Env::new();
    // Nothing listens on port 1: the address was accepted, as http://.
    let (code, _, err) = env.run(&["list", "--server", "127.0.0.1:1"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("cannot reach http://127.0.0.1:1 (is `prova serve` running there?)"),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "the cause: {err}");

    let (code, _, err) = env.run(&["status", "1", "--server", "ftp://host"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--server \"ftp://host\": expected a URL like http://127.0.0.1:8080"),
        "{err}"
    );
}

#[test]
fn start_of_an_invalid_file_prints_each_error_once_with_the_file_name() {
    let env = Env::new();
    let bad = env.write(
        "bad.yaml",
        "JobName: x\nTestDescriptors:\n  - TargetManagerName: Nope\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: cmd, label: c}]\nReporting: {}\n",
    );
    let bad = bad.to_str().unwrap();
    // With a server (checked here before it is contacted) and without.
    for args in [
        vec!["start", bad, "--server", "127.0.0.1:1"],
        vec!["start", bad],
        vec!["run", bad],
    ] {
        let (code, out, err) = env.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{out}");
        assert!(
            err.starts_with(&format!("{bad}: invalid job descriptor (3 errors)")),
            "{args:?}: {err}"
        );
        for e in [
            "TargetManagerName: unknown target manager \"Nope\"",
            "parameters.executable: missing",
            "Reporting: expected at least one run or final reporter",
        ] {
            assert_eq!(count(&err, e), 1, "{e:?} once in {err}");
        }
        assert_eq!(
            count(&err, bad),
            4,
            "the header and each error name the file: {err}"
        );
    }
    assert!(!env.db().exists());
}

#[test]
fn unknown_step_parameters_warn_with_a_suggestion_and_fail_under_strict() {
    let env = Env::new();
    let job = env.write("typo.yaml", TYPO);
    let job = job.to_str().unwrap();
    let want = "unknown parameter \"arg\" of step \"c\" (cmd): did you mean \"args\"?";

    let (code, out, err) = env.run(&["validate", job]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid job descriptor"), "{out}");
    assert!(err.contains(&format!("warning: {job}:")), "{err}");
    assert!(err.contains(want), "warned by default: {err}");

    let (code, out, _) = env.run(&["validate", "--strict", job]);
    assert_eq!(code, 2);
    assert!(out.contains("invalid job descriptor (1 error)"), "{out}");
    assert!(out.contains(want), "{out}");

    let (code, _, err) = env.run(&["run", "--strict", job]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("(--strict: warnings are errors)"), "{err}");
    assert_eq!(count(&err, want), 1, "{err}");
    assert!(!env.db().exists(), "nothing ran");

    let (code, _, err) = env.run(&["run", job]);
    assert_eq!(code, 0, "a warning does not stop a run: {err}");
    assert_eq!(count(&err, want), 1, "{err}");
}

#[test]
fn a_kubernetes_example_without_a_cluster_is_an_infrastructure_failure() {
    let env = Env::new();
    let (code, out, err) = run_without_cluster(&env);
    assert_eq!(code, 3, "infrastructure, not a test failure\n{out}\n{err}");
    assert!(
        out.contains("hint: the infrastructure failed, not the tests (exit 3)"),
        "{out}"
    );
    assert!(out.contains("a Kubernetes cluster (KUBECONFIG"), "{out}");
    let id = job_id(&err);
    let st = env.status(id);
    assert_eq!(st["Verdict"], "error", "{st}");
    assert!(
        env.dir.path().join("web-e2e-junit.xml").exists(),
        "the junit File is relative to the descriptor"
    );
    assert_eq!(
        st["RunStatuses"][0]["TestStatuses"][0]["TargetStatuses"][0]["Infra"], true,
        "{st}"
    );
}

/// `prova run` of (a copy of) the Kubernetes example with no cluster to
/// reach: its exit code, stdout and stderr. A copy: its junit reporter
/// writes beside the descriptor.
fn run_without_cluster(env: &Env) -> (i32, String, String) {
    let job = env.write(
        "node-junit.yaml",
        &std::fs::read_to_string(example("k8s/node-junit.yaml")).unwrap(),
    );
    let o = env
        .cmd()
        .args(["run", job.to_str().unwrap(), "--no-progress"])
        .env("KUBECONFIG", env.dir.path().join("no-kubeconfig"))
        .env("HOME", env.dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A job whose tests failed only because the infrastructure did (see
/// [`run_without_cluster`]). Returns its id.
fn run_infra_failure(env: &Env) -> i64 {
    let (code, _, err) = run_without_cluster(env);
    assert_eq!(code, 3, "{err}");
    job_id(&err)
}

/// The `Verdict` of job `id` in a jobs list (`[{JobID, Verdict, ...}]`).
fn listed_verdict(list: &Value, id: i64) -> Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|j| j["JobID"] == id)
        .unwrap_or_else(|| panic!("job {id} not listed: {list}"))["Verdict"]
        .clone()
}

#[test]
fn an_infrastructure_failure_is_the_same_error_in_status_lists_api_and_page() {
    let env = Env::new();
    let id = run_infra_failure(&env);
    assert_eq!(env.status(id)["Verdict"], "error", "prova status");
    for cmd in ["jobs", "list"] {
        let (code, out, err) = env.run(&[cmd, "--json"]);
        assert_eq!(code, 0, "{err}");
        let list: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(listed_verdict(&list, id), "error", "prova {cmd} --json");
        // --name: part of the name, any case.
        let (_, out, _) = env.run(&[cmd, "--json", "--name", "E2E IN THE"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(listed_verdict(&list, id), "error", "prova {cmd} --name");
        let (_, out, _) = env.run(&[cmd, "--json", "--name", "nightly"]);
        assert_eq!(out.trim(), "[]", "prova {cmd} --name nightly");
    }

    let db = env.db();
    let (mut server, url) = support::spawn_server(&["--db", db.to_str().unwrap()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (api_list, api_status, page) = rt.block_on(async {
        let get = |path: String| {
            let url = format!("{url}{path}");
            async move {
                let resp = reqwest::get(&url).await.unwrap();
                assert_eq!(resp.status(), 200, "{url}");
                resp.text().await.unwrap()
            }
        };
        (
            get("/api/v1/jobs".into()).await,
            get(format!("/api/v1/jobs/{id}")).await,
            get("/".into()).await,
        )
    });
    let (code, out, err) = env.run(&["list", "--json", "--name", "E2E", "--server", &url]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(code, 0, "{err}");
    let served: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        listed_verdict(&served, id),
        "error",
        "prova list --server --name"
    );
    let api_list: Value = serde_json::from_str(&api_list).unwrap();
    assert_eq!(
        listed_verdict(&api_list["Jobs"], id),
        "error",
        "GET /api/v1/jobs"
    );
    let api_status: Value = serde_json::from_str(&api_status).unwrap();
    assert_eq!(api_status["Verdict"], "error", "GET /api/v1/jobs/{id}");
    let row_start = page
        .find(&format!("id=\"job-{id}\""))
        .unwrap_or_else(|| panic!("no row for job {id}: {page}"));
    let row = &page[row_start..row_start + page[row_start..].find("</tr>").unwrap()];
    assert!(row.contains("badge verdict error"), "the page's row: {row}");
}

#[test]
fn filters_that_match_nothing_say_what_the_job_has() {
    let env = Env::new();
    let (code, _, err) = env.run(&["run", &example("hello.yaml")]);
    assert_eq!(code, 0, "{err}");
    let id = job_id(&err).to_string();
    let (code, out, err) = env.run(&["events", &id, "--test", "nope"]);
    assert_eq!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!("prova: no events match; tests in job {id}: \"")),
        "{err}"
    );
    assert!(err.contains("steps: hello"), "{err}");
    assert!(err.contains("targets: alpha, beta"), "{err}");

    // Event names match as descriptor keys do: case-insensitively.
    let lower = env.events(
        job_id(&format!("job {id} started")),
        &["--name", "cmdstdout"],
    );
    assert_eq!(lower.len(), 3, "{lower:?}");
    assert!(lower.iter().all(|e| e["EventName"] == "CmdStdout"));
    let (_, _, err) = env.run(&["events", &id, "--name", "cmdstdout"]);
    assert!(!err.contains("no events match"), "{err}");
}

#[test]
fn read_only_commands_create_no_store_and_say_so() {
    let env = Env::new();
    let db = env.dir.path().join("sub/dir/prova.db");
    let db = db.to_str().unwrap();
    let run = |args: &[&str]| {
        let o = env.cmd().args(args).env("PROVA_DB", db).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let missing = format!("no store at sqlite://{db}: nothing recorded yet");
    let (code, out, err) = run(&["jobs"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(&missing), "{err}");
    let (code, out, _) = run(&["jobs", "--json"]);
    assert_eq!((code, out.trim()), (0, "[]"));
    let (code, _, err) = run(&["list"]);
    assert_eq!(code, 0);
    assert!(err.contains(&missing), "{err}");
    for args in [["status", "1"], ["events", "1"]] {
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains("job 1 not found: "), "{err}");
        assert!(err.contains(&missing), "{err}");
    }
    assert!(
        !env.dir.path().join("sub").exists(),
        "a read-only command created the store's folder"
    );
}

#[test]
fn jobs_json_uses_the_state_names_of_status_and_the_user_as_requestor() {
    let env = Env::new();
    let (code, _, err) = env
        .cmd()
        .args(["run", &example("hello.yaml")])
        .env("USER", "alice")
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                String::new(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .unwrap();
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = env.run(&["jobs", "--json"]);
    let jobs: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(jobs[0]["State"], "Completed");
    assert_eq!(jobs[0]["State"], env.status(1)["State"]);
    let requestor = jobs[0]["Requestor"].as_str().unwrap();
    assert!(requestor.starts_with("alice@"), "{requestor}");
    assert!(requestor.len() > "alice@".len(), "{requestor}");
    // `list` without a server is `jobs`, the same JSON.
    let (_, listed, _) = env.run(&["list", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&listed).unwrap(),
        Value::from(jobs)
    );
}

#[test]
fn completions_are_valid_scripts_that_know_the_commands() {
    let env = Env::new();
    let (code, bash, err) = env.run(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    for sub in [
        "run",
        "validate",
        "jobs",
        "status",
        "events",
        "completions",
        "man",
    ] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    let script = env.write("prova.bash", &bash);
    let check = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let (code, zsh, _) = env.run(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(
        zsh.starts_with("#compdef prova"),
        "{}",
        &zsh[..40.min(zsh.len())]
    );
    let (code, fish, _) = env.run(&["completions", "fish"]);
    assert_eq!(code, 0);
    assert!(fish.contains("complete -c prova"), "fish");
    let (code, _, err) = env.run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("possible values: bash"), "{err}");
}

#[test]
fn the_man_page_is_roff_and_covers_every_command() {
    let env = Env::new();
    let (code, man, err) = env.run(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        man.starts_with(".ie") || man.starts_with(".TH"),
        "{}",
        &man[..60]
    );
    assert!(man.contains(".TH prova 1"), "title");
    for section in [
        ".SH \"PROVA RUN\"",
        ".SH \"PROVA EVENTS\"",
        ".SH \"PROVA COVERAGE REPORT\"",
        ".SH \"PROVA COMPLETIONS\"",
    ] {
        assert!(man.contains(section), "missing {section}");
    }
    // No line may start a roff request by accident (an example's `.`).
    assert!(man.contains("prova run examples/hello.yaml"));
}

#[test]
fn start_and_stop_on_a_server_record_the_user_and_host() {
    let env = Env::new();
    let db = env.dir.path().join("server.db");
    let (server, url) = support::spawn_server(&["--db", db.to_str().unwrap()]);
    // Stopped however the test ends.
    let _server = support::KillOnDrop(server);
    let job = env.write(
        "long.yaml",
        "JobName: long\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: sleep, label: s, parameters: {duration: [20s]}}]\nReporting:\n  RunReporters: [{name: noop}]\n",
    );
    // The bare host:port form, as a user would type it.
    let server_arg = url.trim_start_matches("http://").to_string();
    let as_bob = |args: &[&str]| {
        let o = env
            .cmd()
            .args(args)
            .env("USER", "bob")
            .env("PROVA_SERVER", &server_arg)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = as_bob(&["start", job.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let id = out.trim().to_string();
    let (code, _, err) = as_bob(&["stop", &id]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = as_bob(&[
        "events",
        &id,
        "--json",
        "--name",
        "jobstatestarted",
        "--name",
        "cancelrequested",
    ]);
    assert_eq!(code, 0, "{err}");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{out}");
    for e in &events {
        let who = e["Payload"]["Requestor"].as_str().unwrap();
        assert!(who.starts_with("bob@") && who.len() > 4, "{e}");
    }
}

#[test]
fn a_test_waiting_for_targets_names_the_job_that_holds_them() {
    let env = Env::new();
    let job = |name: &str, secs: &str| {
        env.write(
            &format!("{name}.yaml"),
            &format!("JobName: {name}\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: shared}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{{name: cmd, label: s, parameters: {{executable: [sleep], args: [\"{secs}\"]}}}}]\nReporting:\n  RunReporters: [{{name: noop}}]\n"),
        )
    };
    let first = job("first", "3");
    let second = job("second", "0");
    let mut holder = env
        .cmd()
        .args(["run", first.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    env.wait_for_step(1, "s");
    let (code, _, err) = env.run(&["run", second.to_str().unwrap()]);
    let _ = holder.wait();
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("run 1 · t: waiting for target shared held by job 1"),
        "{err}"
    );
    assert_eq!(
        err.matches("waiting for target").count(),
        1,
        "said once, not at every retry: {err}"
    );
}

#[test]
fn start_wait_shows_the_progress_of_the_servers_events() {
    let env = Env::new();
    let db = env.dir.path().join("server.db");
    let (server, url) = support::spawn_server(&["--db", db.to_str().unwrap()]);
    // Stopped however the test ends.
    let _server = support::KillOnDrop(server);
    let job = root().join("examples/cleanup.yaml");
    let (code, out, err) = env.run(&["start", job.to_str().unwrap(), "--server", &url, "--wait"]);
    assert_eq!(code, 1, "{out}\n{err}");
    for line in [
        "run 1 started",
        "run 1 · provision and fail: started",
        "run 1 · provision and fail: target box1 failed at failOnPurpose: false failed: exit status 1",
        "run 1 · provision and fail: FAILED (0/2 targets passed)",
    ] {
        assert_eq!(err.matches(line).count(), 1, "{line:?} once in\n{err}");
    }
    assert!(
        out.contains("verdict failed"),
        "the status tree after: {out}"
    );
}

#[test]
fn start_on_a_local_server_resolves_files_beside_the_descriptor() {
    let env = Env::new();
    // The descriptor and its inventory in a folder of their own, beneath
    // the server's files root but not at it.
    for f in ["csv-inventory.json", "inventory.csv"] {
        env.write(
            &format!("jobs/{f}"),
            &std::fs::read_to_string(root().join("examples").join(f)).unwrap(),
        );
    }
    let db = env.dir.path().join("server.db");
    let (server, url) = support::spawn_server(&[
        "--db",
        db.to_str().unwrap(),
        "--files-root",
        env.dir.path().to_str().unwrap(),
    ]);
    // Stopped however the test ends.
    let _server = support::KillOnDrop(server);
    let (code, out, err) = env.run(&[
        "start",
        "jobs/csv-inventory.json",
        "--server",
        &url,
        "--wait",
    ]);
    assert_eq!(
        code, 0,
        "FileURI inventory.csv beside the descriptor\n{out}\n{err}"
    );
}
