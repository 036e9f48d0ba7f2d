//! The real sshd of scripts/sshd.sh, started once per test binary.
//!
//! With the PROVA_TEST_SSH* variables already exported (`eval "$(scripts/sshd.sh
//! start)"`, as CI does), that server is used. Otherwise `scripts/sshd.sh
//! start` runs with PROVA_SSHD_DIR in cargo's test tmp dir, so later runs
//! reuse the same server (`scripts/sshd.sh stop <dir>` ends it). If it cannot
//! start, tests fail with its output, unless PROVA_SKIP_SSH=1 is set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use prova_ssh::{Agent, Auth, ConnectConfig, HostKeyPolicy, PrivateKeyFile};

#[derive(Debug, Clone)]
pub struct Sshd {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub key: PathBuf,
    pub wrong_key: PathBuf,
    pub password_user: String,
    pub password: String,
    pub known_hosts: PathBuf,
    pub bad_known_hosts: PathBuf,
    pub fingerprint: String,
}

const VARS: [&str; 10] = [
    "PROVA_TEST_SSH_HOST",
    "PROVA_TEST_SSH_PORT",
    "PROVA_TEST_SSH_USER",
    "PROVA_TEST_SSH_KEY",
    "PROVA_TEST_SSH_WRONG_KEY",
    "PROVA_TEST_SSH_PASSWORD_USER",
    "PROVA_TEST_SSH_PASSWORD",
    "PROVA_TEST_SSH_KNOWN_HOSTS",
    "PROVA_TEST_SSH_BAD_KNOWN_HOSTS",
    "PROVA_TEST_SSH_FINGERPRINT",
];

/// The server, or `None` when PROVA_SKIP_SSH=1 (the caller returns early).
pub fn sshd() -> Option<&'static Sshd> {
    static SSHD: OnceLock<Option<Sshd>> = OnceLock::new();
    SSHD.get_or_init(|| {
        if std::env::var("PROVA_SKIP_SSH").as_deref() == Ok("1") {
            eprintln!("PROVA_SKIP_SSH=1: SSH tests skipped");
            return None;
        }
        let vars = if std::env::var_os("PROVA_TEST_SSH_PORT").is_some() {
            VARS.iter()
                .map(|name| (name.to_string(), std::env::var(name).unwrap_or_default()))
                .collect()
        } else {
            start_script()
        };
        Some(from_vars(&vars))
    })
    .as_ref()
}

fn start_script() -> HashMap<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/sshd.sh");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("prova-ssh-sshd");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .arg("start")
        .env("PROVA_SSHD_DIR", &dir)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {}: {err}", script.display()));
    assert!(
        output.status.success(),
        "{} start failed ({}); set PROVA_SKIP_SSH=1 to skip the SSH tests.\nstderr:\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|assignment| assignment.split_once('='))
        .map(|(name, value)| {
            let value = shlex::split(value)
                .and_then(|words| words.into_iter().next())
                .unwrap_or_default();
            (name.to_string(), value)
        })
        .collect()
}

fn from_vars(vars: &HashMap<String, String>) -> Sshd {
    let get = |name: &str| {
        vars.get(name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing from scripts/sshd.sh's exports"))
    };
    Sshd {
        host: get("PROVA_TEST_SSH_HOST"),
        port: get("PROVA_TEST_SSH_PORT")
            .parse()
            .expect("PROVA_TEST_SSH_PORT is a port"),
        user: get("PROVA_TEST_SSH_USER"),
        key: get("PROVA_TEST_SSH_KEY").into(),
        wrong_key: get("PROVA_TEST_SSH_WRONG_KEY").into(),
        password_user: get("PROVA_TEST_SSH_PASSWORD_USER"),
        password: get("PROVA_TEST_SSH_PASSWORD"),
        known_hosts: get("PROVA_TEST_SSH_KNOWN_HOSTS").into(),
        bad_known_hosts: get("PROVA_TEST_SSH_BAD_KNOWN_HOSTS").into(),
        fingerprint: get("PROVA_TEST_SSH_FINGERPRINT"),
    }
}

impl Sshd {
    /// Key login, host key checked against the server's known_hosts, no agent.
    pub fn key_config(&self) -> ConnectConfig {
        let mut config = ConnectConfig::new(&self.host, &self.user);
        config.port = self.port;
        config.auth = Auth {
            agent: Agent::Off,
            private_key: Some(PrivateKeyFile::new(&self.key)),
            password: None,
        };
        config.host_keys = HostKeyPolicy::KnownHosts(Some(self.known_hosts.clone()));
        config.connect_timeout = Duration::from_secs(20);
        config
    }

    /// Password login (None when the server has no password user: not root).
    pub fn password_config(&self) -> Option<ConnectConfig> {
        if self.password.is_empty() {
            return None;
        }
        let mut config = self.key_config();
        config.user = self.password_user.clone();
        config.auth = Auth {
            agent: Agent::Off,
            private_key: None,
            password: Some(self.password.clone()),
        };
        Some(config)
    }
}

/// Processes on this machine (the target) whose command line contains
/// `marker`, as "pid cmdline".
pub fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push(format!("{pid} {cmdline}"));
        }
    }
    found
}

/// A marker unique to this test run, usable as a `sleep` argument.
pub fn unique_seconds() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("3000.{}{nanos:09}", std::process::id() % 1000)
}

/// Waits up to `limit` for `check` to hold.
pub async fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// The server, or return from the test when PROVA_SKIP_SSH=1.
#[macro_export]
macro_rules! sshd_or_skip {
    () => {
        match $crate::support::sshd() {
            Some(sshd) => sshd,
            None => return,
        }
    };
}
