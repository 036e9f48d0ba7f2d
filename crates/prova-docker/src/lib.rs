//! prova's `docker` step.

/// Registers the `docker` step.
pub fn register(_r: &mut prova_engine::Registry) {}
