//! `sshcmd` through prova's engine against the OpenSSH client, on the same
//! work: 100 targets × 3 commands on scripts/sshd.sh's sshd (started here,
//! or the one the PROVA_TEST_SSH* variables name).
//!
//! - prova: one job, 100 targets, 3 `sshcmd` steps, on a SQLite store; the
//!   pool logs in once per connection and runs every command as a session
//!   on it (at most 10 sessions a connection, OpenSSH's `MaxSessions`
//!   default, so 100 concurrent targets share about 20 connections).
//! - OpenSSH: 100 concurrent tasks, each spawning `ssh -o BatchMode=yes …`
//!   once per command, 3 in a row (300 processes, 300 logins).
//!
//! Prints both times and their ratio (the target: ≤ 0.5). With
//! PROVA_BENCH_CHECK=1 a ratio above 0.5 exits 1. PROVA_BENCH_TARGETS
//! changes the number of targets.
//!
//! ```text
//! cargo bench -p prova-ssh --bench ssh_vs_openssh
//! ```

#[path = "../tests/ssh/support.rs"]
#[allow(dead_code, unused_macros)]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use prova_core::node::Format;
use prova_engine::prepare::prepare_str;
use prova_engine::runner::{RunOptions, run_job};
use prova_ssh::{Pool, PoolOptions};
use prova_store::{SqlStore, Store};
use serde_json::json;
use support::Sshd;

/// The three commands each target runs.
const COMMANDS: [&[&str]; 3] = [&["echo", "hello"], &["uname", "-s"], &["true"]];

fn main() {
    let sshd = support::sshd().expect("PROVA_SKIP_SSH=1: nothing to measure");
    let targets: usize = std::env::var("PROVA_BENCH_TARGETS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // Warm both paths (binaries and keys in the page cache, sshd's).
        openssh(sshd, 2).await;
        prova(sshd, 2).await;
        let ssh_time = openssh(sshd, targets).await;
        let prova_time = prova(sshd, targets).await;
        let ratio = prova_time.as_secs_f64() / ssh_time.as_secs_f64();
        println!(
            "{targets} targets x {} commands: OpenSSH client per command {:.2} s, prova sshcmd {:.2} s, ratio {ratio:.2} (target <= 0.5)",
            COMMANDS.len(),
            ssh_time.as_secs_f64(),
            prova_time.as_secs_f64()
        );
        if std::env::var("PROVA_BENCH_CHECK").as_deref() == Ok("1") && ratio > 0.5 {
            eprintln!("ratio {ratio:.2} is above 0.5");
            std::process::exit(1);
        }
    });
}

/// The work done by spawning `ssh` once per command, targets concurrently.
async fn openssh(sshd: &'static Sshd, targets: usize) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..targets)
        .map(|_| {
            tokio::spawn(async move {
                for command in COMMANDS {
                    let out = tokio::process::Command::new("ssh")
                        .args(["-F", "/dev/null", "-o", "BatchMode=yes"])
                        .args([
                            "-o",
                            "IdentitiesOnly=yes",
                            "-o",
                            "StrictHostKeyChecking=yes",
                        ])
                        .arg("-o")
                        .arg(format!("UserKnownHostsFile={}", sshd.known_hosts.display()))
                        .arg("-i")
                        .arg(&sshd.key)
                        .args(["-p", &sshd.port.to_string()])
                        .arg(format!("{}@{}", sshd.user, sshd.host))
                        .args(command)
                        .output()
                        .await
                        .expect("cannot run ssh");
                    assert!(
                        out.status.success(),
                        "ssh {command:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// The same work as one prova job of `sshcmd` steps.
async fn prova(sshd: &Sshd, targets: usize) -> Duration {
    let mut registry = prova_engine::plugins::registry();
    let pool = Pool::new(PoolOptions::default());
    prova_ssh::register_with_pool(&mut registry, pool.clone());
    let steps: Vec<_> = COMMANDS
        .iter()
        .enumerate()
        .map(|(i, command)| {
            json!({
                "name": "sshcmd",
                "label": format!("c{i}"),
                "parameters": {
                    "host": ["{{ .FQDN }}"],
                    "port": [sshd.port.to_string()],
                    "user": [sshd.user],
                    "private_key_file": [sshd.key.display().to_string()],
                    "known_hosts": [sshd.known_hosts.display().to_string()],
                    "use_agent": ["false"],
                    "executable": [command[0]],
                    "args": &command[1..],
                }
            })
        })
        .collect();
    let ids: Vec<_> = (0..targets)
        .map(|i| json!({ "ID": format!("t{i}"), "FQDN": sshd.host }))
        .collect();
    let job = json!({
        "JobName": "bench-sshcmd",
        "Runs": 1,
        "TestDescriptors": [{
            "TargetManagerName": "TargetList",
            "TargetManagerAcquireParameters": { "Targets": ids },
            "TargetManagerReleaseParameters": {},
            "TestFetcherName": "literal",
            "TestFetcherFetchParameters": { "TestName": "bench", "Steps": steps },
        }],
        "Reporting": { "RunReporters": [{ "Name": "TargetSuccess", "Parameters": { "SuccessExpression": "=100%" } }] }
    });
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let prepared = prepare_str(&job.to_string(), Format::Json, None, &registry)
        .unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions {
        artifacts_root: Some(dir.path().join("artifacts")),
        ..RunOptions::default()
    };
    let started = Instant::now();
    let outcome = run_job(prepared, store, opts).await.unwrap();
    let took = started.elapsed();
    assert!(outcome.success(), "the prova job failed");
    let stats = pool.stats();
    if targets > 2 {
        println!(
            "prova: {} connections opened, {} uses of an open one",
            stats.connects, stats.reuses
        );
    }
    took
}
