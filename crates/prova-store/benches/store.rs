//! Store benchmarks on a file SQLite store (WAL):
//!
//! - `append_100k_batches_of_1000`: append 100,000 events in batches of
//!   1,000 (throughput in events/s);
//! - `append_1000_batches_of_1`: the per-call cost when the engine flushes
//!   single events;
//! - `query_job_100k/<backend>`: read every event of a job with 100,000
//!   events (`query_job_100k_one_run`: the 20,000 of one run);
//! - `artifacts/put_16MiB`, `artifacts/read_16MiB`: store a file at the
//!   per-file limit, and read it back piece by piece as a download does
//!   (throughput in bytes/s).
//!
//! The query and artifact benches run on PostgreSQL too when
//! `PROVA_TEST_POSTGRES_URL` is set (in the database it names; the query
//! bench adds 110,000 events there each run and `ANALYZE`s them, as
//! autovacuum would).
//!
//! `cargo bench -p prova-store -- --sample-size 10`

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prova_core::{EventKind, EventQuery, JobState, NewEvent, Target};
use prova_store::{ARTIFACT_FILE_LIMIT, ArtifactStore, EventStore, JobStore, NewJob, SqlStore};
use serde_json::json;

const EVENTS: usize = 100_000;
const BATCH: usize = 1_000;

fn events(job_id: i64, n: usize) -> Vec<NewEvent> {
    let t0 = jiff::Timestamp::now();
    let mut evs = Vec::with_capacity(n);
    evs.push(NewEvent::job(job_id, JobState::Started.event_name(), None));
    for i in 1..n {
        evs.push(NewEvent {
            kind: EventKind::Test,
            job_id,
            run_id: 1 + (i / 20_000) as u32,
            test_name: Some(format!("test-{}", i % 5)),
            test_attempt: Some(0),
            step_label: Some(format!("step-{}", i % 4)),
            target: Some(Target::with_id(format!("host-{:03}", i % 50))),
            name: "CmdStdout".into(),
            payload: Some(
                json!({"Msg": format!("line {i}: the quick brown fox jumps over the lazy dog")}),
            ),
            emit_time: t0 + Duration::from_micros(i as u64),
        });
    }
    evs
}

async fn fresh_store(dir: &tempfile::TempDir, name: &str) -> (SqlStore, i64) {
    with_job(SqlStore::open_path(&dir.path().join(name)).await.unwrap()).await
}

/// A store and a new job on the server at `PROVA_TEST_POSTGRES_URL`, when
/// that is set.
async fn postgres_store() -> Option<(SqlStore, i64)> {
    let url = std::env::var("PROVA_TEST_POSTGRES_URL").ok()?;
    Some(with_job(SqlStore::open(&url).await.unwrap()).await)
}

/// `store` and a new job in it.
async fn with_job(store: SqlStore) -> (SqlStore, i64) {
    let job = store
        .create_job(NewJob {
            name: "bench".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    (store, job)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("append_100k_batches_of_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let (store, job) = rt.block_on(fresh_store(&dir, &format!("append-{i}.db")));
                let evs = events(job, EVENTS);
                let start = Instant::now();
                rt.block_on(async {
                    for batch in evs.chunks(BATCH) {
                        store.append_events(batch).await.unwrap();
                    }
                });
                total += start.elapsed();
                let _ = std::fs::remove_file(dir.path().join(format!("append-{i}.db")));
            }
            total
        })
    });
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("append_1000_batches_of_1", |b| {
        let (store, job) = rt.block_on(fresh_store(&dir, "single.db"));
        let evs = events(job, 1_000);
        b.iter(|| {
            rt.block_on(async {
                for e in &evs {
                    store.append_events(std::slice::from_ref(e)).await.unwrap();
                }
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("query");
    let mut stores = vec![("sqlite", rt.block_on(fresh_store(&dir, "query.db")))];
    if let Some(pg) = rt.block_on(postgres_store()) {
        stores.push(("postgres", pg));
    }
    for (backend, (store, job)) in &stores {
        let job = *job;
        // Another job's events interleaved, so the index has to do its work.
        let other = rt
            .block_on(store.create_job(NewJob {
                name: "other".into(),
                ..Default::default()
            }))
            .unwrap();
        let mine = events(job, EVENTS);
        let theirs = events(other, EVENTS / 10);
        rt.block_on(async {
            for (i, batch) in mine.chunks(BATCH).enumerate() {
                store.append_events(batch).await.unwrap();
                if let Some(t) = theirs.chunks(BATCH / 10).nth(i) {
                    store.append_events(t).await.unwrap();
                }
            }
        });
        if *backend == "postgres" {
            // What autovacuum does after such inserts: from then on the
            // planner knows how many events the job has.
            let url = std::env::var("PROVA_TEST_POSTGRES_URL").unwrap();
            rt.block_on(async {
                let pg = sqlx::PgPool::connect(&url).await.unwrap();
                sqlx::query("ANALYZE events").execute(&pg).await.unwrap();
            });
        }
        g.throughput(Throughput::Elements(EVENTS as u64));
        // `iter_with_large_drop`: the time to read, not to free the result
        // (dropping 100,000 events costs a few tens of ms more).
        g.bench_function(format!("query_job_100k/{backend}"), |b| {
            b.iter_with_large_drop(|| {
                let got = rt
                    .block_on(store.query_events(&EventQuery::for_job(job)))
                    .unwrap();
                assert_eq!(got.len(), EVENTS);
                got
            })
        });
        g.throughput(Throughput::Elements(20_000));
        g.bench_function(format!("query_job_100k_one_run/{backend}"), |b| {
            let q = EventQuery {
                run_id: Some(2),
                ..EventQuery::for_job(job)
            };
            b.iter_with_large_drop(|| {
                let got = rt.block_on(store.query_events(&q)).unwrap();
                assert_eq!(got.len(), 20_000);
                got
            })
        });
    }
    g.finish();
}

/// Storing and reading a file at the per-file limit: what a step's
/// finish and a download cost.
fn artifact_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let content: Vec<u8> = (0..ARTIFACT_FILE_LIMIT as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut stores = vec![("sqlite", rt.block_on(fresh_store(&dir, "artifacts.db")))];
    if let Some(pg) = rt.block_on(postgres_store()) {
        stores.push(("postgres", pg));
    }
    let mut g = c.benchmark_group("artifacts");
    g.throughput(Throughput::Bytes(content.len() as u64));
    for (backend, (store, job)) in &stores {
        g.bench_function(format!("put_16MiB/{backend}"), |b| {
            b.iter(|| {
                rt.block_on(store.put_artifact(*job, "bench/file.bin", &content, u64::MAX))
                    .unwrap()
            })
        });
        g.bench_function(format!("read_16MiB/{backend}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut n = 0;
                    for seq in 0.. {
                        match store
                            .artifact_chunk(*job, "bench/file.bin", seq)
                            .await
                            .unwrap()
                        {
                            Some(piece) => n += piece.len(),
                            None => break,
                        }
                    }
                    assert_eq!(n, content.len());
                })
            })
        });
    }
    g.finish();
}

criterion_group!(store, benches, artifact_benches);
criterion_main!(store);
