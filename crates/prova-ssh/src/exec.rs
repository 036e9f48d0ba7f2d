//! Runs one command on an open connection: output streamed and kept
//! (bounded), exit status or signal, a timeout and a cancel that end the
//! remote command and everything it started.
//!
//! The command line is `executable` and `args`, each quoted for a POSIX
//! shell and joined by spaces (ConTest's `sshcmd`), run by the user's login
//! shell, which must be POSIX (sh, bash, dash, zsh, ksh, ash). It is sent as
//!
//! ```text
//! PROVA_SSH_RUN=<tag>; export PROVA_SSH_RUN; echo "$$"; exec <command line>
//! ```
//!
//! The first stdout line is the shell's pid, which sshd made a session and
//! process-group leader; it is taken off stdout before anyone sees it and is
//! what [`crate::kill`] terminates on a timeout or cancel. `exec` keeps that
//! pid for the command, so its exit status or signal is reported as
//! without the wrapper.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::connect::{ConnectError, Connection};
use crate::kill::{self, KillError};
use crate::output::OutputTail;

/// Output kept per stream by default: the last 1 MiB.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1 << 20;

/// How long a stopped command gets between SIGTERM and SIGKILL by default.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// How long to wait, when stopping, for the pid line of a command that has
/// not printed it yet.
const PID_WAIT: Duration = Duration::from_secs(5);

/// How long to wait for a stopped command's channel to close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// A remote program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    pub executable: String,
    pub args: Vec<String>,
}

impl RemoteCommand {
    pub fn new(
        executable: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            executable: executable.into(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// Each word quoted for a POSIX shell, joined by spaces: no globbing,
    /// variables or pipes (`ls -l` as the executable runs a program named
    /// `ls -l`).
    pub fn command_line(&self) -> Result<String, ExecError> {
        shlex::try_join(
            std::iter::once(self.executable.as_str()).chain(self.args.iter().map(String::as_str)),
        )
        .map_err(|_| ExecError::Nul)
    }
}

/// Bounds and stop signals of one run.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Ends the command after this long (`None`: no limit).
    pub timeout: Option<Duration>,
    /// Ends the command when cancelled.
    pub cancel: CancellationToken,
    /// Bytes kept per stream (the last ones).
    pub output_limit: usize,
    /// Time between SIGTERM and SIGKILL when the command is stopped.
    pub kill_grace: Duration,
    /// Told the run's tag and remote pid as soon as they are known, so
    /// code outside the run can end the command if the run is abandoned
    /// (its future dropped: a hard exit).
    pub probe: Option<RunProbe>,
}

/// Where a running command can be found on the target: its environment tag
/// and, once printed, its shell's pid (see [`crate::kill::kill_remote`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteRun {
    pub tag: String,
    pub pid: Option<u32>,
}

/// A shared slot a run fills with its [`RemoteRun`] (see
/// [`ExecOptions::probe`]).
#[derive(Debug, Clone, Default)]
pub struct RunProbe(Arc<Mutex<Option<RemoteRun>>>);

impl RunProbe {
    pub fn new() -> Self {
        Self::default()
    }

    /// The run as known so far (`None` before the command was sent).
    pub fn get(&self) -> Option<RemoteRun> {
        self.lock().clone()
    }

    fn set(&self, run: RemoteRun) {
        *self.lock() = Some(run);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<RemoteRun>> {
        // The value is replaced whole, so a poisoned lock holds a whole one.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            timeout: None,
            cancel: CancellationToken::new(),
            output_limit: DEFAULT_OUTPUT_LIMIT,
            kill_grace: DEFAULT_KILL_GRACE,
            probe: None,
        }
    }
}

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a remote command ended on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    Code(u32),
    /// Killed by a signal (its name without `SIG`, e.g. `TERM`).
    Signal {
        name: String,
        core_dumped: bool,
    },
    /// The server closed the session without saying.
    Unknown,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Code(0))
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(code) => write!(f, "exited with status {code}"),
            ExitStatus::Signal { name, core_dumped } => {
                write!(f, "killed by signal {name}")?;
                if *core_dumped {
                    write!(f, " (core dumped)")?;
                }
                Ok(())
            }
            ExitStatus::Unknown => write!(f, "ended without an exit status"),
        }
    }
}

/// Why the command is no longer running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It ended by itself.
    Exited(ExitStatus),
    /// The timeout expired; the command was stopped.
    TimedOut(Duration),
    /// The cancellation token fired; the command was stopped.
    Cancelled,
    /// The output callback asked to stop (e.g. `expect` matched).
    Stopped,
}

/// What a run produced.
#[derive(Debug)]
pub struct ExecOutcome {
    pub ended: Ended,
    pub stdout: OutputTail,
    pub stderr: OutputTail,
    /// The remote shell's pid (= its process group), if it was learnt.
    pub remote_pid: Option<u32>,
    /// Set when the command was stopped but its processes could not be
    /// confirmed gone.
    pub kill_error: Option<KillError>,
    /// The connection it ran over ([`Connection::id`]).
    pub connection_id: u64,
}

/// Why a command could not be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    #[error("the command line contains a NUL byte, which no remote command line can carry")]
    Nul,
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{target}: the server refused to run the command")]
    Refused { target: String },
    /// The command may still run on the target: [`crate::Pool::exec`]
    /// reconnects and ends it with [`crate::kill::kill_remote`] using
    /// `remote_pid` and `tag`.
    #[error("{target}: the connection was lost while the command ran")]
    ConnectionLost {
        target: String,
        remote_pid: Option<u32>,
        tag: String,
    },
    #[error("{target}: cannot start the remote command")]
    Start {
        target: String,
        #[source]
        source: Box<russh::Error>,
    },
}

static NEXT_RUN: AtomicU64 = AtomicU64::new(0);

/// A tag unique to this run among all prova processes: pid, connection,
/// run counter, and the time, in hex (safe in a shell word).
fn run_tag(conn: &Connection) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{:x}x{:x}x{:x}x{:x}",
        std::process::id(),
        conn.id(),
        NEXT_RUN.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// Runs `command` over `conn`. `on_output` sees every chunk of stdout and
/// stderr as it arrives; returning `Break` stops the command
/// ([`Ended::Stopped`]).
pub async fn run<F>(
    conn: &Connection,
    command: &RemoteCommand,
    options: &ExecOptions,
    mut on_output: F,
) -> Result<ExecOutcome, ExecError>
where
    F: FnMut(Stream, &[u8]) -> ControlFlow<()> + Send,
{
    let line = command.command_line()?;
    let tag = run_tag(conn);
    let mut channel = conn.open_session().await?;
    let report = |pid: Option<u32>| {
        if let Some(probe) = &options.probe {
            probe.set(RemoteRun {
                tag: tag.clone(),
                pid,
            });
        }
    };
    report(None);
    channel
        .exec(
            true,
            format!("PROVA_SSH_RUN={tag}; export PROVA_SSH_RUN; echo \"$$\"; exec {line}"),
        )
        .await
        .map_err(|source| ExecError::Start {
            target: conn.target().to_string(),
            source: Box::new(source),
        })?;
    let deadline = options.timeout.map(|timeout| Instant::now() + timeout);
    let mut session = Session::new(options.output_limit);
    let mut pid_reported = false;
    let stop = loop {
        tokio::select! {
            msg = channel.wait() => match session.take(msg, Some(&mut on_output)) {
                Step::Continue => if !pid_reported && session.pid.is_some() {
                    report(session.pid);
                    pid_reported = true;
                },
                Step::Closed => break None,
                Step::Break => break Some(Ended::Stopped),
                Step::Refused => return Err(ExecError::Refused { target: conn.target().to_string() }),
            },
            () = sleep_until(deadline) => break options.timeout.map(Ended::TimedOut),
            () = options.cancel.cancelled() => break Some(Ended::Cancelled),
        }
    };
    let Some(ended) = stop else {
        if session.exit.is_none() && connection_lost(conn).await {
            return Err(ExecError::ConnectionLost {
                target: conn.target().to_string(),
                remote_pid: session.pid,
                tag,
            });
        }
        let status = session.exit.clone().unwrap_or(ExitStatus::Unknown);
        return Ok(session.into_outcome(Ended::Exited(status), None, conn.id()));
    };
    let kill_error = stop_remote(conn, &mut channel, &mut session, &tag, options.kill_grace)
        .await
        .err();
    if let Some(err) = &kill_error {
        tracing::warn!("{err}");
    }
    Ok(session.into_outcome(ended, kill_error, conn.id()))
}

/// A channel that closed without an exit status: was it the connection?
/// (russh marks the connection closed just after its channels.)
async fn connection_lost(conn: &Connection) -> bool {
    for _ in 0..20 {
        if conn.is_closed() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Stops a running command: learns its pid if it has not printed it yet,
/// asks sshd to signal it, kills its group and tagged processes through a
/// second session, and closes its channel.
async fn stop_remote(
    conn: &Connection,
    channel: &mut Channel<Msg>,
    session: &mut Session,
    tag: &str,
    grace: Duration,
) -> Result<(), KillError> {
    let mut open = true;
    if session.pid.is_none() {
        let waited = tokio::time::timeout(PID_WAIT, async {
            while session.pid.is_none() && session.pid_pending() {
                if !matches!(session.take_quiet(channel.wait().await), Step::Continue) {
                    return false;
                }
            }
            true
        })
        .await;
        open = waited.unwrap_or(true);
    }
    if open {
        // sshd delivers this to the session's process (the command); the
        // group kill below reaches its children.
        let _best_effort = channel.signal(russh::Sig::TERM).await;
    }
    let result = kill::kill_remote(conn, session.pid, tag, grace).await;
    // Let the channel report the exit (and last output), then close it.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while open
            && !matches!(
                session.take_quiet(channel.wait().await),
                Step::Closed | Step::Refused
            )
        {}
    })
    .await;
    let _already_closed = channel.close().await;
    result
}

enum Step {
    Continue,
    Closed,
    Break,
    Refused,
}

/// What the channel said so far.
struct Session {
    stdout: OutputTail,
    stderr: OutputTail,
    /// Bytes of the pid line, until its newline.
    pid_line: Option<Vec<u8>>,
    pid: Option<u32>,
    exit: Option<ExitStatus>,
}

/// The pid line is at most this long; anything else is not our preamble.
const PID_LINE_MAX: usize = 24;

impl Session {
    fn new(limit: usize) -> Self {
        Self {
            stdout: OutputTail::new(limit),
            stderr: OutputTail::new(limit),
            pid_line: Some(Vec::new()),
            pid: None,
            exit: None,
        }
    }

    /// [`Session::take`] while stopping: output is kept, not reported.
    fn take_quiet(&mut self, msg: Option<ChannelMsg>) -> Step {
        self.take(msg, None::<&mut fn(Stream, &[u8]) -> ControlFlow<()>>)
    }

    fn pid_pending(&self) -> bool {
        self.pid_line.is_some()
    }

    /// Takes one channel message. `on_output` is `None` once the command is
    /// being stopped (output is still kept, no longer reported).
    fn take<F>(&mut self, msg: Option<ChannelMsg>, on_output: Option<&mut F>) -> Step
    where
        F: FnMut(Stream, &[u8]) -> ControlFlow<()>,
    {
        let (stream, data) = match msg {
            None | Some(ChannelMsg::Close) => return Step::Closed,
            Some(ChannelMsg::Failure) => return Step::Refused,
            Some(ChannelMsg::ExitStatus { exit_status }) => {
                self.exit = Some(ExitStatus::Code(exit_status));
                return Step::Continue;
            }
            Some(ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                ..
            }) => {
                self.exit = Some(ExitStatus::Signal {
                    name: signal_text(&signal_name),
                    core_dumped,
                });
                return Step::Continue;
            }
            Some(ChannelMsg::Data { data }) => (Stream::Stdout, data),
            Some(ChannelMsg::ExtendedData { data, ext: 1 }) => (Stream::Stderr, data),
            Some(_) => return Step::Continue,
        };
        let chunk = match stream {
            Stream::Stdout => match self.strip_pid_line(&data) {
                Some(rest) => rest.into_owned(),
                None => return Step::Continue,
            },
            Stream::Stderr => data.to_vec(),
        };
        self.output(stream, &chunk, on_output)
    }

    fn output<F>(&mut self, stream: Stream, data: &[u8], on_output: Option<&mut F>) -> Step
    where
        F: FnMut(Stream, &[u8]) -> ControlFlow<()>,
    {
        if data.is_empty() {
            return Step::Continue;
        }
        match stream {
            Stream::Stdout => self.stdout.push(data),
            Stream::Stderr => self.stderr.push(data),
        }
        match on_output.map(|report| report(stream, data)) {
            Some(ControlFlow::Break(())) => Step::Break,
            _ => Step::Continue,
        }
    }

    /// Consumes the pid line from the start of stdout; returns the stdout
    /// bytes that follow it (`None`: all consumed, line not complete yet).
    /// If the first line is not a pid (a login shell that is not POSIX), it
    /// is given back as output and no pid is known.
    fn strip_pid_line<'a>(&mut self, data: &'a [u8]) -> Option<std::borrow::Cow<'a, [u8]>> {
        let Some(line) = self.pid_line.as_mut() else {
            return Some(data.into());
        };
        let newline = data.iter().position(|&b| b == b'\n');
        let take = newline.map_or(data.len(), |at| at + 1);
        line.extend_from_slice(&data[..take]);
        if newline.is_none() && line.len() <= PID_LINE_MAX {
            return None;
        }
        let line = self.pid_line.take().unwrap_or_default();
        let pid = std::str::from_utf8(&line)
            .ok()
            .and_then(|text| text.strip_suffix('\n'))
            .and_then(|digits| digits.parse::<u32>().ok())
            .filter(|&pid| pid > 1);
        self.pid = pid;
        if pid.is_some() {
            Some(data[take..].into())
        } else {
            let mut all = line;
            all.extend_from_slice(&data[take..]);
            Some(all.into())
        }
    }

    fn into_outcome(
        self,
        ended: Ended,
        kill_error: Option<KillError>,
        connection_id: u64,
    ) -> ExecOutcome {
        ExecOutcome {
            ended,
            stdout: self.stdout,
            stderr: self.stderr,
            remote_pid: self.pid,
            kill_error,
            connection_id,
        }
    }
}

fn signal_text(sig: &russh::Sig) -> String {
    let debug = format!("{sig:?}");
    match sig {
        russh::Sig::Custom(name) => name.clone(),
        _ => debug,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_quotes_each_word() {
        let cmd = RemoteCommand::new("ls -l", ["a b", "$HOME", "it's", ""]);
        let line = cmd.command_line().unwrap();
        let words = shlex::split(&line).unwrap();
        assert_eq!(words, vec!["ls -l", "a b", "$HOME", "it's", ""]);
        assert_eq!(
            RemoteCommand::new("echo", ["a\0b"])
                .command_line()
                .unwrap_err()
                .to_string(),
            ExecError::Nul.to_string()
        );
    }

    fn collect(session: &mut Session, chunks: &[&[u8]]) -> Vec<u8> {
        let mut seen = Vec::new();
        for chunk in chunks {
            let mut report = |_: Stream, data: &[u8]| {
                seen.extend_from_slice(data);
                ControlFlow::Continue(())
            };
            session.take(
                Some(ChannelMsg::Data {
                    data: chunk.to_vec().into(),
                }),
                Some(&mut report),
            );
        }
        seen
    }

    #[test]
    fn pid_line_is_taken_off_stdout_across_chunks() {
        let mut session = Session::new(100);
        let seen = collect(&mut session, &[b"12", b"34\nhel", b"lo\n"]);
        assert_eq!(session.pid, Some(1234));
        assert_eq!(seen, b"hello\n");
        assert_eq!(session.stdout.bytes(), b"hello\n");
    }

    #[test]
    fn a_first_line_that_is_no_pid_stays_output() {
        let mut session = Session::new(100);
        let seen = collect(&mut session, &[b"fish: unknown\nmore"]);
        assert_eq!(session.pid, None);
        assert_eq!(seen, b"fish: unknown\nmore");
        let mut session = Session::new(100);
        let long = [b'7'; 40];
        let seen = collect(&mut session, &[&long]);
        assert_eq!(session.pid, None);
        assert_eq!(seen, long);
    }
}
