//! Fuzzing how a container log is read back after dropped connections: a
//! log of random lines (shared timestamps, empty and multi-byte lines, an
//! unfinished last line) is served as the kubelet serves it (`sinceTime` at
//! second precision, `timestamps=true`, an unfinished line held back while
//! following), in random chunks, cut at random points, and re-opened from
//! the reader's cursor; then read once more without `follow`. Every line
//! must come out exactly once, in order, the last one even without its
//! newline.
//!
//! Bounded by default (see `fuzz_support`); `PROVA_FUZZ_CASES=100000` for a
//! longer run.

use jiff::Timestamp;
use proptest::prelude::*;
use prova_fuzz::fuzz;
use prova_k8s::logs::lines::{LogCursor, Session};

#[derive(Debug, Clone)]
struct Entry {
    /// Nanoseconds after the log's start; entries are in time order.
    at: i64,
    text: String,
}

/// Lines and their times: the time grows by 0 (shared), sub-second or
/// whole-second steps.
fn log() -> impl Strategy<Value = (Vec<Entry>, bool)> {
    let text = prop_oneof![
        Just(String::new()),
        "[a-z 0-9]{1,40}",
        "[é€😀 x\t\r]{1,12}",
        "[0-9T:.Z -]{1,40}",
    ];
    let step = prop_oneof![Just(0i64), 1..1_000_000_000i64, Just(1_000_000_000i64)];
    (
        proptest::collection::vec((step, text), 0..120),
        any::<bool>(),
    )
        .prop_map(|(raw, eol)| {
            let mut at = 0;
            let entries = raw
                .into_iter()
                .map(|(d, text)| {
                    at += d;
                    Entry { at, text }
                })
                .collect();
            (entries, eol)
        })
}

fn stamp(at: i64) -> Timestamp {
    Timestamp::from_nanosecond(1_714_557_600_000_000_000i128 + at as i128).unwrap()
}

/// `RFC3339NanoFixed`, as the kubelet writes it.
fn kubelet_time(t: Timestamp) -> String {
    format!(
        "{}.{:09}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_nanosecond()
    )
}

/// What the server sends for one request.
fn serve(entries: &[Entry], last_eol: bool, since: Option<Timestamp>, follow: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let t = stamp(e.at);
        if since.is_some_and(|s| t < s) {
            continue;
        }
        let unfinished = i + 1 == entries.len() && !last_eol;
        if unfinished && follow {
            break;
        }
        out.extend_from_slice(kubelet_time(t).as_bytes());
        out.push(b' ');
        out.extend_from_slice(e.text.as_bytes());
        if !unfinished {
            out.push(b'\n');
        }
    }
    out
}

fn read(
    body: &[u8],
    cut_at: Option<f64>,
    chunks: &[usize],
    cursor: &mut LogCursor,
    follow: bool,
    out: &mut String,
) {
    let end = cut_at.map_or(body.len(), |f| ((body.len() as f64) * f) as usize);
    let mut session = Session::new(cursor);
    let mut rest = &body[..end];
    for size in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = (*size).min(rest.len());
        for line in session.push(&rest[..n], cursor) {
            out.push_str(&line.text);
        }
        rest = &rest[n..];
    }
    if let Some(line) = session.end(cursor, !follow) {
        out.push_str(&line.text);
    }
}

#[test]
fn fuzz_log_resume() {
    let strategy = (
        log(),
        proptest::collection::vec(0.0..1.0f64, 0..6),
        proptest::collection::vec(1..300usize, 1..6),
    );
    fuzz(
        "log resume",
        1024,
        strategy,
        |((entries, last_eol), cuts, chunks)| {
            let mut expected: String = entries.iter().map(|e| format!("{}\n", e.text)).collect();
            if !last_eol && !entries.is_empty() {
                expected.pop();
            }
            let mut cursor = LogCursor::default();
            let mut out = String::new();
            // Followed reads that break at random points, each re-opened at
            // the cursor; then the final read.
            for cut in &cuts {
                let body = serve(&entries, last_eol, cursor.since_time(), true);
                read(&body, Some(*cut), &chunks, &mut cursor, true, &mut out);
            }
            let body = serve(&entries, last_eol, cursor.since_time(), false);
            read(&body, None, &chunks, &mut cursor, false, &mut out);
            assert_eq!(out, expected);
        },
    );
}
