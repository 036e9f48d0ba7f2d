//! Criterion benches of the engine's hot paths. The end-to-end engine
//! benchmark (a job of 1,000 targets × 3 `cmd` steps against spawning the
//! processes directly) is `prova bench engine`, which needs the binary.

use criterion::{Criterion, criterion_group, criterion_main};
use prova_core::status::rebuild;
use prova_core::{Event, EventKind, NewEvent, Target};

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

criterion_group!(benches, bench_rebuild);
criterion_main!(benches);
