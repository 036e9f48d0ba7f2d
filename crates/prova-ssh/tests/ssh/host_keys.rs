use std::sync::{Arc, Mutex};

use prova_ssh::{ConnectError, Connection, HostKeyError, HostKeyPolicy};

use crate::sshd_or_skip;

fn host_key_error(err: ConnectError) -> HostKeyError {
    match err {
        ConnectError::HostKey { source, .. } => *source,
        other => panic!("expected a host key error, got {other:?}"),
    }
}

#[tokio::test]
async fn known_hosts_match_connects() {
    let sshd = sshd_or_skip!();
    Connection::open(&sshd.key_config()).await.unwrap();
}

#[tokio::test]
async fn known_hosts_mismatch_is_refused_naming_host_key_and_file() {
    let sshd = sshd_or_skip!();
    let mut config = sshd.key_config();
    config.host_keys = HostKeyPolicy::KnownHosts(Some(sshd.bad_known_hosts.clone()));
    let err = host_key_error(Connection::open(&config).await.unwrap_err());
    let text = err.to_string();
    assert!(matches!(err, HostKeyError::Changed { .. }), "{text}");
    assert!(
        text.contains(&format!("[{}]:{}", sshd.host, sshd.port)),
        "{text}"
    );
    assert!(text.contains("ssh-ed25519"), "{text}");
    assert!(text.contains(&sshd.fingerprint), "{text}");
    assert!(
        text.contains(&sshd.bad_known_hosts.display().to_string()),
        "{text}"
    );
}

#[tokio::test]
async fn unknown_host_is_refused() {
    let sshd = sshd_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("known_hosts");
    // Only another host's entry.
    let line = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    std::fs::write(
        &file,
        line.replace(&format!("[{}]:{}", sshd.host, sshd.port), "other.example"),
    )
    .unwrap();
    let mut config = sshd.key_config();
    config.host_keys = HostKeyPolicy::KnownHosts(Some(file.clone()));
    let err = host_key_error(Connection::open(&config).await.unwrap_err());
    assert!(matches!(err, HostKeyError::Unknown { .. }), "{err}");
    assert!(err.to_string().contains(&sshd.fingerprint), "{err}");

    // A missing file says so.
    config.host_keys = HostKeyPolicy::KnownHosts(Some(dir.path().join("absent")));
    let err = host_key_error(Connection::open(&config).await.unwrap_err());
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn hashed_entry_as_ssh_keygen_writes_it() {
    let sshd = sshd_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("known_hosts");
    std::fs::copy(&sshd.known_hosts, &file).unwrap();
    let hashed = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        hashed.status.success(),
        "{}",
        String::from_utf8_lossy(&hashed.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    let mut config = sshd.key_config();
    config.host_keys = HostKeyPolicy::KnownHosts(Some(file));
    Connection::open(&config).await.unwrap();
}

#[tokio::test]
async fn revoked_key_is_refused() {
    let sshd = sshd_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("known_hosts");
    let line = std::fs::read_to_string(&sshd.known_hosts).unwrap();
    std::fs::write(&file, format!("{line}@revoked {line}")).unwrap();
    let mut config = sshd.key_config();
    config.host_keys = HostKeyPolicy::KnownHosts(Some(file));
    let err = host_key_error(Connection::open(&config).await.unwrap_err());
    assert!(
        matches!(err, HostKeyError::Revoked { line: 2, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn pinned_fingerprint_right_and_wrong() {
    let sshd = sshd_or_skip!();
    let mut config = sshd.key_config();
    config.host_keys = HostKeyPolicy::Fingerprint(sshd.fingerprint.clone());
    Connection::open(&config).await.unwrap();

    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    config.host_keys = HostKeyPolicy::Fingerprint(wrong.to_string());
    let err = host_key_error(Connection::open(&config).await.unwrap_err());
    let text = err.to_string();
    assert!(
        matches!(err, HostKeyError::FingerprintMismatch { .. }),
        "{text}"
    );
    assert!(
        text.contains(&sshd.fingerprint) && text.contains(wrong),
        "{text}"
    );

    config.host_keys = HostKeyPolicy::Fingerprint("md5:nonsense".to_string());
    let err = host_key_error(Connection::open(&config).await.unwrap_err());
    assert!(matches!(err, HostKeyError::BadFingerprint(_)), "{err}");
}

/// Captures tracing output of this test's thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn insecure_accepts_and_warns_with_host_and_fingerprint() {
    let sshd = sshd_or_skip!();
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut config = sshd.key_config();
    config.host_keys = HostKeyPolicy::Insecure;
    Connection::open(&config).await.unwrap();
    let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("WARN"), "{logged}");
    assert!(
        logged.contains(&format!("[{}]:{}", sshd.host, sshd.port)),
        "{logged}"
    );
    assert!(logged.contains(&sshd.fingerprint), "{logged}");
}
