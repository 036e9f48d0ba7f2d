//! What to connect to and how: the target, the credentials to offer and
//! how the server's host key is checked.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The default SSH port.
pub const DEFAULT_PORT: u16 = 22;

/// How long connecting and authenticating may take by default.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// One SSH server and how to log in to it. Two equal configs share a pooled
/// connection (see [`crate::Pool`]), so everything that changes who is logged
/// in, or which server is trusted, is part of it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConnectConfig {
    /// Host name or IP address (an IPv6 literal without brackets).
    pub host: String,
    /// TCP port, [`DEFAULT_PORT`] unless given.
    pub port: u16,
    /// The remote user.
    pub user: String,
    /// The credentials to offer, in OpenSSH's order.
    pub auth: Auth,
    /// How the server's host key is checked.
    pub host_keys: HostKeyPolicy,
    /// Bound on TCP connect, key exchange and authentication together.
    pub connect_timeout: Duration,
}

impl ConnectConfig {
    /// A config for `user@host:22` with no credentials, the user's
    /// `~/.ssh/known_hosts` and the default connect timeout.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            port: DEFAULT_PORT,
            user: user.into(),
            auth: Auth::default(),
            host_keys: HostKeyPolicy::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The target as OpenSSH names it in messages and known_hosts:
    /// `host` on port 22, `[host]:port` otherwise.
    pub fn host_port(&self) -> String {
        host_port(&self.host, self.port)
    }

    /// `user@host_port`, for messages.
    pub fn target(&self) -> String {
        format!("{}@{}", self.user, self.host_port())
    }
}

/// The name OpenSSH uses for `host` at `port` in known_hosts and messages.
pub fn host_port(host: &str, port: u16) -> String {
    if port == DEFAULT_PORT {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

// The password never appears in logs or errors.
impl fmt::Debug for ConnectConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectConfig")
            .field("target", &self.target())
            .field("auth", &self.auth)
            .field("host_keys", &self.host_keys)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Credentials, tried as OpenSSH tries them: the agent's keys, then the
/// private key file, then the password. Only what the server still accepts
/// is tried.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Auth {
    /// Which SSH agent's keys to offer first.
    pub agent: Agent,
    /// A private key file (OpenSSH or PEM), with its passphrase if encrypted.
    pub private_key: Option<PrivateKeyFile>,
    /// A password (empty means none, as in ConTest).
    pub password: Option<String>,
}

impl Auth {
    /// True when no credential at all is configured.
    pub fn is_empty(&self) -> bool {
        self.agent == Agent::Off
            && self.private_key.is_none()
            && self.password.as_deref().unwrap_or("").is_empty()
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("agent", &self.agent)
            .field("private_key", &self.private_key)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The SSH agent to ask for keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Agent {
    /// No agent.
    Off,
    /// The agent at `$SSH_AUTH_SOCK`, when that is set (OpenSSH's default).
    #[default]
    FromEnv,
    /// The agent listening on this socket.
    Socket(PathBuf),
}

impl Agent {
    /// The socket to use, if any.
    pub fn socket(&self) -> Option<PathBuf> {
        match self {
            Agent::Off => None,
            Agent::FromEnv => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            Agent::Socket(path) => Some(path.clone()),
        }
    }
}

/// A private key file and its optional passphrase.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PrivateKeyFile {
    pub path: PathBuf,
    pub passphrase: Option<String>,
}

impl PrivateKeyFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            passphrase: None,
        }
    }
}

impl fmt::Debug for PrivateKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeyFile")
            .field("path", &self.path)
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// How the server's host key is checked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostKeyPolicy {
    /// The key must be listed for the host in this OpenSSH known_hosts file
    /// (`None`: `~/.ssh/known_hosts` of the user running prova). An unknown
    /// host, a changed key or a `@revoked` key refuses the connection.
    KnownHosts(Option<PathBuf>),
    /// The key's fingerprint must be this one, `SHA256:<base64>` as
    /// `ssh-keygen -l` prints it.
    Fingerprint(String),
    /// Any key is accepted; each connection logs a warning naming the host
    /// and the key's fingerprint.
    Insecure,
}

impl Default for HostKeyPolicy {
    fn default() -> Self {
        Self::KnownHosts(None)
    }
}
