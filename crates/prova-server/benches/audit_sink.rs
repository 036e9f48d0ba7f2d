//! The live audit sink's ingest rate, beside `prova coverage report` over
//! the same events read from a file, in the same run.
//!
//! Events are the shared corpus's real audit events (every third given an
//! e2e.test agent), repeated with fresh `auditID`s until there are
//! `PROVA_BENCH_EVENTS` of them (default 200,000). The sink side starts a
//! real `prova serve` (SQLite in a temporary directory, the v1.36 spec)
//! and posts them over HTTP as `EventList` batches of 400 — the API
//! server's default batch — from `PROVA_BENCH_CLIENTS` keep-alive
//! connections (default 4), each batch answered once committed. The file
//! side writes the same events as JSON lines and times the coverage
//! pipeline over them (spec already loaded on both sides).
//!
//! ```text
//! cargo bench -p prova-server --bench audit_sink
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prova_coverage::spec::Spec;
use prova_server::ServerConfig;
use prova_server::audit::AuditConfig;
use serde_json::{Value, json};

#[path = "../tests/audit_corpus/mod.rs"]
mod audit_corpus;

/// The API server's default `--audit-webhook-batch-max-size`.
const BATCH: usize = 400;
const TOKEN: &str = "bench-token";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `n` events cycled from the corpus, each with its own `auditID` and a
/// stage timestamp a microsecond after the previous one.
fn events(n: usize) -> Vec<String> {
    let corpus = audit_corpus::with_e2e_agents(audit_corpus::events());
    let t0 = jiff::Timestamp::now();
    (0..n)
        .map(|i| {
            let mut e: Value = corpus[i % corpus.len()].clone();
            e["auditID"] = json!(format!("{:08x}-bench-{i:012}", i / corpus.len()));
            e["stageTimestamp"] = json!((t0 + Duration::from_micros(i as u64)).to_string());
            serde_json::to_string(&e).unwrap()
        })
        .collect()
}

fn event_list(items: &[String]) -> Vec<u8> {
    let mut s = String::from(
        r#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":["#,
    );
    s.push_str(&items.join(","));
    s.push_str("]}");
    s.into_bytes()
}

struct SinkRun {
    seconds: f64,
    stored: u64,
    retried: u64,
}

async fn post_all(url: &str, bodies: Arc<Vec<Vec<u8>>>, clients: usize) -> SinkRun {
    let next = Arc::new(AtomicUsize::new(0));
    let stored = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (bodies, next, stored, retried) = (
            bodies.clone(),
            next.clone(),
            stored.clone(),
            retried.clone(),
        );
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                loop {
                    let resp = http
                        .post(&url)
                        .bearer_auth(TOKEN)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("the sink answers");
                    let status = resp.status();
                    let v: Value = resp.json().await.expect("a JSON answer");
                    if status == 429 {
                        // As the API server does: wait, send the batch again.
                        retried.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    assert_eq!(status, 200, "{v}");
                    stored.fetch_add(v["Stored"].as_u64().unwrap(), Ordering::Relaxed);
                    break;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    SinkRun {
        seconds: started.elapsed().as_secs_f64(),
        stored: stored.load(Ordering::Relaxed),
        retried: retried.load(Ordering::Relaxed),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this
    // too: keep that run small.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = env_usize(
        "PROVA_BENCH_EVENTS",
        if quick { 4 * BATCH } else { 200_000 },
    );
    let clients = env_usize("PROVA_BENCH_CLIENTS", 4);
    let spec = Arc::new(Spec::from_file(&audit_corpus::spec_path()).expect("the corpus spec"));
    let events = events(n);
    let bytes: usize = events.iter().map(|e| e.len() + 1).sum();
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(events.chunks(BATCH).map(event_list).collect());

    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sink = rt.block_on(async {
        let store = Arc::new(
            prova_store::SqlStore::open_path(&dir.path().join("sink.db"))
                .await
                .unwrap(),
        );
        let config = ServerConfig {
            token: Some(TOKEN.into()),
            artifacts_root: dir.path().join("artifacts"),
            files_root: Some(dir.path().to_path_buf()),
            audit: AuditConfig {
                spec: Some(spec.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let state = prova_server::state(config, store, prova_engine::plugins::registry());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(prova_server::serve_with(
            state,
            listener,
            async move {
                let _ = stop_rx.await;
            },
            std::future::pending(),
        ));
        let url = format!("http://{addr}/api/v1/audit/events");
        let run = post_all(&url, bodies.clone(), clients).await;
        let _ = stop_tx.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        run
    });
    assert_eq!(sink.stored, n as u64, "every event is stored once");

    // The same events, read from a file by the coverage pipeline.
    let log = dir.path().join("audit.log");
    std::fs::write(&log, events.join("\n") + "\n").unwrap();
    let started = Instant::now();
    let (report, _) = prova_coverage::analyze::analyze_with(
        &spec,
        &Default::default(),
        &prova_coverage::analyze::AnalyzeOptions {
            audit: vec![log.display().to_string()],
            read: prova_coverage::audit::ReadOptions {
                progress: false,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    let file_seconds = started.elapsed().as_secs_f64();
    assert_eq!(report.events.total, n as u64);

    // Where the sink's time goes: its two stages alone, one thread each.
    let started = Instant::now();
    let ctx = prova_coverage::report::MapContext::new(&spec, &[]);
    let mut hits = Vec::with_capacity(n);
    for body in bodies.iter() {
        let batch = prova_coverage::live::batch::map_batch(&ctx, body, false).unwrap();
        hits.extend(batch.events.into_iter().map(|e| prova_store::NewAuditHit {
            time: e.time.as_deref().unwrap().parse().unwrap(),
            audit_id: format!("{}-again", e.audit_id),
            endpoint: e.endpoint.map(str::to_string),
            verb: e.verb,
            request_uri: e.request_uri,
            user_agent: e.user_agent,
            test_name: e.test_name,
            stage: e.stage,
            raw: None,
        }));
    }
    let parse_seconds = started.elapsed().as_secs_f64();
    let store_seconds = rt.block_on(async {
        use prova_store::AuditHitStore;
        let store = prova_store::SqlStore::open_path(&dir.path().join("store-only.db"))
            .await
            .unwrap();
        let started = Instant::now();
        for chunk in hits.chunks(BATCH) {
            store.insert_audit_hits(chunk).await.unwrap();
        }
        let one_by_one = started.elapsed().as_secs_f64();
        // The sink's group commit when it is behind: 16 batches a
        // transaction, into a store of its own (same size to start from).
        let store = prova_store::SqlStore::open_path(&dir.path().join("store-grouped.db"))
            .await
            .unwrap();
        let batches: Vec<&[prova_store::NewAuditHit]> = hits.chunks(BATCH).collect();
        let started = Instant::now();
        for group in batches.chunks(16) {
            store.insert_audit_hit_batches(group).await.unwrap();
        }
        (one_by_one, started.elapsed().as_secs_f64())
    });
    println!(
        "  stages alone: parse + map {:.0} events/s, SQLite inserts {:.0} events/s (a transaction per batch), {:.0} events/s (16 batches a transaction)",
        n as f64 / parse_seconds,
        n as f64 / store_seconds.0,
        n as f64 / store_seconds.1
    );

    let sink_rate = n as f64 / sink.seconds;
    let file_rate = n as f64 / file_seconds;
    println!(
        "audit sink: {n} events ({:.1} MB of JSON) in batches of {BATCH} over HTTP from {clients} connections to SQLite: {:.2} s, {:.0} events/s ({} batches retried after 429)",
        bytes as f64 / 1e6,
        sink.seconds,
        sink_rate,
        sink.retried
    );
    println!(
        "prova coverage report over the same events from a file: {file_seconds:.2} s, {file_rate:.0} events/s"
    );
    println!(
        "sink / file: {:.3} (the file pipeline is {:.1}x faster); target >= 100000 events/s: {}",
        sink_rate / file_rate,
        file_rate / sink_rate,
        if sink_rate >= 100_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );
}
