//! `prova e2e` as a user runs it: the real binary against the Kubernetes
//! API double over HTTP, through a kubeconfig file.

mod support;

use prova_kube_double::Double;
use support::Env;

const JOB_TEST: &str = "[sig-apps] Job should apply changes to a job status";
const STS_TEST: &str = "[sig-apps] StatefulSet should validate Statefulset Status endpoints";

#[test]
fn list_prints_every_test_and_focus_selects() {
    let env = Env::new();
    let (code, out, err) = env.run(&["e2e", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l == JOB_TEST), "{out}");
    assert!(out.lines().any(|l| l == STS_TEST), "{out}");
    let (code, out, _) = env.run(&["e2e", "list", "--focus", "StatefulSet"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), STS_TEST);
}

#[test]
fn a_focus_that_matches_nothing_is_bad_usage_and_says_so() {
    let env = Env::new();
    let (code, _, err) = env.run(&["e2e", "run", "--focus", "no such test"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no test matches"), "{err}");
    assert!(!env.db().exists(), "e2e must not create a store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_passes_against_the_double_and_writes_junit() {
    let double = Double::start(Default::default()).await;
    let env = Env::new();
    let kubeconfig = double.write_kubeconfig(env.dir.path());
    let junit = env.dir.path().join("junit_01.xml");
    let mut cmd = env.cmd();
    cmd.args([
        "e2e",
        "run",
        "--focus",
        "Job should apply",
        "--context",
        "double",
    ])
    .arg("--kubeconfig")
    .arg(&kubeconfig)
    .arg("--junit")
    .arg(&junit)
    .args(["--wait-timeout", "20s", "--timeout", "60s"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("STEP: "),
        "the STEP log goes to stderr: {stderr}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"1\""), "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(xml.contains(JOB_TEST), "{xml}");
    // Every request credited to the test by its user agent.
    let agent = format!("prova -- {JOB_TEST}");
    let credited = double
        .agents()
        .iter()
        .filter(|a| a.as_deref().is_some_and(|a| a.ends_with(&agent)))
        .count();
    assert!(credited > 3, "only {credited} requests carried {agent:?}");
}
