use std::ops::ControlFlow;
use std::time::Duration;

use prova_ssh::exec::{self, DEFAULT_OUTPUT_LIMIT};
use prova_ssh::{Connection, Ended, ExecOptions, ExitStatus, RemoteCommand, Stream};
use tokio_util::sync::CancellationToken;

use crate::sshd_or_skip;
use crate::support::{eventually, processes_with, unique_seconds};

fn keep_going(_: Stream, _: &[u8]) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

async fn connect() -> Option<Connection> {
    let sshd = crate::support::sshd()?;
    Some(Connection::open(&sshd.key_config()).await.unwrap())
}

async fn sh(conn: &Connection, script: &str, options: &ExecOptions) -> prova_ssh::ExecOutcome {
    exec::run(
        conn,
        &RemoteCommand::new("sh", ["-c", script]),
        options,
        keep_going,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn stdout_stderr_and_exit_code_apart() {
    let Some(conn) = connect().await else { return };
    let outcome = sh(
        &conn,
        "echo out; echo err >&2; exit 3",
        &ExecOptions::default(),
    )
    .await;
    assert_eq!(outcome.ended, Ended::Exited(ExitStatus::Code(3)));
    assert_eq!(outcome.stdout.text(), "out\n");
    assert_eq!(outcome.stderr.text(), "err\n");
    assert!(outcome.remote_pid.is_some());
}

#[tokio::test]
async fn arguments_are_quoted_not_interpreted() {
    let Some(conn) = connect().await else { return };
    let cmd = RemoteCommand::new("printf", ["%s|", "a b", "$HOME", "*", "it's"]);
    let outcome = exec::run(&conn, &cmd, &ExecOptions::default(), keep_going)
        .await
        .unwrap();
    assert_eq!(outcome.stdout.text(), "a b|$HOME|*|it's|");
    // `ls -l` as the executable is a program of that name (ConTest semantics).
    let outcome = exec::run(
        &conn,
        &RemoteCommand::new("ls -l", Vec::<String>::new()),
        &ExecOptions::default(),
        keep_going,
    )
    .await
    .unwrap();
    assert_eq!(
        outcome.ended,
        Ended::Exited(ExitStatus::Code(127)),
        "{}",
        outcome.stderr.text()
    );
}

#[tokio::test]
async fn killed_by_signal_is_reported_by_name() {
    let Some(conn) = connect().await else { return };
    let outcome = sh(&conn, "kill -USR1 $$", &ExecOptions::default()).await;
    assert_eq!(
        outcome.ended,
        Ended::Exited(ExitStatus::Signal {
            name: "USR1".to_string(),
            core_dumped: false
        })
    );
}

#[tokio::test]
async fn large_output_keeps_the_last_mebibyte() {
    let Some(conn) = connect().await else { return };
    let mut streamed = 0u64;
    // 3 MiB of 'x' then a final line.
    let script = "head -c 3145728 /dev/zero | tr '\\0' x; echo; echo THE-END";
    let outcome = exec::run(
        &conn,
        &RemoteCommand::new("sh", ["-c", script]),
        &ExecOptions::default(),
        |stream, data| {
            if stream == Stream::Stdout {
                streamed += data.len() as u64;
            }
            ControlFlow::Continue(())
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.ended, Ended::Exited(ExitStatus::Code(0)));
    assert_eq!(outcome.stdout.total_bytes(), 3 * 1024 * 1024 + 9);
    assert_eq!(streamed, outcome.stdout.total_bytes());
    assert!(outcome.stdout.truncated());
    assert_eq!(outcome.stdout.bytes().len(), DEFAULT_OUTPUT_LIMIT);
    assert!(outcome.stdout.text().ends_with("x\nTHE-END\n"));
}

/// The command starts children in its group and one that escaped it with
/// setsid; none may outlive the stop.
fn spawner(marker: &str) -> String {
    format!("sleep {marker} & sleep {marker} & setsid sleep {marker} & echo started; wait")
}

async fn assert_all_gone(marker: &str) {
    let gone = eventually(Duration::from_secs(5), || processes_with(marker).is_empty()).await;
    assert!(gone, "left on the target: {:?}", processes_with(marker));
}

#[tokio::test]
async fn cancel_leaves_no_remote_process() {
    let Some(conn) = connect().await else { return };
    let marker = unique_seconds();
    let cancel = CancellationToken::new();
    let options = ExecOptions {
        cancel: cancel.clone(),
        ..ExecOptions::default()
    };
    let trigger = cancel.clone();
    let outcome = exec::run(
        &conn,
        &RemoteCommand::new("sh", ["-c", &spawner(&marker)]),
        &options,
        |_, data| {
            if String::from_utf8_lossy(data).contains("started") {
                // Let all three sleeps start.
                let trigger = trigger.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    trigger.cancel();
                });
            }
            ControlFlow::Continue(())
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.ended, Ended::Cancelled);
    assert!(outcome.kill_error.is_none(), "{:?}", outcome.kill_error);
    assert_all_gone(&marker).await;
}

#[tokio::test]
async fn timeout_leaves_no_remote_process() {
    let Some(conn) = connect().await else { return };
    let marker = unique_seconds();
    let options = ExecOptions {
        timeout: Some(Duration::from_secs(1)),
        ..ExecOptions::default()
    };
    let started = std::time::Instant::now();
    let outcome = sh(&conn, &spawner(&marker), &options).await;
    assert_eq!(outcome.ended, Ended::TimedOut(Duration::from_secs(1)));
    assert_eq!(outcome.stdout.text(), "started\n");
    assert!(outcome.kill_error.is_none(), "{:?}", outcome.kill_error);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_all_gone(&marker).await;
}

#[tokio::test]
async fn a_command_ignoring_sigterm_is_killed() {
    let Some(conn) = connect().await else { return };
    let marker = unique_seconds();
    let options = ExecOptions {
        timeout: Some(Duration::from_millis(500)),
        kill_grace: Duration::from_millis(500),
        ..ExecOptions::default()
    };
    let script = format!("trap '' TERM; sleep {marker} & echo started; wait; wait");
    let outcome = sh(&conn, &script, &options).await;
    assert!(matches!(outcome.ended, Ended::TimedOut(_)));
    assert!(outcome.kill_error.is_none(), "{:?}", outcome.kill_error);
    assert_all_gone(&marker).await;
}

#[tokio::test]
async fn output_callback_can_stop_the_command() {
    let Some(conn) = connect().await else { return };
    let marker = unique_seconds();
    let script = format!("echo ready; exec sleep {marker}");
    let outcome = exec::run(
        &conn,
        &RemoteCommand::new("sh", ["-c", &script]),
        &ExecOptions::default(),
        |_, data| {
            if data.windows(5).any(|w| w == b"ready") {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome.ended, Ended::Stopped);
    assert_all_gone(&marker).await;
}

#[tokio::test]
async fn many_commands_on_one_connection() {
    let sshd = sshd_or_skip!();
    let conn = Connection::open(&sshd.key_config()).await.unwrap();
    let runs = (0..20).map(|i| {
        let conn = &conn;
        async move {
            let outcome = sh(conn, &format!("echo {i}"), &ExecOptions::default()).await;
            assert_eq!(outcome.stdout.text(), format!("{i}\n"));
        }
    });
    futures::future::join_all(runs).await;
}
