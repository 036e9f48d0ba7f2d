//! Connections per (user, host, port, credentials, host-key policy), shared
//! by every command and copy for that target: steps and retries of a job
//! reuse them. A dead connection is replaced on next use; concurrent first
//! users wait for one connect; connections idle longer than
//! [`PoolOptions::idle_timeout`] are closed.
//!
//! An SSH server limits the sessions open at once on one connection
//! (OpenSSH's `MaxSessions`, 10 by default) and refuses the next channel.
//! Each pooled connection therefore hands out at most
//! [`PoolOptions::max_sessions`] sessions: a command takes two (its own and
//! the one its cleanup opens if it must be stopped, so a cancel never finds
//! the server full), a download one. When every connection of a target is
//! full, another is opened (up to [`PoolOptions::max_connections`]); past
//! that, users wait for a session to end.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::ConnectConfig;
use crate::connect::{ConnectError, Connection};
use crate::exec::{self, ExecError, ExecOptions, ExecOutcome, RemoteCommand, Stream};
use crate::kill::{self, KillError};
use crate::sftp::{self, DownloadLimits, DownloadSummary, SftpError};

/// Sessions a command holds: its own, and its cleanup's.
const COMMAND_SESSIONS: u32 = 2;

/// Pool bounds.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// A connection nobody has used for this long is closed.
    pub idle_timeout: Duration,
    /// Sessions open at once on one connection: the server's `MaxSessions`
    /// (OpenSSH's default is 10). At least 2.
    pub max_sessions: u32,
    /// Connections open at once to one target (same [`ConnectConfig`]).
    pub max_connections: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
            max_sessions: 10,
            max_connections: 32,
        }
    }
}

/// Counters, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened (successfully) since the pool was made.
    pub connects: u64,
    /// Uses served by an already open connection.
    pub reuses: u64,
    /// Connections open now.
    pub open: usize,
}

/// A cheap-to-clone handle to the shared pool.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    options: PoolOptions,
    slots: Mutex<HashMap<ConnectConfig, Arc<Slot>>>,
    connects: AtomicU64,
    reuses: AtomicU64,
}

/// One target's connections. The async mutex is held while connecting, so
/// concurrent first users wait for that one connect.
struct Slot {
    conns: tokio::sync::Mutex<Vec<Pooled>>,
    last_used: Mutex<Instant>,
}

/// A connection and the sessions it may still open.
struct Pooled {
    conn: Arc<Connection>,
    sessions: Arc<Semaphore>,
}

/// A connection lent for one use, with the sessions that use may open.
/// Returning the sessions is dropping the lease.
pub struct Lease {
    pub conn: Arc<Connection>,
    _sessions: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Pool {
    /// A new, empty pool. Inside a tokio runtime it also starts the task
    /// that closes idle connections (it ends when the last handle is
    /// dropped); outside one, idle connections are closed on next use.
    pub fn new(mut options: PoolOptions) -> Self {
        options.max_sessions = options.max_sessions.max(COMMAND_SESSIONS);
        options.max_connections = options.max_connections.max(1);
        let inner = Arc::new(Inner {
            options,
            slots: Mutex::new(HashMap::new()),
            connects: AtomicU64::new(0),
            reuses: AtomicU64::new(0),
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(reap_idle(Arc::downgrade(&inner)));
        }
        Self { inner }
    }

    fn slot(&self, config: &ConnectConfig) -> Arc<Slot> {
        let slot = {
            let mut slots = lock(&self.inner.slots);
            slots
                .entry(config.clone())
                .or_insert_with(|| {
                    Arc::new(Slot {
                        conns: tokio::sync::Mutex::new(Vec::new()),
                        last_used: Mutex::new(Instant::now()),
                    })
                })
                .clone()
        };
        *lock(&slot.last_used) = Instant::now();
        slot
    }

    /// An open connection for `config`, connecting (once, whoever asks
    /// concurrently) if there is none or they died. Holds no session: for
    /// a command or a copy, [`Pool::exec`] and [`Pool::download_dir`] take
    /// theirs.
    pub async fn connection(
        &self,
        config: &ConnectConfig,
    ) -> Result<Arc<Connection>, ConnectError> {
        Ok(self.lease(config, 0).await?.conn)
    }

    /// A connection for `config` with `sessions` sessions reserved on it:
    /// a pooled one with room, else a new one, else the first to free up.
    pub async fn lease(
        &self,
        config: &ConnectConfig,
        sessions: u32,
    ) -> Result<Lease, ConnectError> {
        let slot = self.slot(config);
        loop {
            let mut conns = slot.conns.lock().await;
            conns.retain(|p| {
                let open = !p.conn.is_closed();
                if !open {
                    tracing::info!(
                        target = p.conn.target(),
                        "SSH connection lost; reconnecting"
                    );
                }
                open
            });
            for p in conns.iter() {
                if let Ok(permit) = p.sessions.clone().try_acquire_many_owned(sessions) {
                    self.inner.reuses.fetch_add(1, Ordering::Relaxed);
                    return Ok(Lease {
                        conn: p.conn.clone(),
                        _sessions: permit,
                    });
                }
            }
            if conns.len() < self.inner.options.max_connections {
                let conn = Arc::new(Connection::open(config).await?);
                self.inner.connects.fetch_add(1, Ordering::Relaxed);
                let sessions_left =
                    Arc::new(Semaphore::new(self.inner.options.max_sessions as usize));
                let permit = sessions_left
                    .clone()
                    .try_acquire_many_owned(sessions)
                    .expect("a new connection has every session free");
                conns.push(Pooled {
                    conn: conn.clone(),
                    sessions: sessions_left,
                });
                return Ok(Lease {
                    conn,
                    _sessions: permit,
                });
            }
            // Every connection is full: wait for sessions on the one with
            // most free, then look again (it may have died meanwhile).
            let fullest_free = conns
                .iter()
                .max_by_key(|p| p.sessions.available_permits())
                .map(|p| p.sessions.clone());
            drop(conns);
            if let Some(sessions_left) = fullest_free {
                drop(sessions_left.acquire_many_owned(sessions).await);
            }
        }
    }

    /// Forgets `conn` if it is still pooled for `config`, so the next use
    /// connects anew.
    pub async fn discard(&self, config: &ConnectConfig, conn: &Arc<Connection>) {
        let slot = lock(&self.inner.slots).get(config).cloned();
        if let Some(slot) = slot {
            slot.conns
                .lock()
                .await
                .retain(|p| !Arc::ptr_eq(&p.conn, conn));
        }
        conn.close().await;
    }

    /// Runs a command on a pooled connection of the target (see
    /// [`exec::run`]). If the pooled connection turns out dead when the
    /// session is opened, it is replaced and the command started once more.
    pub async fn exec<F>(
        &self,
        config: &ConnectConfig,
        command: &RemoteCommand,
        options: &ExecOptions,
        mut on_output: F,
    ) -> Result<ExecOutcome, ExecError>
    where
        F: FnMut(Stream, &[u8]) -> ControlFlow<()> + Send,
    {
        let lease = self.lease(config, COMMAND_SESSIONS).await?;
        match exec::run(&lease.conn, command, options, &mut on_output).await {
            Err(ExecError::Connect(err)) if err.is_connection_lost() => {
                self.discard(config, &lease.conn).await;
                drop(lease);
                let lease = self.lease(config, COMMAND_SESSIONS).await?;
                exec::run(&lease.conn, command, options, &mut on_output).await
            }
            Err(ExecError::ConnectionLost {
                target,
                remote_pid,
                tag,
            }) => {
                // Without a terminal sshd does not signal the orphaned
                // command: end it over a new connection if one can be had.
                self.discard(config, &lease.conn).await;
                drop(lease);
                if let Err(err) = self
                    .kill_remote(config, remote_pid, &tag, options.kill_grace)
                    .await
                {
                    tracing::warn!("{err}");
                }
                Err(ExecError::ConnectionLost {
                    target,
                    remote_pid,
                    tag,
                })
            }
            result => result,
        }
    }

    /// Ends a remote command started by [`Pool::exec`] (its tag and pid, as
    /// an [`exec::RunProbe`] learnt them) over a pooled connection: the
    /// cleanup when a run was abandoned without stopping it.
    pub async fn kill_remote(
        &self,
        config: &ConnectConfig,
        pid: Option<u32>,
        tag: &str,
        grace: Duration,
    ) -> Result<(), KillError> {
        let lease = self.lease(config, 1).await.map_err(|err| KillError {
            target: config.target(),
            pgid: pid,
            reason: format!("cannot reconnect: {}", crate::kill::error_text(&err)),
        })?;
        kill::kill_remote(&lease.conn, pid, tag, grace).await
    }

    /// Copies the remote directory `remote` into `local` over a pooled
    /// connection of the target (see [`sftp::download_dir`]).
    pub async fn download_dir(
        &self,
        config: &ConnectConfig,
        remote: &str,
        local: &Path,
        limits: &DownloadLimits,
    ) -> Result<DownloadSummary, SftpError> {
        let lease = self.lease(config, 1).await?;
        match sftp::download_dir(&lease.conn, remote, local, limits).await {
            Err(SftpError::Connect(err)) if err.is_connection_lost() => {
                self.discard(config, &lease.conn).await;
                drop(lease);
                let lease = self.lease(config, 1).await?;
                sftp::download_dir(&lease.conn, remote, local, limits).await
            }
            result => result,
        }
    }

    /// Counters and the number of open connections.
    pub fn stats(&self) -> PoolStats {
        let open = lock(&self.inner.slots)
            .values()
            .map(|slot| {
                slot.conns
                    .try_lock()
                    .map(|conns| conns.iter().filter(|p| !p.conn.is_closed()).count())
                    .unwrap_or(1)
            })
            .sum();
        PoolStats {
            connects: self.inner.connects.load(Ordering::Relaxed),
            reuses: self.inner.reuses.load(Ordering::Relaxed),
            open,
        }
    }

    /// Closes every connection (a hard exit's cleanup); the pool stays
    /// usable and reconnects on next use.
    pub async fn close_all(&self) {
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots)
            .drain()
            .map(|(_, slot)| slot)
            .collect();
        for slot in slots {
            let conns = std::mem::take(&mut *slot.conns.lock().await);
            for p in conns {
                p.conn.close().await;
            }
        }
    }

    /// Closes connections idle for longer than the idle timeout and not in
    /// use; returns how many were closed.
    pub async fn close_idle(&self) -> usize {
        close_idle(&self.inner).await
    }
}

async fn close_idle(inner: &Inner) -> usize {
    let idle_timeout = inner.options.idle_timeout;
    let idle: Vec<(ConnectConfig, Arc<Slot>)> = lock(&inner.slots)
        .iter()
        .filter(|(_, slot)| lock(&slot.last_used).elapsed() >= idle_timeout)
        .map(|(config, slot)| (config.clone(), slot.clone()))
        .collect();
    let mut closed = 0;
    for (config, slot) in idle {
        // A slot being connected or used right now is not idle.
        let Ok(mut conns) = slot.conns.try_lock() else {
            continue;
        };
        // Still held by a running command or copy.
        if conns.iter().any(|p| Arc::strong_count(&p.conn) > 1) {
            continue;
        }
        for p in conns.drain(..) {
            p.conn.close().await;
            closed += 1;
        }
        drop(conns);
        let mut slots = lock(&inner.slots);
        if slots.get(&config).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
            slots.remove(&config);
        }
    }
    closed
}

async fn reap_idle(inner: Weak<Inner>) {
    loop {
        let period = match inner.upgrade() {
            Some(inner) => (inner.options.idle_timeout / 2).max(Duration::from_millis(100)),
            None => return,
        };
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let closed = close_idle(&inner).await;
        if closed > 0 {
            tracing::debug!(closed, "closed idle SSH connections");
        }
    }
}

/// A poisoned lock only means another thread panicked mid-update of a map
/// that stays consistent; go on with it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
