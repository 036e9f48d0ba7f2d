//! When a target passes or fails, and what the failure says.

use serde_json::json;

use crate::job::{login, run_step, with};
use crate::sshd_or_skip;

#[tokio::test]
async fn a_non_zero_exit_fails_with_the_status_and_stderr() {
    let sshd = sshd_or_skip!();
    let params = with(
        &login(sshd),
        json!({ "executable": ["sh"], "args": ["-c", "echo partial; echo 'disk on fire' >&2; exit 3"],
                "expect": ["partial"] }),
    );
    let ran = run_step(sshd, "sshcmd", params).await;
    assert!(!ran.outcome.success());
    let err = ran.target_err();
    // A matching `expect` does not save a failed command (as in ConTest).
    assert!(err.contains("exited with status 3"), "{err}");
    assert!(err.contains("stderr: disk on fire"), "{err}");
    assert!(err.contains(&sshd.user), "{err}");
    let end = ran.one("SshCmdEnd");
    assert_eq!(end["ExitCode"], 3);
    assert_eq!(end["TimedOut"], false);
    assert!(end["RemotePid"].as_u64().is_some(), "{end}");
    assert_eq!(ran.one("SshCmdStderr")["Msg"], "disk on fire\n");
}

#[tokio::test]
async fn a_signal_is_named_and_output_events_can_be_turned_off() {
    let sshd = sshd_or_skip!();
    let params = with(
        &login(sshd),
        json!({ "executable": ["sh"], "args": ["-c", "echo hi; kill -USR1 $$"],
                "emit_stdout": ["false"] }),
    );
    let ran = run_step(sshd, "sshcmd", params).await;
    assert!(ran.target_err().contains("killed by signal USR1"));
    assert_eq!(ran.one("SshCmdEnd")["Signal"], "USR1");
    assert!(ran.named("SshCmdStdout").is_empty());
}

#[tokio::test]
async fn an_empty_host_fails_unless_skipped() {
    let sshd = sshd_or_skip!();
    // The targets have no IPv4 address: `host` renders empty.
    let base = with(
        &login(sshd),
        json!({ "host": ["{{ .PrimaryIPv4 }}"], "executable": ["true"] }),
    );
    let ran = run_step(sshd, "sshcmd", base.clone()).await;
    let err = ran.target_err();
    assert!(err.contains("host value is empty for target t1"), "{err}");
    let skip = with(&base, json!({ "skip_if_empty_host": ["true"] }));
    let ran = run_step(sshd, "sshcmd", skip).await;
    assert!(ran.outcome.success());
    assert!(ran.named("SshCmdStart").is_empty(), "nothing was run");
}
