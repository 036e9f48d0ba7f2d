//! A `prova serve` on 127.0.0.1 for the page tests, and jobs to look at.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use prova_core::results::{CaseStatus, TEST_CASE, TestCaseResult};
use prova_core::status::FINAL_REPORT;
use prova_core::{EventKind, JobId, JobState, NewEvent, Target};
use prova_server::{AppState, ServerConfig};
use prova_store::{NewJob, Store};
use serde_json::{Value, json};

pub const TOKEN: &str = "s3cret-dashboard";

pub struct Server {
    pub url: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), prova_server::ServeError>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// A server with the token (or none) on a fresh SQLite store.
    pub async fn start(token: Option<&str>) -> Server {
        Server::start_with(token, |_| {}).await
    }

    /// [`Server::start`], with the config changed by `tune` first.
    pub async fn start_with(token: Option<&str>, tune: impl FnOnce(&mut ServerConfig)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            prova_store::SqlStore::open_path(&dir.path().join("p.db"))
                .await
                .unwrap(),
        );
        let mut config = ServerConfig {
            token: token.map(str::to_string),
            artifacts_root: dir.path().join("artifacts"),
            files_root: Some(dir.path().to_path_buf()),
            server_id: "pages".into(),
            ..ServerConfig::default()
        };
        tune(&mut config);
        let state = prova_server::state(config, store, prova_engine::plugins::registry());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(prova_server::serve_with(
            state.clone(),
            listener,
            async move {
                let _ = rx.await;
            },
            std::future::pending(),
        ));
        Server {
            url: format!("http://{addr}"),
            state,
            stop: Some(tx),
            task,
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(20), &mut self.task).await;
    }

    fn authed(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.state.config.token.is_some() {
            r.bearer_auth(TOKEN)
        } else {
            r
        }
    }

    /// Submits a descriptor over the API; the new job's id.
    pub async fn submit(&self, yaml: &str) -> JobId {
        let r = self
            .authed(reqwest::Client::new().post(format!("{}/api/v1/jobs", self.url)))
            .body(yaml.to_string())
            .send()
            .await
            .unwrap();
        let code = r.status();
        let v: Value = r.json().await.unwrap();
        assert_eq!(code, 201, "{v}");
        v["JobID"].as_i64().unwrap()
    }

    /// `GET path` (with the token, when the server has one), as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.authed(reqwest::Client::new().get(format!("{}{path}", self.url)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The job's state over the API.
    pub async fn state_of(&self, id: JobId) -> String {
        let v = self.get_json(&format!("/api/v1/jobs/{id}")).await;
        v["State"].as_str().unwrap_or("").to_string()
    }

    /// Waits until the job is in `want`; panics after `within`.
    pub async fn wait_state(&self, id: JobId, want: &str, within: Duration) {
        let start = Instant::now();
        loop {
            let s = self.state_of(id).await;
            if s == want {
                return;
            }
            if start.elapsed() >= within || s == "Failed" {
                let events = self.get_json(&format!("/api/v1/jobs/{id}/events")).await;
                let names: Vec<String> = events
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| format!("{} {}", e["EventName"], e["Payload"]))
                    .collect();
                panic!(
                    "job {id} is {s:?}, not {want:?}; its events:\n{}",
                    names.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A job with one step that sleeps this long.
pub fn sleep_job(name: &str, sleep: &str) -> String {
    format!(
        "JobName: {name}\nTags: [nightly, web]\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}, {{ID: b}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: nap test\n      Steps: [{{name: sleep, label: nap, parameters: {{duration: [{sleep}]}}}}]\nReporting:\n  RunReporters: [{{name: TargetSuccess, parameters: {{SuccessExpression: \"=100%\"}}}}]\n"
    )
}

/// A run event (a job event of run 1), as the engine emits them.
fn run_event(id: JobId, name: &str) -> NewEvent {
    NewEvent {
        run_id: 1,
        ..NewEvent::job(id, name, None)
    }
}

/// The message of the failing case [`record_suite_job`] stores.
pub const FAILURE: &str = "expected 3 ready replicas, found 2";

/// Records a finished job whose suite reported one failing and one
/// passing case (as a container step's results directory would), straight
/// into the store.
pub async fn record_suite_job(state: &AppState, name: &str) -> JobId {
    let store = &state.store;
    let id = store
        .create_job(NewJob {
            name: name.into(),
            tags: vec!["e2e".into()],
            requestor: "ci".into(),
            descriptor: "{}".into(),
            extended_descriptor: "{}".into(),
            source_path: None,
        })
        .await
        .unwrap();
    let target = Target {
        id: "node-1".into(),
        ..Default::default()
    };
    let test = |name: &str, step: Option<&str>, payload: Option<Value>| NewEvent {
        kind: EventKind::Test,
        job_id: id,
        run_id: 1,
        test_name: Some("e2e suite".into()),
        test_attempt: Some(0),
        step_label: step.map(str::to_string),
        target: step.map(|_| target.clone()),
        name: name.into(),
        payload,
        emit_time: jiff::Timestamp::now(),
    };
    let case = |n: &str, status: CaseStatus, message: Option<&str>| {
        serde_json::to_value(TestCaseResult {
            suite: "Kubernetes e2e suite".into(),
            name: n.into(),
            classname: None,
            status,
            time_secs: Some(1.5),
            message: message.map(str::to_string),
            output: message.map(|m| format!("STEP: waiting\n{m}\n")),
            flaky_failures: 0,
            file: "junit_01.xml".into(),
        })
        .unwrap()
    };
    let mut events = vec![
        NewEvent::job(id, JobState::Started.event_name(), None),
        run_event(id, "RunStarted"),
        test("TestStarted", None, None),
    ];
    let mut acquired = test("TargetAcquired", None, None);
    acquired.target = Some(target.clone());
    events.push(acquired);
    events.push(test("TargetIn", Some("e2e"), None));
    events.push(test(
        TEST_CASE,
        Some("e2e"),
        Some(case(
            "Deployment should scale up",
            CaseStatus::Failed,
            Some(FAILURE),
        )),
    ));
    events.push(test(
        TEST_CASE,
        Some("e2e"),
        Some(case("Pods should start", CaseStatus::Passed, None)),
    ));
    events.push(test(
        "TargetErr",
        Some("e2e"),
        Some(json!({"Error": "1 of 2 cases failed"})),
    ));
    events.push(test("TestFinished", None, Some(json!({"Success": false}))));
    events.push(run_event(id, "RunFinished"));
    events.push(NewEvent::job(
        id,
        FINAL_REPORT,
        Some(json!({"ReporterName": "TargetSuccess", "Success": false, "Data": "0 of 1 targets passed"})),
    ));
    events.push(NewEvent::job(id, JobState::Completed.event_name(), None));
    store.append_events(&events).await.unwrap();
    id
}

/// APISnoop's 1.37.0 release file from the shared corpus, read as
/// `prova serve --coverage-report` reads it.
pub fn apisnoop_release() -> prova_coverage::Report {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/k8s/apisnoop-coverage/1.37.0.json");
    prova_coverage::Report::from_file(&path).unwrap()
}

/// Records a finished job named `name` whose test `check` passed or
/// failed (its target `host1` failing step `probe`), with the same
/// extended descriptor each time, so its history can judge flakiness.
pub async fn record_check_job(store: &dyn Store, name: &str, pass: bool) -> JobId {
    let ext =
        json!({"TestStepsDescriptors": [{"TestName": "check", "TestSteps": [{"name": "cmd"}]}]});
    let id = store
        .create_job(NewJob {
            name: name.into(),
            extended_descriptor: ext.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    let ev = |n: &str, payload: Option<Value>| NewEvent {
        kind: EventKind::Test,
        job_id: id,
        run_id: 1,
        test_name: Some("check".into()),
        test_attempt: Some(0),
        step_label: Some("probe".into()),
        target: Some(Target::with_id("host1")),
        name: n.into(),
        payload,
        emit_time: jiff::Timestamp::now(),
    };
    let mut events = vec![
        NewEvent::job(id, JobState::Started.event_name(), None),
        ev("TestStarted", None),
    ];
    if !pass {
        events.push(ev("TargetErr", Some(json!({"Error": "exit status 1"}))));
    }
    events.push(ev("TestFinished", Some(json!({"Success": pass}))));
    events.push(NewEvent::job(id, JobState::Completed.event_name(), None));
    store.append_events(&events).await.unwrap();
    id
}

/// An HTTP client that does not follow redirects (the pages answer 303s
/// the tests look at).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in with the form; the cookie header to send afterwards.
pub async fn login(server: &Server) -> String {
    let r = client()
        .post(format!("{}/login", server.url))
        .form(&[("token", TOKEN), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

/// The CSRF token in a page's forms.
pub fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..at + 64].to_string()
}
