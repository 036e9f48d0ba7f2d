//! `cmd`: runs `executable` with `args` (no shell) in `dir`, for each
//! target. A non-zero exit fails the target with the exit code and the tail
//! of stderr.
//!
//! Events: `CmdStart {Path, Args, Dir, Pid, StartTime, BootID}` (stored
//! before the command runs on, so that if prova is killed the next prova on
//! the store finds the group and kills it; see [`crate::ownership`]), `CmdStdout {Msg}` and
//! `CmdStderr {Msg}` (whole output, when `emit_stdout` / `emit_stderr`,
//! default true; the last [`MAX_OUTPUT`] bytes), `CmdEnd {ExitCode,
//! DurationMs}`.
//!
//! The child runs in its own process group; cancellation, a timeout or the
//! step being dropped kills the whole group, so nothing it started lingers.

use std::process::Stdio;
use std::time::Instant;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::plugin::hard_exit::{HardExitGuard, on_hard_exit};
use crate::plugin::*;

/// Output kept per stream (the tail, where errors usually are).
pub const MAX_OUTPUT: usize = 1 << 20;
/// Stderr shown in a failure message.
const STDERR_TAIL: usize = 2048;

/// The event naming a started command's process group.
pub const CMD_START: &str = "CmdStart";

/// Every event `cmd` emits.
pub const EVENTS: &[EventDecl] = &[
    EventDecl::new(
        CMD_START,
        "{Path, Args, Dir, Pid, StartTime, BootID}: the command started, in its own process group",
    ),
    EventDecl::new(
        "CmdStdout",
        "{Msg}: the command's standard output (its last MiB)",
    ),
    EventDecl::new(
        "CmdStderr",
        "{Msg}: the command's standard error (its last MiB)",
    ),
    EventDecl::new(
        "CmdEnd",
        "{ExitCode, DurationMs}: the command ended (ExitCode null: killed by a signal)",
    ),
];

pub struct Cmd;

impl Step for Cmd {
    fn events(&self) -> Vec<EventDecl> {
        EVENTS.to_vec()
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        let executable = p.required_with("executable", |v| {
            if v.trim().is_empty() {
                Err("expected a program name or path, found an empty string".to_string())
            } else {
                Ok(v.to_string())
            }
        });
        let args = p.list("args");
        let dir = p.optional("dir");
        let emit_stdout = p.or("emit_stdout", true);
        let emit_stderr = p.or("emit_stderr", true);
        Prepared::per_target(RunCommand {
            executable: executable?,
            args,
            dir,
            emit_stdout,
            emit_stderr,
        })
    }
}

/// `cmd`, prepared.
struct RunCommand {
    executable: Param<String>,
    args: ParamList<String>,
    dir: Option<Param<String>>,
    emit_stdout: Param<bool>,
    emit_stderr: Param<bool>,
}

#[async_trait]
impl PreparedStep for RunCommand {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        let exe = self.executable.get(ctx, target)?;
        let args = self.args.get(ctx, target)?;
        let dir = self.dir.as_ref().map(|d| d.get(ctx, target)).transpose()?;
        let emit_stdout = self.emit_stdout.get(ctx, target)?;
        let emit_stderr = self.emit_stderr.get(ctx, target)?;

        let mut cmd = Command::new(&exe);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(d) = &dir {
            cmd.current_dir(d);
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| StepError::failed(format!("cannot start {exe:?}: {e}")))?;
        let guard = GroupGuard::new(child.id().and_then(|p| i32::try_from(p).ok()));
        let identity = guard.pid.and_then(crate::ownership::ProcessIdentity::of);
        ctx.emit(
            target,
            CMD_START,
            Some(json!({
                "Path": exe, "Args": args, "Dir": dir, "Pid": child.id(),
                "StartTime": identity.as_ref().map(|i| i.start_ticks),
                "BootID": identity.as_ref().map(|i| i.boot_id.as_str()),
            })),
        );
        ctx.flush().await;
        let out = tokio::spawn(read_tail(child.stdout.take()));
        let err = tokio::spawn(read_tail(child.stderr.take()));

        let status = tokio::select! {
            s = child.wait() => s.map_err(|e| StepError::infra(format!("waiting for {exe:?}: {e}")))?,
            _ = ctx.cancel.cancelled() => {
                drop(guard);
                let _ = child.wait().await;
                return Err(StepError::Cancelled);
            }
        };
        // The leader is gone; kill anything it left in its group.
        drop(guard);
        let stdout = out.await.unwrap_or_default();
        let stderr = err.await.unwrap_or_default();
        if emit_stdout && !stdout.is_empty() {
            ctx.emit(
                target,
                "CmdStdout",
                Some(json!({ "Msg": String::from_utf8_lossy(&stdout) })),
            );
        }
        if emit_stderr && !stderr.is_empty() {
            ctx.emit(
                target,
                "CmdStderr",
                Some(json!({ "Msg": String::from_utf8_lossy(&stderr) })),
            );
        }
        let code = status.code();
        ctx.emit(
            target,
            "CmdEnd",
            Some(json!({ "ExitCode": code, "DurationMs": started.elapsed().as_millis() as u64 })),
        );
        if status.success() {
            return Ok(());
        }
        let how = match code {
            Some(c) => format!("exit status {c}"),
            None => {
                use std::os::unix::process::ExitStatusExt;
                format!("killed by signal {}", status.signal().unwrap_or(0))
            }
        };
        let tail = tail_text(&stderr, STDERR_TAIL);
        Err(StepError::failed(if tail.is_empty() {
            format!("{exe} failed: {how}")
        } else {
            format!("{exe} failed: {how}; stderr: {tail}")
        }))
    }
}

/// Kills the child's process group when dropped, and on a hard exit (its
/// members do not get the terminal's SIGINT: they are in their own group).
struct GroupGuard {
    pid: Option<i32>,
    hard_exit: Option<HardExitGuard>,
}

impl GroupGuard {
    fn new(pid: Option<i32>) -> GroupGuard {
        let hard_exit = pid.map(|pid| {
            on_hard_exit(format!("kill process group {pid}"), move || async move {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            })
        });
        GroupGuard { pid, hard_exit }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(g) = self.hard_exit.take() {
            g.disarm();
        }
    }
}

/// Reads a stream to its end, keeping the last [`MAX_OUTPUT`] bytes.
async fn read_tail(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut s) = stream else {
        return Vec::new();
    };
    let mut buf = TailBuffer::new(MAX_OUTPUT);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.push(&chunk[..n]),
        }
    }
    buf.into_bytes()
}
