//! Two `prova serve` instances on one PostgreSQL, each with its own disk
//! (as deploy/kustomize runs them): a job whose docker step runs on A has
//! its artifacts listed, downloaded byte for byte and its JUnit served by
//! B, and `prova start --wait --junit --artifacts` works through a Service
//! that sends the submission to A and every other request to B.
//!
//! Needs Docker (the docker step is the one that keeps a results
//! directory without a remote host) and PostgreSQL (`scripts/postgres.sh`);
//! skipped without them unless `PROVA_REQUIRE_POSTGRES` is set, and
//! without Docker only when `PROVA_SKIP_DOCKER=1`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

const IMAGE: &str = "prova-test/docker-fixture:latest";

/// A `prova serve` with its own data directory (its artifacts root).
struct Server {
    child: Child,
    url: String,
    data: tempfile::TempDir,
}

impl Server {
    fn spawn(db: &str, id: &str) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::cargo_bin("prova")
            .unwrap()
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--server-id",
                id,
                "--db",
                db,
            ])
            .env_remove("PROVA_DB")
            .env_remove("PROVA_TOKEN")
            .env("XDG_DATA_HOME", data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let url = support::listening_url(&mut child);
        Server { child, url, data }
    }

    /// Where this instance's steps keep a job's files.
    fn job_dir(&self, id: i64) -> PathBuf {
        self.data.path().join(format!("prova/artifacts/job-{id}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds the docker step's fixture image (prova-docker's
/// tests/fixture/fixture.c, static, alone in an image FROM scratch);
/// false when Docker is unreachable and `PROVA_SKIP_DOCKER=1` allows it.
fn fixture_image() -> bool {
    let skip = std::env::var("PROVA_SKIP_DOCKER").is_ok_and(|v| v == "1");
    let reachable = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !reachable {
        assert!(
            skip,
            "cannot reach the Docker engine; set PROVA_SKIP_DOCKER=1 to skip"
        );
        eprintln!("skipped: Docker unreachable and PROVA_SKIP_DOCKER=1");
        return false;
    }
    let ctx = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prova-docker/tests/fixture/fixture.c");
    let out = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(ctx.path().join("fixture"))
        .arg(&src)
        .output()
        .unwrap();
    assert!(out.status.success(), "gcc -static: {out:?}");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY fixture /fixture\nENTRYPOINT [\"/fixture\"]\n",
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", IMAGE])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "docker build: {out:?}");
    true
}

/// A docker step whose container leaves a JUnit file with two passing
/// cases and generated binary files (some over 1 MiB) in /results.
fn job() -> String {
    format!(
        "JobName: shared-artifacts
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters: {{Targets: [{{ID: node-1}}]}}
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: suite
      Steps:
        - name: docker
          label: e2e
          parameters:
            image: [\"{IMAGE}\"]
            args: [\"junit:/results/junit.xml:2:0:0\", \"gen:/results/gen:5:4000000\"]
            results_dir: [/results]
Reporting:
  RunReporters: [{{name: TargetSuccess, parameters: {{SuccessExpression: \"=100%\"}}}}]
"
    )
}

/// Every regular file beneath `dir`, relative, with its bytes.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                out.push((rel, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A stand-in for the Service in front of the instances: each connection
/// goes to A when it submits a job (`POST /api/v1/jobs`), else to B, and is
/// closed after one request so the next one is routed again.
async fn service(a: String, b: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let host = |u: &str| u.trim_start_matches("http://").to_string();
    let (a, b) = (host(&a), host(&b));
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let (a, b) = (a.clone(), b.clone());
            tokio::spawn(async move {
                // The request head, then whatever follows it.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let submit = text.starts_with("POST /api/v1/jobs?")
                    || text.starts_with("POST /api/v1/jobs ");
                let to = if submit { a } else { b };
                let mut lines: Vec<&str> = text
                    .split("\r\n")
                    .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                    .filter(|l| !l.is_empty())
                    .collect();
                lines.push("Connection: close");
                let head = format!("{}\r\n\r\n", lines.join("\r\n"));
                let mut server = tokio::net::TcpStream::connect(&to).await.unwrap();
                server.write_all(head.as_bytes()).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    url
}

async fn get_json(url: String) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_instance_serves_the_artifacts_of_a_job_another_ran() {
    let Some(db) = support::postgres_db("shared_artifacts") else {
        return;
    };
    if !fixture_image() {
        return;
    }
    let a = Server::spawn(&db, "instance-a");
    let b = Server::spawn(&db, "instance-b");
    let svc = service(a.url.clone(), b.url.clone()).await;

    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("job.yaml");
    std::fs::write(&file, job()).unwrap();
    let got = work.path().join("got");
    let junit = work.path().join("junit.xml");
    let start = Instant::now();
    let out = Command::cargo_bin("prova")
        .unwrap()
        .args(["start", file.to_str().unwrap(), "--server", &svc, "--wait"])
        .arg("--junit")
        .arg(&junit)
        .arg("--artifacts")
        .arg(&got)
        .env_remove("PROVA_DB")
        .env_remove("PROVA_TOKEN")
        .env("XDG_DATA_HOME", work.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "prova start: {out:?}");
    assert!(start.elapsed() < Duration::from_secs(120));
    let id: i64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // A ran it and has the files on its disk; B has none on its own.
    let st = get_json(format!("{}/api/v1/jobs/{id}", b.url)).await;
    assert_eq!(st["Owner"], "instance-a", "{st}");
    assert_eq!(st["State"], "Completed", "{st}");
    let results = a.job_dir(id).join("run-1/suite/attempt-0/e2e/node-1");
    let on_a = files_of(&results);
    assert!(on_a.iter().any(|(p, _)| p == "junit.xml"), "{on_a:?}");
    assert!(
        on_a.len() >= 6,
        "{:?}",
        on_a.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(
        on_a.iter().any(|(_, c)| c.len() > 1 << 20),
        "a file spans pieces"
    );
    assert!(!b.job_dir(id).exists());

    // B lists them all, stored.
    let list = get_json(format!("{}/api/v1/jobs/{id}/artifacts", b.url)).await;
    let listed: Vec<(String, u64, bool)> = list["Files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["Path"].as_str().unwrap().to_string(),
                f["Bytes"].as_u64().unwrap(),
                f["Stored"].as_bool().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, u64, bool)> = on_a
        .iter()
        .map(|(p, c)| {
            (
                format!("run-1/suite/attempt-0/e2e/node-1/{p}"),
                c.len() as u64,
                true,
            )
        })
        .collect();
    assert_eq!(listed, want);

    // `prova start --artifacts` through the Service brought back every
    // file byte for byte (from B), and the JUnit.
    assert_eq!(
        files_of(&got.join("run-1/suite/attempt-0/e2e/node-1")),
        on_a,
        "{stderr}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<testcase"), "{xml}");

    // B's own JUnit and a download, straight.
    let from_b = reqwest::get(format!("{}/api/v1/jobs/{id}/junit", b.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(from_b, xml);
    let (name, content) = on_a.iter().max_by_key(|(_, c)| c.len()).unwrap();
    let r = reqwest::get(format!(
        "{}/api/v1/jobs/{id}/artifacts/run-1/suite/attempt-0/e2e/node-1/{name}",
        b.url
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap()[..] == content[..]);
}
