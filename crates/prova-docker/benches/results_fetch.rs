//! How long a container's results take to reach local disk after it exits,
//! through the `docker` step, against the approach it replaces (a fixed
//! sleep, then polling the container every 3 s, then copying).
//!
//! ```text
//! cargo bench -p prova-docker --bench results_fetch
//! cargo bench -p prova-docker --bench results_fetch -- --iterations 20 --mb 10 --baseline 6
//! ```
//!
//! **prova**: each iteration runs a one-target job with the `docker` step on
//! a fresh SQLite store (the engine, the step, the store: what `prova run`
//! does); the fixture image (FROM scratch, one static binary) writes `--mb`
//! MiB of incompressible data in 100 files plus a JUnit file into
//! `/results` and exits. The step's `DockerResults` event, read back from the
//! store, says how long after the exit the last byte was written locally:
//! `ExitToResultsMs` from the container's `State.FinishedAt` (the engine's
//! clock, this host's), `WaitToResultsMs` from the wait API's return. Every
//! byte is then checked against the generator.
//!
//! **baseline** (`--baseline N` iterations, 0 to skip): the same container,
//! which this time runs for a further 0..3 s (evenly spread over the
//! iterations, so the poll's phase is sampled); prova-less code sleeps a
//! fixed 1 s after starting it, then inspects it every 3 s until it has
//! stopped, then copies the results the same way (archive API, same
//! unpacking). Timed from `State.FinishedAt` too.
//!
//! Needs the Docker engine (as the tests); no registry.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptionsBuilder, InspectContainerOptions,
    RemoveContainerOptionsBuilder, StartContainerOptions,
};
use futures::StreamExt;
use prova_engine::runner::RunOptions;
use prova_results::archive::{Limits, unpack};
use tokio_util::io::{StreamReader, SyncIoBridge};

/// The approach the step replaces polls every 3 s.
const POLL: Duration = Duration::from_secs(3);
/// ... after a fixed sleep.
const FIXED_SLEEP: Duration = Duration::from_secs(1);
/// Files the results directory holds (plus junit.xml).
const FILES: u64 = 100;

struct Args {
    iterations: usize,
    mb: u64,
    baseline: usize,
}

fn args() -> Args {
    let mut a = Args {
        iterations: 10,
        mb: 10,
        baseline: 6,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--iterations" => a.iterations = num("--iterations").max(1) as usize,
            "--mb" => a.mb = num("--mb").max(1),
            "--baseline" => a.baseline = num("--baseline") as usize,
            // What `cargo bench` passes to every bench program.
            "--bench" => {}
            other => eprintln!("results_fetch: ignoring argument {other:?}"),
        }
    }
    a
}

fn main() {
    let args = args();
    let image = support::image();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench(args, image));
}

fn since_finished(finished_at: &str) -> f64 {
    let f: jiff::Timestamp = finished_at.parse().expect("FinishedAt");
    let now = jiff::Timestamp::try_from(SystemTime::now()).unwrap();
    now.duration_since(f).as_secs_f64() * 1e3
}

async fn bench(args: Args, image: &str) {
    let Some(docker) = support::docker().await else {
        return;
    };
    let bytes = args.mb << 20;
    let expected = support::gen_files(FILES, bytes);
    println!(
        "results directory: {} MiB in {FILES} files + junit.xml; image {image}",
        args.mb
    );

    // prova: the docker step through the engine.
    let yaml = support::job(
        "bench",
        &format!(
            r#"args: ["gen:/results/data:{FILES}:{bytes}", "junit:/results/junit.xml:20:0:1"],
               results_dir: /results"#
        ),
        "",
    );
    let mut exit_ms = Vec::new();
    let mut wait_ms = Vec::new();
    println!("\nprova docker step ({} iterations):", args.iterations);
    println!("  iter  exit->disk ms  wait->disk ms  fetch ms");
    for i in 0..args.iterations {
        let ran = support::run(&yaml, RunOptions::default()).await;
        assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
        let r = ran.one("DockerResults");
        assert_eq!(r["Files"], FILES + 1);
        let art = PathBuf::from(ran.one("Artifacts")["Path"].as_str().unwrap());
        let got = support::tree(&art.join("data"));
        assert_eq!(got, expected, "the results did not come back intact");
        let e = r["ExitToResultsMs"].as_f64().expect("ExitToResultsMs");
        let w = r["WaitToResultsMs"].as_f64().unwrap();
        let f = r["FetchMs"].as_f64().unwrap();
        println!("  {:>4}  {e:>13.1}  {w:>13.1}  {f:>8.1}", i + 1);
        exit_ms.push(e);
        wait_ms.push(w);
    }
    support::assert_none_left(&docker, "bench").await;

    let (med, min, max) = stats(&mut exit_ms);
    let (wmed, wmin, _) = stats(&mut wait_ms);
    println!(
        "prova: exit -> results on disk: median {med:.1} ms, min {min:.1} ms, max {max:.1} ms \
         (from the wait API's return: median {wmed:.1} ms, min {wmin:.1} ms)"
    );
    println!(
        "  target < 1000 ms: {}; vs the 3 s poll interval: {:.1}x faster",
        if med < 1000.0 { "met" } else { "MISSED" },
        3000.0 / med
    );

    if args.baseline == 0 {
        return;
    }
    println!(
        "\nbaseline: fixed {} s sleep, then poll every {} s, then copy ({} iterations):",
        FIXED_SLEEP.as_secs(),
        POLL.as_secs(),
        args.baseline
    );
    println!("  iter  extra run ms  exit->disk ms");
    let mut base = Vec::new();
    for i in 0..args.baseline {
        let extra = 3000 * i as u64 / args.baseline as u64;
        let ms = baseline_once(&docker, image, bytes, extra, &expected).await;
        println!("  {:>4}  {extra:>12}  {ms:>13.1}", i + 1);
        base.push(ms);
    }
    support::assert_none_left(&docker, "bench-baseline").await;
    let (bmed, bmin, bmax) = stats(&mut base);
    println!(
        "baseline: exit -> results on disk: median {bmed:.1} ms, min {bmin:.1} ms, max {bmax:.1} ms"
    );
    println!(
        "\nsummary: prova median {med:.1} ms vs baseline median {bmed:.1} ms ({:.1}x), \
         vs baseline worst case ~{:.0} ms ({:.1}x)",
        bmed / med,
        bmax,
        bmax / med
    );
}

/// (median, min, max)
fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (med, v[0], v[n - 1])
}

/// The replaced approach, once: ms from the container's exit to its results
/// on disk.
async fn baseline_once(
    docker: &Docker,
    image: &str,
    bytes: u64,
    extra_ms: u64,
    expected: &std::collections::BTreeMap<String, (u64, String)>,
) -> f64 {
    let labels = HashMap::from([
        (prova_docker::LABEL_MANAGED.to_string(), "true".to_string()),
        ("ptest".to_string(), "bench-baseline".to_string()),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec![
            format!("gen:/results/data:{FILES}:{bytes}"),
            "junit:/results/junit.xml:20:0:1".into(),
            format!("msleep:{extra_ms}"),
        ]),
        labels: Some(labels),
        ..Default::default()
    };
    let id = docker
        .create_container(None::<CreateContainerOptions>, body)
        .await
        .unwrap()
        .id;
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await
        .unwrap();
    tokio::time::sleep(FIXED_SLEEP).await;
    let finished_at = loop {
        let state = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .unwrap()
            .state
            .unwrap();
        if !state.running.unwrap_or(false) {
            break state.finished_at.unwrap();
        }
        tokio::time::sleep(POLL).await;
    };
    let dest = tempfile::tempdir().unwrap();
    let stream = docker
        .download_from_container(
            &id,
            Some(
                DownloadFromContainerOptionsBuilder::new()
                    .path("/results")
                    .build(),
            ),
        )
        .map(|r| r.map_err(std::io::Error::other));
    let reader = SyncIoBridge::new(StreamReader::new(Box::pin(stream)));
    let d = dest.path().to_path_buf();
    tokio::task::spawn_blocking(move || unpack(reader, &d, 1, &Limits::default()))
        .await
        .unwrap()
        .unwrap();
    let ms = since_finished(&finished_at);
    assert_eq!(&support::tree(&dest.path().join("data")), expected);
    let rm = RemoveContainerOptionsBuilder::new().force(true).build();
    docker.remove_container(&id, Some(rm)).await.unwrap();
    ms
}
