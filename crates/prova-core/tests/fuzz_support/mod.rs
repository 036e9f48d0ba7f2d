//! Shared by the `fuzz_*` tests: a bounded proptest run that counts and
//! prints the cases it tried.
//!
//! Defaults keep each fuzz test to a few seconds in a debug build (CI runs
//! them with every other test). Longer runs:
//! `PROVA_FUZZ_CASES=100000 PROVA_FUZZ_SECS=600 cargo test -p prova-core --test fuzz_descriptor -- --nocapture`.

#![allow(dead_code)] // each fuzz test binary uses part of this

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Runs `check` on up to `default_cases` inputs from `strategy`
/// (`PROVA_FUZZ_CASES` overrides), stopping early at the time budget
/// (`PROVA_FUZZ_SECS`, default 20 s). Panics (a failed case) are reported
/// with the shrunk input. Prints how many cases ran.
///
/// Runs in rounds of [`ROUND`] cases, each with its own seeded runner, so
/// the budget stops generation too (a runner generates all its cases).
pub fn fuzz<S: Strategy>(name: &str, default_cases: u32, strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    const ROUND: u32 = 250;
    let cases = env_number("PROVA_FUZZ_CASES").unwrap_or(default_cases);
    let budget = Duration::from_secs(env_number("PROVA_FUZZ_SECS").unwrap_or(20).into());
    // A fixed seed by default so a CI failure reproduces; PROVA_FUZZ_SEED
    // explores other inputs.
    let seed = env_number("PROVA_FUZZ_SEED").unwrap_or(0x5eed_u32);
    let started = Instant::now();
    let ran = Cell::new(0u64);
    let mut round = 0u32;
    while ran.get() < u64::from(cases) && started.elapsed() < budget {
        let this_round = ROUND.min(cases - ran.get() as u32);
        let config = Config {
            cases: this_round,
            failure_persistence: None,
            max_shrink_iters: 2_000,
            ..Config::default()
        };
        let mut seed_bytes = [0u8; 32];
        seed_bytes[..4].copy_from_slice(&seed.to_le_bytes());
        seed_bytes[4..8].copy_from_slice(&round.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
        let mut runner = TestRunner::new_with_rng(config, rng);
        let result = runner.run(&strategy, |input| {
            ran.set(ran.get() + 1);
            check(input);
            Ok(())
        });
        if let Err(e) = result {
            panic!("{name} (seed {seed}, round {round}): {e}");
        }
        round += 1;
    }
    println!(
        "{name}: {} cases in {:.1} s (seed {seed}{})",
        ran.get(),
        started.elapsed().as_secs_f64(),
        if ran.get() < u64::from(cases) {
            format!(", stopped by the {} s budget", budget.as_secs())
        } else {
            String::new()
        }
    );
}

fn env_number(key: &str) -> Option<u32> {
    std::env::var(key).ok().and_then(|v| v.trim().parse().ok())
}

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
