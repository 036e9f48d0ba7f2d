//! One audit body → its events. A body is a plain event, an `EventList`
//! (`{"kind":"EventList","items":[…]}`: what kube-apiserver's audit webhook
//! sends, and what webhook receivers store, one list per line), or a JSON
//! array of either. The same function serves a line of a log file, an item
//! of a JSON document and a body POSTed to a live sink, so all of them follow
//! the same rules.
//!
//! Lists nest at most [`MAX_LIST_NESTING`] levels (an array of `EventList`s
//! of events); anything deeper is reported as malformed. The walk over list
//! and array items loops ([`skip_value`]) and checks their structure; only
//! single events reach the full parser, each after its own depth check (so
//! `--strict-json` validates every event completely, and the list envelope
//! structurally).

use super::depth::{MAX_DEPTH, check_depth};
use super::event::{AuditEvent, EventError, parse_event, parse_event_strict};
use super::scan::{skip_value, skip_ws, string_end};

/// How many list levels are opened: an array of `EventList`s of events.
pub const MAX_LIST_NESTING: usize = 2;

/// Calls `f` for every event (or unreadable item) in `body`. The first
/// argument of `f` is the 1-based item number of the event within the lists
/// of `body` (running across nested lists), or 0 when `body` is a plain
/// event; the second is the item's own text. `strict` validates every event completely (`--strict-json`).
pub fn for_each_event<'a>(
    body: &'a [u8],
    strict: bool,
    f: &mut dyn FnMut(u32, &'a [u8], Result<AuditEvent<'a>, EventError>),
) {
    let parse = if strict {
        parse_event_strict
    } else {
        parse_event
    };
    for_each_item(body, &parse, f);
}

/// [`for_each_event`] with the caller's own reading of an event (a live
/// sink reads more fields than coverage does, in the same pass). `parse`
/// gets each event's text; lists are opened by the same rules.
pub fn for_each_item<'a, T>(
    body: &'a [u8],
    parse: &dyn Fn(&'a [u8]) -> Result<T, EventError>,
    f: &mut dyn FnMut(u32, &'a [u8], Result<T, EventError>),
) {
    let mut counter = 0u32;
    expand(body, parse, 0, &mut counter, f);
}

fn expand<'a, T>(
    body: &'a [u8],
    parse: &dyn Fn(&'a [u8]) -> Result<T, EventError>,
    level: usize,
    counter: &mut u32,
    f: &mut dyn FnMut(u32, &'a [u8], Result<T, EventError>),
) {
    let mut emit = |r: Result<T, EventError>, counter: &mut u32| {
        let item = if level == 0 {
            0
        } else {
            *counter = counter.saturating_add(1);
            *counter
        };
        f(item, body, r)
    };
    let start = skip_ws(body, 0);
    let items = match body.get(start) {
        Some(b'[') if level < MAX_LIST_NESTING => array_items(body, start),
        // An `EventList` as the API server writes it (`kind` first) is cut
        // into items at once: reading it as an event first would walk
        // the whole batch once more (a live sink's every request).
        Some(b'{') if level < MAX_LIST_NESTING && starts_as_event_list(body, start) => {
            match list_items(body, start) {
                Some(items) => Some(items),
                None => return emit(parse(body), counter),
            }
        }
        Some(b'{') => match parse(body) {
            Err(EventError::NoRequestUri) if level < MAX_LIST_NESTING => {
                match list_items(body, start) {
                    Some(items) => Some(items),
                    None => return emit(Err(EventError::NoRequestUri), counter),
                }
            }
            other => return emit(other, counter),
        },
        _ => return emit(parse(body), counter),
    };
    let Some(items) = items else {
        // Broken list structure: the full parser says where.
        return emit(Err(envelope_error(body)), counter);
    };
    for (s, e) in items {
        expand(&body[s..e], parse, level + 1, counter, f);
    }
}

/// Whether the object at `b[i] == '{'` begins with `"kind":"EventList"`.
/// Only a shortcut: a list written in another order is found by the
/// general path.
fn starts_as_event_list(b: &[u8], i: usize) -> bool {
    let j = skip_ws(b, i + 1);
    let Some(rest) = b.get(j..).and_then(|r| r.strip_prefix(b"\"kind\"")) else {
        return false;
    };
    let k = skip_ws(rest, 0);
    if rest.get(k) != Some(&b':') {
        return false;
    }
    let v = skip_ws(rest, k + 1);
    rest.get(v..)
        .is_some_and(|r| r.starts_with(b"\"EventList\""))
}

/// Why a list body cannot be cut into items: too deep, or the parser's
/// message (serde_json: bounded recursion, small frames).
fn envelope_error(body: &[u8]) -> EventError {
    if let Err(e) = check_depth(body, MAX_DEPTH + MAX_LIST_NESTING) {
        return EventError::TooDeep {
            limit: e.limit,
            column: e.offset + 1,
        };
    }
    match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
        Err(e) => EventError::Json(e.to_string()),
        Ok(_) => EventError::Json("not an audit event, EventList or array of events".into()),
    }
}

/// Byte spans of the elements of the array starting at `b[i] == '['`, which
/// must be the whole of `b` (trailing whitespace aside).
fn array_items(b: &[u8], i: usize) -> Option<Vec<(usize, usize)>> {
    let (items, end) = array_spans(b, i, MAX_DEPTH)?;
    (skip_ws(b, end) == b.len()).then_some(items)
}

fn array_spans(b: &[u8], i: usize, limit: usize) -> Option<(Vec<(usize, usize)>, usize)> {
    let mut out = Vec::new();
    let mut j = skip_ws(b, i + 1);
    if b.get(j) == Some(&b']') {
        return Some((out, j + 1));
    }
    loop {
        let end = skip_value(b, j, limit)?;
        out.push((j, end));
        j = skip_ws(b, end);
        match b.get(j) {
            Some(b',') => j = skip_ws(b, j + 1),
            Some(b']') => return Some((out, j + 1)),
            _ => return None,
        }
    }
}

/// The items of an `EventList`: an object with an `items` array and neither
/// `verb` nor `requestURI`. `None` when `b` is not one.
fn list_items(b: &[u8], i: usize) -> Option<Vec<(usize, usize)>> {
    let mut items = None;
    let mut j = skip_ws(b, i + 1);
    if b.get(j) == Some(&b'}') {
        return None;
    }
    loop {
        if b.get(j) != Some(&b'"') {
            return None;
        }
        let (kend, _) = string_end(b, j)?;
        let key = &b[j + 1..kend - 1];
        j = skip_ws(b, kend);
        if b.get(j) != Some(&b':') {
            return None;
        }
        j = skip_ws(b, j + 1);
        match key {
            b"verb" | b"requestURI" => return None,
            b"items" if b.get(j) == Some(&b'[') => {
                let (spans, end) = array_spans(b, j, MAX_DEPTH)?;
                items = Some(spans);
                j = end;
            }
            _ => j = skip_value(b, j, MAX_DEPTH)?,
        }
        j = skip_ws(b, j);
        match b.get(j) {
            Some(b',') => j = skip_ws(b, j + 1),
            Some(b'}') => break,
            _ => return None,
        }
    }
    (skip_ws(b, j + 1) == b.len()).then_some(items).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(body: &[u8], strict: bool) -> Vec<String> {
        let mut out = Vec::new();
        for_each_event(body, strict, &mut |item, _, r| {
            out.push(match r {
                Ok(ev) => format!("{item}:{}", ev.request_uri.as_deref().unwrap_or("")),
                Err(e) => format!("{item}:error {e}"),
            })
        });
        out
    }

    #[test]
    fn plain_list_and_array() {
        let ev = br#"{"verb":"get","requestURI":"/a"}"#;
        let list = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[{"verb":"get","requestURI":"/a"},{"verb":"list","requestURI":"/b"},{"kind":0}]}"#;
        let array = br#" [ {"verb":"get","requestURI":"/x"} , {"kind":"EventList","items":[{"verb":"get","requestURI":"/y"}]} ] "#;
        for strict in [false, true] {
            assert_eq!(uris(ev, strict), ["0:/a"]);
            assert_eq!(
                uris(list, strict),
                ["1:/a", "2:/b", "3:error not an audit event: no requestURI"]
            );
            assert_eq!(uris(array, strict), ["1:/x", "2:/y"]);
            assert_eq!(uris(br#"{"kind":"EventList","items":[]}"#, strict).len(), 0);
        }
    }

    #[test]
    fn not_lists() {
        // An object without items stays a "no requestURI" event.
        assert_eq!(
            uris(br#"{"kind":"Foo"}"#, false),
            ["0:error not an audit event: no requestURI"]
        );
        // Broken list structure is one malformed body.
        let r = uris(br#"{"kind":"EventList","items":[{"verb":"get"}"#, false);
        assert_eq!(r.len(), 1);
        assert!(r[0].starts_with("0:error"), "{r:?}");
        // Three levels of lists: the innermost array is not opened.
        let r = uris(br#"[[[{"verb":"get","requestURI":"/a"}]]]"#, false);
        assert_eq!(r.len(), 1);
        assert!(r[0].starts_with("1:error"), "{r:?}");
    }

    #[test]
    fn deep_bodies_do_not_crash() {
        let n = 50_000;
        let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
        let list = format!(r#"{{"kind":"EventList","items":[{deep}]}}"#);
        let line = format!(r#"{{"verb":"get","requestURI":"/a","requestObject":{deep}}}"#);
        for strict in [false, true] {
            for body in [&deep, &list] {
                let r = uris(body.as_bytes(), strict);
                assert_eq!(r.len(), 1, "{r:?}");
                assert!(r[0].contains("error"), "{r:?}");
            }
        }
        assert!(uris(line.as_bytes(), true)[0].contains("nested deeper than 128"));
    }
}
