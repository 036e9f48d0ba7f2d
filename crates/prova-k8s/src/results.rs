//! What happens to a fetched results directory: `prova-results` reads it
//! (file counts, JUnit files) and emits `Artifacts`, `TestCaseResult`,
//! `TestCasesSummary` (and `ResultsFileError`) events for the target.

use std::path::Path;

use prova_core::Target;
use prova_engine::plugin::StepContext;

/// Publishes the results extracted into `dir`; `sha256` is the digest of
/// the archive they arrived as (verified).
pub fn publish(ctx: &StepContext, target: &Target, dir: &Path, sha256: &str) -> Result<(), String> {
    let ingested = prova_results::ingest_dir(dir)
        .map_err(|e| format!("reading the results in {}: {e}", dir.display()))?;
    prova_results::emit_results(ctx, target, &ingested, dir, Some(sha256));
    Ok(())
}
