//! Shared by this crate's `fuzz_*` tests: where the corpus their seeds
//! come from lives. The runner (bounds, seeds, counts) is `prova_fuzz`'s.

use std::path::PathBuf;

/// `shared/corpus/<rel>` beside the repository.
pub fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus")
        .join(rel)
}
