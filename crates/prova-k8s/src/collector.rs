//! `prova collector`: the results collector that runs beside a test
//! container in the same pod, sharing the results directory (an emptyDir).
//! No shell, `tar` or `sleep` is needed in either image.
//!
//! - `prova collector wait` is the collector container's command. It listens
//!   on a Unix socket in its control directory (a second, private emptyDir)
//!   and exits 0 when told `done`, or by itself once `--linger` passes with
//!   nobody fetching (each `send` restarts the linger clock), or on SIGTERM.
//!   Before it exits it writes a compact JSON summary to its termination
//!   message (`/dev/termination-log`).
//! - `prova collector send` (run by prova through the pod exec API) writes
//!   the results directory to stdout as a tar archive framed with a SHA-256
//!   trailer (see [`crate::framing`]), then tells `wait` what it sent.
//! - `prova collector done [--exit-code N]` tells `wait` to exit; prova
//!   passes the test container's exit code, read from the pod status, so the
//!   summary has it.
//!
//! Control socket protocol (one line each way): `sent <trailer JSON>\n` or
//! `done {"exit_code":N}\n`, answered `ok\n`.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::archive;
use crate::framing::{FrameWriter, Trailer};

/// Exit codes of `prova collector`.
pub mod exit {
    /// Done, sent, or the linger time passed.
    pub const OK: u8 = 0;
    /// Something failed (message on stderr).
    pub const ERROR: u8 = 1;
}

/// Where the results directory is mounted in both containers.
pub const DEFAULT_RESULTS_DIR: &str = "/results";
/// The collector's private control directory (an emptyDir of its own).
pub const DEFAULT_CONTROL_DIR: &str = "/run/prova";
/// Where Kubernetes reads a container's termination message.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";
/// The control socket's file name in the control directory.
pub const SOCKET_NAME: &str = "collector.sock";
/// Kubernetes keeps at most this much of a termination message.
const TERMINATION_MESSAGE_MAX: usize = 4096;

/// `prova collector`: the results collector for container steps.
#[derive(clap::Args, Debug, Clone)]
pub struct CollectorArgs {
    #[command(subcommand)]
    pub command: CollectorCommand,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum CollectorCommand {
    /// Wait (the collector container's command) until `done`, the linger
    /// time, or SIGTERM; then write the summary and exit 0.
    Wait(WaitArgs),
    /// Write the results directory to stdout as a checksummed tar stream.
    Send(SendArgs),
    /// Tell the waiting collector to exit.
    Done(DoneArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct WaitArgs {
    /// The results directory shared with the test container.
    #[arg(long, default_value = DEFAULT_RESULTS_DIR)]
    pub dir: PathBuf,
    /// The control directory (holds the control socket).
    #[arg(long, default_value = DEFAULT_CONTROL_DIR)]
    pub control_dir: PathBuf,
    /// Exit by itself when nobody fetched for this long (Go duration, e.g. 10m).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub linger: Duration,
    /// Where to write the summary.
    #[arg(long, default_value = DEFAULT_TERMINATION_LOG)]
    pub termination_log: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct SendArgs {
    /// The results directory to send.
    #[arg(long, default_value = DEFAULT_RESULTS_DIR)]
    pub dir: PathBuf,
    /// The control directory of the waiting collector (told what was sent).
    #[arg(long, default_value = DEFAULT_CONTROL_DIR)]
    pub control_dir: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DoneArgs {
    /// The control directory of the waiting collector.
    #[arg(long, default_value = DEFAULT_CONTROL_DIR)]
    pub control_dir: PathBuf,
    /// The test container's exit code, for the summary.
    #[arg(long, allow_hyphen_values = true)]
    pub exit_code: Option<i32>,
}

fn parse_duration(v: &str) -> Result<Duration, String> {
    prova_core::duration::parse_go_duration(v).map_err(|e| e.to_string())
}

/// Runs `prova collector <command>`.
pub fn run_collector(args: CollectorArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        CollectorCommand::Wait(a) => {
            let stop = signal_stop()?;
            let summary = wait(
                &WaitOptions {
                    control_dir: a.control_dir,
                    linger: a.linger,
                    termination_log: a.termination_log,
                },
                Some(stop),
            )?;
            eprintln!("prova collector: {}", summary.end);
            Ok(ExitCode::from(exit::OK))
        }
        CollectorCommand::Send(a) => {
            let stdout = io::stdout().lock();
            send_and_report(&a.dir, &a.control_dir, io::BufWriter::new(stdout))
                .with_context(|| format!("sending {}", a.dir.display()))?;
            Ok(ExitCode::from(exit::OK))
        }
        CollectorCommand::Done(a) => {
            tell(
                &a.control_dir,
                &Control::Done(DoneMsg {
                    exit_code: a.exit_code,
                }),
            )
            .with_context(|| {
                format!(
                    "telling the collector at {} to exit",
                    a.control_dir.display()
                )
            })?;
            Ok(ExitCode::from(exit::OK))
        }
    }
}

/// Writes the collector stream of `dir` to `out`. On a failure mid-way an
/// error frame ends the stream, so the receiver cannot mistake it for a
/// complete archive.
pub fn send(dir: &Path, out: impl Write) -> io::Result<Trailer> {
    let mut frames = FrameWriter::new(out);
    match archive::write_tar(dir, &mut frames) {
        Ok(counts) => Ok(frames.finish(counts.files, counts.bytes)?.0),
        Err(e) => {
            let _ = frames.fail(&e.to_string());
            Err(e)
        }
    }
}

/// What `prova collector send` does: [`send`], then tell the waiting
/// collector (if any) what was sent, for its summary.
pub fn send_and_report(dir: &Path, control_dir: &Path, out: impl Write) -> io::Result<Trailer> {
    let trailer = send(dir, out)?;
    if let Err(e) = tell(control_dir, &Control::Sent(trailer.clone())) {
        eprintln!("prova collector: could not tell the waiting collector: {e}");
    }
    Ok(trailer)
}

/// How `wait` runs.
#[derive(Debug, Clone)]
pub struct WaitOptions {
    pub control_dir: PathBuf,
    pub linger: Duration,
    pub termination_log: PathBuf,
}

/// Why the collector stopped waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitEnd {
    /// prova said `done`.
    Done,
    /// Nobody fetched within the linger time.
    Linger,
    /// SIGTERM/SIGINT (the pod is being deleted), or the caller's stop.
    Stopped,
}

impl std::fmt::Display for WaitEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WaitEnd::Done => "done",
            WaitEnd::Linger => "linger time passed with nobody fetching",
            WaitEnd::Stopped => "stopped",
        })
    }
}

/// The collector's termination message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub v: u32,
    pub end: WaitEnd,
    /// The test container's exit code, when prova told it.
    pub exit_code: Option<i32>,
    /// Whether the results were sent.
    pub fetched: bool,
    pub files: u64,
    pub bytes: u64,
    pub sha256: Option<String>,
}

impl Summary {
    /// Parses a termination message written by [`wait`].
    pub fn parse(message: &str) -> Option<Summary> {
        serde_json::from_str(message.trim()).ok()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct DoneMsg {
    exit_code: Option<i32>,
}

#[derive(Debug)]
enum Control {
    Sent(Trailer),
    Done(DoneMsg),
}

impl Control {
    fn to_line(&self) -> String {
        let (verb, json) = match self {
            Control::Sent(t) => ("sent", serde_json::to_string(t)),
            Control::Done(d) => ("done", serde_json::to_string(d)),
        };
        format!("{verb} {}\n", json.unwrap_or_default())
    }

    fn parse(line: &str) -> Option<Control> {
        let (verb, json) = line.trim().split_once(' ')?;
        match verb {
            "sent" => serde_json::from_str(json).ok().map(Control::Sent),
            "done" => serde_json::from_str(json).ok().map(Control::Done),
            _ => None,
        }
    }
}

/// Sends one control message to the waiting collector and reads its answer.
fn tell(control_dir: &Path, msg: &Control) -> io::Result<()> {
    let mut stream = UnixStream::connect(control_dir.join(SOCKET_NAME))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(msg.to_line().as_bytes())?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    if answer.trim() == "ok" {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "the collector answered {:?}",
            answer.trim()
        )))
    }
}

/// Tells a waiting collector to exit (what `prova collector done` does).
pub fn done(control_dir: &Path, exit_code: Option<i32>) -> io::Result<()> {
    tell(control_dir, &Control::Done(DoneMsg { exit_code }))
}

enum Wake {
    Control(Control, UnixStream),
    Stop,
}

/// Waits for `done`, the linger time or `stop`, writes the summary to the
/// termination log and returns it. Blocking; uses threads, not a runtime,
/// so it runs the same inside or outside one.
pub fn wait(opts: &WaitOptions, stop: Option<mpsc::Receiver<()>>) -> io::Result<Summary> {
    std::fs::create_dir_all(&opts.control_dir)?;
    let socket = opts.control_dir.join(SOCKET_NAME);
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket)?;
    let (tx, rx) = mpsc::channel::<Wake>();
    let quit = Arc::new(AtomicBool::new(false));
    {
        let (tx, quit) = (tx.clone(), quit.clone());
        std::thread::spawn(move || accept_loop(listener, tx, quit));
    }
    if let Some(stop) = stop {
        let tx = tx.clone();
        std::thread::spawn(move || {
            if stop.recv().is_ok() {
                let _ = tx.send(Wake::Stop);
            }
        });
    }
    drop(tx);

    let mut summary = Summary {
        v: 1,
        end: WaitEnd::Linger,
        exit_code: None,
        fetched: false,
        files: 0,
        bytes: 0,
        sha256: None,
    };
    let mut deadline = Instant::now() + opts.linger;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                summary.end = WaitEnd::Stopped;
                break;
            }
            Ok(Wake::Stop) => {
                summary.end = WaitEnd::Stopped;
                break;
            }
            Ok(Wake::Control(Control::Sent(t), mut conn)) => {
                summary.fetched = true;
                summary.files = t.files;
                summary.bytes = t.bytes;
                summary.sha256 = Some(t.sha256);
                deadline = Instant::now() + opts.linger;
                let _ = conn.write_all(b"ok\n");
            }
            Ok(Wake::Control(Control::Done(d), mut conn)) => {
                summary.end = WaitEnd::Done;
                summary.exit_code = d.exit_code;
                write_summary(&opts.termination_log, &summary)?;
                let _ = conn.write_all(b"ok\n");
                quit_accepting(&quit, &socket);
                return Ok(summary);
            }
        }
    }
    write_summary(&opts.termination_log, &summary)?;
    quit_accepting(&quit, &socket);
    Ok(summary)
}

fn accept_loop(listener: UnixListener, tx: mpsc::Sender<Wake>, quit: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if quit.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
            let mut line = String::new();
            if BufReader::new(&conn).read_line(&mut line).is_err() {
                return;
            }
            match Control::parse(&line) {
                Some(c) => {
                    let _ = tx.send(Wake::Control(c, conn));
                }
                None => {
                    let mut conn = conn;
                    let _ = conn.write_all(b"error: unknown request\n");
                }
            }
        });
    }
}

/// Stops the accept thread: it wakes on one last connection and sees `quit`.
fn quit_accepting(quit: &AtomicBool, socket: &Path) {
    quit.store(true, Ordering::SeqCst);
    let _ = UnixStream::connect(socket);
    let _ = std::fs::remove_file(socket);
}

fn write_summary(path: &Path, summary: &Summary) -> io::Result<()> {
    let mut text = serde_json::to_string(summary).map_err(io::Error::other)?;
    text.truncate(TERMINATION_MESSAGE_MAX);
    std::fs::write(path, text)
}

/// A receiver that fires on SIGTERM or SIGINT. The signals are blocked in
/// this thread (and so in every thread started after) and taken with
/// `sigwait` by a thread of their own: the collector runs as PID 1 of its
/// container, where default signal actions do not apply.
fn signal_stop() -> anyhow::Result<mpsc::Receiver<()>> {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block().context("blocking SIGTERM")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if set.wait().is_ok() {
            let _ = tx.send(());
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path, linger: Duration) -> WaitOptions {
        WaitOptions {
            control_dir: dir.join("control"),
            linger,
            termination_log: dir.join("termination-log"),
        }
    }

    fn wait_for_socket(dir: &Path) {
        let sock = dir.join("control").join(SOCKET_NAME);
        let start = Instant::now();
        while !sock.exists() {
            assert!(start.elapsed() < Duration::from_secs(5), "no socket");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn send_then_done_writes_the_summary() {
        let tmp = tempfile::tempdir().unwrap();
        let results = tmp.path().join("results");
        std::fs::create_dir_all(&results).unwrap();
        std::fs::write(results.join("junit.xml"), "<testsuites/>").unwrap();
        let o = opts(tmp.path(), Duration::from_secs(30));
        let waiter = std::thread::spawn(move || wait(&o, None).unwrap());
        wait_for_socket(tmp.path());

        let mut out = Vec::new();
        let trailer = send(&results, &mut out).unwrap();
        tell(&tmp.path().join("control"), &Control::Sent(trailer.clone())).unwrap();
        done(&tmp.path().join("control"), Some(3)).unwrap();
        let summary = waiter.join().unwrap();
        assert_eq!(summary.end, WaitEnd::Done);
        assert_eq!(summary.exit_code, Some(3));
        assert!(summary.fetched);
        assert_eq!((summary.files, summary.bytes), (1, 13));
        assert_eq!(summary.sha256.as_deref(), Some(trailer.sha256.as_str()));
        let written = std::fs::read_to_string(tmp.path().join("termination-log")).unwrap();
        assert_eq!(Summary::parse(&written), Some(summary));
        assert!(!tmp.path().join("control").join(SOCKET_NAME).exists());
    }

    #[test]
    fn lingers_then_exits_by_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let summary = wait(&opts(tmp.path(), Duration::from_millis(200)), None).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(summary.end, WaitEnd::Linger);
        assert!(!summary.fetched);
        let written = std::fs::read_to_string(tmp.path().join("termination-log")).unwrap();
        assert!(written.contains(r#""end":"linger""#), "{written}");
    }

    #[test]
    fn stop_ends_the_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel();
        let o = opts(tmp.path(), Duration::from_secs(60));
        let waiter = std::thread::spawn(move || wait(&o, Some(rx)).unwrap());
        wait_for_socket(tmp.path());
        tx.send(()).unwrap();
        assert_eq!(waiter.join().unwrap().end, WaitEnd::Stopped);
    }

    #[test]
    fn done_without_a_collector_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(done(tmp.path(), None).is_err());
    }

    #[test]
    fn clap_args_parse() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            c: CollectorArgs,
        }
        let cli = Cli::try_parse_from(["prova", "wait", "--linger", "90s"]).unwrap();
        let CollectorCommand::Wait(w) = cli.c.command else {
            panic!()
        };
        assert_eq!(w.linger, Duration::from_secs(90));
        assert_eq!(w.dir, Path::new("/results"));
        let cli = Cli::try_parse_from(["prova", "done", "--exit-code", "-1"]).unwrap();
        let CollectorCommand::Done(d) = cli.c.command else {
            panic!()
        };
        assert_eq!(d.exit_code, Some(-1));
    }
}
