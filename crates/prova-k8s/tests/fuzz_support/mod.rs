//! Shared by this crate's `fuzz_*` tests: a bounded proptest run with a
//! fixed seed that prints how many cases it tried.
//!
//! Defaults keep each test to a few seconds in a debug build. Longer:
//! `PROVA_FUZZ_CASES=100000 PROVA_FUZZ_SECS=600 cargo test -p prova-k8s --test fuzz_collector_stream -- --nocapture`
//! (`PROVA_FUZZ_SEED=n` explores other inputs).

#![allow(dead_code)] // each fuzz test binary uses part of this

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Runs `check` on up to `default_cases` inputs (`PROVA_FUZZ_CASES`
/// overrides), within `PROVA_FUZZ_SECS` (default 20 s). A failing case is
/// reported shrunk.
pub fn fuzz<S: Strategy>(name: &str, default_cases: u32, strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let cases = env_number("PROVA_FUZZ_CASES").unwrap_or(default_cases);
    let budget = Duration::from_secs(env_number("PROVA_FUZZ_SECS").unwrap_or(20).into());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 1_000,
        ..Config::default()
    };
    let seed = env_number("PROVA_FUZZ_SEED").unwrap_or(0x6b38);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..4].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let started = Instant::now();
    let ran = Cell::new(0u64);
    let result = runner.run(&strategy, |input| {
        if started.elapsed() <= budget {
            ran.set(ran.get() + 1);
            check(input);
        }
        Ok(())
    });
    println!(
        "{name}: {} cases in {:.1} s (seed {seed})",
        ran.get(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

fn env_number(key: &str) -> Option<u32> {
    std::env::var(key).ok()?.trim().parse().ok()
}

/// `shared/corpus/<rel>` beside the repository.
pub fn corpus(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus")
        .join(rel)
}
