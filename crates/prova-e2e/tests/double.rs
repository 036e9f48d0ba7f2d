//! Both e2e tests against the Kubernetes API double (prova-kube-double)
//! over real HTTP, through a kubeconfig that points at it, as a user's
//! cluster would be reached.

use std::time::Duration;

use prova_e2e::runner::{self, Outcome};
use prova_e2e::{junit, suite, user_agent};
use prova_kube_double::Double;
use support::config;

mod support;

async fn run(d: &Double, focus: &str) -> Vec<Outcome> {
    let dir = tempfile::tempdir().unwrap();
    let config = config(d, dir.path()).await;
    let selected = runner::select(suite::all(), Some(focus), None).unwrap();
    assert!(!selected.is_empty(), "{focus} selects nothing");
    runner::run(&selected, &config).await
}

/// The requests the double saw from `test`'s user agent.
fn requests_of(d: &Double, test: &str) -> Vec<String> {
    let ua = user_agent::for_test(test);
    d.requests()
        .into_iter()
        .zip(d.agents())
        .filter(|(_, a)| a.as_deref() == Some(ua.as_str()))
        .map(|(r, _)| r)
        .collect()
}

fn status_calls(reqs: &[String], resource: &str) -> Vec<String> {
    let mut methods: Vec<String> = reqs
        .iter()
        .filter(|r| {
            let path = r
                .split(' ')
                .nth(1)
                .unwrap_or("")
                .split('?')
                .next()
                .unwrap_or("");
            path.contains(&format!("/{resource}/")) && path.ends_with("/status")
        })
        .map(|r| r.split(' ').next().unwrap_or("").to_string())
        .collect();
    methods.sort();
    methods.dedup();
    methods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_tests_pass_against_the_double_and_hit_the_three_status_endpoints() {
    let d = Double::start(Default::default()).await;
    let outcomes = run(&d, ".").await;
    for o in &outcomes {
        eprintln!("{}: {:?} ({:.2?})", o.name, o.failure, o.duration);
        assert!(o.passed(), "{}: {:?}\n{}", o.name, o.failure, o.log);
    }
    assert_eq!(outcomes.len(), 2);
    for (test, resource) in [
        (suite::all()[0].name, "jobs"),
        (suite::all()[1].name, "statefulsets"),
    ] {
        let reqs = requests_of(&d, test);
        assert_eq!(
            status_calls(&reqs, resource),
            ["GET", "PATCH", "PUT"],
            "{test}: {reqs:#?}"
        );
    }
    // Every request, the framework's own (namespaces, ServiceAccount)
    // included, names its test.
    let agents = d.agents();
    let mut saw_framework = false;
    for (req, agent) in d.requests().iter().zip(&agents) {
        let agent = agent.as_deref().unwrap_or("");
        assert!(
            agent.starts_with("e2e.test/") && agent.contains(" prova -- [sig-apps] "),
            "{req} had user agent {agent:?}"
        );
        saw_framework |= req.contains("/serviceaccounts/default");
    }
    assert!(saw_framework);
    // The namespaces are gone; the StatefulSet's watch saw its status.
    d.wait_until("the tests' namespaces to go", |d| {
        d.namespaces().iter().all(|n| {
            let name = n["metadata"]["name"].as_str().unwrap_or("");
            !name.starts_with("job-") && !name.starts_with("statefulset-")
        })
    })
    .await;
    assert!(d.pods().is_empty(), "{:#?}", d.pods());
    for o in &outcomes {
        let ns = o.namespace.as_deref().unwrap();
        let base = if o.name.contains("Job") {
            "job-"
        } else {
            "statefulset-"
        };
        assert!(ns.starts_with(base) && ns.len() == base.len() + 4, "{ns}");
        assert!(o.log.contains("STEP: Destroying namespace"), "{}", o.log);
    }
    let xml = junit::report(&outcomes).to_string().unwrap();
    assert!(xml.contains(r#"<testsuite name="Kubernetes e2e suite" tests="2" skipped="0" errors="0" failures="0""#), "{xml}");
    assert!(xml.contains("STEP: patching /status"), "{xml}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_status_patch_fails_the_case_naming_the_step_and_still_cleans_up() {
    let d = Double::start(Default::default()).await;
    d.reject("PATCH", "/status", 500);
    let outcomes = run(&d, "Job should apply changes").await;
    assert_eq!(outcomes.len(), 1);
    let o = &outcomes[0];
    let failure = o.failure.as_deref().expect("the test should fail");
    assert!(
        failure.starts_with("STEP \"patching /status\": patching the job's /status"),
        "{failure}"
    );
    assert!(failure.contains("injected fault"), "{failure}");
    let xml = junit::report(&outcomes).to_string().unwrap();
    assert!(xml.contains(r#"failures="1""#), "{xml}");
    assert!(
        xml.contains(r#"<failure message="STEP &quot;patching /status&quot;"#),
        "{xml}"
    );
    assert!(
        xml.contains("<system-out>") && xml.contains("STEP: Creating a job"),
        "{xml}"
    );
    // Cleanup ran: the namespace and its pods are gone.
    let ns = o.namespace.clone().unwrap();
    assert!(
        o.log
            .contains(&format!("STEP: Destroying namespace \"{ns}\"")),
        "{}",
        o.log
    );
    assert!(
        d.namespaces()
            .iter()
            .all(|n| n["metadata"]["name"] != ns.as_str())
    );
    assert!(d.pods().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_that_times_out_names_the_step_and_the_last_state() {
    let d = Double::start(Default::default()).await;
    // The pods' image cannot be pulled: they never run.
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&d, dir.path()).await;
    config.wait_timeout = Duration::from_secs(1);
    config.image = format!("registry.invalid/{}:1", prova_kube_double::UNPULLABLE);
    let selected = runner::select(suite::all(), Some("Job"), None).unwrap();
    let o = &runner::run(&selected, &config).await[0];
    let failure = o.failure.as_deref().unwrap();
    assert!(
        failure
            .starts_with("STEP \"Ensure pods equal to parallelism count is attached to the job\""),
        "{failure}"
    );
    assert!(
        failure.contains("timed out after 1s waiting for 2 running pods of job"),
        "{failure}"
    );
    assert!(
        failure.contains("last seen: pods: [") && failure.contains("=Pending"),
        "{failure}"
    );
    assert!(
        d.namespaces()
            .iter()
            .all(|n| n["metadata"]["name"] != o.namespace.as_deref().unwrap())
    );
}
