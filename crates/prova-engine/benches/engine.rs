//! Criterion benches of the engine's hot paths. The end-to-end engine
//! benchmark (a job of 1,000 targets × 3 `cmd` steps against spawning the
//! processes directly) is `prova bench engine`, which needs the binary.
//!
//! `validate`: parsing and preparing a descriptor with 100,000 targets in a
//! `TargetList` (what `prova validate` and a job POST do). It must stay
//! linear: under 1 s in release. `PROVA_BENCH_TARGETS=N` changes the count;
//! `PROVA_BENCH_ONCE=1` times one validation and skips criterion (for
//! counts too slow to sample).

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use prova_core::node::Format;
use prova_core::status::rebuild;
use prova_core::{Event, EventKind, NewEvent, Target};
use prova_engine::prepare::prepare_str;

fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| Event {
            seq: i as i64,
            event: NewEvent {
                kind: EventKind::Test,
                job_id: 1,
                run_id: 1,
                test_name: Some("t".into()),
                test_attempt: Some(0),
                step_label: Some(format!("s{}", i % 3)),
                target: Some(Target::with_id(format!("target{}", (i / 6) % 1000))),
                name: [
                    "TargetIn",
                    "CmdStart",
                    "CmdEnd",
                    "TargetOut",
                    "CmdStdout",
                    "TargetIn",
                ][i % 6]
                    .into(),
                payload: None,
                emit_time: jiff::Timestamp::now(),
            },
        })
        .collect()
}

fn bench_rebuild(c: &mut Criterion) {
    let evs = events(100_000);
    c.bench_function("status rebuild of 100k events (in memory)", |b| {
        b.iter(|| rebuild(1, "job", &evs))
    });
}

/// A valid YAML job whose one test lists `n` targets.
fn descriptor_with_targets(n: usize) -> String {
    let mut text = String::from(
        "JobName: many targets\nRuns: 1\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters:\n      Targets:\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "        - {{ID: target-{i:06}, FQDN: target-{i:06}.example.org, PrimaryIPv4: 10.{}.{}.{}}}\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    text.push_str(
        "    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps:\n        - {name: echo, label: say, parameters: {text: [\"{{ .FQDN | ToUpper }}\"]}}\nReporting:\n  RunReporters:\n    - Name: TargetSuccess\n      Parameters: {SuccessExpression: \">80%\"}\n",
    );
    text
}

fn bench_validate(c: &mut Criterion) {
    let n = std::env::var("PROVA_BENCH_TARGETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let text = descriptor_with_targets(n);
    let registry = prova_engine::plugins::registry();
    let validate = || {
        let job = prepare_str(&text, Format::Yaml, None, &registry).expect("valid");
        assert_eq!(job.tests.len(), 1);
        job
    };
    let start = Instant::now();
    drop(prova_core::node::parse_document(&text, Format::Yaml).expect("parses"));
    let parsed = start.elapsed().as_secs_f64();
    let start = Instant::now();
    drop(validate());
    eprintln!(
        "validate: one descriptor of {n} targets ({} bytes) in {:.3} s (parsing alone: {parsed:.3} s)",
        text.len(),
        start.elapsed().as_secs_f64()
    );
    if std::env::var_os("PROVA_BENCH_ONCE").is_some() {
        return;
    }
    let mut group = c.benchmark_group("validate");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function(format!("prepare a descriptor of {n} targets"), |b| {
        b.iter(validate)
    });
    group.finish();
}

criterion_group!(benches, bench_rebuild, bench_validate);
criterion_main!(benches);
