//! A timeout, a cancel, or the engine abandoning the step: the remote
//! command and what it started end; nothing is left on the target.

use std::time::{Duration, Instant};

use prova_engine::runner::RunOptions;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::job::{Ran, job, login, run, step, with};
use crate::sshd_or_skip;
use crate::support::{Sshd, eventually, processes_with, unique_seconds};

/// A command that starts a child and waits: `sleep <marker>` twice, one in
/// the background, so the group kill must reach more than the shell.
fn sleeper(marker: &str) -> Value {
    json!({ "executable": ["sh"], "args": ["-c", format!("sleep {marker} & sleep {marker}; wait")] })
}

async fn assert_nothing_left(marker: &str) {
    let gone = eventually(Duration::from_secs(10), || {
        processes_with(marker).is_empty()
    })
    .await;
    assert!(gone, "left on the target: {:?}", processes_with(marker));
}

async fn run_sleeper(
    sshd: &Sshd,
    marker: &str,
    extra: Value,
    step_extra: Value,
    opts: RunOptions,
) -> Ran {
    let mut s = step(
        "sshcmd",
        "wait",
        with(&with(&login(sshd), sleeper(marker)), extra),
    );
    for (k, v) in step_extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    run(&job(sshd, &["t1"], vec![s]), None, opts).await
}

#[tokio::test]
async fn a_timeout_fails_the_target_and_ends_the_command() {
    let sshd = sshd_or_skip!();
    let marker = unique_seconds();
    let started = Instant::now();
    let ran = run_sleeper(
        sshd,
        &marker,
        json!({ "timeout": ["1s"] }),
        json!({}),
        RunOptions::default(),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(20));
    let err = ran.target_err();
    assert!(err.contains("timed out after 1s"), "{err}");
    assert_eq!(ran.one("SshCmdEnd")["TimedOut"], true);
    assert_nothing_left(&marker).await;
}

#[tokio::test]
async fn a_cancel_ends_the_command() {
    let sshd = sshd_or_skip!();
    let marker = unique_seconds();
    let cancel = CancellationToken::new();
    let watcher = {
        let (cancel, marker) = (cancel.clone(), marker.clone());
        tokio::spawn(async move {
            let running = eventually(Duration::from_secs(20), || {
                processes_with(&marker).len() >= 2
            })
            .await;
            cancel.cancel();
            running
        })
    };
    let opts = RunOptions {
        cancel,
        ..RunOptions::default()
    };
    let ran = run_sleeper(sshd, &marker, json!({}), json!({}), opts).await;
    assert!(watcher.await.unwrap(), "the command never ran");
    assert!(!ran.outcome.success());
    assert!(
        ran.named("SshCmdEnd").is_empty(),
        "a cancelled step reports no end"
    );
    assert_nothing_left(&marker).await;
}

/// The engine's own step timeout drops the step's future mid-command: the
/// hard-exit guard ends the remote command.
#[tokio::test]
async fn an_abandoned_step_still_ends_its_command() {
    let sshd = sshd_or_skip!();
    let marker = unique_seconds();
    let ran = run_sleeper(
        sshd,
        &marker,
        json!({}),
        json!({ "timeout": "1s" }),
        RunOptions::default(),
    )
    .await;
    assert!(!ran.outcome.success());
    assert_nothing_left(&marker).await;
}
