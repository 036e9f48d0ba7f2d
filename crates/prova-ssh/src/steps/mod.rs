//! prova's SSH steps, on plugin API v2 (`prova_engine::plugin`):
//!
//! - `sshcmd` ([`sshcmd`]): ConTest's step, a command on the target;
//! - `sshfetch` ([`sshfetch`]): a remote results directory brought back.
//!
//! Both read the same login parameters ([`login`]) and share one
//! process-wide [`Pool`], so every step and retry of every job in the
//! process reuses the connection to a target.

mod login;
mod results;
mod sshcmd;
mod sshfetch;

use std::sync::OnceLock;

use prova_engine::plugin::Registry;

pub use results::SSH_RESULTS;
pub use sshcmd::{DEFAULT_TIMEOUT, SshCmd};
pub use sshfetch::SshFetch;

use crate::pool::{Pool, PoolOptions};

/// The command step's name in descriptors (ConTest's, case-insensitive).
pub const SSHCMD: &str = "sshcmd";
/// The results step's name in descriptors.
pub const SSHFETCH: &str = "sshfetch";

/// `{Host, Port, User, Command}`: a remote command is being started.
pub const SSHCMD_START: &str = "SshCmdStart";
/// `{Msg, DroppedBytes}`: its stdout (the last MiB).
pub const SSHCMD_STDOUT: &str = "SshCmdStdout";
/// `{Msg, DroppedBytes}`: its stderr (the last MiB).
pub const SSHCMD_STDERR: &str = "SshCmdStderr";
/// `{ExitCode, Signal, DurationMs, TimedOut, RemotePid, ConnectionId}`.
pub const SSHCMD_END: &str = "SshCmdEnd";

/// Registers `sshcmd` and `sshfetch` on the process-wide pool.
pub fn register(r: &mut Registry) {
    register_steps(r, StepPool::Shared);
}

/// Registers `sshcmd` and `sshfetch` on `pool` (tests read its stats).
pub fn register_with_pool(r: &mut Registry, pool: Pool) {
    register_steps(r, StepPool::Own(pool));
}

fn register_steps(r: &mut Registry, pool: StepPool) {
    r.step(SSHCMD, SshCmd { pool: pool.clone() })
        .step(SSHFETCH, SshFetch { pool });
}

/// The pool every SSH step of this process shares. Made on first use, by a
/// running step, so its idle-connection reaper runs on the job's runtime.
pub fn shared_pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new(PoolOptions::default()))
}

/// Which pool a step uses.
#[derive(Clone)]
pub(crate) enum StepPool {
    Shared,
    Own(Pool),
}

impl StepPool {
    pub(crate) fn get(&self) -> Pool {
        match self {
            StepPool::Shared => shared_pool().clone(),
            StepPool::Own(pool) => pool.clone(),
        }
    }
}
