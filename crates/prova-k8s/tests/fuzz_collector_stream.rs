//! Fuzzing the collector stream (`prova collector send` → prova): real
//! streams made from corpus directories, mutated (bit flips, cuts,
//! insertions, duplicated ranges, rewritten frame lengths) and fed to the
//! decoder in random chunks. Nothing may panic; an intact stream decodes;
//! whatever decodes matches its trailer's digest and length. Archives that
//! decode, and mutated raw archives, go through the safe extractor, which
//! must never write outside its destination.
//!
//! Bounded by default (see `fuzz_support`); `PROVA_FUZZ_CASES=100000` for a
//! longer run.

mod fuzz_support;

use std::path::Path;
use std::sync::OnceLock;

use fuzz_support::corpus;
use proptest::prelude::*;
use prova_fuzz::fuzz;
use prova_k8s::framing::{Decoder, hex};
use sha2::{Digest, Sha256};

/// Corpus folders turned into seed streams and archives.
const SEED_DIRS: &[&str] = &[
    "k8s/objects/kubeclient",
    "k8s/audit/apisnoop-testdata",
    "k8s/objects/gitops-engine",
];

fn seed_streams() -> &'static Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        SEED_DIRS
            .iter()
            .map(|d| {
                let mut out = Vec::new();
                prova_k8s::collector::send(&corpus(d), &mut out)
                    .unwrap_or_else(|e| panic!("{d}: {e}"));
                out
            })
            .collect()
    })
}

fn seed_tars() -> &'static Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        SEED_DIRS
            .iter()
            .map(|d| {
                let mut out = Vec::new();
                prova_k8s::archive::write_tar(&corpus(d), &mut out).unwrap();
                out
            })
            .collect()
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: f64,
        bit: u8,
    },
    Cut {
        at: f64,
    },
    Insert {
        at: f64,
        bytes: Vec<u8>,
    },
    Delete {
        at: f64,
        len: usize,
    },
    Duplicate {
        at: f64,
        len: usize,
    },
    /// Overwrites 4 bytes: frame lengths are big-endian u32s.
    Length {
        at: f64,
        value: u32,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0..1.0f64, 0..8u8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (0.0..1.0f64).prop_map(|at| Mutation::Cut { at }),
        (0.0..1.0f64, proptest::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (0.0..1.0f64, 1..4096usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (0.0..1.0f64, 1..4096usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (
            0.0..1.0f64,
            prop_oneof![Just(0u32), Just(u32::MAX), 0..2_000_000u32]
        )
            .prop_map(|(at, value)| Mutation::Length { at, value }),
    ]
}

fn apply(data: &mut Vec<u8>, m: &Mutation) {
    let pos = |at: f64, len: usize| ((len as f64) * at) as usize;
    match m {
        Mutation::Flip { at, bit } => {
            if !data.is_empty() {
                let i = pos(*at, data.len()).min(data.len() - 1);
                data[i] ^= 1 << bit;
            }
        }
        Mutation::Cut { at } => data.truncate(pos(*at, data.len())),
        Mutation::Insert { at, bytes } => {
            let i = pos(*at, data.len());
            data.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let i = pos(*at, data.len());
            let end = (i + len).min(data.len());
            data.drain(i..end);
        }
        Mutation::Duplicate { at, len } => {
            let i = pos(*at, data.len());
            let end = (i + len).min(data.len());
            let copy = data[i..end].to_vec();
            data.splice(end..end, copy);
        }
        Mutation::Length { at, value } => {
            if data.len() >= 4 {
                let i = pos(*at, data.len()).min(data.len() - 4);
                data[i..i + 4].copy_from_slice(&value.to_be_bytes());
            }
        }
    }
}

/// Every path under `dir` is a regular file or a directory inside it.
fn assert_contained(dir: &Path, root: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert!(
            !meta.file_type().is_symlink(),
            "a link was extracted: {p:?}"
        );
        assert!(p.starts_with(root), "{p:?} outside {root:?}");
        if meta.is_dir() {
            assert_contained(&p, root);
        }
    }
}

fn extract_checked(tar: &[u8]) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.tar");
    std::fs::write(&file, tar).unwrap();
    let dest = tmp.path().join("out");
    let _ = prova_k8s::archive::extract(&file, &dest);
    assert_contained(&dest, &dest);
}

#[test]
fn fuzz_collector_stream() {
    let strategy = (
        0..SEED_DIRS.len(),
        proptest::collection::vec(mutation(), 0..4),
        proptest::collection::vec(1..70_000usize, 1..8),
    );
    fuzz(
        "collector stream",
        4096,
        strategy,
        |(seed, mutations, chunks)| {
            let mut data = seed_streams()[seed].clone();
            for m in &mutations {
                apply(&mut data, m);
            }
            let mut decoder = Decoder::new(Vec::new());
            let mut rest = &data[..];
            let mut failed = false;
            for size in chunks.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*size).min(rest.len());
                if decoder.push(&rest[..n]).is_err() {
                    failed = true;
                    break;
                }
                rest = &rest[n..];
            }
            let decoded = if failed { None } else { decoder.finish().ok() };
            if mutations.is_empty() {
                assert!(decoded.is_some(), "an intact stream must decode");
            }
            if let Some((trailer, tar)) = decoded {
                assert_eq!(hex(&Sha256::digest(&tar)), trailer.sha256);
                assert_eq!(tar.len() as u64, trailer.tar_bytes);
                extract_checked(&tar);
            }
        },
    );
}

#[test]
fn fuzz_results_archive_extraction() {
    let strategy = (
        0..SEED_DIRS.len(),
        proptest::collection::vec(mutation(), 1..4),
    );
    fuzz("results archive", 1024, strategy, |(seed, mutations)| {
        let mut tar = seed_tars()[seed].clone();
        for m in &mutations {
            apply(&mut tar, m);
        }
        extract_checked(&tar);
    });
}
