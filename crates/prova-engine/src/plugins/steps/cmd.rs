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

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use prova_core::Target;
use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::plugin::{Step, StepError};
use crate::plugins::params;
use crate::runner::step_ctx::StepContext;

/// Output kept per stream (the tail, where errors usually are).
pub const MAX_OUTPUT: usize = 1 << 20;
/// Stderr shown in a failure message.
const STDERR_TAIL: usize = 2048;

/// The event naming a started command's process group.
pub const CMD_START: &str = "CmdStart";

pub struct Cmd;

#[async_trait]
impl Step for Cmd {
    fn validate(&self, step: &StepDescriptor, diags: &mut Diagnostics) {
        let p = &step.parameters;
        params::require_one(step, "executable", diags);
        params::check_one(p, "dir", diags, |_| Ok(()));
        params::check_one(p, "emit_stdout", diags, |v| {
            params::parse_bool(v).map(|_| ())
        });
        params::check_one(p, "emit_stderr", diags, |v| {
            params::parse_bool(v).map(|_| ())
        });
        if let Some(e) = p.get("executable")
            && e.values.first().is_some_and(|v| v.trim().is_empty())
        {
            diags.error(
                &e.path.index(0),
                e.pos,
                "expected a program name or path, found an empty string",
            );
        }
    }

    async fn run(
        &self,
        ctx: &StepContext,
        target: &Target,
        p: &StepParams,
    ) -> Result<(), StepError> {
        let exe = params::one(p, "executable")?;
        let args: Vec<&str> = p
            .get("args")
            .map(|a| a.values.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let dir = p.one("dir");
        let emit_stdout = params::bool_or(p, "emit_stdout", true)?;
        let emit_stderr = params::bool_or(p, "emit_stderr", true)?;

        let mut cmd = Command::new(exe);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| StepError::Failed(format!("cannot start {exe:?}: {e}")))?;
        let guard = GroupGuard(child.id().and_then(|p| i32::try_from(p).ok()));
        if let Some(pid) = guard.0 {
            track(pid);
        }
        let identity = guard.0.and_then(crate::ownership::ProcessIdentity::of);
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
            s = child.wait() => s.map_err(|e| StepError::Failed(format!("waiting for {exe:?}: {e}")))?,
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
        Err(StepError::Failed(if tail.is_empty() {
            format!("{exe} failed: {how}")
        } else {
            format!("{exe} failed: {how}; stderr: {tail}")
        }))
    }
}

/// Kills the child's process group when dropped.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            untrack(pid);
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Reads a stream to its end, keeping the last [`MAX_OUTPUT`] bytes.
async fn read_tail(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let Some(mut s) = stream else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 2 * MAX_OUTPUT {
                    buf.drain(..buf.len() - MAX_OUTPUT);
                }
            }
        }
    }
    if buf.len() > MAX_OUTPUT {
        buf.drain(..buf.len() - MAX_OUTPUT);
    }
    buf
}

/// The last `max` bytes of some output, as trimmed text (cut on a
/// character boundary, marked with `…`): what failure messages show.
pub fn tail_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Process groups of running commands, so a hard exit (second Ctrl-C) can
/// kill them: they are in their own groups and do not get the terminal's
/// SIGINT.
static RUNNING: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

fn track(pid: i32) {
    RUNNING.lock().expect("running lock").push(pid);
}

fn untrack(pid: i32) {
    RUNNING.lock().expect("running lock").retain(|p| *p != pid);
}

/// Kills every running command's process group (for an immediate exit).
pub fn kill_all_children() {
    for pid in RUNNING.lock().expect("running lock").drain(..) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}
