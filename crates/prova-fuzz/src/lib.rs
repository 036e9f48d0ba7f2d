//! The runner of prova's fuzz tests: proptest with a fixed seed (a CI
//! failure reproduces), a case count and a time budget (CI stays bounded),
//! and a printed count of the cases tried (the closing notes quote it).
//!
//! Every crate's `tests/fuzz_*.rs` calls [`fuzz`] or [`try_fuzz`]; the
//! environment sets longer runs for all of them alike:
//!
//! - `PROVA_FUZZ_CASES=N`: cases per property (each test has its default);
//! - `PROVA_FUZZ_SECS=S`: time budget per property (default 30 s);
//! - `PROVA_FUZZ_SEED=N`: explore other inputs than the default seed.
//!
//! `PROVA_FUZZ_CASES=100000 PROVA_FUZZ_SECS=900 cargo test -p prova-core --test fuzz_descriptor -- --nocapture`

use std::cell::Cell;
use std::time::{Duration, Instant};

use proptest::strategy::Strategy;
pub use proptest::test_runner::TestCaseError;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Default time budget per property.
const BUDGET_SECS: u32 = 30;
/// Cases per seeded runner: a runner generates all its inputs up front, so
/// running in rounds lets the budget stop generation too.
const ROUND: u32 = 250;

/// Runs `check` on up to `default_cases` inputs from `strategy` (or
/// `PROVA_FUZZ_CASES`) within the time budget. A panicking case is shrunk
/// and reported with its input.
pub fn fuzz<S: Strategy>(name: &str, default_cases: u32, strategy: S, check: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    try_fuzz(name, default_cases, strategy, |input| {
        check(input);
        Ok(())
    });
}

/// [`fuzz`] for checks that fail with `prop_assert!` or
/// [`TestCaseError::fail`] rather than a panic.
pub fn try_fuzz<S: Strategy>(
    name: &str,
    default_cases: u32,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let cases = env_number("PROVA_FUZZ_CASES").unwrap_or(default_cases);
    let budget = Duration::from_secs(env_number("PROVA_FUZZ_SECS").unwrap_or(BUDGET_SECS).into());
    let seed = env_number("PROVA_FUZZ_SEED").unwrap_or(0x5eed);
    let started = Instant::now();
    let ran = Cell::new(0u64);
    let mut round = 0u32;
    while ran.get() < u64::from(cases) && started.elapsed() < budget {
        let config = Config {
            cases: ROUND.min(cases - ran.get() as u32),
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
            check(input)
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
    std::env::var(key).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_cases_asked_for() {
        let n = Cell::new(0);
        fuzz("count", 600, 0..10u32, |_| n.set(n.get() + 1));
        assert_eq!(n.get(), 600);
    }

    #[test]
    #[should_panic(expected = "failing")]
    fn a_failing_case_fails_the_test() {
        try_fuzz("failing", 100, 0..10u32, |v| {
            if v > 5 {
                Err(TestCaseError::fail("too big"))
            } else {
                Ok(())
            }
        });
    }
}
