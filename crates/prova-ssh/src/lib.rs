//! prova's SSH layer, under the `sshcmd` and `sshcopy` steps.
//!
//! - [`config`]: what to connect to and how (credentials, host-key policy).
//! - [`known_hosts`] and [`host_key`]: whether a server's key is trusted.
//! - [`connect`]: one authenticated connection.
//! - [`pool`]: one connection per target, reused by every command.
//! - [`exec`]: a remote command with bounded output, a timeout and a cancel
//!   that leave no remote process behind.
//! - [`sftp`]: a bounded download of a remote results tree.

pub mod config;
pub mod connect;
pub mod host_key;
pub mod known_hosts;

pub use config::{Agent, Auth, ConnectConfig, HostKeyPolicy, PrivateKeyFile};
pub use connect::{ConnectError, Connection};
pub use host_key::HostKeyError;
pub mod exec;
pub mod kill;
pub mod output;
pub mod pool;
pub mod sftp;

pub use exec::{Ended, ExecError, ExecOptions, ExecOutcome, ExitStatus, RemoteCommand, Stream};
pub use kill::KillError;
pub use output::OutputTail;
pub use pool::{Pool, PoolOptions, PoolStats};
pub use sftp::{DownloadLimits, DownloadSummary, SftpError};
