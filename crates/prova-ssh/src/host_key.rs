//! Decides whether a server's host key is trusted under a [`HostKeyPolicy`].

use std::path::{Path, PathBuf};

use russh::keys::HashAlg;
use russh::keys::ssh_key::{Fingerprint, PublicKey};
use tokio::io::AsyncReadExt;

use crate::config::{HostKeyPolicy, host_port};
use crate::known_hosts::{self, Verdict};

/// known_hosts files larger than this are refused (OpenSSH's own files
/// hold a few hundred lines; this bounds what a connect reads).
pub const MAX_KNOWN_HOSTS_BYTES: u64 = 16 << 20;

/// Why a host key was refused. Each message names the host, the key type
/// and fingerprint the server presented, and the file or pin checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostKeyError {
    #[error(
        "host key of {host} is unknown: the server offered {key_type} {fingerprint}, which is not listed for {host} in {}{note}",
        file.display()
    )]
    Unknown {
        host: String,
        key_type: String,
        fingerprint: String,
        file: PathBuf,
        note: String,
    },
    #[error(
        "host key of {host} has changed: the server offered {key_type} {fingerprint}, but {} lists another {key_type} key for it (line {lines}); possible man-in-the-middle attack",
        file.display()
    )]
    Changed {
        host: String,
        key_type: String,
        fingerprint: String,
        file: PathBuf,
        lines: String,
    },
    #[error(
        "host key of {host} is revoked: the server offered {key_type} {fingerprint}, marked @revoked in {} line {line}",
        file.display()
    )]
    Revoked {
        host: String,
        key_type: String,
        fingerprint: String,
        file: PathBuf,
        line: usize,
    },
    #[error(
        "host key of {host} does not match the pinned fingerprint: the server offered {key_type} {fingerprint}, expected {expected}"
    )]
    FingerprintMismatch {
        host: String,
        key_type: String,
        fingerprint: String,
        expected: String,
    },
    #[error(
        "pinned host key fingerprint {0:?} is not of the form SHA256:<base64> (as `ssh-keygen -l` prints it)"
    )]
    BadFingerprint(String),
    #[error("cannot read known_hosts file {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("known_hosts file {} is larger than {MAX_KNOWN_HOSTS_BYTES} bytes", file.display())]
    TooLarge { file: PathBuf },
    #[error(
        "no home directory to find ~/.ssh/known_hosts in (set HOME, or give a known_hosts file or a fingerprint)"
    )]
    NoHome,
}

/// Parses a pinned fingerprint, so a bad one is reported before connecting.
pub fn parse_fingerprint(text: &str) -> Result<Fingerprint, HostKeyError> {
    text.trim()
        .parse::<Fingerprint>()
        .map_err(|_| HostKeyError::BadFingerprint(text.to_string()))
}

/// The known_hosts file a policy reads: the given one or `~/.ssh/known_hosts`.
pub fn known_hosts_file(path: Option<&Path>) -> Result<PathBuf, HostKeyError> {
    match path {
        Some(path) => Ok(path.to_path_buf()),
        None => std::env::home_dir()
            .filter(|home| !home.as_os_str().is_empty())
            .map(|home| home.join(".ssh").join("known_hosts"))
            .ok_or(HostKeyError::NoHome),
    }
}

/// `SHA256:<base64>` of a key, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Checks `key`, presented by `host`:`port`, against `policy`.
pub async fn verify(
    policy: &HostKeyPolicy,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<(), HostKeyError> {
    let name = host_port(host, port);
    let key_type = known_hosts::key_type(key);
    match policy {
        HostKeyPolicy::Insecure => {
            tracing::warn!(
                host = %name,
                key_type = %key_type,
                fingerprint = %fingerprint(key),
                "host key NOT checked (insecure host-key policy): accepting whatever {name} presents"
            );
            Ok(())
        }
        HostKeyPolicy::Fingerprint(expected) => {
            let expected = parse_fingerprint(expected)?;
            if key.fingerprint(expected.algorithm()) == expected {
                Ok(())
            } else {
                Err(HostKeyError::FingerprintMismatch {
                    host: name,
                    key_type,
                    fingerprint: key.fingerprint(expected.algorithm()).to_string(),
                    expected: expected.to_string(),
                })
            }
        }
        HostKeyPolicy::KnownHosts(path) => {
            let file = known_hosts_file(path.as_deref())?;
            let text = match read_bounded(&file).await {
                Ok(text) => text,
                Err(HostKeyError::Read { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Err(HostKeyError::Unknown {
                        host: name,
                        key_type,
                        fingerprint: fingerprint(key),
                        file,
                        note: " (the file does not exist)".to_string(),
                    });
                }
                Err(err) => return Err(err),
            };
            match known_hosts::lookup(&text, host, port, key) {
                Verdict::Trusted { .. } => Ok(()),
                Verdict::Revoked { line } => Err(HostKeyError::Revoked {
                    host: name,
                    key_type,
                    fingerprint: fingerprint(key),
                    file,
                    line,
                }),
                Verdict::Changed { lines } => Err(HostKeyError::Changed {
                    host: name,
                    key_type,
                    fingerprint: fingerprint(key),
                    file,
                    lines: lines
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
                Verdict::Unknown { other_types } => Err(HostKeyError::Unknown {
                    host: name,
                    key_type,
                    fingerprint: fingerprint(key),
                    file,
                    note: if other_types.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " (it lists only {} keys for this host)",
                            other_types.join(", ")
                        )
                    },
                }),
            }
        }
    }
}

async fn read_bounded(file: &Path) -> Result<String, HostKeyError> {
    let read_err = |source| HostKeyError::Read {
        file: file.to_path_buf(),
        source,
    };
    let handle = tokio::fs::File::open(file).await.map_err(read_err)?;
    let mut bytes = Vec::new();
    handle
        .take(MAX_KNOWN_HOSTS_BYTES + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_KNOWN_HOSTS_BYTES {
        return Err(HostKeyError::TooLarge {
            file: file.to_path_buf(),
        });
    }
    // Non-UTF-8 bytes can only be in lines that would not parse anyway.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
