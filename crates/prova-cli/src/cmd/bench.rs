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
use prova_store::{EventStore, JobStore, SqlStore, Store};

use crate::cli::{BenchArgs, BenchWhat};
use crate::output::outln;

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::Engine {
            targets,
            steps,
            repeat,
        } => engine(targets, steps, repeat.max(1)).await,
        BenchWhat::Store { events, repeat } => store(events, repeat.max(1)).await,
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

/// Events shaped like a real job's: 1,000 targets through 3 `cmd` steps,
/// with TargetIn/CmdStart/CmdStdout/CmdEnd/TargetOut per target and step.
fn job_events(job_id: i64, n: usize) -> Vec<prova_core::NewEvent> {
    use prova_core::{EventKind, NewEvent, Target};
    const NAMES: [&str; 5] = ["TargetIn", "CmdStart", "CmdStdout", "CmdEnd", "TargetOut"];
    let now = jiff::Timestamp::now();
    (0..n)
        .map(|i| {
            let name = NAMES[i % NAMES.len()];
            let target = (i / NAMES.len()) % 1000;
            let step = (i / (NAMES.len() * 1000)) % 3;
            let payload = match name {
                "CmdStart" => Some(serde_json::json!({"Path": "/bin/echo", "Args": ["hello", target], "Dir": null, "Pid": 4242})),
                "CmdStdout" => Some(serde_json::json!({"Msg": format!("hello from target {target}\n")})),
                "CmdEnd" => Some(serde_json::json!({"ExitCode": 0, "DurationMs": 3})),
                _ => None,
            };
            NewEvent {
                kind: EventKind::Test,
                job_id,
                run_id: 1,
                test_name: Some("bench test".into()),
                test_attempt: Some(0),
                step_label: Some(format!("step{step}")),
                target: Some(Target {
                    id: format!("t{target}"),
                    fqdn: format!("host{target}.example.org"),
                    ..Default::default()
                }),
                name: name.into(),
                payload,
                emit_time: now,
            }
        })
        .collect()
}

async fn store(n: usize, repeat: usize) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("prova-bench-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (mut best_write, mut best_read, mut best_rebuild) =
        (Duration::MAX, Duration::MAX, Duration::MAX);
    let (mut best_full, mut best_status) = (Duration::MAX, Duration::MAX);
    for i in 0..repeat {
        let store = SqlStore::open(&format!("sqlite://{}/store-{i}.db", dir.display())).await?;
        let job_id = store
            .create_job(prova_store::NewJob {
                name: "bench".into(),
                ..Default::default()
            })
            .await?;
        let events = job_events(job_id, n);
        let start = Instant::now();
        // The engine's writer hands the store batches of what has queued up,
        // at most MAX_BATCH at a time.
        for chunk in events.chunks(prova_engine::emit::MAX_BATCH) {
            store.append_events(chunk).await?;
        }
        let write = start.elapsed();
        let start = Instant::now();
        let read = store.query_events(&EventQuery::for_job(job_id)).await?;
        let read_t = start.elapsed();
        let start = Instant::now();
        let status = prova_core::status::rebuild(job_id, "bench", &read);
        let rebuild_t = start.elapsed();
        anyhow::ensure!(read.len() == n, "read {} of {n} events", read.len());
        // What `prova status` does: read only what a status needs, rebuild.
        let start = Instant::now();
        let loaded = prova_engine::status::load_status(&store, job_id)
            .await?
            .context("job vanished")?;
        let status_t = start.elapsed();
        anyhow::ensure!(
            loaded == status,
            "the status from status events differs from the one from all events"
        );
        eprintln!(
            "round {}: write {:.0} events/s, read all {:.1}ms, rebuild {:.1}ms, status {:.1}ms",
            i + 1,
            n as f64 / write.as_secs_f64(),
            read_t.as_secs_f64() * 1e3,
            rebuild_t.as_secs_f64() * 1e3,
            status_t.as_secs_f64() * 1e3
        );
        best_write = best_write.min(write);
        best_read = best_read.min(read_t);
        best_rebuild = best_rebuild.min(rebuild_t);
        best_full = best_full.min(read_t + rebuild_t);
        best_status = best_status.min(status_t);
    }
    let _ = std::fs::remove_dir_all(&dir);
    outln!(
        "store bench: {n} events, SQLite file in WAL mode, batches of {}",
        prova_engine::emit::MAX_BATCH
    )?;
    outln!(
        "  write:   {:.0} events/s  (target ≥ 100000/s)",
        n as f64 / best_write.as_secs_f64()
    )?;
    outln!(
        "  read all events:         {:.1} ms",
        best_read.as_secs_f64() * 1e3
    )?;
    outln!(
        "  rebuild from all events: {:.1} ms",
        best_rebuild.as_secs_f64() * 1e3
    )?;
    outln!(
        "  read all + rebuild:      {:.1} ms",
        best_full.as_secs_f64() * 1e3
    )?;
    outln!(
        "  status as `prova status` loads it (status events only + rebuild): {:.1} ms  (target ≤ 200 ms)",
        best_status.as_secs_f64() * 1e3
    )?;
    Ok(ExitCode::SUCCESS)
}
