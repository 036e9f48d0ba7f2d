//! Shared by the `fuzz_*` tests: the corpus descriptors they mutate. The
//! runner (bounds, seeds, counts) is `prova_fuzz`'s.

#![allow(dead_code)] // each fuzz test binary uses part of this

use std::path::PathBuf;

/// The ConTest descriptors of the shared corpus.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/contest/descriptors")
}

/// Every JSON/YAML file of the corpus as (file name, text), sorted by name.
pub fn corpus_files() -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(corpus_dir())
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("json" | "yaml" | "yml")
                    )
                })
                .filter_map(|p| {
                    let text = std::fs::read_to_string(&p).ok()?;
                    Some((p.file_name()?.to_string_lossy().into_owned(), text))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    assert!(
        files.len() >= 10,
        "corpus not found at {}",
        corpus_dir().display()
    );
    files
}
