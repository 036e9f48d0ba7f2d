//! Both e2e tests against a real cluster: set PROVA_E2E_KUBECONFIG to a
//! kubeconfig (its current context is used; PROVA_E2E_IMAGE overrides
//! the pods' image). Skipped, saying so, only when the variable is unset.
//!
//! When the cluster's audit webhook points at a `prova serve` (see
//! docs/apisnoop.md), set PROVA_E2E_SINK to that server's URL (and
//! PROVA_E2E_SINK_TOKEN to its token): each test must then raise coverage
//! by 3 through the examples' `coverage` reporter, from the sink's hits.

mod support;

use std::time::Duration;

use prova_e2e::runner::{self, RunConfig};
use prova_e2e::suite;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_tests_pass_on_a_real_cluster() {
    let Some(path) = std::env::var_os("PROVA_E2E_KUBECONFIG") else {
        eprintln!("skipped: PROVA_E2E_KUBECONFIG is not set");
        return;
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("PROVA_E2E_KUBECONFIG={path:?}: {e}"));
    let kube = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("PROVA_E2E_KUBECONFIG={path:?}: {e}"));
    let mut config = RunConfig::new(kube);
    config.echo = true;
    config.test_timeout = Duration::from_secs(10 * 60);
    if let Ok(image) = std::env::var("PROVA_E2E_IMAGE") {
        config.image = image;
    }
    let selected = runner::select(suite::all(), None, None).unwrap();
    let outcomes = runner::run(&selected, &config).await;
    for o in &outcomes {
        eprintln!("{}: {:.1?}", o.name, o.duration);
        assert!(o.passed(), "{}: {:?}\n{}", o.name, o.failure, o.log);
    }
    let Ok(sink) = std::env::var("PROVA_E2E_SINK") else {
        eprintln!("coverage not checked: PROVA_E2E_SINK is not set");
        return;
    };
    for (example, outcome) in [
        ("apisnoop-job-status.yaml", &outcomes[0]),
        ("apisnoop-statefulset-status.yaml", &outcomes[1]),
    ] {
        let events = support::job_events(std::slice::from_ref(outcome));
        let report = support::report_of_example(example, &sink, &events, |t| t).await;
        let message = report.data["Message"].as_str().unwrap_or_default();
        eprintln!("{example}: {message}");
        assert!(report.success, "{example}: {:#}", report.data);
        assert!(message.starts_with("+3: "), "{example}: {message}");
    }
}
