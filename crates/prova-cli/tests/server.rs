//! `prova serve` over real HTTP: every endpoint (prova's and ConTest's),
//! auth, limits, restarts with pause and resume, kill -9, and many jobs at
//! once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::{Value, json};

mod support;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/contest/descriptors")
        .join(name)
}

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(db: &Path, extra: &[&str]) -> Server {
        let db = db.to_str().unwrap();
        let mut args = vec!["--server-id", "test-server", "--db", db];
        args.extend_from_slice(extra);
        Server::spawn(&args)
    }

    /// `prova serve --listen 127.0.0.1:0 ARGS`, once it listens.
    fn spawn(args: &[&str]) -> Server {
        let (child, url) = support::spawn_server(args);
        Server { child, url }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    /// SIGTERM and wait for a clean exit.
    fn stop(mut self) -> i32 {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn json_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn state_of(url: &str, id: i64) -> String {
    let (_, v) = json_of(http().get(format!("{url}/api/v1/jobs/{id}"))).await;
    v["State"].as_str().unwrap_or("").to_string()
}

async fn wait_state(url: &str, id: i64, want: &[&str], within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let st = state_of(url, id).await;
        if want.contains(&st.as_str()) {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {st}, never reached {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const QUICK: &str = "JobName: quick\nTags: [quick]\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: cmd, label: hi, parameters: {executable: [echo], args: [hello]}}]\nReporting:\n  RunReporters: [{name: TargetSuccess, parameters: {SuccessExpression: \"=100%\"}}]\n";

/// Submits QUICK (target `a`) and asserts it completes within `within`:
/// nothing holds the target any more.
async fn target_a_is_free(url: &str, within: Duration) {
    let start = Instant::now();
    let (code, v) = json_of(http().post(format!("{url}/api/v1/jobs")).body(QUICK)).await;
    assert_eq!(code, 201, "{v}");
    let id = v["JobID"].as_i64().unwrap();
    wait_state(url, id, &["Completed"], within).await;
    assert!(
        start.elapsed() < within,
        "target a freed after {:?}",
        start.elapsed()
    );
}

/// The PID of the first command job `id` started.
async fn first_command_pid(url: &str, id: i64) -> i32 {
    let (_, evs) =
        json_of(http().get(format!("{url}/api/v1/jobs/{id}/events?name=CmdStart"))).await;
    evs.as_array().unwrap()[0]["Payload"]["Pid"]
        .as_i64()
        .unwrap() as i32
}

fn long_job(step: &str) -> String {
    format!(
        "JobName: long\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{step}]\nReporting:\n  RunReporters: [{{name: noop}}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prova_api_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("p.db"), &[]);
    let url = &server.url;

    assert_eq!(
        http()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    let (code, v) = json_of(http().get(format!("{url}/api/v1/version"))).await;
    assert_eq!(code, 200);
    assert_eq!(v["ServerID"], "test-server");

    // Submit YAML and JSON; an invalid descriptor is refused with every error.
    let (code, v) = json_of(
        http()
            .post(format!("{url}/api/v1/jobs?requestor=alice"))
            .body(QUICK),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let id = v["JobID"].as_i64().unwrap();
    let as_json = serde_json::json!({"JobName": "json", "TestDescriptors": [{"TargetManagerName": "TargetList", "TargetManagerAcquireParameters": {"Targets": [{"ID": "x"}]}, "TestFetcherName": "literal", "TestFetcherFetchParameters": {"TestName": "t", "Steps": [{"name": "echo", "label": "e", "parameters": {"text": ["hi"]}}]}}], "Reporting": {"RunReporters": [{"Name": "noop"}]}});
    let (code, v) = json_of(
        http()
            .post(format!("{url}/api/v1/jobs"))
            .body(as_json.to_string()),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let json_id = v["JobID"].as_i64().unwrap();
    let (code, v) = json_of(
        http()
            .post(format!("{url}/api/v1/jobs"))
            .body("JobName: x\nTags: [_bad]\n"),
    )
    .await;
    assert_eq!(code, 422);
    assert!(v["Errors"].as_array().unwrap().len() >= 3, "{v}");
    assert!(
        v["Errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("Tags[0]: invalid tag")),
        "{v}"
    );
    let (code, _) = json_of(http().post(format!("{url}/api/v1/jobs")).body("")).await;
    assert_eq!(code, 400);

    assert_eq!(
        wait_state(url, id, &["Completed"], Duration::from_secs(20)).await,
        "Completed"
    );
    wait_state(url, json_id, &["Completed"], Duration::from_secs(20)).await;

    // Status, report, events with filters.
    let (_, st) = json_of(http().get(format!("{url}/api/v1/jobs/{id}"))).await;
    assert_eq!(st["Owner"], "test-server");
    assert_eq!(st["RunStatuses"][0]["TestStatuses"][0]["Passed"], true);
    let (_, rep) = json_of(http().get(format!("{url}/api/v1/jobs/{id}/report"))).await;
    assert_eq!(rep["JobReport"]["RunReports"][0][0]["Success"], true);
    let (_, evs) = json_of(http().get(format!(
        "{url}/api/v1/jobs/{id}/events?name=CmdStdout,TargetAcquired&target=a"
    )))
    .await;
    let names: Vec<&str> = evs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["TargetAcquired", "CmdStdout"]);
    let (_, started) = json_of(http().get(format!(
        "{url}/api/v1/jobs/{id}/events?name=JobStateStarted"
    )))
    .await;
    assert_eq!(
        started[0]["Payload"]["Requestor"], "alice",
        "the requestor is recorded"
    );
    let (code, _) = json_of(http().get(format!("{url}/api/v1/jobs/999"))).await;
    assert_eq!(code, 404);

    // List: filters and pagination.
    let (_, l) = json_of(http().get(format!("{url}/api/v1/jobs?tag=quick"))).await;
    assert_eq!(l["Jobs"].as_array().unwrap().len(), 1);
    let (_, page) = json_of(http().get(format!("{url}/api/v1/jobs?limit=1"))).await;
    assert_eq!(page["Jobs"][0]["JobID"], json_id);
    let next = page["Next"].as_i64().unwrap();
    let (_, page2) = json_of(http().get(format!("{url}/api/v1/jobs?limit=1&before={next}"))).await;
    assert_eq!(page2["Jobs"][0]["JobID"], id);
    let (code, _) = json_of(http().get(format!("{url}/api/v1/jobs?state=Bogus"))).await;
    assert_eq!(code, 400);

    // Retry: a new job from the stored descriptor.
    let (code, v) = json_of(http().post(format!("{url}/api/v1/jobs/{id}/retry"))).await;
    assert_eq!(code, 201);
    let retried = v["JobID"].as_i64().unwrap();
    assert_ne!(retried, id);
    wait_state(url, retried, &["Completed"], Duration::from_secs(20)).await;

    // Cancel a long job; cancelling a finished one is a conflict.
    let (_, v) = json_of(http().post(format!("{url}/api/v1/jobs")).body(long_job(
        "{name: cmd, label: s, parameters: {executable: [sleep], args: [\"60\"]}}",
    )))
    .await;
    let long = v["JobID"].as_i64().unwrap();
    wait_state(url, long, &["Started"], Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, _) =
        json_of(http().post(format!("{url}/api/v1/jobs/{long}/cancel?requestor=bob"))).await;
    assert_eq!(code, 202);
    wait_state(url, long, &["Cancelled"], Duration::from_secs(15)).await;
    let (code, v) = json_of(http().post(format!("{url}/api/v1/jobs/{long}/cancel"))).await;
    assert_eq!(code, 409, "{v}");

    // Pause a job mid-sleep, then resume it: it completes.
    let (_, v) = json_of(http().post(format!("{url}/api/v1/jobs")).body(long_job(
        "{name: sleep, label: nap, parameters: {duration: [2s]}}",
    )))
    .await;
    let napper = v["JobID"].as_i64().unwrap();
    wait_state(url, napper, &["Started"], Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, _) = json_of(http().post(format!("{url}/api/v1/jobs/{napper}/pause"))).await;
    assert_eq!(code, 202);
    wait_state(url, napper, &["Paused"], Duration::from_secs(10)).await;
    let (code, _) = json_of(http().post(format!("{url}/api/v1/jobs/{napper}/resume"))).await;
    assert_eq!(code, 202);
    wait_state(url, napper, &["Completed"], Duration::from_secs(10)).await;

    // Follow: replays, then ends with the job.
    let text = http()
        .get(format!("{url}/api/v1/jobs/{id}/events?follow=true"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("event: event"), "{text}");
    assert!(text.contains("JobStateCompleted"), "{text}");
    assert!(text.trim_end().ends_with(&format!("data: {id}")), "{text}");

    // The OpenAPI document, generated from the code, and its UI.
    let (code, doc) = json_of(http().get(format!("{url}/api/v1/openapi.json"))).await;
    assert_eq!(code, 200);
    for path in [
        "/api/v1/jobs",
        "/api/v1/jobs/{id}",
        "/api/v1/jobs/{id}/events",
        "/api/v1/jobs/{id}/retry",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from the OpenAPI document"
        );
    }
    let ui = http().get(format!("{url}/api/docs/")).send().await.unwrap();
    assert_eq!(ui.status(), 200);
    assert!(
        ui.text().await.unwrap().contains("swagger"),
        "Swagger UI is served"
    );

    // Metrics.
    let m = http()
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("prova_events_total"), "{m}");
    assert!(m.contains("prova_step_duration_seconds_count"), "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contest_api_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("p.db"), &[]);
    let url = &server.url;
    let desc = std::fs::read_to_string(corpus("start-literal.json"))
        .unwrap()
        .replace("\"Runs\": 3", "\"Runs\": 1");
    let (code, v) = json_of(
        http()
            .post(format!("{url}/start"))
            .form(&[("jobDesc", desc.as_str()), ("requestor", "contestcli")]),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["Type"], "ResponseTypeStart");
    assert_eq!(v["ServerID"], "test-server");
    assert!(v["Error"].is_null());
    let id = v["Data"]["JobID"].as_i64().unwrap();
    wait_state(url, id, &["Completed"], Duration::from_secs(20)).await;
    let (_, v) = json_of(
        http()
            .post(format!("{url}/status"))
            .form(&[("jobID", id.to_string())]),
    )
    .await;
    assert_eq!(v["Type"], "ResponseTypeStatus");
    assert_eq!(v["Data"]["Status"]["State"], "JobStateCompleted");
    assert_eq!(v["Data"]["Status"]["Name"], "test job");
    let (_, v) = json_of(
        http()
            .post(format!("{url}/list"))
            .form(&[("states", "JobStateCompleted"), ("tags", "csv")]),
    )
    .await;
    assert_eq!(v["Type"], "ResponseTypeList");
    assert_eq!(v["Data"]["JobIDs"], json!([id]));
    let (_, v) = json_of(
        http()
            .post(format!("{url}/retry"))
            .form(&[("jobID", id.to_string())]),
    )
    .await;
    assert_eq!(v["Type"], "ResponseTypeRetry");
    let retried = v["Data"]["JobID"].as_i64().unwrap();
    wait_state(url, retried, &["Completed"], Duration::from_secs(20)).await;
    let (code, v) = json_of(
        http()
            .post(format!("{url}/stop"))
            .form(&[("jobID", id.to_string())]),
    )
    .await;
    assert_eq!(code, 400, "stopping a finished job fails as in ConTest");
    assert!(v["Msg"].as_str().unwrap().starts_with("Stop failed"), "{v}");
    let (code, v) = json_of(http().post(format!("{url}/status")).form(&[("jobID", "")])).await;
    assert_eq!(code, 400);
    assert_eq!(v["Msg"], "Status failed: job ID cannot be empty");
    let (_, v) = json_of(http().post(format!("{url}/version"))).await;
    assert_eq!(v["Type"], "ResponseTypeVersion");
    let (code, v) = json_of(http().post(format!("{url}/start")).form(&[("jobDesc", "")])).await;
    assert_eq!(code, 400);
    assert_eq!(v["Msg"], "Missing job description");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        &dir.path().join("p.db"),
        &["--token", "s3cret", "--max-body", "2000"],
    );
    let url = &server.url;
    let (code, _) = json_of(http().get(format!("{url}/api/v1/jobs"))).await;
    assert_eq!(code, 401);
    let (code, _) = json_of(
        http()
            .get(format!("{url}/api/v1/jobs"))
            .bearer_auth("wrong"),
    )
    .await;
    assert_eq!(code, 401);
    let (code, _) = json_of(http().post(format!("{url}/version"))).await;
    assert_eq!(code, 401, "ConTest's API is protected too");
    let (code, _) = json_of(
        http()
            .get(format!("{url}/api/v1/jobs"))
            .bearer_auth("s3cret"),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        http()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let big = format!("{QUICK}#{}\n", "x".repeat(5000));
    let resp = http()
        .post(format!("{url}/api/v1/jobs"))
        .bearer_auth("s3cret")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // Files named in descriptors stay under the files root.
    let outside = QUICK.replace(
        "TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: cmd, label: hi, parameters: {executable: [echo], args: [hello]}}]",
        "TestFetcherName: URI\n    TestFetcherFetchParameters: {TestName: t, URI: /etc/hostname}",
    );
    assert!(outside.contains("URI: /etc/hostname"));
    let (code, v) = json_of(
        http()
            .post(format!("{url}/api/v1/jobs"))
            .bearer_auth("s3cret")
            .body(outside),
    )
    .await;
    assert_eq!(code, 422, "{v}");
    assert!(
        v["Error"]
            .as_str()
            .unwrap()
            .contains("outside the files root"),
        "{v}"
    );

    // Without a token, only loopback.
    let out = Command::cargo_bin("prova")
        .unwrap()
        .args(["serve", "--listen", "0.0.0.0:0", "--db"])
        .arg(dir.path().join("q.db"))
        .env_remove("PROVA_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_jobs_at_once_all_complete() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("p.db"), &[]);
    let url = server.url.clone();
    let submits = (0..200).map(|_| {
        let url = url.clone();
        tokio::spawn(
            async move { json_of(http().post(format!("{url}/api/v1/jobs")).body(QUICK)).await },
        )
    });
    let mut ids = Vec::new();
    for s in submits {
        let (code, v) = s.await.unwrap();
        assert_eq!(code, 201, "{v}");
        ids.push(v["JobID"].as_i64().unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200);
    for id in ids {
        wait_state(&url, id, &["Completed"], Duration::from_secs(120)).await;
    }
}

/// What must come out the same with and without restarts.
fn compared(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(
                e["EventName"].as_str(),
                Some("CmdStdout" | "TargetAcquired" | "TargetReleased")
            )
        })
        .map(|e| {
            format!(
                "{} {} {} {} {}",
                e["RunID"],
                e["TestName"].as_str().unwrap_or(""),
                e["EventName"].as_str().unwrap(),
                e["Target"]["ID"].as_str().unwrap_or(""),
                e["Payload"]["Msg"].as_str().unwrap_or("").trim()
            )
        })
        .collect()
}

/// ConTest's own e2e bar: test-resume.yaml survives a SIGTERM and restart
/// every second until it completes, within 20 restarts, and its CmdStdout,
/// TargetAcquired and TargetReleased events come out exactly as in a run
/// without restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_resume_survives_a_restart_every_second() {
    let desc = std::fs::read_to_string(corpus("test-resume.yaml"))
        .unwrap()
        .replace("TargetListWithState", "TargetList");
    // Reference run, no restarts.
    let dir = tempfile::tempdir().unwrap();
    let reference = {
        let server = Server::start(&dir.path().join("ref.db"), &[]);
        let (_, v) = json_of(
            http()
                .post(format!("{}/api/v1/jobs", server.url))
                .body(desc.clone()),
        )
        .await;
        let id = v["JobID"].as_i64().unwrap();
        wait_state(&server.url, id, &["Completed"], Duration::from_secs(60)).await;
        let (_, evs) = json_of(http().get(format!("{}/api/v1/jobs/{id}/events", server.url))).await;
        compared(&evs)
    };
    // 2 runs × 2 tests × (acquired, 2 lines of output, released)
    assert_eq!(reference.len(), 16, "{reference:?}");

    let db = dir.path().join("restarts.db");
    let mut server = Server::start(&db, &["--pause-timeout", "10s"]);
    let (_, v) = json_of(
        http()
            .post(format!("{}/api/v1/jobs", server.url))
            .body(desc),
    )
    .await;
    let id = v["JobID"].as_i64().unwrap();
    let mut restarts = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let st = state_of(&server.url, id).await;
        if st == "Completed" {
            break;
        }
        assert!(["Started", "Paused"].contains(&st.as_str()), "job is {st}");
        restarts += 1;
        assert!(restarts <= 20, "not completed after 20 restarts");
        assert_eq!(server.stop(), 0, "a clean exit on SIGTERM");
        server = Server::start(&db, &["--pause-timeout", "10s"]);
    }
    assert!(
        restarts >= 5,
        "only {restarts} restarts: the test proves little"
    );
    let (_, evs) = json_of(http().get(format!("{}/api/v1/jobs/{id}/events", server.url))).await;
    assert_eq!(compared(&evs), reference);
    let pauses = evs
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["EventName"] == "JobStatePaused")
        .count();
    assert_eq!(pauses, restarts, "one pause per restart");
    let (_, st) = json_of(http().get(format!("{}/api/v1/jobs/{id}", server.url))).await;
    assert_eq!(st["JobReport"]["RunReports"].as_array().unwrap().len(), 2);
}

/// kill -9 mid-job: on restart the job, which nobody paused, fails with a
/// clear error; nothing stored before is lost or written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_its_zombie_jobs_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let server = Server::start(&db, &[]);
    let (_, v) = json_of(
        http()
            .post(format!("{}/api/v1/jobs", server.url))
            .body(long_job(
                "{name: cmd, label: s, parameters: {executable: [sleep], args: [\"30\"]}}",
            )),
    )
    .await;
    let id = v["JobID"].as_i64().unwrap();
    wait_state(&server.url, id, &["Started"], Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = first_command_pid(&server.url, id).await;
    let (_, before) = json_of(http().get(format!("{}/api/v1/jobs/{id}/events", server.url))).await;
    server.signal(nix::sys::signal::Signal::SIGKILL);
    drop(server);
    assert!(
        support::running(pid),
        "the step's command died with the server"
    );
    let server = Server::start(&db, &[]);
    let st = wait_state(&server.url, id, &["Failed"], Duration::from_secs(10)).await;
    assert_eq!(st, "Failed");
    // The restarted server killed what the dead job left running, and freed
    // its target at once (not after the 30 s lock expiry).
    let deadline = Instant::now() + Duration::from_secs(3);
    while support::running(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !support::running(pid),
        "the dead job's command {pid} still runs"
    );
    target_a_is_free(&server.url, Duration::from_secs(5)).await;
    let (_, status) = json_of(http().get(format!("{}/api/v1/jobs/{id}", server.url))).await;
    assert!(
        status["StateErrMsg"]
            .as_str()
            .unwrap()
            .contains("zombie job"),
        "{status}"
    );
    let (_, after) = json_of(http().get(format!("{}/api/v1/jobs/{id}/events", server.url))).await;
    let before = before.as_array().unwrap();
    let after = after.as_array().unwrap();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "nothing stored before the kill changed"
    );
    let seqs: std::collections::HashSet<i64> =
        after.iter().map(|e| e["Seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs.len(), after.len(), "no event twice");
    assert_eq!(
        after
            .iter()
            .filter(|e| e["EventName"] == "TargetAcquired")
            .count(),
        1
    );
}

fn start_on(url: &str, id: &str) -> Server {
    Server::spawn(&["--server-id", id, "--db", url])
}

/// Two instances on one PostgreSQL: one is killed mid-job; once its lease
/// expires the other takes the job over and, since a job that was not
/// paused cannot be resumed, fails it with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_takes_over_the_jobs_of_a_killed_one() {
    let Some(db) = support::postgres_db("takeover_kill") else {
        return;
    };
    let a = start_on(&db, "instance-a");
    let b = start_on(&db, "instance-b");
    let (_, v) = json_of(http().post(format!("{}/api/v1/jobs", a.url)).body(long_job(
        "{name: cmd, label: s, parameters: {executable: [sleep], args: [\"60\"]}}",
    )))
    .await;
    let id = v["JobID"].as_i64().unwrap();
    wait_state(&b.url, id, &["Started"], Duration::from_secs(10)).await;
    let (_, st) = json_of(http().get(format!("{}/api/v1/jobs/{id}", b.url))).await;
    assert_eq!(st["Owner"], "instance-a");
    a.signal(nix::sys::signal::Signal::SIGKILL);
    drop(a);
    wait_state(&b.url, id, &["Failed"], Duration::from_secs(30)).await;
    let (_, st) = json_of(http().get(format!("{}/api/v1/jobs/{id}", b.url))).await;
    let msg = st["StateErrMsg"].as_str().unwrap();
    assert!(
        msg.contains("instance-a stopped renewing its lease")
            && msg.contains("instance-b took the job over"),
        "{msg}"
    );
    // The instance that ended the job freed its target at once.
    target_a_is_free(&b.url, Duration::from_secs(5)).await;
}

/// Two instances on one PostgreSQL: one stops (pausing its job) and does not
/// come back; the other resumes the job once the lease expires, and it
/// completes with no event twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_resumes_the_paused_jobs_of_one_that_went_away() {
    let Some(db) = support::postgres_db("takeover_pause") else {
        return;
    };
    let a = start_on(&db, "instance-a");
    let b = start_on(&db, "instance-b");
    let steps = "{name: cmd, label: first, parameters: {executable: [echo], args: [one]}}, {name: sleep, label: nap, parameters: {duration: [4s]}}, {name: cmd, label: last, parameters: {executable: [echo], args: [two]}}";
    let (_, v) = json_of(
        http()
            .post(format!("{}/api/v1/jobs", a.url))
            .body(long_job(steps)),
    )
    .await;
    let id = v["JobID"].as_i64().unwrap();
    wait_state(&b.url, id, &["Started"], Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(a.stop(), 0);
    let stopped = Instant::now();
    // The stopped instance let go of the job as it paused it: the other
    // resumes it within its takeover scan, not after the lease's TTL.
    wait_state(
        &b.url,
        id,
        &["Started", "Completed"],
        Duration::from_secs(6),
    )
    .await;
    assert!(
        stopped.elapsed() < Duration::from_secs(6),
        "resumed {:?} after the pause",
        stopped.elapsed()
    );
    wait_state(&b.url, id, &["Completed"], Duration::from_secs(40)).await;
    let (_, evs) = json_of(http().get(format!("{}/api/v1/jobs/{id}/events", b.url))).await;
    let names: Vec<&str> = evs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"TakenOver"), "{names:?}");
    let count = |n: &str| names.iter().filter(|x| **x == n).count();
    assert_eq!(count("TargetAcquired"), 1);
    assert_eq!(count("CmdStdout"), 2);
    assert_eq!(count("TargetReleased"), 1);
    let (_, st) = json_of(http().get(format!("{}/api/v1/jobs/{id}", b.url))).await;
    assert_eq!(st["Owner"], "instance-b");
}
