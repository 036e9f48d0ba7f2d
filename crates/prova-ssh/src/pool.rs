//! One connection per (user, host, port, credentials, host-key policy),
//! shared by every command and copy for that target: steps and retries of a
//! job reuse it. A dead connection is replaced on next use; concurrent first
//! users wait for one connect; connections idle longer than
//! [`PoolOptions::idle_timeout`] are closed.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::ConnectConfig;
use crate::connect::{ConnectError, Connection};
use crate::exec::{self, ExecError, ExecOptions, ExecOutcome, RemoteCommand, Stream};
use crate::kill;
use crate::sftp::{self, DownloadLimits, DownloadSummary, SftpError};

/// Pool bounds.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// A connection nobody has used for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(300),
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

/// One target's connection. The async mutex is held while connecting, so
/// concurrent first users wait for that one connect.
struct Slot {
    conn: tokio::sync::Mutex<Option<Arc<Connection>>>,
    last_used: Mutex<Instant>,
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
    pub fn new(options: PoolOptions) -> Self {
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

    /// The open connection for `config`, connecting (once, whoever asks
    /// concurrently) if there is none or it died.
    pub async fn connection(
        &self,
        config: &ConnectConfig,
    ) -> Result<Arc<Connection>, ConnectError> {
        let slot = {
            let mut slots = lock(&self.inner.slots);
            slots
                .entry(config.clone())
                .or_insert_with(|| {
                    Arc::new(Slot {
                        conn: tokio::sync::Mutex::new(None),
                        last_used: Mutex::new(Instant::now()),
                    })
                })
                .clone()
        };
        *lock(&slot.last_used) = Instant::now();
        let mut conn = slot.conn.lock().await;
        if let Some(open) = conn.as_ref() {
            if !open.is_closed() {
                self.inner.reuses.fetch_add(1, Ordering::Relaxed);
                return Ok(open.clone());
            }
            tracing::info!(target = open.target(), "SSH connection lost; reconnecting");
        }
        let fresh = Arc::new(Connection::open(config).await?);
        self.inner.connects.fetch_add(1, Ordering::Relaxed);
        *conn = Some(fresh.clone());
        Ok(fresh)
    }

    /// Forgets `conn` if it is still the one pooled for `config`, so the
    /// next use connects anew.
    pub async fn discard(&self, config: &ConnectConfig, conn: &Arc<Connection>) {
        let slot = lock(&self.inner.slots).get(config).cloned();
        if let Some(slot) = slot {
            let mut pooled = slot.conn.lock().await;
            if pooled.as_ref().is_some_and(|p| Arc::ptr_eq(p, conn)) {
                *pooled = None;
            }
        }
        conn.close().await;
    }

    /// Runs a command on the target's pooled connection (see
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
        let conn = self.connection(config).await?;
        match exec::run(&conn, command, options, &mut on_output).await {
            Err(ExecError::Connect(err)) if err.is_connection_lost() => {
                self.discard(config, &conn).await;
                let conn = self.connection(config).await?;
                exec::run(&conn, command, options, &mut on_output).await
            }
            Err(ExecError::ConnectionLost {
                target,
                remote_pid,
                tag,
            }) => {
                // Without a terminal sshd does not signal the orphaned
                // command: end it over a new connection if one can be had.
                self.discard(config, &conn).await;
                match self.connection(config).await {
                    Ok(fresh) => {
                        if let Err(err) =
                            kill::kill_remote(&fresh, remote_pid, &tag, options.kill_grace).await
                        {
                            tracing::warn!("{err}");
                        }
                    }
                    Err(err) => {
                        tracing::warn!("cannot reconnect to end the orphaned remote command: {err}")
                    }
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

    /// Copies the remote directory `remote` into `local` over the target's
    /// pooled connection (see [`sftp::download_dir`]).
    pub async fn download_dir(
        &self,
        config: &ConnectConfig,
        remote: &str,
        local: &Path,
        limits: &DownloadLimits,
    ) -> Result<DownloadSummary, SftpError> {
        let conn = self.connection(config).await?;
        match sftp::download_dir(&conn, remote, local, limits).await {
            Err(SftpError::Connect(err)) if err.is_connection_lost() => {
                self.discard(config, &conn).await;
                let conn = self.connection(config).await?;
                sftp::download_dir(&conn, remote, local, limits).await
            }
            result => result,
        }
    }

    /// Counters and the number of open connections.
    pub fn stats(&self) -> PoolStats {
        let open = lock(&self.inner.slots)
            .values()
            .filter(|slot| {
                slot.conn
                    .try_lock()
                    .map(|conn| conn.as_ref().is_some_and(|c| !c.is_closed()))
                    .unwrap_or(true)
            })
            .count();
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
            if let Some(conn) = slot.conn.lock().await.take() {
                conn.close().await;
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
        let Ok(mut conn) = slot.conn.try_lock() else {
            continue;
        };
        if let Some(open) = conn.as_ref() {
            // Still held by a running command or copy.
            if Arc::strong_count(open) > 1 {
                continue;
            }
            open.close().await;
            closed += 1;
        }
        *conn = None;
        drop(conn);
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
