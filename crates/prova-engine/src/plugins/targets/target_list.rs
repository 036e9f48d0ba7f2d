//! `TargetList`: the targets are listed in the descriptor
//! (`TargetManagerAcquireParameters: {Targets: [{ID, FQDN, ...}]}`).
//! Acquire returns them all; release does nothing.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::Node;
use prova_core::{JobId, Target};
use tokio_util::sync::CancellationToken;

use super::decode_target;
use crate::plugin::{PrepareCtx, TargetLocker, TargetManager, TargetSource};

pub struct TargetList;

struct Listed(Vec<Target>);

impl TargetManager for TargetList {
    fn prepare(
        &self,
        acquire: &Node,
        path: &FieldPath,
        _release: &Node,
        _ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<Arc<dyn TargetSource>> {
        let tpath = path.key("Targets");
        let Some(list) = acquire.get_ci("Targets") else {
            diags.error(
                &tpath,
                acquire.pos,
                "missing: expected a list of targets [{ID, FQDN}]",
            );
            return None;
        };
        let Some(items) = list.as_seq() else {
            diags.error(
                &tpath,
                list.pos,
                format!("expected a list of targets, found {}", list.type_name()),
            );
            return None;
        };
        if items.is_empty() {
            diags.error(&tpath, list.pos, "expected at least one target");
        }
        let mut targets: Vec<Target> = Vec::with_capacity(items.len());
        // A set, not a scan of the targets so far: 100,000 targets took 34 s
        // to validate when every one was compared with all before it.
        let mut ids: HashSet<String> = HashSet::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(t) = decode_target(item, &tpath.index(i), diags) {
                if !ids.insert(t.id.clone()) {
                    diags.error(
                        &tpath.index(i).key("ID"),
                        item.pos,
                        format!("duplicate target ID {:?}", t.id),
                    );
                }
                targets.push(t);
            }
        }
        Some(Arc::new(Listed(targets)))
    }
}

#[async_trait]
impl TargetSource for Listed {
    async fn acquire(
        &self,
        _job: JobId,
        cancel: &CancellationToken,
        locker: &dyn TargetLocker,
    ) -> Result<Vec<Target>, String> {
        let ids: Vec<String> = self.0.iter().map(|t| t.id.clone()).collect();
        // All of them or none, waiting while another job holds one; the
        // engine's acquire timeout bounds the wait.
        while !locker.lock_all(&ids).await? {
            tokio::select! {
                _ = tokio::time::sleep(super::LOCK_RETRY) => {}
                _ = cancel.cancelled() => return Err("cancelled while waiting for locked targets".into()),
            }
        }
        Ok(self.0.clone())
    }
    async fn release(&self, _job: JobId, _targets: &[Target]) -> Result<(), String> {
        Ok(())
    }
}
