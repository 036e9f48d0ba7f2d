//! `prova bench store`: the event store's writes and reads, each against
//! its baseline in the same run.
//!
//! Each round, on a fresh store: N events shaped like a real job's are
//! appended in the engine's batches; on SQLite, Python's sqlite3 inserts
//! the same rows into another fresh store of the same schema (the raw-insert
//! baseline, `prova-store/benches/sqlite_insert.py`); every event is read
//! back, the status rebuilt both from all events and the way `prova status`
//! loads it (the two must be equal); and `prova status ID` runs as a whole
//! process several times (median). Rounds repeat, best kept.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use prova_core::{EventQuery, NewEvent};
use prova_store::{EventStore, JobStore, SqlStore};

use super::fresh::Fresh;
use crate::output::outln;

#[derive(Args, Debug)]
pub struct StoreBench {
    #[arg(long, default_value_t = 100_000)]
    pub events: usize,
    /// Repeat each measurement this many times and keep the best.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Bench PostgreSQL: a fresh schema per round on the server at this
    /// URL. Without it, fresh SQLite files in a temporary directory.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
    /// How many times to run `prova status ID` as a process (median kept).
    #[arg(long, default_value_t = 9)]
    pub status_runs: usize,
    /// Leave out the Python sqlite3 baseline (SQLite only).
    #[arg(long)]
    pub no_python: bool,
}

/// The Python script of the raw-insert baseline, run with `python3 -`.
const PYTHON_INSERT: &str = include_str!("../../../../prova-store/benches/sqlite_insert.py");

/// Events shaped like a real job's: 1,000 targets through 3 `cmd` steps,
/// with TargetIn/CmdStart/CmdStdout/CmdEnd/TargetOut per target and step,
/// between the job's `JobStateStarted` and `JobStateCompleted` (a finished
/// job, as `prova status` is mostly asked about).
fn job_events(job_id: i64, n: usize) -> Vec<NewEvent> {
    use prova_core::{EventKind, JobState, Target};
    const NAMES: [&str; 5] = ["TargetIn", "CmdStart", "CmdStdout", "CmdEnd", "TargetOut"];
    let now = jiff::Timestamp::now();
    let state = |st: JobState, i: usize| {
        let mut e = NewEvent::job(job_id, st.event_name(), None);
        e.emit_time = now + Duration::from_micros(i as u64);
        e
    };
    (0..n)
        .map(|i| {
            if i == 0 {
                return state(JobState::Started, i);
            }
            if i + 1 == n {
                return state(JobState::Completed, i);
            }
            let name = NAMES[i % NAMES.len()];
            let target = (i / NAMES.len()) % 1000;
            let step = (i / (NAMES.len() * 1000)) % 3;
            let payload = match name {
                "CmdStart" => Some(
                    serde_json::json!({"Path": "/bin/echo", "Args": ["hello", target], "Dir": null, "Pid": 4242}),
                ),
                "CmdStdout" => {
                    Some(serde_json::json!({"Msg": format!("hello from target {target}\n")}))
                }
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
                emit_time: now + Duration::from_micros(i as u64),
            }
        })
        .collect()
}

/// The rows the store writes for `events`, as the baseline binds them:
/// the columns of `events`, target and payload as JSON text.
fn rows_json(events: &[NewEvent]) -> anyhow::Result<String> {
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            anyhow::Ok(serde_json::json!([
                e.job_id,
                e.kind.as_str(),
                e.run_id,
                e.test_name,
                e.test_attempt,
                e.step_label,
                e.target.as_ref().map(|t| t.id.as_str()),
                e.target.as_ref().map(serde_json::to_string).transpose()?,
                e.name,
                e.payload.as_ref().map(|p| p.to_string()),
                e.emit_time.as_microsecond(),
            ]))
        })
        .collect::<Result<_, _>>()?;
    Ok(serde_json::to_string(&rows)?)
}

/// Python's sqlite3 inserting `events` into a fresh store at `url`
/// (SQLite) in batches of `batch`: the seconds it took, or why it could
/// not run.
async fn python_insert(
    url: &str,
    dir: &std::path::Path,
    events: &[NewEvent],
    batch: usize,
) -> anyhow::Result<Duration> {
    let store = SqlStore::open(url).await?;
    let job_id = store
        .create_job(prova_store::NewJob {
            name: "bench".into(),
            ..Default::default()
        })
        .await?;
    drop(store);
    let events: Vec<NewEvent> = events
        .iter()
        .map(|e| NewEvent {
            job_id,
            ..e.clone()
        })
        .collect();
    let rows = dir.join("python-rows.json");
    std::fs::write(&rows, rows_json(&events)?)
        .with_context(|| format!("writing {}", rows.display()))?;
    let file = url.strip_prefix("sqlite://").unwrap_or(url);
    let mut child = tokio::process::Command::new("python3")
        .arg("-")
        .arg(file)
        .arg(&rows)
        .arg(batch.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running python3")?;
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().context("python3's stdin")?;
        stdin.write_all(PYTHON_INSERT.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    let _ = std::fs::remove_file(&rows);
    anyhow::ensure!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let secs: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("python3 printed no time")?;
    Ok(Duration::from_secs_f64(secs))
}

/// `prova status ID --db URL` as a whole process, `runs` times: the median.
async fn status_process(url: &str, job_id: i64, runs: usize) -> anyhow::Result<Duration> {
    let exe = std::env::current_exe().context("finding prova's own executable")?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let out = tokio::process::Command::new(&exe)
            .args(["status", &job_id.to_string(), "--db", url])
            .env_remove("PROVA_SERVER")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await?;
        times.push(start.elapsed());
        anyhow::ensure!(
            out.status.success(),
            "prova status failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// The best of each measurement over the rounds.
struct Best {
    write: Duration,
    python: Option<Duration>,
    read: Duration,
    read_again: Duration,
    rebuild: Duration,
    status_in_process: Duration,
    status_process: Duration,
}

pub async fn run(a: StoreBench) -> anyhow::Result<std::process::ExitCode> {
    let n = a.events;
    let mut fresh = Fresh::new(a.db.as_deref(), "store")?;
    let batch = prova_engine::emit::MAX_BATCH;
    let python = !a.no_python && matches!(fresh, Fresh::Sqlite(_));
    let mut best = Best {
        write: Duration::MAX,
        python: None,
        read: Duration::MAX,
        read_again: Duration::MAX,
        rebuild: Duration::MAX,
        status_in_process: Duration::MAX,
        status_process: Duration::MAX,
    };
    let mut python_err = None;
    for i in 0..a.repeat.max(1) {
        let url = fresh.store_url(&format!("store{i}")).await?;
        let store = SqlStore::open(&url).await?;
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
        for chunk in events.chunks(batch) {
            store.append_events(chunk).await?;
        }
        let write = start.elapsed();

        let py = match &fresh {
            Fresh::Sqlite(dir) if python => {
                let dir = dir.clone();
                let py_url = fresh.store_url(&format!("python{i}")).await?;
                match python_insert(&py_url, &dir, &events, batch).await {
                    Ok(t) => Some(t),
                    Err(e) => {
                        python_err = Some(format!("{e:#}"));
                        None
                    }
                }
            }
            _ => None,
        };

        let start = Instant::now();
        let read = store.query_events(&EventQuery::for_job(job_id)).await?;
        let read_t = start.elapsed();
        anyhow::ensure!(read.len() == n, "read {} of {n} events", read.len());
        // Once more: the first read of new rows pays work the database
        // does once (PostgreSQL sets each row's hint bits); every later
        // reader (the dashboard, `prova status`) gets this one.
        let start = Instant::now();
        let again = store.query_events(&EventQuery::for_job(job_id)).await?;
        let again_t = start.elapsed();
        anyhow::ensure!(again == read, "a second read differs from the first");
        drop(again);
        let start = Instant::now();
        let status = prova_core::status::rebuild(job_id, "bench", &read);
        let rebuild_t = start.elapsed();
        drop(read);
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
        drop(store);
        let process_t = status_process(&url, job_id, a.status_runs.max(1)).await?;
        eprintln!(
            "round {}: write {:.0} events/s{}, read all {:.1}ms (again {:.1}ms), rebuild {:.1}ms, status {:.1}ms, `prova status` {:.1}ms",
            i + 1,
            n as f64 / write.as_secs_f64(),
            py.map(|p| format!(" (python {:.0}/s)", n as f64 / p.as_secs_f64()))
                .unwrap_or_default(),
            ms(read_t),
            ms(again_t),
            ms(rebuild_t),
            ms(status_t),
            ms(process_t),
        );
        best.write = best.write.min(write);
        best.python = match (best.python, py) {
            (Some(b), Some(p)) => Some(b.min(p)),
            (b, p) => b.or(p),
        };
        best.read = best.read.min(read_t);
        best.read_again = best.read_again.min(again_t);
        best.rebuild = best.rebuild.min(rebuild_t);
        best.status_in_process = best.status_in_process.min(status_t);
        best.status_process = best.status_process.min(process_t);
    }
    let backend = fresh.backend();
    fresh.cleanup().await;
    report(&best, n, batch, backend, python_err)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(
    best: &Best,
    n: usize,
    batch: usize,
    backend: &str,
    python_err: Option<String>,
) -> anyhow::Result<std::process::ExitCode> {
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    outln!("store bench: {n} events, {backend}, batches of up to {batch}")?;
    outln!("  write:                 {:.0} events/s", rate(best.write))?;
    match (best.python, python_err) {
        (Some(py), _) => {
            outln!(
                "  python sqlite3 executemany, same rows and schema: {:.0} rows/s",
                rate(py)
            )?;
            outln!(
                "  ratio write / python: {:.2} (target ≥ 0.75)",
                py.as_secs_f64() / best.write.as_secs_f64()
            )?;
        }
        (None, Some(e)) => outln!("  python baseline not run: {e}")?,
        (None, None) => {}
    }
    outln!(
        "  read all events:       {:.1} ms, again {:.1} ms (target ≤ 150 ms)",
        ms(best.read),
        ms(best.read_again)
    )?;
    outln!("  rebuild from all:      {:.1} ms", ms(best.rebuild))?;
    outln!(
        "  status in process (status events only + rebuild): {:.1} ms",
        ms(best.status_in_process)
    )?;
    let target = if backend == "SQLite" { 100 } else { 150 };
    outln!(
        "  `prova status ID` as a process, median: {:.1} ms (target ≤ {target} ms)",
        ms(best.status_process)
    )?;
    Ok(std::process::ExitCode::SUCCESS)
}
