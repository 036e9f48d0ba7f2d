//! The server's edges (issue 8): slow and idle connections are cut, the
//! bearer scheme is case-insensitive, rejections are JSON, panics in a
//! handler or a job never take the server down, deep descriptors are
//! refused without overflowing a worker's stack.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::Node;
use prova_core::{JobId, Target};
use prova_engine::plugin::{PrepareCtx, TargetLocker, TargetManager, TargetSource};
use prova_server::{AppState, ServerConfig};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

struct Server {
    url: String,
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), prova_server::ServeError>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(config: ServerConfig, registry: prova_engine::Registry) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            prova_store::SqlStore::open_path(&dir.path().join("p.db"))
                .await
                .unwrap(),
        );
        let config = ServerConfig {
            artifacts_root: dir.path().join("artifacts"),
            files_root: Some(dir.path().to_path_buf()),
            server_id: "edges".into(),
            ..config
        };
        let state: AppState = prova_server::state(config, store, registry);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(prova_server::serve_with(
            state,
            listener,
            async move {
                let _ = rx.await;
            },
            std::future::pending(),
        ));
        Server {
            url: format!("http://{addr}"),
            addr,
            stop: Some(tx),
            task,
            _dir: dir,
        }
    }

    async fn healthy(&self) -> bool {
        reqwest::get(format!("{}/healthz", self.url))
            .await
            .is_ok_and(|r| r.status() == 200)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(20), &mut self.task).await;
    }
}

fn config() -> ServerConfig {
    ServerConfig {
        header_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    }
}

async fn json_of(r: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.unwrap();
    let code = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {code} is not JSON ({e}): {text:?}"));
    (code, v)
}

async fn wait_state(url: &str, id: i64, want: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, v) = json_of(reqwest::Client::new().get(format!("{url}/api/v1/jobs/{id}"))).await;
        if v["State"] == want {
            return v;
        }
        assert!(Instant::now() < deadline, "job {id} not {want}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads until the server closes the connection (or `limit` passes);
/// returns how long that took.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {} // a 408 answer, then the close
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_idle_connections_are_cut_after_the_header_timeout() {
    let server = Server::start(config(), prova_engine::plugins::registry()).await;

    // Connected and silent (checked below, once the drip is done).
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // 1 byte a second: never a whole header block.
    let (mut rd, mut wr) = tokio::net::TcpStream::connect(server.addr)
        .await
        .unwrap()
        .into_split();
    let drip = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: yes\r\n" {
            if wr.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let start = Instant::now();
    let mut buf = [0u8; 256];
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    };
    drip.abort();
    let closed = closed.expect("a 1-byte/s client kept its connection for 10 s");
    assert!(closed < Duration::from_secs(5), "closed after {closed:?}");

    let idle = closed_within(&mut slow, Duration::from_secs(10))
        .await
        .expect("an idle connection stayed open for 10 s");
    assert!(idle < Duration::from_secs(5), "idle closed after {idle:?}");

    // Idle between two keep-alive requests: the same clock.
    let mut kept = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 512];
    let n = kept.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
    let after = closed_within(&mut kept, Duration::from_secs(10))
        .await
        .expect("an idle keep-alive connection stayed open for 10 s");
    assert!(
        after < Duration::from_secs(5),
        "keep-alive closed after {after:?}"
    );

    assert!(server.healthy().await);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_outlives_the_header_timeout() {
    let server = Server::start(config(), prova_engine::plugins::registry()).await;
    let job = "JobName: nap\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: sleep, label: nap, parameters: {duration: [4s]}}]\nReporting:\n  RunReporters: [{name: noop}]\n";
    let (code, v) = json_of(
        reqwest::Client::new()
            .post(format!("{}/api/v1/jobs", server.url))
            .body(job),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let id = v["JobID"].as_i64().unwrap();
    let started = Instant::now();
    let body = reqwest::get(format!(
        "{}/api/v1/jobs/{id}/events?follow=true",
        server.url
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "the stream should have lasted past the 2 s header timeout"
    );
    assert!(body.contains("event: end"), "{body}");
    assert!(body.contains("JobStateCompleted"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive_and_blank_tokens_are_refused() {
    let server = Server::start(
        ServerConfig {
            token: Some("s3cret".into()),
            ..config()
        },
        prova_engine::plugins::registry(),
    )
    .await;
    let http = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let (code, v) = json_of(
            http.get(format!("{}/api/v1/jobs", server.url))
                .header("Authorization", format!("{scheme} s3cret")),
        )
        .await;
        assert_eq!(code, 200, "{scheme}: {v}");
    }
    let (code, v) = json_of(
        http.get(format!("{}/api/v1/jobs", server.url))
            .header("Authorization", "Basic s3cret"),
    )
    .await;
    assert_eq!(code, 401, "{v}");
    server.stop().await;

    for blank in ["", " ", "\t \n"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let store = Arc::new(
            prova_store::SqlStore::open("sqlite::memory:")
                .await
                .unwrap(),
        );
        let state = prova_server::state(
            ServerConfig {
                token: Some(blank.into()),
                ..config()
            },
            store,
            prova_engine::plugins::registry(),
        );
        let err = prova_server::serve_with(state, listener, async {}, std::future::pending())
            .await
            .expect_err("a blank token must be refused");
        assert!(err.to_string().contains("token"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_query_and_body_rejections_are_json() {
    let server = Server::start(
        ServerConfig {
            max_body: 1000,
            ..config()
        },
        prova_engine::plugins::registry(),
    )
    .await;
    let http = reqwest::Client::new();
    let url = &server.url;
    let cases = [
        (
            http.get(format!("{url}/api/v1/jobs/abc")),
            400,
            "invalid path",
        ),
        (
            http.get(format!("{url}/api/v1/jobs/abc/report")),
            400,
            "invalid path",
        ),
        (
            http.post(format!("{url}/api/v1/jobs/1.5/cancel")),
            400,
            "invalid path",
        ),
        (
            http.get(format!("{url}/api/v1/jobs/99999999999999999999999")),
            400,
            "invalid path",
        ),
        (
            http.get(format!("{url}/api/v1/jobs?limit=x")),
            400,
            "invalid query",
        ),
        (
            http.get(format!("{url}/api/v1/jobs?limit=-1")),
            400,
            "invalid query",
        ),
        (
            http.get(format!("{url}/api/v1/jobs?before=zz")),
            400,
            "invalid query",
        ),
        (
            http.get(format!("{url}/api/v1/jobs/1/events?after=x")),
            400,
            "invalid query",
        ),
        (
            http.get(format!("{url}/api/v1/jobs/1/events?follow=maybe")),
            400,
            "invalid query",
        ),
        (
            http.post(format!("{url}/api/v1/jobs"))
                .body(vec![0xffu8, 0xfe, b'a']),
            400,
            "invalid body",
        ),
        (
            http.post(format!("{url}/api/v1/jobs"))
                .body("#".repeat(5000)),
            413,
            "invalid body",
        ),
        (
            http.get(format!("{url}/api/v1/nothing-here")),
            404,
            "no such route",
        ),
    ];
    for (request, status, says) in cases {
        let (code, v) = json_of(request).await;
        assert_eq!(code, status, "{v}");
        let message = v["Error"]
            .as_str()
            .unwrap_or_else(|| panic!("no Error in {v}"));
        assert!(message.contains(says), "{message:?} should say {says:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_answers_an_opaque_500_and_the_server_goes_on() {
    let app = prova_server::error::catch_panics(
        axum::Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    if std::hint::black_box(true) {
                        panic!("handler exploded");
                    }
                    "never"
                }),
            )
            .route("/fine", axum::routing::get(|| async { "fine" })),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(prova_server::listen::serve_connections(
        listener,
        app,
        Default::default(),
        async move {
            let _ = rx.await;
        },
    ));
    for _ in 0..3 {
        let (code, v) = json_of(reqwest::Client::new().get(format!("http://{addr}/boom"))).await;
        assert_eq!(code, 500);
        let message = v["Error"].as_str().unwrap();
        assert!(message.starts_with("internal error (id "), "{message}");
        assert!(
            !message.contains("exploded"),
            "the panic stays in the log: {message}"
        );
    }
    let fine = reqwest::get(format!("http://{addr}/fine")).await.unwrap();
    assert_eq!(fine.text().await.unwrap(), "fine");
    let _ = tx.send(());
    server.await.unwrap();
}

/// A target manager whose acquisition panics: the panic escapes the job.
struct Exploding;

struct ExplodingSource;

impl TargetManager for Exploding {
    fn prepare(
        &self,
        _acquire: &Node,
        _path: &FieldPath,
        _release: &Node,
        _ctx: &PrepareCtx<'_>,
        _diags: &mut Diagnostics,
    ) -> Option<Arc<dyn TargetSource>> {
        Some(Arc::new(ExplodingSource))
    }
}

#[async_trait]
impl TargetSource for ExplodingSource {
    async fn acquire(
        &self,
        _job: JobId,
        _cancel: &CancellationToken,
        _locker: &dyn TargetLocker,
    ) -> Result<Vec<Target>, String> {
        if std::hint::black_box(true) {
            panic!("the inventory service exploded");
        }
        Ok(Vec::new())
    }
    async fn release(&self, _job: JobId, _targets: &[Target]) -> Result<(), String> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_fails_with_the_reason_and_the_server_stays_up() {
    let mut registry = prova_engine::plugins::registry();
    registry.target_manager("Exploding", Exploding);
    let server = Server::start(config(), registry).await;
    let job = "JobName: boom\nTestDescriptors:\n  - TargetManagerName: Exploding\n    TargetManagerAcquireParameters: {}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: echo, label: e, parameters: {text: [hi]}}]\nReporting:\n  RunReporters: [{name: noop}]\n";
    let (code, v) = json_of(
        reqwest::Client::new()
            .post(format!("{}/api/v1/jobs", server.url))
            .body(job),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let id = v["JobID"].as_i64().unwrap();
    wait_state(&server.url, id, "Failed", Duration::from_secs(20)).await;
    let (_, events) = json_of(reqwest::Client::new().get(format!(
        "{}/api/v1/jobs/{id}/events?name=JobStateFailed",
        server.url
    )))
    .await;
    let text = events.to_string();
    assert!(text.contains("the inventory service exploded"), "{text}");
    assert!(server.healthy().await);
    // The server still runs jobs.
    let quick = job.replace(
        "Exploding\n    TargetManagerAcquireParameters: {}",
        "TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}",
    );
    let (code, v) = json_of(
        reqwest::Client::new()
            .post(format!("{}/api/v1/jobs", server.url))
            .body(quick),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    wait_state(
        &server.url,
        v["JobID"].as_i64().unwrap(),
        "Completed",
        Duration::from_secs(20),
    )
    .await;
    server.stop().await;
}

/// Needs prova-core's template parser to bound its depth (another part of
/// issue 8): until then the parser may recurse 15,000 deep. Validation runs
/// on a large-stack thread, so the server must answer either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_with_15000_pipes_is_refused_and_the_server_stays_up() {
    let server = Server::start(
        ServerConfig {
            max_body: 1 << 20,
            ..config()
        },
        prova_engine::plugins::registry(),
    )
    .await;
    let pipes = " | ToUpper".repeat(15_000);
    let job = format!(
        "JobName: deep\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{{name: echo, label: e, parameters: {{text: [\"{{{{ .ID{pipes} }}}}\"]}}}}]\nReporting:\n  RunReporters: [{{name: noop}}]\n"
    );
    assert!(job.len() > 150_000);
    let (code, v) = json_of(
        reqwest::Client::new()
            .post(format!("{}/api/v1/jobs", server.url))
            .body(job),
    )
    .await;
    assert!((400..500).contains(&code), "{code}: {v}");
    assert!(v["Error"].is_string(), "{v}");
    assert!(server.healthy().await);
    server.stop().await;
}
