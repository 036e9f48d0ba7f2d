//! Bounded fuzzing of the audit reader (proptest, stable Rust): random and
//! mutated audit lines seeded from the real events in
//! `../shared/corpus/k8s/audit`, `EventList`s, and deep nesting.
//!
//! Properties: nothing panics or overflows the stack; on valid lines the
//! fast scanner (default mode) and the full parser (`--strict-json`) agree;
//! whenever the full parser accepts a line, the fast path returns the same
//! event; the live mapping (`live::map_body`) sees the same events as the
//! reader.
//!
//! `PROVA_FUZZ_CASES` sets the cases per property (default 1500, about
//! 15 s in a debug build); e.g. `PROVA_FUZZ_CASES=100000 cargo test -p
//! prova-coverage --test fuzz_audit --release -- --nocapture`. The number of
//! cases tried is printed.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use proptest::prelude::*;
use prova_coverage::audit::{
    AuditEvent, EventError, for_each_event, parse_event, parse_event_strict,
};
use prova_coverage::live::{Mapped, map_body};
use prova_coverage::report::MapContext;
use prova_coverage::spec::Spec;
use prova_fuzz::try_fuzz;
use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/k8s")
}

/// Real audit events (compact JSON objects) from the corpus.
fn seeds() -> &'static Vec<Value> {
    static SEEDS: OnceLock<Vec<Value>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut out = Vec::new();
        let mut files = vec![corpus().join("audit/audit2rbac/demo.log")];
        for d in ["audit/falco-k8s_audit", "audit/apisnoop-testdata"] {
            let mut more: Vec<PathBuf> = std::fs::read_dir(corpus().join(d))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            more.sort();
            files.extend(more);
        }
        for f in files {
            let text = std::fs::read_to_string(f).unwrap();
            for v in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
                match v {
                    Ok(Value::Array(a)) => out.extend(a.into_iter().filter(Value::is_object)),
                    Ok(v @ Value::Object(_)) => out.push(v),
                    _ => {}
                }
            }
        }
        assert!(out.len() > 60);
        out
    })
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::from_file(&corpus().join("openapi/v1.36/swagger.json")).unwrap())
}

/// A comparable summary of one body's events, as `(item, verb, uri, ua)` or
/// `(item, "error")`.
fn events(body: &[u8], strict: bool) -> Vec<String> {
    let mut out = Vec::new();
    for_each_event(body, strict, &mut |item,
                                       _,
                                       r: Result<
        AuditEvent<'_>,
        EventError,
    >| {
        out.push(match r {
            Ok(ev) => format!(
                "{item} {:?} {:?} {:?}",
                ev.verb.as_deref(),
                ev.request_uri.as_deref(),
                ev.user_agent.as_deref()
            ),
            Err(_) => format!("{item} error"),
        })
    });
    out
}

/// Strings that stress the scanner: escapes, unicode, control characters,
/// brackets and quotes.
fn tricky_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z/{}?&=.-]{0,40}",
        "\\PC{0,30}",
        prop::collection::vec(
            prop_oneof![
                Just("\"".to_string()),
                Just("\\".to_string()),
                Just("\u{1b}[31m".to_string()),
                Just("\r\n\t".to_string()),
                Just("é😀\u{2028}".to_string()),
                Just("[{".to_string()),
                Just("}]".to_string()),
                "[a-z]{1,5}",
            ],
            0..8
        )
        .prop_map(|v| v.concat()),
    ]
}

fn nested(depth: usize, arrays: bool) -> String {
    if arrays {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    } else {
        format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))
    }
}

/// A valid event line built from a real one: fields dropped, replaced,
/// re-ordered, bodies nested.
fn valid_event() -> impl Strategy<Value = String> {
    (
        0..seeds().len(),
        prop::option::of(tricky_string()),
        prop::option::of(tricky_string()),
        prop::option::of(tricky_string()),
        prop::collection::vec(any::<bool>(), 3),
        0usize..200,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(i, verb, uri, ua, drop, depth, arrays, reverse)| {
            let mut v = seeds()[i].clone();
            let o = v.as_object_mut().unwrap();
            for (key, new, drop) in [
                ("verb", verb, drop[0]),
                ("requestURI", uri, drop[1]),
                ("userAgent", ua, drop[2]),
            ] {
                if drop {
                    o.remove(key);
                } else if let Some(s) = new {
                    o.insert(key.into(), Value::String(s));
                }
            }
            if depth > 0 {
                let body: Value =
                    serde_json::from_str(&nested(depth.min(120), arrays)).unwrap_or(Value::Null);
                o.insert("requestObject".into(), body);
            }
            let mut pairs: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), v))
                .collect();
            if reverse {
                pairs.reverse();
            }
            format!("{{{}}}", pairs.join(","))
        })
}

/// A corpus line with random byte edits.
fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
    (
        0..seeds().len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..12),
    )
        .prop_map(|(i, edits)| {
            let mut b = serde_json::to_vec(&seeds()[i]).unwrap();
            for (at, byte, op) in edits {
                if b.is_empty() {
                    b.push(byte);
                    continue;
                }
                let k = at.index(b.len());
                let specials = b"{}[]\",:\\ \n";
                let special = specials[byte as usize % specials.len()];
                match op {
                    0 => b[k] = byte,
                    1 => b[k] = special,
                    2 => {
                        b.remove(k);
                    }
                    _ => b.insert(k, special),
                }
            }
            b
        })
}

#[test]
fn valid_lines_agree_between_fast_and_strict() {
    try_fuzz(
        "fuzz_audit valid lines (fast == strict)",
        1500,
        valid_event(),
        move |line| {
            let b = line.as_bytes();
            let fast = parse_event(b);
            let strict = parse_event_strict(b);
            prop_assert_eq!(&fast, &strict, "{}", line);
            prop_assert_eq!(events(b, false), events(b, true));
            Ok(())
        },
    );
}

#[test]
fn event_lists_agree_with_their_events() {
    let ctx = MapContext::new(spec(), &[]);
    let strategy = (prop::collection::vec(valid_event(), 0..12), any::<bool>());
    try_fuzz(
        "fuzz_audit EventLists (list == its events)",
        1500,
        strategy,
        move |(lines, in_array)| {
            let list = format!(
                r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
                lines.join(",")
            );
            let body = if in_array { format!("[{list}]") } else { list };
            // One at a time, then as a list: the same events, items 1..n.
            let want: Vec<String> = lines
                .iter()
                .enumerate()
                .flat_map(|(i, l)| {
                    events(l.as_bytes(), false)
                        .into_iter()
                        .map(move |e| format!("{}{}", i + 1, &e[1..]))
                })
                .collect();
            for strict in [false, true] {
                prop_assert_eq!(&events(body.as_bytes(), strict), &want);
            }
            let mapped = map_body(&ctx, body.as_bytes(), false);
            prop_assert_eq!(mapped.len(), want.len());
            for (m, w) in mapped.iter().zip(&want) {
                prop_assert_eq!(
                    matches!(m.mapped, Mapped::Malformed(_)),
                    w.ends_with("error")
                );
            }
            Ok(())
        },
    );
}

#[test]
fn mutated_and_random_lines_never_panic() {
    let ctx = MapContext::new(spec(), &[]);
    let strategy = prop_oneof![
        3 => mutated_line(),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => prop::collection::vec(prop::sample::select(b"{}[]\",:\\ 0a\n".to_vec()), 0..300),
    ];
    try_fuzz(
        "fuzz_audit mutated/random lines (no panic)",
        1500,
        strategy,
        move |b| {
            let strict = parse_event_strict(&b);
            let fast = parse_event(&b);
            // Whatever the full parser accepts, the fast path reads the same.
            if strict.is_ok() {
                prop_assert_eq!(&fast, &strict);
            }
            let _ = events(&b, false);
            let _ = events(&b, true);
            let _ = map_body(&ctx, &b, true);
            Ok(())
        },
    );
}

#[test]
fn deep_nesting_never_overflows() {
    let strategy = (1usize..60_000, any::<bool>(), 0u8..4, any::<bool>());
    // Deep inputs are big: fewer cases, same bound on time.
    try_fuzz(
        "fuzz_audit deep nesting (no overflow)",
        188,
        strategy,
        move |(depth, arrays, wrap, close)| {
            let mut deep = nested(depth, arrays);
            if !close {
                deep.truncate(deep.len() / 2 + 1);
            }
            let body = match wrap {
                0 => deep,
                1 => format!(r#"{{"verb":"get","requestURI":"/x","requestObject":{deep}}}"#),
                2 => format!(r#"{{"requestObject":{deep},"verb":"get","requestURI":"/x"}}"#),
                _ => format!(r#"{{"kind":"EventList","items":[{deep}]}}"#),
            };
            for strict in [false, true] {
                let ev = events(body.as_bytes(), strict);
                prop_assert!(!ev.is_empty());
            }
            Ok(())
        },
    );
}
