//! What happens to a fetched results directory.
//!
//! SEAM(prova-results): `crates/prova-results` (another engineer's crate)
//! will ingest the directory (`prova_results::ingest_dir(dir)`) and emit
//! `Artifacts` and `TestCaseResult` events
//! (`prova_results::emit_results(ctx, target, &ingested, dir)`). Until it
//! exists, the directory is only kept at `ctx.artifacts_dir(target)`, where
//! the step extracted it.

use std::path::Path;

use prova_core::Target;
use prova_engine::runner::step_ctx::StepContext;

/// Publishes the results extracted into `dir`.
pub fn publish(ctx: &StepContext, target: &Target, dir: &Path) -> Result<(), String> {
    // SEAM(prova-results): replace with ingest_dir + emit_results.
    let _ = (ctx, target, dir);
    Ok(())
}
