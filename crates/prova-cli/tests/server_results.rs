//! What comes back from a `prova serve` job: `prova start --wait --junit
//! FILE --artifacts DIR`, and `prova retry --failed` (on a server and on
//! the local store).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::Env;

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(env: &Env) -> Server {
        let db = env.db();
        let (child, url) =
            support::spawn_server(&["--server-id", "results", "--db", db.to_str().unwrap()]);
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test per name; `bad*` runs `false`, the others `true`; `nap*`
/// sleeps first.
fn job(name: &str, tests: &[&str]) -> String {
    let mut s = format!("JobName: {name}\nTestDescriptors:\n");
    for t in tests {
        let exe = if t.starts_with("bad") {
            "false"
        } else {
            "true"
        };
        let nap = if t.starts_with("nap") {
            "{name: cmd, label: nap, parameters: {executable: [sleep], args: [\"2\"]}}, "
        } else {
            ""
        };
        s.push_str(&format!(
            "  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: {t}\n      Steps: [{nap}{{name: cmd, label: run, parameters: {{executable: [{exe}]}}}}]\n"
        ));
    }
    s.push_str("Reporting:\n  RunReporters: [{name: TargetSuccess, parameters: {SuccessExpression: \"=100%\"}}]\n");
    s
}

/// The test names of a job's first run, through `prova status --json`.
fn tests_of(env: &Env, server: Option<&str>, id: i64) -> (String, Vec<String>) {
    let id = id.to_string();
    let mut args = vec!["status", id.as_str(), "--json"];
    if let Some(url) = server {
        args.extend(["--server", url]);
    }
    let (_, out, err) = env.run(&args);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}\n{err}"));
    let names = v["RunStatuses"][0]["TestStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["TestName"].as_str().unwrap().to_string())
        .collect();
    (v["State"].as_str().unwrap_or("").to_string(), names)
}

fn wait_ended(env: &Env, url: &str, id: i64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (state, names) = tests_of(env, Some(url), id);
        if state == "Completed" {
            return names;
        }
        assert!(Instant::now() < deadline, "job {id} is {state:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn start_wait_writes_the_servers_junit_and_downloads_the_artifacts() {
    let env = Env::new();
    let server = Server::start(&env);
    let file = env.write("job.yaml", &job("results", &["nap good", "bad"]));
    let mut child = env
        .cmd()
        .args(["start", file.to_str().unwrap(), "--server", &server.url])
        .args(["--wait", "--junit", "out/junit.xml", "--artifacts", "got"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let id: i64 = first.trim().parse().unwrap();
    // While the first test naps, a results directory appears where the
    // container steps keep theirs.
    let kept = env
        .dir
        .path()
        .join(format!("artifacts/job-{id}/run-1/nap_good/attempt-0/run/a"));
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("result.txt"), "42\n").unwrap();
    std::fs::create_dir_all(env.dir.path().join("out")).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    // A test failed: exit 1, as `prova run`; the files came back anyway.
    assert_eq!(status.code(), Some(1), "{err}");
    let xml = std::fs::read_to_string(env.dir.path().join("out/junit.xml")).unwrap();
    assert!(
        xml.contains("<testsuite") && xml.contains("nap good"),
        "{xml}"
    );
    assert!(xml.contains("<failure"), "{xml}");
    assert!(
        err.contains(&format!("wrote the JUnit of job {id}")),
        "{err}"
    );
    let got = env
        .dir
        .path()
        .join("got/run-1/nap_good/attempt-0/run/a/result.txt");
    assert_eq!(std::fs::read_to_string(got).unwrap(), "42\n");
    assert!(err.contains("downloaded 1 artifact file(s)"), "{err}");

    // --junit needs --wait; --artifacts needs a server.
    let (code, _, err) = env.run(&["start", "job.yaml", "--junit", "x.xml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--wait"), "{err}");
    let (code, _, err) = env.run(&["start", "job.yaml", "--wait", "--artifacts", "d"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--artifacts needs --server"), "{err}");
}

#[test]
fn retry_failed_on_a_server_reruns_the_failed_tests_or_says_none_failed() {
    let env = Env::new();
    let server = Server::start(&env);
    let url = server.url.clone();
    let file = env.write("mixed.yaml", &job("mixed", &["good", "bad a", "bad b"]));
    let (code, out, err) = env.run(&["start", file.to_str().unwrap(), "--server", &url, "--wait"]);
    assert_eq!(code, 1, "{err}");
    let id: i64 = out.lines().next().unwrap().trim().parse().unwrap();

    let (code, out, err) = env.run(&["retry", &id.to_string(), "--failed", "--server", &url]);
    assert_eq!(code, 0, "{err}");
    let new: i64 = out.trim().parse().unwrap();
    assert!(err.contains("bad a, bad b"), "{err}");
    assert_eq!(wait_ended(&env, &url, new), ["bad a", "bad b"]);

    let file = env.write("green.yaml", &job("green", &["good"]));
    let (code, out, err) = env.run(&["start", file.to_str().unwrap(), "--server", &url, "--wait"]);
    assert_eq!(code, 0, "{err}");
    let green = out.lines().next().unwrap().trim().to_string();
    let (code, out, err) = env.run(&["retry", &green, "--failed", "--server", &url]);
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("409") && err.contains("no test failed"),
        "{err}"
    );
}

#[test]
fn retry_failed_on_the_local_store_runs_the_failed_tests_in_the_foreground() {
    let env = Env::new();
    env.write("mixed.yaml", &job("mixed", &["good", "bad"]));
    let (code, _, err) = env.run(&["run", "mixed.yaml"]);
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = env.run(&["retry", "1", "--failed"]);
    // "bad" fails again.
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("retrying the failed tests of job 1: bad"),
        "{err}"
    );
    assert_eq!(tests_of(&env, None, 2).1, ["bad"]);

    env.write("green.yaml", &job("green", &["good"]));
    let (code, _, err) = env.run(&["run", "green.yaml"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = env.run(&["retry", "3", "--failed"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("job 3: no test failed"), "{err}");
}
