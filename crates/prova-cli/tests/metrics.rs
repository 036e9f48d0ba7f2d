//! `/metrics` of a real `prova serve` across a restart, and what the
//! restart logs about the jobs it resumed or failed.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

mod support;

/// A `prova serve` whose stderr is kept, line by line.
struct Server {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(db: &Path) -> Server {
        let mut child = Command::cargo_bin("prova")
            .unwrap()
            .args(["serve", "--listen", "127.0.0.1:0", "--server-id", "m1"])
            .arg("--db")
            .arg(db)
            .env_remove("PROVA_DB")
            .env_remove("PROVA_TOKEN")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let url = loop {
            let line = lines.next().expect("server exited").unwrap();
            log.lock().unwrap().push(line.clone());
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        let keep = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                keep.lock().unwrap().push(line);
            }
        });
        Server { child, url, log }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }

    fn log_has(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// reqwest here has no blocking client; each call gets a small runtime.
fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn get(url: &str) -> String {
    block(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

fn submit(url: &str, body: &str) -> i64 {
    let v: Value = block(async {
        reqwest::Client::new()
            .post(format!("{url}/api/v1/jobs"))
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    v["JobID"].as_i64().unwrap_or_else(|| panic!("{v}"))
}

fn wait_state(url: &str, id: i64, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = serde_json::from_str(&get(&format!("{url}/api/v1/jobs/{id}"))).unwrap();
        if v["State"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "job {id} never {want}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of a sample line `name value` (labels included in `name`).
fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// A job of `step` on two targets named after the job (jobs in parallel
/// must not wait for each other's target locks).
fn job(name: &str, step: &str) -> String {
    format!(
        "JobName: {name}\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: {name}-a}}, {{ID: {name}-b}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{step}]\nReporting:\n  RunReporters: [{{name: TargetSuccess, parameters: {{SuccessExpression: \"=100%\"}}}}]\n"
    )
}

#[test]
fn a_restart_logs_its_jobs_and_metrics_stay_true_after_a_resume() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let first = Server::start(&db);
    let sleepy = submit(
        &first.url,
        &job(
            "sleepy",
            "{name: sleep, label: nap, parameters: {duration: [3s]}}",
        ),
    );
    let busy = submit(
        &first.url,
        &job(
            "busy",
            "{name: cmd, label: work, parameters: {executable: [sleep], args: [\"30\"]}}",
        ),
    );
    wait_state(&first.url, sleepy, "Started");
    wait_state(&first.url, busy, "Started");
    std::thread::sleep(Duration::from_millis(700));
    let m = get(&format!("{}/metrics", first.url));
    assert_eq!(sample(&m, "prova_acquired_targets"), Some(4.0), "{m}");
    // Killed while both jobs run: neither can go on after the restart.
    first.signal(nix::sys::signal::Signal::SIGKILL);
    drop(first);

    // The restart: both jobs were running when the server died.
    let second = Server::start(&db);
    assert!(
        second.log_has(
            &format!("failed 2 job(s) that cannot go on [{sleepy}, {busy}]"),
            Duration::from_secs(10)
        ) || second.log_has(
            &format!("failed 2 job(s) that cannot go on [{busy}, {sleepy}]"),
            Duration::from_secs(1)
        ),
        "{}",
        second.log()
    );
    assert!(second.log().contains("zombie job"), "{}", second.log());
    wait_state(&second.url, sleepy, "Failed");

    // A job paused at shutdown and resumed by the next start.
    let resumable = submit(
        &second.url,
        &job(
            "resumable",
            "{name: sleep, label: nap, parameters: {duration: [2s]}}",
        ),
    );
    wait_state(&second.url, resumable, "Started");
    std::thread::sleep(Duration::from_millis(500));
    second.signal(nix::sys::signal::Signal::SIGTERM);
    let mut second = second;
    let _ = second.child.wait();
    let third = Server::start(&db);
    assert!(
        third.log_has(
            &format!("restart: resumed 1 job(s) paused at shutdown [{resumable}]; failed 0 job(s)"),
            Duration::from_secs(10)
        ),
        "{}",
        third.log()
    );
    wait_state(&third.url, resumable, "Completed");
    assert!(
        third.log_has(&format!("job={resumable}"), Duration::from_secs(5)),
        "the end of the resumed job is logged: {}",
        third.log()
    );

    // A job run wholly here has its step timed (the resumed one entered its
    // step before the restart: that step is not timed).
    let quick = submit(
        &third.url,
        &job(
            "quick",
            "{name: sleep, label: nap, parameters: {duration: [10ms]}}",
        ),
    );
    wait_state(&third.url, quick, "Completed");

    let m = get(&format!("{}/metrics", third.url));
    // The resumed job released targets this process never saw acquired.
    assert_eq!(sample(&m, "prova_acquired_targets"), Some(0.0), "{m}");
    assert_eq!(
        sample(&m, "prova_jobs_ended_total{verdict=\"passed\"}"),
        Some(2.0),
        "{m}"
    );
    assert!(
        sample(&m, "prova_events_written_total").unwrap() > 0.0,
        "{m}"
    );
    assert_eq!(sample(&m, "prova_event_writer_queue"), Some(0.0), "{m}");
    assert!(
        sample(&m, "prova_step_duration_seconds_count{step=\"nap\"}") == Some(2.0),
        "{m}"
    );
    assert_eq!(sample(&m, "prova_running_jobs"), Some(0.0), "{m}");
}
