//! What the CLI's integration tests share: a store in a temporary folder,
//! the real `prova` binary pointed at it, and process checks.
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A temporary folder holding a store (`prova.db`) and job files.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("prova.db")
    }
    /// `prova` on this store, run in the folder.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("prova").unwrap();
        c.env("PROVA_DB", self.db())
            .env_remove("RUST_LOG")
            .current_dir(self.dir.path());
        c
    }
    /// Runs `prova ARGS` to its end: (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    /// The job's events (`prova events ID --json EXTRA`).
    pub fn events(&self, job: i64, extra: &[&str]) -> Vec<Value> {
        let id = job.to_string();
        let mut args = vec!["events", id.as_str(), "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = self.run(&args);
        assert_eq!(code, 0, "{err}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    /// The job's status (`prova status ID --json`).
    pub fn status(&self, job: i64) -> Value {
        let (code, out, err) = self.run(&["status", &job.to_string(), "--json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
    /// Waits until step `label` of job `job` has started a command.
    pub fn wait_for_step(&self, job: i64, label: &str) {
        self.wait_for_step_of(None, job, label)
    }

    /// [`Env::wait_for_step`] of a job `child` runs: fails at once, with
    /// its output, should `child` exit first.
    pub fn wait_for_step_of(
        &self,
        mut child: Option<&mut std::process::Child>,
        job: i64,
        label: &str,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(c) = child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                let mut err = String::new();
                if let Some(mut e) = c.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("prova exited ({status}) before step {label} started:\n{err}");
            }
            if self.db().exists() {
                let (_, out, _) = self.run(&[
                    "events",
                    &job.to_string(),
                    "--json",
                    "--name",
                    "CmdStart",
                    "--step",
                    label,
                ]);
                if !out.trim().is_empty() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("step {label} of job {job} never started");
    }
    /// The PID of the command step `label` of job `job` started.
    pub fn command_pid(&self, job: i64, label: &str) -> i32 {
        let ev = self.events(job, &["--step", label, "--name", "CmdStart"]);
        ev[0]["Payload"]["Pid"].as_i64().unwrap() as i32
    }
}

/// The job id `prova run` printed (`job N started`).
pub fn job_id(stderr: &str) -> i64 {
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("job ")
                .and_then(|r| r.strip_suffix(" started"))
        })
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no job id in {stderr}"))
}

/// Alive and not a zombie (an orphan may wait for a reaper that a
/// container's init does not provide).
pub fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Waits up to `within` for a process to be gone.
pub fn gone_within(pid: i32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !running(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !running(pid)
}

pub fn signal(child: &std::process::Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// `prova serve --listen 127.0.0.1:0 ARGS`, once it listens: the child and
/// its URL. Its stderr is drained in the background, so the server never
/// blocks on it.
pub fn spawn_server(args: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::cargo_bin("prova")
        .unwrap()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("PROVA_DB")
        .env_remove("PROVA_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let url = listening_url(&mut child);
    (child, url)
}

/// The URL a `prova serve` child (spawned with its stderr piped) says it
/// listens on; the rest of its stderr is then drained in the background.
/// Panics with what the server said if it exits first.
pub fn listening_url(child: &mut std::process::Child) -> String {
    use std::io::{BufRead, BufReader};
    let mut lines = BufReader::new(child.stderr.take().expect("stderr piped")).lines();
    let mut seen = Vec::new();
    let url = loop {
        let Some(line) = lines.next() else {
            let status = child.wait().unwrap();
            panic!(
                "prova serve exited ({status}) before listening:\n{}",
                seen.join("\n")
            );
        };
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
        seen.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    url
}

/// A fresh database named after `name` on the test PostgreSQL server
/// (scripts/postgres.sh), or None when there is none and none is required.
pub fn postgres_db(name: &str) -> Option<String> {
    let Ok(url) = std::env::var("PROVA_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("PROVA_REQUIRE_POSTGRES").is_none(),
            "PROVA_REQUIRE_POSTGRES is set but PROVA_TEST_POSTGRES_URL is not"
        );
        eprintln!("skipped: no PROVA_TEST_POSTGRES_URL (scripts/test.sh starts PostgreSQL)");
        return None;
    };
    let db = format!("prova_{name}_{}", std::process::id());
    let status = Command::new("psql")
        .arg(&url)
        .args(["-q", "-c", &format!("CREATE DATABASE {db}")])
        .status()
        .unwrap();
    assert!(status.success(), "cannot create database {db}");
    let (base, _) = url.rsplit_once('/').unwrap();
    Some(format!("{base}/{db}"))
}

/// A child process (a `prova serve`) killed when the test ends, also
/// when it fails.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
