//! Fuzzing the descriptor path: corpus descriptors, mutated, and random
//! YAML-ish text go through parse + every plugin-free check (decode, steps,
//! labels, durations, templates). Nothing may panic or overflow the stack;
//! every syntax error has a position.
//!
//! Bounded by default (see `fuzz_support`); `PROVA_FUZZ_CASES=100000` for a
//! longer run.

mod fuzz_support;

use proptest::prelude::*;
use prova_core::descriptor::{
    check_unique_labels, decode_job, decode_steps, decode_steps_document, is_steps_document,
};
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::{Format, Node, parse_document};
use prova_core::template::Template;

/// Fragments that reach the interesting paths: nesting, anchors, tags,
/// templates, durations, several documents.
const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "- ",
    "- - - ",
    ": ",
    ", ",
    "\n",
    "\n  ",
    "\n    - ",
    "\"",
    "'",
    "&a ",
    "*a",
    "&b [*a, *a] ",
    "!!int ",
    "!!str ",
    "!custom ",
    "? ",
    "---\n",
    "...\n",
    "#",
    "\t",
    "{{",
    "}}",
    "{{ .FQDN | ToUpper }}",
    "{{ StringVar \"s.x\" }}",
    "(",
    ")",
    " | ",
    "99999999999999999999h",
    "1m30s",
    "-5s",
    "0x10",
    "1e400",
    "null",
    "~",
    "true",
    "JobName",
    "TestDescriptors",
    "Steps",
    "label",
    "parameters",
    "RunInterval: ",
    "timeout: ",
    "é",
    "\u{0}",
    "\u{feff}",
    "\r\n",
];

#[derive(Debug, Clone)]
enum Mutation {
    Delete {
        at: f64,
        len: usize,
    },
    Insert {
        at: f64,
        fragment: usize,
        times: usize,
    },
    Duplicate {
        at: f64,
        len: usize,
    },
    Byte {
        at: f64,
        c: char,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0.0..1.0f64, 1..40usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (0.0..1.0f64, 0..FRAGMENTS.len(), 1..300usize).prop_map(|(at, fragment, times)| {
            Mutation::Insert {
                at,
                fragment,
                times,
            }
        }),
        (0.0..1.0f64, 1..200usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (0.0..1.0f64, any::<char>()).prop_map(|(at, c)| Mutation::Byte { at, c }),
    ]
}

/// The char boundary nearest below `at` (a fraction of the text).
fn boundary(text: &str, at: f64) -> usize {
    let mut i = ((text.len() as f64) * at) as usize;
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, m: &Mutation) {
    match *m {
        Mutation::Delete { at, len } => {
            let from = boundary(text, at);
            let to = boundary(
                text,
                ((from + len) as f64 / text.len().max(1) as f64).min(1.0),
            );
            if to > from {
                text.replace_range(from..to, "");
            }
        }
        Mutation::Insert {
            at,
            fragment,
            times,
        } => {
            let i = boundary(text, at);
            text.insert_str(i, &FRAGMENTS[fragment].repeat(times));
        }
        Mutation::Duplicate { at, len } => {
            let from = boundary(text, at);
            let to = boundary(
                text,
                ((from + len) as f64 / text.len().max(1) as f64).min(1.0),
            );
            let piece = text[from..to].to_owned();
            text.insert_str(to, &piece);
        }
        Mutation::Byte { at, c } => {
            let i = boundary(text, at);
            text.insert(i, c);
        }
    }
}

/// Parse and run every check prova-core can run without plugins.
fn check_document(text: &str, format: Format) {
    let root = match parse_document(text, format) {
        Ok(root) => root,
        Err(e) => {
            assert!(e.pos.is_some(), "syntax error without a position: {e:?}");
            return;
        }
    };
    let mut diags = Diagnostics::new(None);
    if is_steps_document(&root) {
        let steps = decode_steps_document(&root, &mut diags);
        check_templates(steps.iter().flat_map(|s| s.parameters.iter()));
        return;
    }
    let Some(job) = decode_job(&root, &mut diags) else {
        assert!(diags.has_errors());
        return;
    };
    for test in &job.tests {
        for fetcher in std::iter::once(&test.test_fetcher).chain(&test.cleanup_fetcher) {
            if let Some(steps) = fetcher.params.get_ci("Steps") {
                let steps = decode_steps(steps, &fetcher.params_path.key("Steps"), &mut diags);
                check_unique_labels(&steps, &mut diags);
                check_templates(steps.iter().flat_map(|s| s.parameters.iter()));
            }
        }
    }
    // Storing the descriptor walks the whole tree too.
    let _ = root.to_json();
    let _ = diags.into_result().map_err(|e| e.to_string());
    let _ = FieldPath::root();
}

fn check_templates<'a>(params: impl Iterator<Item = &'a prova_core::descriptor::ParamValues>) {
    for p in params {
        for v in &p.values {
            if let Err(e) = Template::parse(v) {
                assert!(e.offset <= v.len(), "{e:?} past the end of {v:?}");
            }
        }
    }
}

#[test]
fn mutated_corpus_descriptors_never_panic() {
    let corpus = fuzz_support::corpus_files();
    let n = corpus.len();
    prova_fuzz::fuzz(
        "fuzz_descriptor (mutated corpus)",
        10_000,
        (0..n, prop::collection::vec(mutation(), 1..8)),
        |(seed, mutations)| {
            let (name, text) = &corpus[seed];
            let mut text = text.clone();
            for m in &mutations {
                apply(&mut text, m);
            }
            let format = if name.ends_with(".json") {
                Format::Json
            } else {
                Format::Yaml
            };
            check_document(&text, format);
        },
    );
}

#[test]
fn random_documents_never_panic() {
    prova_fuzz::fuzz(
        "fuzz_descriptor (random text)",
        1_000,
        prop::collection::vec(
            prop_oneof![
                3 => (0..FRAGMENTS.len()).prop_map(|i| FRAGMENTS[i].to_owned()),
                1 => "[a-zA-Z0-9 :,\\-\\[\\]{}\n\"'&*!|>#.]{1,12}",
                1 => any::<String>(),
            ],
            0..200,
        ),
        |pieces| {
            let text = pieces.concat();
            check_document(&text, Format::Yaml);
            check_document(&text, Format::Json);
        },
    );
}

#[test]
fn every_corpus_descriptor_passes_the_checks_unmutated() {
    for (name, text) in fuzz_support::corpus_files() {
        let format = Format::from_path(std::path::Path::new(&name));
        let root: Node = parse_document(&text, format).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(root.as_map().is_some(), "{name}");
        check_document(&text, format);
    }
}
