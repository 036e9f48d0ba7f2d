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

/// The locker a test's target manager gets: [`StoreLocker`], and when
/// targets it asked for are held by other jobs, a `Waiting {For: "Targets",
/// HeldBy: [{Job, Targets}]}` test event naming them (again only when who
/// holds what changes), so progress can say why the test waits.
pub struct AnnouncingLocker {
    pub inner: StoreLocker,
    pub sink: crate::emit::EventSink,
    pub scope: crate::plugin::TestScope,
    last: std::sync::Mutex<Vec<(String, JobId)>>,
}

impl AnnouncingLocker {
    pub fn new(
        inner: StoreLocker,
        sink: crate::emit::EventSink,
        scope: crate::plugin::TestScope,
    ) -> AnnouncingLocker {
        AnnouncingLocker {
            inner,
            sink,
            scope,
            last: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Says who holds `missing`, if that changed since it last said so.
    async fn announce(&self, missing: &[String]) {
        let mut held = match self.inner.store.lock_holders(missing).await {
            Ok(h) => h,
            Err(e) => {
                tracing::debug!("cannot read who holds targets: {e}");
                return;
            }
        };
        held.retain(|(_, job)| *job != self.inner.job_id);
        held.sort();
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if held.is_empty() || *last == held {
                return;
            }
            last.clone_from(&held);
        }
        let mut by_job: std::collections::BTreeMap<JobId, Vec<String>> = Default::default();
        for (target, job) in held {
            by_job.entry(job).or_default().push(target);
        }
        let held_by: Vec<serde_json::Value> = by_job
            .into_iter()
            .map(|(job, targets)| serde_json::json!({ "Job": job, "Targets": targets }))
            .collect();
        self.sink.emit(self.scope.event(
            None,
            None,
            prova_core::event::names::WAITING,
            Some(serde_json::json!({ "For": "Targets", "HeldBy": held_by })),
        ));
    }
}

#[async_trait]
impl TargetLocker for AnnouncingLocker {
    async fn try_lock(&self, ids: &[String]) -> Result<Vec<String>, String> {
        let locked = self.inner.try_lock(ids).await?;
        if locked.len() < ids.len() {
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| !locked.contains(id))
                .cloned()
                .collect();
            self.announce(&missing).await;
        }
        Ok(locked)
    }

    async fn lock_all(&self, ids: &[String]) -> Result<bool, String> {
        let all = self.inner.lock_all(ids).await?;
        if !all {
            self.announce(ids).await;
        }
        Ok(all)
    }

    async fn unlock(&self, ids: &[String]) -> Result<(), String> {
        self.inner.unlock(ids).await
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
