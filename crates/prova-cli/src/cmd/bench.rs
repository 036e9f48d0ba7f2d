//! `prova bench engine`: the engine's overhead, measured against doing the
//! same work without it, in one run.
//!
//! The job: N targets (TargetList) through M `cmd` steps of `/bin/true`,
//! every event stored in a fresh SQLite file. The baseline: the same N×M
//! processes spawned directly with tokio, N chains of M in sequence, all
//! chains at once (the same concurrency the pipeline has). Each is
//! measured `repeat` times, interleaved, and the best time is kept.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use prova_core::EventQuery;
use prova_core::node::Format;
use prova_engine::prepare::prepare_str;
use prova_engine::runner::{RunOptions, run_job};
use prova_store::{SqlStore, Store};

use crate::cli::{BenchArgs, BenchWhat};

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::Engine {
            targets,
            steps,
            repeat,
        } => engine(targets, steps, repeat.max(1)).await,
    }
}

fn descriptor(targets: usize, steps: usize) -> String {
    let mut s = String::from(
        "JobName: bench\nRuns: 1\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters:\n      Targets:\n",
    );
    for i in 0..targets {
        s.push_str(&format!("        - ID: t{i}\n"));
    }
    s.push_str("    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: bench\n      Steps:\n");
    for i in 0..steps {
        s.push_str(&format!(
            "        - name: cmd\n          label: step{i}\n          parameters:\n            executable: [/bin/true]\n            emit_stdout: [false]\n            emit_stderr: [false]\n"
        ));
    }
    s.push_str("Reporting:\n  RunReporters:\n    - name: TargetSuccess\n      parameters:\n        SuccessExpression: \"=100%\"\n");
    s
}

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

async fn job(
    targets: usize,
    steps: usize,
    dir: &std::path::Path,
    i: usize,
) -> anyhow::Result<(Duration, usize)> {
    let registry = prova_engine::plugins::registry();
    let text = descriptor(targets, steps);
    let prepared =
        prepare_str(&text, Format::Yaml, None, &registry).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open(&format!("sqlite://{}/bench-{i}.db", dir.display())).await?);
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
    let dir = std::env::temp_dir().join(format!("prova-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (mut best_base, mut best_job) = (Duration::MAX, Duration::MAX);
    let mut events = 0;
    for i in 0..repeat {
        let b = baseline(targets, steps).await?;
        let (j, n) = job(targets, steps, &dir, i).await?;
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
    let _ = std::fs::remove_dir_all(&dir);
    // Every target: acquired, released; per step: TargetIn, CmdStart, CmdEnd, TargetOut.
    let expected = targets * (2 + 4 * steps);
    println!(
        "engine bench: {targets} targets × {steps} cmd steps of /bin/true ({} processes)",
        targets * steps
    );
    println!("  direct spawn (baseline): {:.3}s", best_base.as_secs_f64());
    println!(
        "  prova job:               {:.3}s  ({events} events stored, ≥{expected} expected)",
        best_job.as_secs_f64()
    );
    println!(
        "  ratio job / baseline:    {:.2}× (target ≤ 1.5×)",
        best_job.as_secs_f64() / best_base.as_secs_f64()
    );
    anyhow::ensure!(
        events >= expected,
        "only {events} events stored, expected at least {expected}"
    );
    Ok(ExitCode::SUCCESS)
}
