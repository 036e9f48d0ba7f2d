//! A remote results directory comes back over SFTP and its JUnit becomes
//! TestCaseResult events, after `sshcmd` (`results_dir`) or in `sshfetch`.

use std::path::Path;

use prova_engine::runner::RunOptions;
use serde_json::{Value, json};

use crate::job::{job, login, run, run_step, step, with};
use crate::sshd_or_skip;
use crate::support::unique_seconds;

const JUNIT: &str = r#"<testsuite name="remote" tests="3" failures="1">
<testcase classname="remote" name="boots"/>
<testcase classname="remote" name="pings"><failure message="no route">lost</failure></testcase>
<testcase classname="remote" name="skipped"><skipped/></testcase>
</testsuite>"#;

/// A remote directory the test user can write, removed when dropped.
struct RemoteDir(String);

impl RemoteDir {
    fn new() -> RemoteDir {
        RemoteDir(format!("/tmp/prova-ssh-results-{}", unique_seconds()))
    }
}

impl Drop for RemoteDir {
    fn drop(&mut self) {
        // The target is this machine.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A command that writes the JUnit file and a log into `dir`.
fn write_results(dir: &str) -> Value {
    json!({
        "executable": ["sh"],
        "args": ["-c", format!("mkdir -p {dir}/logs && printf '%s' \"$0\" > {dir}/junit.xml && echo booted > {dir}/logs/console.txt"), JUNIT],
    })
}

#[tokio::test]
async fn results_dir_brings_junit_back_as_test_cases() {
    let sshd = sshd_or_skip!();
    let dir = RemoteDir::new();
    let params = with(
        &with(&login(sshd), write_results(&dir.0)),
        json!({ "results_dir": [dir.0] }),
    );
    let ran = run_step(sshd, "sshcmd", params).await;
    // The command passed; a test case did not.
    let err = ran.target_err();
    assert!(
        err.contains("1 of 3 test cases failed: remote: pings"),
        "{err}"
    );
    let cases = ran.named("TestCaseResult");
    assert_eq!(cases.len(), 3);
    let statuses: Vec<&str> = cases
        .iter()
        .map(|c| c["Status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["passed", "failed", "skipped"]);
    let results = ran.one("SshResults");
    assert_eq!(results["Files"], 2);
    assert_eq!(results["Source"], dir.0.as_str());
    let art = ran.one("Artifacts");
    let local = Path::new(art["Path"].as_str().unwrap());
    assert!(local.starts_with(ran.artifacts.path()));
    assert_eq!(
        std::fs::read_to_string(local.join("logs/console.txt")).unwrap(),
        "booted\n"
    );
    let sum = ran.one("TestCasesSummary");
    assert_eq!(
        (sum["Total"].as_u64(), sum["Failed"].as_u64()),
        (Some(3), Some(1))
    );
}

#[tokio::test]
async fn sshfetch_brings_back_what_an_earlier_step_wrote() {
    let sshd = sshd_or_skip!();
    let dir = RemoteDir::new();
    let write = with(&login(sshd), write_results(&dir.0));
    let fetch = with(
        &login(sshd),
        json!({ "source": [dir.0], "fail_on_test_failures": ["false"] }),
    );
    let ran = run(
        &job(
            sshd,
            &["t1"],
            vec![
                step("sshcmd", "suite", write),
                step("sshfetch", "fetch", fetch),
            ],
        ),
        None,
        RunOptions::default(),
    )
    .await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    assert_eq!(ran.named("TestCaseResult").len(), 3);
    assert_eq!(ran.one("SshResults")["Files"], 2);
}

#[tokio::test]
async fn a_missing_results_dir_fails_the_target_naming_it() {
    let sshd = sshd_or_skip!();
    let dir = RemoteDir::new();
    let params = with(
        &login(sshd),
        json!({ "executable": ["true"], "results_dir": [dir.0] }),
    );
    let ran = run_step(sshd, "sshcmd", params).await;
    let err = ran.target_err();
    assert!(err.contains(&dir.0), "{err}");
    assert!(ran.named("TestCaseResult").is_empty());
}
