//! The real binary at its edges (issue 8): a closed stdout is a quiet exit
//! 0, not a panic; `prova serve` refuses a blank token; a header timeout
//! is set from the command line.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use prova_store::{JobStore, NewJob};

/// A store with `n` jobs in it.
fn store_with_jobs(db: &Path, n: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = prova_store::SqlStore::open_path(db).await.unwrap();
        for i in 0..n {
            store
                .create_job(NewJob {
                    name: format!("job-{i}-{}", "x".repeat(40)),
                    tags: vec!["pipe".into()],
                    requestor: "test".into(),
                    descriptor: "{}".into(),
                    extended_descriptor: "{}".into(),
                    source_path: None,
                })
                .await
                .unwrap();
        }
    });
}

fn prova(db: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("prova").unwrap();
    cmd.args(args)
        .arg("--db")
        .arg(db)
        .env_remove("PROVA_DB")
        .env_remove("PROVA_TOKEN")
        .env_remove("PROVA_SERVER");
    cmd
}

/// Runs `cmd` with stdout a pipe whose reader takes `keep` lines and then
/// closes it, as `| head -N` does; returns (exit code, stderr).
fn with_reader_closing_after(mut cmd: Command, keep: usize) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout);
    for _ in 0..keep {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
    }
    drop(lines);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code(), stderr)
}

#[test]
fn a_closed_stdout_is_a_quiet_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    // 2,000 jobs of ~110 bytes: far more than a pipe buffer (64 KiB).
    store_with_jobs(&db, 2000);
    let cases: [&[&str]; 4] = [
        &["jobs", "--limit", "2000"],
        &["jobs", "--limit", "2000", "--json"],
        &["list", "--limit", "2000"],
        &["list", "--limit", "2000", "--state", "Started"],
    ];
    for args in cases {
        for keep in [0, 1] {
            let (code, stderr) = with_reader_closing_after(prova(&db, args), keep);
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
            assert_eq!(code, Some(0), "{args:?} (kept {keep} lines): {stderr}");
        }
    }
}

#[test]
fn serve_refuses_a_blank_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    for token in ["", " ", "\t"] {
        let out = prova(&db, &["serve", "--listen", "127.0.0.1:0", "--token", token])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{token:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--token"), "{stderr}");
        assert!(stderr.contains("empty or only whitespace"), "{stderr}");
    }
    // From the environment too.
    let out = prova(&db, &["serve", "--listen", "127.0.0.1:0"])
        .env("PROVA_TOKEN", "   ")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn serve_cuts_a_silent_connection_after_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let mut child = prova(
        &db,
        &["serve", "--listen", "127.0.0.1:0", "--header-timeout", "1s"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let closed = loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break start.elapsed(),
            Ok(_) => {}
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        closed < Duration::from_secs(4),
        "a silent connection stayed {closed:?}"
    );
}
