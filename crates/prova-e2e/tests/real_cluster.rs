//! Both e2e tests against a real cluster: set PROVA_E2E_KUBECONFIG to a
//! kubeconfig (its current context is used; PROVA_E2E_IMAGE overrides
//! the pods' image). Skipped, saying so, only when the variable is unset.

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
    for o in runner::run(&selected, &config).await {
        eprintln!("{}: {:.1?}", o.name, o.duration);
        assert!(o.passed(), "{}: {:?}\n{}", o.name, o.failure, o.log);
    }
}
