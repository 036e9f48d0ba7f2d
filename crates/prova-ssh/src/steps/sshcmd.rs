//! `sshcmd`: runs `executable` with `args` on the target over SSH (ConTest's
//! step, see `docs/plugins.md`), on a pooled connection.
//!
//! The target passes when the command exits 0 and, if `expect` is set, its
//! stdout matches; it fails on a non-zero exit or a signal (with the tail
//! of stderr), on `timeout`, on an `expect` that does not match, and, with
//! `results_dir`, on failed test cases (unless `fail_on_test_failures:
//! false`). A connection, host-key or login failure is an infrastructure
//! error naming `user@host:port` and the cause.
//!
//! A timeout or a cancel ends the remote command and everything it started
//! (the library kills its process group and tagged processes). While the
//! command runs, a hard-exit guard does the same if prova abandons the
//! step (a second Ctrl-C, the step's own timeout). A pause lets the
//! command finish, as for `cmd`.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use prova_engine::plugin::hard_exit::on_hard_exit;
use prova_engine::plugin::*;
use serde_json::json;

use super::login::{LoginParams, non_empty, positive_duration};
use super::results;
use super::{SSHCMD_END, SSHCMD_START, SSHCMD_STDERR, SSHCMD_STDOUT, StepPool};
use crate::config::ConnectConfig;
use crate::exec::{DEFAULT_KILL_GRACE, Ended, ExecError, ExecOptions, ExitStatus, RunProbe};
use crate::{OutputTail, Pool, RemoteCommand};

/// ConTest's default `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Stderr shown in a failure message (the tail).
const STDERR_TAIL: usize = 2048;

/// Every event of `sshcmd` but the results'.
const EVENTS: &[EventDecl] = &[
    EventDecl::new(
        SSHCMD_START,
        "{Host, Port, User, Command}: the command is being started (Command: the remote command line)",
    ),
    EventDecl::new(
        SSHCMD_STDOUT,
        "{Msg, DroppedBytes}: the command's stdout (its last MiB), when emit_stdout",
    ),
    EventDecl::new(
        SSHCMD_STDERR,
        "{Msg, DroppedBytes}: the command's stderr (its last MiB), when emit_stderr",
    ),
    EventDecl::new(
        SSHCMD_END,
        "{ExitCode, Signal, DurationMs, TimedOut, RemotePid, ConnectionId}: the command ended or was stopped",
    ),
];

/// The `sshcmd` step.
pub struct SshCmd {
    pub(super) pool: StepPool,
}

impl Step for SshCmd {
    fn events(&self) -> Vec<EventDecl> {
        [EVENTS.to_vec(), results::events()].concat()
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        let login = LoginParams::read(p);
        let executable = p.required_with("executable", non_empty("a program name or path"));
        let run = RunSsh {
            args: p.list("args"),
            expect: p.optional("expect"),
            timeout: p
                .optional_with("timeout", |v| {
                    Ok((positive_duration(v)?, v.trim().to_string()))
                })
                .unwrap_or_else(|| Param::fixed((DEFAULT_TIMEOUT, "10m".to_string()))),
            emit_stdout: p.or("emit_stdout", true),
            emit_stderr: p.or("emit_stderr", true),
            results_dir: p.optional_with("results_dir", non_empty("a remote directory")),
            fail_on_test_failures: p.or("fail_on_test_failures", true),
            pool: self.pool.clone(),
            // Last: every parameter is read (and checked) first.
            login: login?,
            executable: executable?,
        };
        p.ok()
            .then_some(Prepared::PerTarget(std::sync::Arc::new(run)))
    }
}

/// `sshcmd`, prepared.
struct RunSsh {
    login: LoginParams,
    executable: Param<String>,
    args: ParamList<String>,
    expect: Option<Param<regex::Regex>>,
    /// And the value as written, for messages ("timed out after 5s").
    timeout: Param<(Duration, String)>,
    emit_stdout: Param<bool>,
    emit_stderr: Param<bool>,
    results_dir: Option<Param<String>>,
    fail_on_test_failures: Param<bool>,
    pool: StepPool,
}

#[async_trait]
impl PreparedStep for RunSsh {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        let Some(config) = self.login.config(ctx, target)? else {
            return Ok(());
        };
        let command = RemoteCommand::new(
            self.executable.get(ctx, target)?,
            self.args.get(ctx, target)?,
        );
        let expect = self
            .expect
            .as_ref()
            .map(|e| e.get(ctx, target))
            .transpose()?;
        let (timeout, timeout_text) = self.timeout.get(ctx, target)?;
        let results_dir = self
            .results_dir
            .as_ref()
            .map(|d| d.get(ctx, target))
            .transpose()?;
        let line = command
            .command_line()
            .map_err(|e| StepError::failed(format!("{}: {e}", config.target())))?;
        let pool = self.pool.get();

        ctx.emit(
            target,
            SSHCMD_START,
            Some(json!({
                "Host": config.host, "Port": config.port, "User": config.user, "Command": line,
            })),
        );
        let started = Instant::now();
        let outcome = run_guarded(&pool, &config, &command, timeout, ctx).await;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => return Err(exec_error(e)),
        };
        if outcome.ended == Ended::Cancelled {
            return Err(StepError::Cancelled);
        }
        for (wanted, name, tail) in [
            (&self.emit_stdout, SSHCMD_STDOUT, &outcome.stdout),
            (&self.emit_stderr, SSHCMD_STDERR, &outcome.stderr),
        ] {
            if wanted.get(ctx, target)? && tail.total_bytes() > 0 {
                ctx.emit(target, name, Some(output_payload(tail)));
            }
        }
        let (code, signal) = match &outcome.ended {
            Ended::Exited(ExitStatus::Code(c)) => (Some(*c), None),
            Ended::Exited(ExitStatus::Signal { name, .. }) => (None, Some(name.clone())),
            _ => (None, None),
        };
        let timed_out = matches!(outcome.ended, Ended::TimedOut(_));
        ctx.emit(
            target,
            SSHCMD_END,
            Some(json!({
                "ExitCode": code,
                "Signal": signal,
                "DurationMs": started.elapsed().as_millis() as u64,
                "TimedOut": timed_out,
                "RemotePid": outcome.remote_pid,
                "ConnectionId": outcome.connection_id,
            })),
        );

        let who = config.target();
        let mut failure = match &outcome.ended {
            Ended::Exited(status) if status.success() => expect.and_then(|re| {
                let stdout = outcome.stdout.text();
                (!re.is_match(&stdout))
                    .then(|| format!("{who}: match for {re} not found in the stdout of {line}"))
            }),
            Ended::Exited(status) => {
                let tail = tail_text(&outcome.stderr.bytes(), STDERR_TAIL);
                Some(if tail.is_empty() {
                    format!("{who}: {line} {status}")
                } else {
                    format!("{who}: {line} {status}; stderr: {tail}")
                })
            }
            Ended::TimedOut(_) => Some(format!("{who}: {line} timed out after {timeout_text}")),
            // Only a cancel or an output callback stops a command early:
            // the cancel returned above, and this step never breaks.
            Ended::Cancelled | Ended::Stopped => Some(format!("{who}: {line} was stopped")),
        };
        if let Some(kill) = &outcome.kill_error {
            let f = failure.get_or_insert_with(String::new);
            f.push_str(&format!(
                "; the remote command may still run: {}",
                error_chain(kill)
            ));
        }
        if let Some(dir) = results_dir
            && matches!(outcome.ended, Ended::Exited(_) | Ended::TimedOut(_))
        {
            let problem = match results::fetch(&pool, &config, &dir, ctx, target).await {
                Ok(ingested)
                    if failure.is_none() && self.fail_on_test_failures.get(ctx, target)? =>
                {
                    ingested.failure_message().map(|v| format!("{who}: {v}"))
                }
                Ok(_) => None,
                Err(StepError::Cancelled) => return Err(StepError::Cancelled),
                Err(e) if failure.is_none() => return Err(e),
                Err(e) => Some(e.to_string()),
            };
            failure = match (failure, problem) {
                (Some(f), Some(p)) => Some(format!("{f}; results: {p}")),
                (f, p) => f.or(p),
            };
        }
        match failure {
            None => Ok(()),
            Some(f) => Err(StepError::failed(f)),
        }
    }
}

/// Runs the command with a hard-exit guard: if this future is dropped while
/// the command runs, the guard ends it over a pooled connection.
async fn run_guarded(
    pool: &Pool,
    config: &ConnectConfig,
    command: &RemoteCommand,
    timeout: Duration,
    ctx: &StepContext,
) -> Result<crate::ExecOutcome, ExecError> {
    let probe = RunProbe::new();
    let options = ExecOptions {
        timeout: Some(timeout),
        cancel: ctx.cancel.clone(),
        probe: Some(probe.clone()),
        ..ExecOptions::default()
    };
    let guard = {
        let (pool, config) = (pool.clone(), config.clone());
        on_hard_exit(
            format!("end {} on {}", command.executable, config.target()),
            move || async move {
                let Some(run) = probe.get() else { return };
                if let Err(e) = pool
                    .kill_remote(&config, run.pid, &run.tag, DEFAULT_KILL_GRACE)
                    .await
                {
                    tracing::warn!("{}", error_chain(&e));
                }
            },
        )
    };
    let outcome = pool
        .exec(config, command, &options, |_, _| ControlFlow::Continue(()))
        .await;
    guard.disarm();
    outcome
}

/// What the run's error means for the target.
fn exec_error(e: ExecError) -> StepError {
    match e {
        // The target went away under the command (crashed, rebooted, sshd
        // killed): a verdict on the target.
        ExecError::ConnectionLost { .. } => StepError::failed(e),
        ExecError::Nul => StepError::failed(e),
        // Unreachable, refused host key or login, sshd refusing sessions.
        _ => StepError::infra(e),
    }
}

fn output_payload(tail: &OutputTail) -> serde_json::Value {
    let kept = tail.bytes();
    json!({
        "Msg": String::from_utf8_lossy(&kept),
        "DroppedBytes": tail.total_bytes() - kept.len() as u64,
    })
}
