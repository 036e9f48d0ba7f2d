//! prova's SSH steps, `sshcmd` and `sshfetch` ([`steps`], registered by
//! [`register`]), and the SSH layer under them:
//!
//! - [`config`]: what to connect to and how (credentials, host-key policy).
//! - [`known_hosts`] and [`host_key`]: whether a server's key is trusted.
//! - [`connect`]: one authenticated connection.
//! - [`pool`]: one connection per target, reused by every command.
//! - [`exec`]: a remote command with bounded output, a timeout and a cancel
//!   that leave no remote process behind.
//! - [`sftp`]: a bounded download of a remote results tree.
//! - [`steps`]: the steps, on `prova_engine::plugin`.
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! use std::time::Duration;
//! use prova_ssh::{ConnectConfig, ExecOptions, HostKeyPolicy, Pool, PoolOptions, PrivateKeyFile, RemoteCommand};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::new(PoolOptions::default());
//! let mut target = ConnectConfig::new("dut1.lab", "root");
//! target.auth.private_key = Some(PrivateKeyFile::new("/etc/prova/id_ed25519"));
//! target.host_keys = HostKeyPolicy::KnownHosts(None); // ~/.ssh/known_hosts
//! let options = ExecOptions { timeout: Some(Duration::from_secs(60)), ..ExecOptions::default() };
//! let outcome = pool
//!     .exec(&target, &RemoteCommand::new("uname", ["-a"]), &options, |_stream, _chunk| ControlFlow::Continue(()))
//!     .await?;
//! println!("{:?}: {}", outcome.ended, outcome.stdout.text());
//! # Ok(())
//! # }
//! ```

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
pub mod steps;

pub use steps::{register, register_with_pool};

pub use exec::{
    Ended, ExecError, ExecOptions, ExecOutcome, ExitStatus, RemoteCommand, RemoteRun, RunProbe,
    Stream,
};
pub use kill::KillError;
pub use output::OutputTail;
pub use pool::{Lease, Pool, PoolOptions, PoolStats};
pub use sftp::{DownloadLimits, DownloadSummary, SftpError};
