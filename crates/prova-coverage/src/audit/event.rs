//! The three fields of an audit event that coverage needs.
//!
//! Only `verb`, `requestURI` and `userAgent` are deserialized; everything
//! else — `requestObject`, `responseObject`, annotations — is skipped by the
//! parser without building values. The same struct reads `audit.k8s.io/v1`,
//! `v1beta1` and events without `apiVersion`, since all three spell these
//! fields the same way. Strings are borrowed from the input unless they
//! contain escapes (Go escapes `&` in query strings as `\u0026`).

use std::borrow::Cow;

use serde::Deserialize;

use super::depth::{MAX_DEPTH, SONIC_MAX_DEPTH, nesting_depth};

/// One audit event, borrowing from the line it was read from.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct AuditEvent<'a> {
    /// `verb` (`get`, `list`, `create`, …).
    #[serde(borrow, default)]
    pub verb: Option<Str<'a>>,
    /// `requestURI`: path and query.
    #[serde(borrow, default, rename = "requestURI")]
    pub request_uri: Option<Str<'a>>,
    /// `userAgent`.
    #[serde(borrow, default, rename = "userAgent")]
    pub user_agent: Option<Str<'a>>,
}

/// A string borrowed from the input when it has no escapes, owned otherwise.
/// (serde's own `Cow<str>` always copies when wrapped in `Option`.)
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Str<'a>(pub Cow<'a, str>);

impl std::ops::Deref for Str<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Why a line is not an event.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    /// Not JSON / not an object.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// JSON object without `requestURI`.
    #[error("not an audit event: no requestURI")]
    NoRequestUri,
    /// JSON object without `verb`.
    #[error("not an audit event: no verb")]
    NoVerb,
    /// Nested deeper than the parser accepts (see [`MAX_DEPTH`](super::depth::MAX_DEPTH)).
    #[error("nested deeper than {limit} levels (at column {column})")]
    TooDeep {
        /// The depth limit.
        limit: usize,
        /// 1-based byte column where the limit was exceeded.
        column: usize,
    },
    /// A line longer than the line cap; it was skipped unread.
    #[error("line of {len} bytes is longer than the {cap}-byte cap (--max-line); skipped")]
    TooLong {
        /// Length of the line in bytes (without its newline).
        len: u64,
        /// The cap.
        cap: u64,
    },
}

/// Parses one JSON line into an event: the fast top-level scanner
/// ([`scan_event`](super::scan::scan_event)) first, the full parser when the
/// scanner declines.
pub fn parse_event(line: &[u8]) -> Result<AuditEvent<'_>, EventError> {
    match super::scan::scan_event(line) {
        Some(ev) => check_event(ev),
        None => parse_event_strict(line),
    }
}

/// An event needs `requestURI` and `verb`.
pub(crate) fn check_event(ev: AuditEvent<'_>) -> Result<AuditEvent<'_>, EventError> {
    if ev.request_uri.is_none() {
        return Err(EventError::NoRequestUri);
    }
    if ev.verb.is_none() {
        return Err(EventError::NoVerb);
    }
    Ok(ev)
}

/// Parses one JSON line with a full parser (validates the whole line, bodies
/// included): `sonic-rs`, or `serde_json` for lines nested deeper than
/// [`SONIC_MAX_DEPTH`](super::depth::SONIC_MAX_DEPTH). Lines nested deeper
/// than [`MAX_DEPTH`](super::depth::MAX_DEPTH) are refused unparsed.
pub fn parse_event_strict(line: &[u8]) -> Result<AuditEvent<'_>, EventError> {
    check_event(parse_full(line)?)
}

/// Parses the whole of `line` into `T` with the full parser, after the
/// depth check: the fields of an event that [`AuditEvent`] leaves out (the
/// live sink's `auditID`, `stage` and timestamps) are read this way.
pub fn parse_full<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, EventError> {
    // sonic-rs skips ignored values recursively, without a limit and with
    // large frames: deep texts go to serde_json (see `depth`).
    let depth =
        nesting_depth(line, MAX_DEPTH, SONIC_MAX_DEPTH).map_err(|e| EventError::TooDeep {
            limit: e.limit,
            column: e.offset + 1,
        })?;
    if depth <= SONIC_MAX_DEPTH {
        sonic_rs::from_slice(line).map_err(|e| EventError::Json(short_error(&e.to_string())))
    } else {
        serde_json::from_slice(line).map_err(|e| EventError::Json(short_error(&e.to_string())))
    }
}

/// First line of a parser message, without the echo of the input.
fn short_error(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg);
    let mut s: String = first.chars().take(200).collect();
    if s.len() < first.len() {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_and_escaped() {
        let line = br#"{"kind":"Event","verb":"get","requestURI":"/api/v1/pods?a=1\u0026b=2","userAgent":"e2e.test -- x","requestObject":{"verb":"nested","a":[1,2,{"b":"c"}]}}"#;
        let ev = parse_event(line).unwrap();
        assert_eq!(ev.verb.as_deref(), Some("get"));
        assert!(matches!(ev.verb, Some(Str(Cow::Borrowed(_)))));
        assert!(matches!(ev.request_uri, Some(Str(Cow::Owned(_)))));
        assert_eq!(ev.request_uri.as_deref(), Some("/api/v1/pods?a=1&b=2"));
        assert_eq!(ev.user_agent.as_deref(), Some("e2e.test -- x"));
    }

    #[test]
    fn deep_valid_lines_parse_on_a_small_stack() {
        // sonic-rs needs ~40 KB per level in a debug build: 100 levels
        // overflowed a 2 MiB thread before deep lines went to serde_json.
        let run = |depth: usize| {
            std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || {
                    let body = format!(
                        r#"{{"requestObject":{}1{},"verb":"get","requestURI":"/x"}}"#,
                        "[".repeat(depth),
                        "]".repeat(depth)
                    );
                    parse_event_strict(body.as_bytes()).map(|e| e.verb.map(|v| v.to_string()))
                })
                .unwrap()
                .join()
                .unwrap()
        };
        assert_eq!(run(100), Ok(Some("get".into())));
        assert_eq!(run(MAX_DEPTH - 1), Ok(Some("get".into())));
        assert!(matches!(run(MAX_DEPTH), Err(EventError::TooDeep { .. })));
    }

    #[test]
    fn errors() {
        assert!(matches!(
            parse_event(b"{\"kind\": 0}"),
            Err(EventError::NoRequestUri)
        ));
        assert!(matches!(
            parse_event(b"{\"requestURI\":\"/x\"}"),
            Err(EventError::NoVerb)
        ));
        assert!(matches!(
            parse_event(b"{\"verb\":"),
            Err(EventError::Json(_))
        ));
        assert!(matches!(parse_event(b"[1]"), Err(EventError::Json(_))));
        let ev = parse_event(br#"{"verb":"","requestURI":"/x","userAgent":null}"#).unwrap();
        assert_eq!(ev.user_agent, None);
        assert_eq!(ev.verb.as_deref(), Some(""));
    }
}
