//! Opens one authenticated SSH connection: TCP, key exchange with the host
//! key checked, then the agent's keys, the key file and the password.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use russh::client::{self, AuthResult, Handle, Msg};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, MethodKind};

use crate::config::{ConnectConfig, HostKeyPolicy};
use crate::host_key::{self, HostKeyError};

/// Why a connection could not be opened or used. Every message starts with
/// the target (`user@host` or `user@[host]:port`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    #[error("{target}: cannot connect")]
    Tcp {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{target}: connecting and logging in took longer than {timeout:?}")]
    Timeout { target: String, timeout: Duration },
    #[error("{target}: host key refused")]
    HostKey {
        target: String,
        #[source]
        source: Box<HostKeyError>,
    },
    #[error("{target}: SSH protocol error")]
    Ssh {
        target: String,
        #[source]
        source: Box<russh::Error>,
    },
    #[error("{target}: cannot load private key file {}", path.display())]
    KeyFile {
        target: String,
        path: PathBuf,
        #[source]
        source: Box<russh::keys::Error>,
    },
    #[error("{target}: authentication failed ({tried}); the server accepts: {accepted}")]
    AuthFailed {
        target: String,
        tried: String,
        accepted: String,
    },
    #[error("{target}: cannot open a session on the connection")]
    Channel {
        target: String,
        #[source]
        source: Box<russh::Error>,
    },
}

impl ConnectError {
    /// True when the error is about the connection itself (closed, reset),
    /// so a fresh connection may succeed where this one failed.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, ConnectError::Channel { .. })
    }
}

/// An open, authenticated SSH connection. Shared (`Arc`) by the commands
/// and copies that run over it; each opens its own channel.
pub struct Connection {
    handle: Handle<ClientHandler>,
    target: String,
    id: u64,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("target", &self.target)
            .field("id", &self.id)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Connects, checks the host key and logs in, all within
    /// `config.connect_timeout`.
    pub async fn open(config: &ConnectConfig) -> Result<Connection, ConnectError> {
        let target = config.target();
        if let HostKeyPolicy::Fingerprint(pin) = &config.host_keys {
            host_key::parse_fingerprint(pin).map_err(|source| ConnectError::HostKey {
                target: target.clone(),
                source: Box::new(source),
            })?;
        }
        match tokio::time::timeout(config.connect_timeout, open_inner(config, &target)).await {
            Ok(result) => result,
            Err(_) => Err(ConnectError::Timeout {
                target,
                timeout: config.connect_timeout,
            }),
        }
    }

    /// `user@host` or `user@[host]:port`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A number unique to this connection in this process (tells a reused
    /// connection from a new one).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// True once the connection is gone (closed by either side or broken).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Opens a session channel (for a command or the SFTP subsystem).
    pub async fn open_session(&self) -> Result<Channel<Msg>, ConnectError> {
        self.handle
            .channel_open_session()
            .await
            .map_err(|source| ConnectError::Channel {
                target: self.target.clone(),
                source: Box::new(source),
            })
    }

    /// Says goodbye to the server and closes the connection.
    pub async fn close(&self) {
        let _ignored_if_already_gone = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

async fn open_inner(config: &ConnectConfig, target: &str) -> Result<Connection, ConnectError> {
    let ssh_config = Arc::new(client::Config {
        // Detects a server that vanished without a FIN (killed host, cable)
        // between commands, so the pool replaces the connection.
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    });
    let handler = ClientHandler {
        policy: config.host_keys.clone(),
        host: config.host.clone(),
        port: config.port,
    };
    let addr = (
        config.host.trim_start_matches('[').trim_end_matches(']'),
        config.port,
    );
    let mut handle = client::connect(ssh_config, addr, handler)
        .await
        .map_err(|err| match err {
            HandlerError::HostKey(source) => ConnectError::HostKey {
                target: target.to_string(),
                source: Box::new(source),
            },
            HandlerError::Ssh(russh::Error::IO(source)) => ConnectError::Tcp {
                target: target.to_string(),
                source,
            },
            HandlerError::Ssh(source) => ConnectError::Ssh {
                target: target.to_string(),
                source: Box::new(source),
            },
        })?;
    authenticate(&mut handle, config, target).await?;
    Ok(Connection {
        handle,
        target: target.to_string(),
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
    })
}

/// OpenSSH's order: agent keys, then the key file, then the password; a
/// method the server no longer offers is skipped.
async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    config: &ConnectConfig,
    target: &str,
) -> Result<(), ConnectError> {
    let ssh_err = |source: russh::Error| ConnectError::Ssh {
        target: target.to_string(),
        source: Box::new(source),
    };
    let user = config.user.as_str();
    let mut tried = Vec::new();
    let mut accepted: Option<russh::MethodSet> = None;
    let offers = |accepted: &Option<russh::MethodSet>, kind: MethodKind| {
        accepted
            .as_ref()
            .is_none_or(|methods| methods.contains(&kind))
    };

    if let Some(socket) = config.auth.agent.socket() {
        match russh::keys::agent::client::AgentClient::connect_uds(&socket).await {
            Ok(mut agent) => match agent.request_identities().await {
                Ok(identities) => {
                    let mut offered = 0;
                    for identity in identities {
                        let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = identity
                        else {
                            continue;
                        };
                        if !offers(&accepted, MethodKind::PublicKey) {
                            break;
                        }
                        offered += 1;
                        let hash = rsa_hash_for(handle, &key).await.map_err(ssh_err)?;
                        match handle
                            .authenticate_publickey_with(user, key, hash, &mut agent)
                            .await
                        {
                            Ok(AuthResult::Success) => return Ok(()),
                            Ok(AuthResult::Failure {
                                remaining_methods, ..
                            }) => accepted = Some(remaining_methods),
                            Err(err) => tracing::debug!(%target, "SSH agent could not sign: {err}"),
                        }
                    }
                    tried.push(format!("{offered} key(s) of the SSH agent"));
                }
                Err(err) => {
                    tracing::warn!(%target, "SSH agent at {}: cannot list keys: {err}", socket.display())
                }
            },
            Err(err) => {
                tracing::warn!(%target, "SSH agent at {}: cannot connect: {err}", socket.display())
            }
        }
    }

    if let Some(key_file) = &config.auth.private_key
        && offers(&accepted, MethodKind::PublicKey)
    {
        let key = russh::keys::load_secret_key(&key_file.path, key_file.passphrase.as_deref())
            .map_err(|source| ConnectError::KeyFile {
                target: target.to_string(),
                path: key_file.path.clone(),
                source: Box::new(source),
            })?;
        let hash = rsa_hash_for(handle, key.public_key())
            .await
            .map_err(ssh_err)?;
        let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        match handle
            .authenticate_publickey(user, key)
            .await
            .map_err(ssh_err)?
        {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => accepted = Some(remaining_methods),
        }
        tried.push(format!("private key {}", key_file.path.display()));
    }

    if let Some(password) = config.auth.password.as_deref().filter(|p| !p.is_empty())
        && offers(&accepted, MethodKind::Password)
    {
        match handle
            .authenticate_password(user, password)
            .await
            .map_err(ssh_err)?
        {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => accepted = Some(remaining_methods),
        }
        tried.push("password".to_string());
    }

    if tried.is_empty() {
        // Nothing to offer: ask with `none`, which also tells what the server
        // would accept.
        match handle.authenticate_none(user).await.map_err(ssh_err)? {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => accepted = Some(remaining_methods),
        }
        tried.push("no credentials configured".to_string());
    }
    Err(ConnectError::AuthFailed {
        target: target.to_string(),
        tried: format!("tried {}", tried.join(", then ")),
        accepted: accepted
            .map(|methods| {
                let names: Vec<&str> = methods.iter().map(<&str>::from).collect();
                if names.is_empty() {
                    "nothing more".to_string()
                } else {
                    names.join(", ")
                }
            })
            .unwrap_or_else(|| "unknown".to_string()),
    })
}

/// RSA keys sign with the best SHA-2 hash the server supports; other key
/// types have no choice.
async fn rsa_hash_for(
    handle: &Handle<ClientHandler>,
    key: &russh::keys::PublicKey,
) -> Result<Option<russh::keys::HashAlg>, russh::Error> {
    if key.algorithm().is_rsa() {
        Ok(handle.best_supported_rsa_hash().await?.flatten())
    } else {
        Ok(None)
    }
}

/// russh's callbacks: only the host-key check is ours.
struct ClientHandler {
    policy: HostKeyPolicy,
    host: String,
    port: u16,
}

#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    HostKey(HostKeyError),
}

impl From<russh::Error> for HandlerError {
    fn from(err: russh::Error) -> Self {
        HandlerError::Ssh(err)
    }
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            // Host certificates are not trusted on their own (prova has no
            // CA configuration); their key is checked like a plain key.
            PublicKeyOrCertificate::Certificate(cert) => {
                russh::keys::PublicKey::from(cert.public_key().clone())
            }
        };
        host_key::verify(&self.policy, &self.host, self.port, &key)
            .await
            .map(|()| true)
            .map_err(HandlerError::HostKey)
    }
}
