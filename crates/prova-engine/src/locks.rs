//! Target locks in the store: a target is held by one job at a time.
//! Locks expire unless refreshed, so a crashed process does not hold its
//! targets forever.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prova_core::JobId;
use prova_store::TargetLockStore;

use crate::plugin::TargetLocker;

/// How long a lock lasts without a refresh.
pub const LOCK_TTL: Duration = Duration::from_secs(30);

/// The locker of one job.
pub struct StoreLocker {
    pub store: Arc<dyn TargetLockStore>,
    pub job_id: JobId,
}

#[async_trait]
impl TargetLocker for StoreLocker {
    async fn try_lock(&self, ids: &[String]) -> Result<Vec<String>, String> {
        self.store
            .lock_targets(self.job_id, ids, LOCK_TTL, false)
            .await
            .map_err(|e| format!("cannot lock targets: {e}"))
    }

    async fn lock_all(&self, ids: &[String]) -> Result<bool, String> {
        self.store
            .lock_targets(self.job_id, ids, LOCK_TTL, true)
            .await
            .map(|locked| locked.len() == ids.len())
            .map_err(|e| format!("cannot lock targets: {e}"))
    }

    async fn unlock(&self, ids: &[String]) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        self.store
            .unlock_targets(self.job_id, ids)
            .await
            .map_err(|e| format!("cannot unlock targets: {e}"))
    }
}

/// Refreshes a job's locks while alive (every third of [`LOCK_TTL`]).
pub struct Refresher(tokio::task::JoinHandle<()>);

impl Refresher {
    pub fn start(store: Arc<dyn TargetLockStore>, job_id: JobId) -> Refresher {
        Refresher(tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_TTL / 3).await;
                if let Err(e) = store.refresh_target_locks(job_id, LOCK_TTL).await {
                    tracing::warn!(job = job_id, "cannot refresh target locks: {e}");
                }
            }
        }))
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.0.abort();
    }
}
