//! Fuzzing the JUnit reader: random, generated and mutated JUnit (seeded
//! from `shared/corpus/junit`) never panics, never recurses past its depth
//! bound, keeps its size bounds, and whatever it reads is written back by
//! the `junit` reporter as well-formed XML (checked by roxmltree).
//!
//! Bounded by default (a few thousand cases, 25 s at most per test); see
//! `support/fuzz.rs` for longer runs. Each test prints the cases it tried.

mod support;

use std::path::PathBuf;

use proptest::prelude::*;
use prova_fuzz::fuzz;
use prova_results::TestCaseResult;
use prova_results::junit::{MAX_CASE_SECS, MAX_NAME_BYTES, parse_junit};
use support::mutation::{mutate, mutation};
use support::{events_for, render_checked};

/// Corpus files up to this size are mutation seeds (the 1.7 MB Kubernetes
/// report would make each case slow in a debug build; it is read whole by
/// `tests/corpus.rs`).
const MAX_SEED_BYTES: u64 = 256 * 1024;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/junit");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the JUnit corpus {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .filter(|p| p.metadata().is_ok_and(|m| m.len() <= MAX_SEED_BYTES))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 40, "only {} corpus seeds", seeds.len());
    seeds
}

/// Pieces that stress the reader when spliced in anywhere.
const FRAGMENTS: &[&[u8]] = &[
    b"<testsuite>",
    b"</testsuite>",
    b"<testsuite name='x'><testsuite><testsuite><testsuite>",
    b"<testcase name='n' time='1e20'>",
    b"<testcase time='NaN'/>",
    b" time=\"-1\" ",
    b" time=\"inf\" ",
    b"<failure message='m'>",
    b"<![CDATA[ ]]> ]]>",
    b"<!--",
    b"-->",
    b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
    b"&e;",
    b"&#0;&#xFFFE;&#x1F;",
    b"\xef\xbf\xbe\xef\xbf\xbf",
    b"\x00\x01\x0b\x1b[31m",
    b"<system-out>",
    b"</system-out>",
    b"<flakyFailure/>",
    b"<rerunFailure/>",
    b"\xff\xfe",
];

/// What every read result must respect, and its round trip through the
/// reporter.
fn check_cases(cases: &[TestCaseResult]) {
    for c in cases {
        assert!(
            c.name.len() <= MAX_NAME_BYTES + 40,
            "name {} bytes",
            c.name.len()
        );
        assert!(
            c.suite.len() <= MAX_NAME_BYTES + 40,
            "suite {} bytes",
            c.suite.len()
        );
        if let Some(t) = c.time_secs {
            assert!((0.0..=MAX_CASE_SECS).contains(&t), "time {t}");
        }
    }
    // The reporter as `prova run --junit` runs it: at most a few hundred
    // cases per round trip keep a case fast.
    let sample: Vec<_> = cases.iter().take(300).cloned().collect();
    render_checked(&events_for("target", &sample));
}

fn read(bytes: &[u8]) {
    if let Ok(cases) = parse_junit(bytes, "fuzz/junit.xml") {
        check_cases(&cases);
    }
}

#[test]
fn mutated_corpus_files() {
    let seeds = seeds();
    let n = seeds.len();
    fuzz(
        "fuzz_junit (mutated corpus)",
        3_000,
        (0..n, proptest::collection::vec(mutation(FRAGMENTS), 1..8)),
        |(i, mutations)| read(&mutate(&seeds[i].1, &mutations)),
    );
}

#[test]
fn random_bytes() {
    fuzz(
        "fuzz_junit (random bytes)",
        3_000,
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            // Random bytes behind a JUnit root reach the parser proper.
            proptest::collection::vec(any::<u8>(), 0..512).prop_map(|b| {
                let mut v = b"<testsuites><testsuite name='s'>".to_vec();
                v.extend(b);
                v
            }),
        ],
        |bytes| read(&bytes),
    );
}

/// Generated JUnit: any characters in names, messages and output (escaped
/// as XML would carry them, character references included), any time
/// text, nesting on either side of the bound.
#[test]
fn generated_junit() {
    // Any code point (`any::<String>()` holds printable ones only).
    let text = proptest::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter);
    let time = prop_oneof![
        Just("1e20".to_string()),
        Just("NaN".to_string()),
        Just("-1".to_string()),
        Just("inf".to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        "[0-9.eE+-]{0,12}",
    ];
    let case = (text.clone(), text.clone(), text, time, 0usize..4);
    fuzz(
        "fuzz_junit (generated)",
        3_000,
        (proptest::collection::vec(case, 0..6), 1usize..80),
        |(cases, depth)| {
            let mut xml = String::from("<testsuites name='r'>");
            xml.push_str(&"<testsuite name='s'>".repeat(depth));
            for (name, message, out, time, kind) in &cases {
                let body = [
                    "",
                    "<failure message='M'/>",
                    "<error>O</error>",
                    "<skipped/>",
                ][*kind]
                    .replace('M', &escape(message))
                    .replace('O', &escape(out));
                xml.push_str(&format!(
                    "<testcase name='{}' time='{}'>{body}<system-out>{}</system-out></testcase>",
                    escape(name),
                    escape(time),
                    escape(out)
                ));
            }
            xml.push_str(&"</testsuite>".repeat(depth));
            xml.push_str("</testsuites>");
            // <testsuites>, the suites (cases are read in a suite only),
            // then <testcase> and its children.
            let levels = 1 + depth + if cases.is_empty() { 0 } else { 2 };
            let too_deep = levels > prova_results::junit::MAX_JUNIT_DEPTH;
            match parse_junit(xml.as_bytes(), "gen.xml") {
                Ok(read) => {
                    assert!(!too_deep, "{levels} levels read");
                    assert_eq!(read.len(), cases.len());
                    check_cases(&read);
                }
                Err(e) => {
                    // Only nesting past the bound, or a character XML
                    // refuses even as a reference, may fail the read.
                    let msg = e.to_string();
                    let depth_error = matches!(e, prova_results::ResultsError::TooDeep { .. });
                    assert_eq!(depth_error, too_deep, "{levels} levels: {msg}");
                    assert!(too_deep || msg.contains("invalid JUnit XML"), "{msg}");
                }
            }
        },
    );
}

/// Text as an attribute or element value: markup escaped, and characters
/// a document cannot hold raw written as references.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push_str(&format!("&#x{:X};", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}
