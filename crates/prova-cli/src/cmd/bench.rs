//! `prova bench`: performance targets, each measured against its baseline
//! in the same run. `engine` (here): the engine's overhead against doing
//! the same work without it; `store` ([`store`]): the event store against
//! a raw insert and `prova status` as a process; `backends` (here): the
//! same job on PostgreSQL against SQLite.
//!
//! The engine job: N targets (TargetList) through M `cmd` steps of `/bin/true`,
//! every event stored in a fresh SQLite file. The baseline: the same N×M
//! processes spawned directly with tokio, N chains of M in sequence, all
//! chains at once (the same concurrency the pipeline has). Each is
//! measured `repeat` times, interleaved, and the best time is kept.

mod fresh;
mod store;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use prova_core::EventQuery;
use prova_core::node::Format;
use prova_engine::prepare::prepare_str;
use prova_engine::runner::{RunOptions, run_job};
use prova_store::{SqlStore, Store};

use crate::cli::{BenchArgs, BenchWhat};
use crate::output::outln;
use fresh::Fresh;
pub use store::StoreBench;

#[derive(Args, Debug)]
pub struct BackendsBench {
    /// The PostgreSQL server: a fresh schema per round.
    #[arg(long, value_name = "URL", env = "PROVA_TEST_POSTGRES_URL")]
    pub postgres: String,
    #[arg(long, default_value_t = 3000)]
    pub targets: usize,
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Repeat each measurement this many times and keep the best.
    #[arg(long, default_value_t = 2)]
    pub repeat: usize,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::Engine {
            targets,
            steps,
            repeat,
        } => engine(targets, steps, repeat.max(1)).await,
        BenchWhat::Store(a) => store::run(a).await,
        BenchWhat::Backends(a) => backends(a).await,
    }
}

/// A job of `targets` × `steps` steps, each `step` (YAML of a step's
/// name and parameters, `{i}` its number), every target required to pass.
fn descriptor(targets: usize, steps: usize, step: &str) -> String {
    let mut s = String::from(
        "JobName: bench\nRuns: 1\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters:\n      Targets:\n",
    );
    for i in 0..targets {
        s.push_str(&format!("        - ID: t{i}\n"));
    }
    s.push_str("    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: bench\n      Steps:\n");
    for i in 0..steps {
        s.push_str(&step.replace("{i}", &i.to_string()));
    }
    s.push_str(REPORTING);
    s
}

/// The engine bench's step: a process that does nothing.
const CMD_TRUE: &str = "        - name: cmd\n          label: step{i}\n          parameters:\n            executable: [/bin/true]\n            emit_stdout: [false]\n            emit_stderr: [false]\n";

/// The backends bench's step: three events per target (TargetIn, Echo,
/// TargetOut) and nothing spawned, so the job's time is the engine's and
/// the store's.
const ECHO: &str = "        - name: echo\n          label: step{i}\n          parameters:\n            text: [hello]\n";

/// Every target must pass.
const REPORTING: &str = "Reporting:\n  RunReporters:\n    - name: TargetSuccess\n      parameters:\n        SuccessExpression: \"=100%\"\n";

async fn baseline(targets: usize, steps: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..targets {
        set.spawn(async move {
            for _ in 0..steps {
                let status = tokio::process::Command::new("/bin/true")
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .output()
                    .await?;
                anyhow::ensure!(status.status.success(), "/bin/true failed");
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(start.elapsed())
}

/// Runs the job `text` on the store at `url`: how long it took and how
/// many events it stored.
async fn job(text: &str, url: &str) -> anyhow::Result<(Duration, usize)> {
    let registry = prova_engine::plugins::registry();
    let prepared =
        prepare_str(text, Format::Yaml, None, &registry).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store: Arc<dyn Store> = Arc::new(SqlStore::open(url).await?);
    let start = Instant::now();
    let outcome = run_job(prepared, store.clone(), RunOptions::default()).await?;
    let took = start.elapsed();
    anyhow::ensure!(
        outcome.success(),
        "the bench job did not succeed: {:?}",
        outcome.error
    );
    let events = store
        .query_events(&EventQuery::for_job(outcome.job_id))
        .await?
        .len();
    Ok((took, events))
}

async fn engine(targets: usize, steps: usize, repeat: usize) -> anyhow::Result<ExitCode> {
    let mut fresh = Fresh::new(None, "engine")?;
    let text = descriptor(targets, steps, CMD_TRUE);
    let (mut best_base, mut best_job) = (Duration::MAX, Duration::MAX);
    let mut events = 0;
    for i in 0..repeat {
        let b = baseline(targets, steps).await?;
        let (j, n) = job(&text, &fresh.store_url(&format!("engine{i}")).await?).await?;
        eprintln!(
            "round {}: direct spawn {:.3}s, prova job {:.3}s ({n} events stored)",
            i + 1,
            b.as_secs_f64(),
            j.as_secs_f64()
        );
        best_base = best_base.min(b);
        best_job = best_job.min(j);
        events = n;
    }
    fresh.cleanup().await;
    // Every target: acquired, released; per step: TargetIn, CmdStart, CmdEnd, TargetOut.
    let expected = targets * (2 + 4 * steps);
    outln!(
        "engine bench: {targets} targets × {steps} cmd steps of /bin/true ({} processes)",
        targets * steps
    )?;
    outln!("  direct spawn (baseline): {:.3}s", best_base.as_secs_f64())?;
    outln!(
        "  prova job:               {:.3}s  ({events} events stored, ≥{expected} expected)",
        best_job.as_secs_f64()
    )?;
    outln!(
        "  ratio job / baseline:    {:.2}× (target ≤ 1.5×)",
        best_job.as_secs_f64() / best_base.as_secs_f64()
    )?;
    anyhow::ensure!(
        events >= expected,
        "only {events} events stored, expected at least {expected}"
    );
    Ok(ExitCode::SUCCESS)
}

/// `prova bench backends`: the same echo job on a fresh SQLite file and a
/// fresh PostgreSQL schema, interleaved, best of each kept.
async fn backends(a: BackendsBench) -> anyhow::Result<ExitCode> {
    let text = descriptor(a.targets, a.steps, ECHO);
    let mut sqlite = Fresh::new(None, "backends")?;
    let mut postgres = Fresh::new(Some(&a.postgres), "backends")?;
    let (mut best_sqlite, mut best_pg) = (Duration::MAX, Duration::MAX);
    let mut counts = (0, 0);
    for i in 0..a.repeat.max(1) {
        let (s, ns) = job(&text, &sqlite.store_url(&format!("echo{i}")).await?).await?;
        let (p, np) = job(&text, &postgres.store_url(&format!("echo{i}")).await?).await?;
        eprintln!(
            "round {}: SQLite {:.3}s ({ns} events), PostgreSQL {:.3}s ({np} events), {:.2}×",
            i + 1,
            s.as_secs_f64(),
            p.as_secs_f64(),
            p.as_secs_f64() / s.as_secs_f64()
        );
        best_sqlite = best_sqlite.min(s);
        best_pg = best_pg.min(p);
        counts = (ns, np);
    }
    sqlite.cleanup().await;
    postgres.cleanup().await;
    // Every target: acquired, released; per step: TargetIn, Echo, TargetOut.
    let expected = a.targets * (2 + 3 * a.steps);
    outln!(
        "backends bench: a job of {} targets × {} echo steps",
        a.targets,
        a.steps
    )?;
    outln!(
        "  SQLite:     {:.3}s  ({} events stored)",
        best_sqlite.as_secs_f64(),
        counts.0
    )?;
    outln!(
        "  PostgreSQL: {:.3}s  ({} events stored)",
        best_pg.as_secs_f64(),
        counts.1
    )?;
    outln!(
        "  ratio PostgreSQL / SQLite: {:.2}× (target ≤ 1.5×)",
        best_pg.as_secs_f64() / best_sqlite.as_secs_f64()
    )?;
    anyhow::ensure!(
        counts.0 >= expected && counts.1 == counts.0,
        "events stored: SQLite {}, PostgreSQL {}, expected at least {expected} on both",
        counts.0,
        counts.1
    );
    Ok(ExitCode::SUCCESS)
}
