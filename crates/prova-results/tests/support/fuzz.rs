//! A bounded proptest run for the `fuzz_*` tests: a fixed seed (so a CI
//! failure reproduces), a case count and a time budget, and a printed count
//! of the cases tried. Longer runs:
//! `PROVA_FUZZ_CASES=100000 PROVA_FUZZ_SECS=900 cargo test -p prova-results --test fuzz_junit -- --nocapture`
//! (`PROVA_FUZZ_SEED=N` explores other inputs).

use std::cell::Cell;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Runs `check` on up to `default_cases` inputs (or `PROVA_FUZZ_CASES`)
/// within `PROVA_FUZZ_SECS` (default 25 s); a failing case is shrunk and
/// reported.
pub fn fuzz<S: Strategy>(name: &str, default_cases: u32, strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let env = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let cases = env("PROVA_FUZZ_CASES").unwrap_or(default_cases);
    let budget = Duration::from_secs(env("PROVA_FUZZ_SECS").unwrap_or(25).into());
    let seed = env("PROVA_FUZZ_SEED").unwrap_or(0x000d_1e5e);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..4].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 1_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let started = Instant::now();
    let ran = Cell::new(0u64);
    let result = runner.run(&strategy, |input| {
        // Past the budget the remaining cases pass untried (and uncounted).
        if started.elapsed() <= budget {
            ran.set(ran.get() + 1);
            check(input);
        }
        Ok(())
    });
    println!(
        "{name}: {} cases tried in {:.1} s (seed {seed})",
        ran.get(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Byte-level mutations of a seed file.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Overwrite the byte at (position modulo length).
    Set(usize, u8),
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
    /// Remove up to n bytes from a position.
    Remove(usize, usize),
    /// Copy a range to another position (repeats structure).
    Duplicate(usize, usize, usize),
    /// Keep only the first (position modulo length) bytes.
    Truncate(usize),
}

pub fn mutation(fragments: &'static [&'static [u8]]) -> impl Strategy<Value = Mutation> {
    use proptest::prelude::*;
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (any::<usize>(), proptest::sample::select(fragments))
            .prop_map(|(p, f)| Mutation::Insert(p, f.to_vec())),
        (any::<usize>(), 1usize..512).prop_map(|(p, n)| Mutation::Remove(p, n)),
        (any::<usize>(), 1usize..2048, any::<usize>())
            .prop_map(|(a, n, b)| Mutation::Duplicate(a, n, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// `seed` with `mutations` applied in order.
pub fn mutate(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        let at = |p: usize, len: usize| if len == 0 { 0 } else { p % (len + 1) };
        match m {
            Mutation::Set(p, v) if !b.is_empty() => {
                let i = p % b.len();
                b[i] = *v;
            }
            Mutation::Set(..) => {}
            Mutation::Insert(p, bytes) => {
                let i = at(*p, b.len());
                b.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove(p, n) => {
                let i = at(*p, b.len()).min(b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Mutation::Duplicate(a, n, to) => {
                let i = at(*a, b.len()).min(b.len());
                let end = (i + n).min(b.len());
                let piece = b[i..end].to_vec();
                let j = at(*to, b.len());
                b.splice(j..j, piece);
            }
            Mutation::Truncate(p) => {
                let keep = at(*p, b.len());
                b.truncate(keep);
            }
        }
    }
    b
}
