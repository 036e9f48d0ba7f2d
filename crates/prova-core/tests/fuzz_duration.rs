//! Fuzzing Go duration strings: nothing panics, every accepted duration is
//! at most Go's maximum, and whole-number inputs equal an exact model
//! (integer nanoseconds) within float rounding.
//!
//! Bounded by default (see `fuzz_support`); `PROVA_FUZZ_CASES=100000` for a
//! longer run.

mod fuzz_support;

use std::time::Duration;

use proptest::prelude::*;
use prova_core::duration::{MAX_DURATION, parse_go_duration};

const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

#[test]
fn random_durations_never_panic() {
    prova_fuzz::fuzz(
        "fuzz_duration (text)",
        5_000,
        prop_oneof![
            any::<String>(),
            "[+\\-]?[0-9.]{0,30}(ns|us|µs|ms|s|m|h|x|)([0-9.]{0,30}(ns|us|ms|s|m|h|))*",
        ],
        |text| {
            if let Ok(d) = parse_go_duration(&text) {
                assert!(d <= MAX_DURATION, "{text:?} gave {d:?}");
            }
        },
    );
}

#[test]
fn whole_number_durations_match_an_exact_model() {
    let term = (0u64..=u64::MAX >> 4, 0..UNITS.len());
    prova_fuzz::fuzz(
        "fuzz_duration (model)",
        5_000,
        prop::collection::vec(
            prop_oneof![term.clone(), (0u64..100_000, 0..UNITS.len())],
            1..4,
        ),
        |terms| {
            let text: String = terms
                .iter()
                .map(|(n, u)| format!("{n}{}", UNITS[*u].0))
                .collect();
            let exact: u128 = terms.iter().map(|(n, u)| *n as u128 * UNITS[*u].1).sum();
            match parse_go_duration(&text) {
                Ok(d) => {
                    let got = d.as_nanos();
                    // f64 carries 53 bits: allow a relative error of 2^-50.
                    let tolerance = (exact >> 50) + 1_000;
                    assert!(
                        got.abs_diff(exact) <= tolerance,
                        "{text}: got {got} ns, want {exact}"
                    );
                    assert!(d <= MAX_DURATION);
                }
                Err(e) => {
                    // Only too large is a fair refusal, and only near or
                    // past the maximum.
                    assert!(e.contains("too large"), "{text}: {e}");
                    let max = MAX_DURATION.as_nanos();
                    assert!(exact > max - (max >> 40), "{text} refused: {e}");
                }
            }
        },
    );
    let _ = Duration::ZERO;
}
