//! Command-line definitions. Every command's help carries an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const ABOUT: &str =
    "Runs end-to-end test jobs (ConTest descriptors) and tells you what they proved.";

const AFTER_HELP: &str = "\
Examples:
  prova run examples/hello.yaml            run a job on this machine (SQLite, no server)
  prova validate job.yaml other.json       check descriptors, print every error
  prova jobs                               list recorded jobs
  prova status 1                           the status tree of job 1
  prova events 1 --name CmdStdout          events of job 1
  prova prune --older-than 30d             delete jobs that ended over 30 days ago
  prova completions bash                   shell completions (zsh, fish too); prova man: man page
  prova coverage untested --spec swagger.json --audit audit.log

Exit codes:
  0    success: the job completed and every reporter said success
  1    the job completed but a reporter said failure (tests failed)
  2    bad usage or invalid descriptor: nothing ran
  3    the job failed (targets could not be acquired, no cluster or Docker daemon
       for its steps: the infrastructure, not the tests)
  4    prova itself failed (store, I/O)
  130  the job was cancelled (Ctrl-C)

The store is a SQLite file at $XDG_DATA_HOME/prova/prova.db (or
~/.local/share/prova/prova.db); --db or PROVA_DB choose another.";

#[derive(Parser, Debug)]
#[command(name = "prova", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// More log output (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Colour on stderr: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

/// Which server to talk to; without one, commands work on the local store.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// A `prova serve` to talk to, e.g. http://127.0.0.1:8080.
    #[arg(long, env = "PROVA_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for the server.
    #[arg(long, env = "PROVA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Where the store is.
#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// The store: a SQLite file path, or a sqlite:// or postgres:// URL.
    #[arg(long, env = "PROVA_DB", value_name = "PATH|URL")]
    pub db: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate and run a job in the foreground, then print its reports.
    #[command(after_help = "\
Examples:
  prova run examples/hello.yaml
  prova run job.json --junit results/junit.xml
  prova run job.yaml --db /tmp/prova.db --json

The first Ctrl-C cancels gracefully (steps stop, cleanup runs, targets are
released, the job ends Cancelled); a second exits at once.
Exit codes: 0 success, 1 tests failed, 2 invalid, 3 job failed, 130 cancelled.")]
    Run(RunArgs),

    /// Check descriptors (or test-steps files) and print every error.
    #[command(after_help = "\
Examples:
  prova validate job.yaml
  prova validate descriptors/*.json

Exit code 2 when any file is invalid, 0 when all are valid.")]
    Validate(ValidateArgs),

    /// List the jobs in the store, newest first.
    #[command(after_help = "\
Examples:
  prova jobs
  prova jobs --state Completed --tag nightly --limit 5
  prova jobs --json")]
    Jobs(JobsArgs),

    /// Print a job's status, rebuilt from its events, as a tree.
    #[command(after_help = "\
Examples:
  prova status 3
  prova status 3 --json")]
    Status(StatusArgs),

    /// Print a job's events, oldest first, optionally filtered.
    #[command(after_help = "\
Examples:
  prova events 3
  prova events 3 --run 1 --test 'Test 1' --step Step2
  prova events 3 --name TargetErr --name TestError --json")]
    Events(EventsArgs),

    /// A test's or JUnit case's outcomes over the newest jobs of a name:
    /// pass rate, flakiness, the first failing job, durations.
    #[command(after_help = "\
Examples:
  prova history 'Test 1' --job-name nightly
  prova history 'pkg.PodsTest.should start' --last 100
  prova history Pods --json
  prova history Pods --server http://127.0.0.1:8080

Flaky: passed on a retry within a job, or switched between pass and fail at
least twice over jobs with the same inputs (docs/history.md).
Exit codes: 0 something matched, 1 nothing matched (what exists is listed),
2 bad usage, 4 error.")]
    History(crate::cmd::history::HistoryArgs),

    /// Compare two jobs: tests and JUnit cases newly failing, newly passing,
    /// added, removed, slower and faster.
    #[command(after_help = "\
Examples:
  prova diff 12 15
  prova diff 12 15 --json
  prova diff 12 15 --server http://127.0.0.1:8080

Durations count as changed when they move by at least 1 s and 25% together.
Exit codes: 0 nothing newly fails, 1 something newly fails (a regression, or
an added test or case that fails), 2 a job is not in the store, 4 error.")]
    Diff(crate::cmd::diff::DiffArgs),

    /// Delete the jobs that ended long ago, with their events, to keep a
    /// long-lived store small.
    #[command(after_help = "\
Examples:
  prova prune --older-than 30d --dry-run      list what would go, delete nothing
  prova prune --older-than 30d                delete jobs that ended over 30 days ago
  prova prune --older-than 2w --vacuum        ... then give the space back to the disk
  prova prune --older-than 30d --keep-last 20  ... but the newest 20 jobs of each name stay
  prova prune --older-than 90d --db postgres://prova@db/prova --json

Only jobs in a final state (Completed, Failed, Cancelled, CancellationFailed)
go, each with every row of its own (events, status, tags, leases, target
locks); running, paused and not-yet-started jobs stay, and so do jobs a
process still holds. Deleting frees space inside the store; on SQLite the
file only shrinks with --vacuum (which rewrites it: run it when no server is
busy writing). Works on the local store (--db), not through --server.
Exit codes: 0 done (also when nothing was old enough), 2 bad usage, 4 error.")]
    Prune(crate::cmd::prune::PruneArgs),

    /// List the plugins a descriptor can name, and the events each step emits.
    #[command(after_help = "\
Examples:
  prova plugins
  prova plugins --json | jq '.steps[] | select(.name == \"cmd\") | .events'")]
    Plugins(PluginsArgs),

    /// Serve the HTTP API (prova's and ConTest's) and run submitted jobs.
    #[command(after_help = "\
Examples:
  prova serve                                   127.0.0.1:8080, no token (loopback only)
  prova serve --listen 0.0.0.0:8080 --token $(cat token) --db postgres://prova@db/prova
  prova serve --listen 0.0.0.0:8080 --token $(cat token) --coverage-spec swagger.json   # + audit sink

SIGTERM or Ctrl-C: stop taking requests, pause running jobs (a step that
cannot pause may finish, up to --pause-timeout; then the job is cancelled),
exit. A second signal cancels at once. On start, the jobs this server paused
are resumed where they stood; jobs it left running (killed) are failed.")]
    Serve(ServeArgs),

    /// Submit a job to a server (without --server: run it here, like `run`).
    #[command(after_help = "\
Examples:
  prova start job.yaml --server http://127.0.0.1:8080
  prova start job.yaml --server http://ci:8080 --wait    # exit code as `prova run`
  prova start job.yaml --server http://ci:8080 --wait --junit junit.xml --artifacts results/")]
    Start(StartArgs),

    /// List a server's jobs (without --server: the local store's, as `jobs`).
    #[command(after_help = "\
Examples:
  prova list --server http://127.0.0.1:8080 --state Started")]
    List(ListArgs),

    /// Cancel a job running on a server.
    #[command(after_help = "\
Examples:
  prova stop 12 --server http://127.0.0.1:8080")]
    Stop(JobActionArgs),

    /// Pause a job running on a server (it stops at step boundaries).
    #[command(after_help = "\
Examples:
  prova pause 12 --server http://127.0.0.1:8080")]
    Pause(JobActionArgs),

    /// Resume a paused job (on a server, or here in the foreground).
    #[command(after_help = "\
Examples:
  prova resume 12 --server http://127.0.0.1:8080
  prova resume 12                                  # in the foreground, local store")]
    Resume(JobActionArgs),

    /// Run a job again, as a new job, from its stored descriptor.
    #[command(after_help = "\
Examples:
  prova retry 12 --server http://127.0.0.1:8080
  prova retry 12                                   # in the foreground, local store
  prova retry 12 --failed --server http://127.0.0.1:8080   # only the tests that failed")]
    Retry(RetryArgs),

    /// The results collector inside a `k8sjob` pod (`wait`, `send`, `done`):
    /// prova fetches the test's results directory through it.
    #[command(after_help = "\
Examples (run by the k8sjob step, not by hand):
  prova collector wait --dir /results
  prova collector send --dir /results
  prova collector done --exit-code 0")]
    Collector(prova_k8s::CollectorArgs),

    /// Kubernetes e2e tests in Rust: the Job and StatefulSet /status tests.
    #[command(subcommand)]
    E2e(crate::cmd::e2e::E2eCommand),

    /// Kubernetes API coverage from audit logs (the APISnoop workflow).
    #[command(subcommand)]
    Coverage(prova_coverage::CoverageCommand),

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "\
Examples:
  prova completions bash > ~/.local/share/bash-completion/completions/prova
  prova completions zsh > ~/.zfunc/_prova       # with fpath+=~/.zfunc
  prova completions fish > ~/.config/fish/completions/prova.fish")]
    Completions(CompletionsArgs),

    /// Print prova's man page (roff), every command included.
    #[command(after_help = "\
Examples:
  prova man > ~/.local/share/man/man1/prova.1 && man prova
  prova man | man -l -")]
    Man,

    /// Measure prova's own speed (the benchmarks behind the docs' figures).
    #[command(after_help = "\
Examples:
  prova bench engine --targets 1000 --steps 3
  prova bench store --events 100000")]
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The job descriptor (JSON or YAML).
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also write a JUnit XML file of the job's results.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Print the outcome as JSON (job id, state, reports) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Who asked for the job (recorded with it); default $USER@host.
    #[arg(long, default_value_t = default_requestor())]
    pub requestor: String,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Refuse the descriptor when it has warnings (unknown keys or step
    /// parameters) instead of printing them.
    #[arg(long)]
    pub strict: bool,
}

/// Who asks, by default: `$USER@host`, so a server's jobs say whose they
/// are (`--requestor` names someone else, e.g. a CI pipeline).
pub fn default_requestor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Descriptor or test-steps files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Kept for old scripts: warnings (unknown keys or step parameters)
    /// are always printed.
    #[arg(long = "warnings", hide = true)]
    pub _warnings: bool,
    /// Count warnings as errors (exit 2).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only jobs in this state (Started, Completed, Failed, Cancelled, ...); repeatable.
    #[arg(long = "state")]
    pub states: Vec<String>,
    /// Only jobs with this tag; repeatable (all must match).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only jobs whose name contains this, in any case.
    #[arg(long)]
    pub name: Option<String>,
    /// At most this many jobs.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Machine output with ConTest's field names.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The job id.
    pub id: i64,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Machine output with ConTest's field names.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// The job id.
    pub id: i64,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Keep printing new events until the job ends (needs --server).
    #[arg(long)]
    pub follow: bool,
    /// Only this run (1-based).
    #[arg(long)]
    pub run: Option<u32>,
    /// Only this test (by name).
    #[arg(long)]
    pub test: Option<String>,
    /// Only this test attempt (0 = first).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// Only this step (by label).
    #[arg(long)]
    pub step: Option<String>,
    /// Only this target (by ID).
    #[arg(long)]
    pub target: Option<String>,
    /// Only events with this name; repeatable.
    #[arg(long = "name")]
    pub names: Vec<String>,
    /// Machine output, one JSON object per line, with ConTest's field names.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Subcommand, Debug)]
pub enum BenchWhat {
    /// A job of N targets × M `cmd` steps of /bin/true against spawning the
    /// same processes directly, in one run.
    Engine {
        #[arg(long, default_value_t = 1000)]
        targets: usize,
        #[arg(long, default_value_t = 3)]
        steps: usize,
        /// Repeat each measurement this many times and keep the best.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// Write N events to a fresh store in the engine's batches (against
    /// Python's sqlite3 inserting the same rows, on SQLite), read them back,
    /// rebuild the job's status and time `prova status` as a process.
    Store(crate::cmd::bench::StoreBench),
    /// The same job of N targets × M `echo` steps on SQLite and on
    /// PostgreSQL, in one run: the PostgreSQL / SQLite time ratio.
    Backends(crate::cmd::bench::BackendsBench),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Bearer token clients must send; required off loopback.
    #[arg(long, env = "PROVA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// This instance's ID (owner of the jobs it runs); default prova-<hostname>.
    #[arg(long, env = "PROVA_SERVER_ID")]
    pub server_id: Option<String>,
    /// How long a shutdown waits for steps that cannot pause (Go duration).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub pause_timeout: std::time::Duration,
    /// Files named in submitted descriptors (CSV inventories, URI steps) must lie under this folder; default: the working directory.
    #[arg(long, value_name = "DIR")]
    pub files_root: Option<PathBuf>,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
    /// Time a client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open (Go duration).
    #[arg(long, default_value = "15s", value_parser = parse_positive_duration)]
    pub header_timeout: std::time::Duration,
    /// The cluster's OpenAPI v2 document (`kubectl get --raw /openapi/v2`):
    /// turns on the live audit sink, POST /api/v1/audit/events, for
    /// kube-apiserver's audit webhook (see docs/apisnoop.md).
    #[arg(long, value_name = "SWAGGER")]
    pub coverage_spec: Option<PathBuf>,
    /// A saved coverage report (`prova coverage report --json`, or an
    /// APISnoop release file) for the dashboard's /coverage page; the live
    /// sink's hits win when --coverage-spec is given too.
    #[arg(long, value_name = "JSON")]
    pub coverage_report: Option<PathBuf>,
    /// Also store each audit event's JSON with its hit.
    #[arg(long)]
    pub audit_keep_raw: bool,
    /// Audit batches that may wait for the store; one more gets 429 and Retry-After.
    #[arg(long, default_value_t = prova_server::audit::DEFAULT_QUEUE as u32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub audit_queue: u32,
    /// Largest audit batch body, in bytes.
    #[arg(long, default_value_t = prova_server::audit::DEFAULT_MAX_BODY)]
    pub audit_max_body: usize,
}

fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("expected a duration above zero, e.g. 15s".into());
    }
    Ok(d)
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    prova_core::duration::parse_go_duration(s)
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// The job descriptor (JSON or YAML).
    pub file: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Wait for the job to end and exit as `prova run` does.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: write the job's JUnit XML (the server's
    /// `/api/v1/jobs/{id}/junit`) to PATH once it ends.
    #[arg(long, value_name = "PATH", requires = "wait")]
    pub junit: Option<PathBuf>,
    /// With --wait and --server: download the files the job's steps kept
    /// (results directories) into DIR once it ends, under their paths
    /// relative to the job's artifacts directory.
    #[arg(long, value_name = "DIR", requires = "wait")]
    pub artifacts: Option<PathBuf>,
    /// Refuse the descriptor when it has warnings (unknown keys or step
    /// parameters) instead of printing them.
    #[arg(long)]
    pub strict: bool,
    /// Who asks for the job; default $USER@host.
    #[arg(long, default_value_t = default_requestor())]
    pub requestor: String,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub jobs: JobsArgs,
}

#[derive(Args, Debug)]
pub struct JobActionArgs {
    /// The job id.
    pub id: i64,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Who asks (recorded with the request); default $USER@host.
    #[arg(long, default_value_t = default_requestor())]
    pub requestor: String,
}

#[derive(Args, Debug)]
pub struct RetryArgs {
    #[command(flatten)]
    pub job: JobActionArgs,
    /// Only the tests whose last attempt failed (the job must have ended);
    /// exits 2 when none did.
    #[arg(long)]
    pub failed: bool,
}

#[derive(Args, Debug)]
pub struct PluginsArgs {
    /// Print JSON: {steps: [{name, events: [{name, doc}]}], target_managers, test_fetchers, reporters}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    pub shell: clap_complete::Shell,
}

/// `--color`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}
