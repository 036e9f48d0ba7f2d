//! A suite run over SSH (scripts/sshd.sh's real OpenSSH server) whose
//! JUnit file comes back: its counts reach the step's progress line and its
//! failing case, with its message, the failure list of `prova run`.
//!
//! With the PROVA_TEST_SSH* variables exported (CI: scripts/test.sh) that
//! server is used; otherwise scripts/sshd.sh starts one in cargo's test tmp
//! dir. It must start: PROVA_SKIP_SSH=1 alone skips the test.

use std::collections::HashMap;
use std::path::Path;

mod support;
use support::{Env, root};

fn sshd_vars() -> Option<HashMap<String, String>> {
    if std::env::var("PROVA_SKIP_SSH").as_deref() == Ok("1") {
        eprintln!("PROVA_SKIP_SSH=1: skipped");
        return None;
    }
    let names = [
        "PROVA_TEST_SSH_HOST",
        "PROVA_TEST_SSH_PORT",
        "PROVA_TEST_SSH_USER",
        "PROVA_TEST_SSH_KEY",
        "PROVA_TEST_SSH_KNOWN_HOSTS",
    ];
    if std::env::var_os("PROVA_TEST_SSH_PORT").is_some() {
        return Some(
            names
                .iter()
                .map(|n| (n.to_string(), std::env::var(n).unwrap_or_default()))
                .collect(),
        );
    }
    let script = root().join("scripts/sshd.sh");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("prova-cli-sshd");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("start")
        .env("PROVA_SSHD_DIR", &dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/sshd.sh start failed (PROVA_SKIP_SSH=1 skips): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches(['\'', '"']).to_string()))
            .collect(),
    )
}

#[test]
fn an_ssh_suites_counts_and_failing_case_reach_the_terminal() {
    let Some(v) = sshd_vars() else { return };
    let env = Env::new();
    let junit = r#"<testsuite name="remote"><testcase name="boots"/><testcase name="pings"/><testcase name="mounts"><skipped/></testcase><testcase name="logs in"><failure message="expected 200, got 401">trace</failure></testcase></testsuite>"#;
    let job = format!(
        r#"JobName: ssh suite
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters:
      Targets: [{{ID: dut1, FQDN: "{host}"}}]
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: remote
      Steps:
        - name: sshcmd
          label: suite
          parameters:
            host: ["{{{{ .FQDN }}}}"]
            port: ["{port}"]
            user: [{user}]
            private_key_file: ["{key}"]
            known_hosts: ["{known}"]
            executable: [sh]
            args: [-c, "mkdir -p /tmp/prova-cli-suite-{{{{ .ID }}}} && echo '{junit}' > /tmp/prova-cli-suite-{{{{ .ID }}}}/junit.xml"]
            results_dir: ["/tmp/prova-cli-suite-{{{{ .ID }}}}"]
Reporting:
  RunReporters: [{{name: TargetSuccess, parameters: {{SuccessExpression: "=100%"}}}}]
"#,
        host = v["PROVA_TEST_SSH_HOST"],
        port = v["PROVA_TEST_SSH_PORT"],
        user = v["PROVA_TEST_SSH_USER"],
        key = v["PROVA_TEST_SSH_KEY"],
        known = v["PROVA_TEST_SSH_KNOWN_HOSTS"],
        // Inside a YAML double-quoted scalar.
        junit = junit.replace('"', "\\\""),
    );
    let file = env.write("ssh.yaml", &job);
    let (code, out, err) = env.run(&["run", file.to_str().unwrap(), "--no-progress"]);
    assert_eq!(code, 1, "a failing case fails the target\n{out}\n{err}");
    // The step's line, as the results come back.
    assert!(
        err.contains("run 1 · remote · suite · dut1: 2 passed, 1 failed, 1 skipped"),
        "{err}"
    );
    // The failing case when it arrives, and in the list after the reports.
    let case = "run 1 · remote · suite · dut1: remote: logs in: expected 200, got 401";
    assert!(err.contains(&format!("case failed: {case}")), "{err}");
    let list = out
        .split("failed test cases:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no failure list in\n{out}"));
    assert!(list.starts_with(&format!("  {case}\n")), "{out}");
}
