//! A remote results directory brought back over SFTP into the target's
//! artifacts directory, its JUnit files read into `TestCaseResult` events
//! (as `docker` and `k8sjob` do with theirs).

use std::time::Instant;

use prova_engine::plugin::{EventDecl, StepContext, StepError, Target, error_chain};
use prova_results::{Ingested, emit_results, ingest_dir};
use serde_json::json;

use crate::config::ConnectConfig;
use crate::pool::Pool;
use crate::sftp::DownloadLimits;

/// `{Source, Files, Bytes, FetchMs, Skipped: [{Path, Reason}]}`: the remote
/// results directory is on local disk.
pub const SSH_RESULTS: &str = "SshResults";

/// Skipped entries listed in [`SSH_RESULTS`].
const LISTED_SKIPS: usize = 100;

/// The events fetching results emits: its own and prova_results'.
pub fn events() -> Vec<EventDecl> {
    let mut events = vec![EventDecl::new(
        SSH_RESULTS,
        "{Source, Files, Bytes, FetchMs, Skipped: [{Path, Reason}]}: the remote results directory is on local disk (links out of it, devices and bad names skipped)",
    )];
    events.extend_from_slice(prova_results::EVENTS);
    events
}

/// Copies `source` from the target into its artifacts directory, reads it
/// and emits what it held. Cancellation ends the copy.
pub async fn fetch(
    pool: &Pool,
    config: &ConnectConfig,
    source: &str,
    ctx: &StepContext,
    target: &Target,
) -> Result<Ingested, StepError> {
    let dest = ctx.artifacts_dir(target);
    let started = Instant::now();
    let limits = DownloadLimits::default();
    let copied = tokio::select! {
        r = pool.download_dir(config, source, &dest, &limits) => r,
        _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
    };
    let summary = copied.map_err(|e| {
        use crate::sftp::SftpError;
        match e {
            // Nothing was copied because the target could not be reached.
            SftpError::Connect(_) | SftpError::Start { .. } => StepError::infra(e),
            // The target's results are missing, unsafe or too big.
            e => StepError::failed(format!("results: {}", error_chain(&e))),
        }
    })?;
    let skipped: Vec<_> = summary
        .skipped
        .iter()
        .take(LISTED_SKIPS)
        .map(|(path, reason)| json!({ "Path": path, "Reason": reason }))
        .collect();
    ctx.emit(
        target,
        SSH_RESULTS,
        Some(json!({
            "Source": source,
            "Files": summary.files.len(),
            "Bytes": summary.bytes,
            "FetchMs": started.elapsed().as_millis() as u64,
            "Skipped": skipped,
        })),
    );
    let walk = dest.clone();
    let ingested = tokio::task::spawn_blocking(move || ingest_dir(&walk))
        .await
        .map_err(|e| StepError::infra(format!("reading the results failed: {e}")))?
        .map_err(|e| StepError::failed(format!("cannot read the results: {}", error_chain(&e))))?;
    emit_results(ctx, target, &ingested, &dest, None);
    Ok(ingested)
}
