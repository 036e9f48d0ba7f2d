//! What the e2e crate's loop tests share: the example jobs, the plugin
//! registry the binary has, a job's events from e2e outcomes, and the
//! examples' coverage reporter pointed at a sink.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::time::Duration;

use prova_core::NewEvent;
use prova_core::node::Format;
use prova_e2e::junit;
use prova_e2e::runner::{Outcome, RunConfig};
use prova_engine::plugin::FinalReportInput;
use prova_kube_double::Double;

/// A run configuration reaching `d` over HTTP through a kubeconfig file in
/// `dir` (as a user's cluster is reached), with short waits.
pub async fn config(d: &Double, dir: &Path) -> RunConfig {
    let path = d.write_kubeconfig(dir);
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let options = kube::config::KubeConfigOptions {
        context: Some("double".into()),
        ..Default::default()
    };
    let kube = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    let mut config = RunConfig::new(kube);
    config.wait_timeout = Duration::from_secs(20);
    config.test_timeout = Duration::from_secs(60);
    config
}

/// The token the loop tests' sinks take.
pub const TOKEN: &str = "sink-token";

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn example(name: &str) -> PathBuf {
    repo().join("examples/k8s").join(name)
}

pub fn registry() -> prova_engine::Registry {
    let mut r = prova_engine::plugins::registry();
    prova_k8s::register(&mut r);
    prova_coverage::reporter::register(&mut r);
    r
}

/// A job's events as the k8sjob step leaves them: its start, and one
/// TestCaseResult per e2e test from the suite's JUnit.
pub fn job_events(outcomes: &[Outcome]) -> Vec<NewEvent> {
    let xml = junit::report(outcomes).to_string().unwrap();
    let cases = prova_results::junit::parse_junit(xml.as_bytes(), "junit_01.xml").unwrap();
    let mut events = vec![NewEvent::job(1, "JobStateStarted", None)];
    for c in cases {
        events.push(NewEvent::job(
            1,
            prova_core::results::TEST_CASE,
            Some(serde_json::to_value(c).unwrap()),
        ));
    }
    events
}

/// The example's coverage reporter, pointed at `sink` (the rest as written).
pub async fn report_of_example(
    name: &str,
    sink: &str,
    events: &[NewEvent],
    edit: impl Fn(String) -> String,
) -> prova_core::status::Report {
    let path = example(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let text = edit(
        text.replace("Server: http://127.0.0.1:8080", &format!("Server: {sink}"))
            .replace("TokenEnv: PROVA_TOKEN", &format!("Token: {}", token()))
            .replace("Wait: 15s", "Wait: 5s"),
    );
    let job = prova_engine::prepare::prepare_str(&text, Format::Yaml, Some(&path), &registry())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let (_, reporter) = job
        .final_reporters
        .iter()
        .find(|(n, _)| n == "coverage")
        .expect("the example has a coverage reporter");
    reporter
        .final_report(&FinalReportInput {
            job_id: 1,
            job_name: &job.descriptor.job_name,
            runs: &[],
            events,
        })
        .await
        .unwrap()
}

/// The sink's token: `PROVA_E2E_SINK_TOKEN` on a real cluster, else the
/// loop tests' own.
fn token() -> String {
    std::env::var("PROVA_E2E_SINK_TOKEN").unwrap_or_else(|_| TOKEN.to_string())
}
