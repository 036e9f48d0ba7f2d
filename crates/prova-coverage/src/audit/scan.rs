//! Fast path for reading an audit event: a top-level key scanner.
//!
//! The API server (Go's `encoding/json`) writes an event's fields in struct
//! order, and `requestURI`, `verb` and `userAgent` all come before
//! `objectRef`, `requestObject` and `responseObject`. This scanner walks the
//! top-level keys of the object, reads the three strings it needs (unescaping
//! `\u0026` and friends), skips other values structurally (strings, nested
//! objects and arrays, literals) and **stops as soon as it has all three**;
//! the line's bodies are then never looked at, beyond checking that the line
//! ends with `}`. Fields in any other order still work (values are skipped
//! until the three are found).
//!
//! Anything unexpected (invalid structure, an escaped key, invalid UTF-8 in
//! a needed field, a line not ending with `}`) returns `None`, and the caller
//! falls back to the full `sonic-rs` parser, which produces the exact error
//! for the malformed-line report. `--strict-json` always uses the full parser.

use std::borrow::Cow;

use super::depth::MAX_DEPTH;
use super::event::{AuditEvent, Str};

#[inline]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// Index just past the closing quote of the string starting at `b[i] == '"'`,
/// and whether it contains escapes.
#[inline]
pub(crate) fn string_end(b: &[u8], i: usize) -> Option<(usize, bool)> {
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        let k = j + memchr::memchr2(b'"', b'\\', &b[j..])?;
        if b[k] == b'"' {
            return Some((k + 1, escaped));
        }
        escaped = true;
        j = k + 2;
        if j > b.len() {
            return None;
        }
    }
}

/// Skips one JSON value starting at `i`; returns the index after it. Loops,
/// never recurses; `None` for broken structure or nesting deeper than
/// `limit`.
pub(crate) fn skip_value(b: &[u8], i: usize, limit: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i).map(|(e, _)| e),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?.0;
                        continue;
                    }
                    b'{' | b'[' => {
                        depth += 1;
                        // Too deep: let the full parser's depth check report it.
                        if depth > limit {
                            return None;
                        }
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(b.get(..4)?).ok()?;
    u32::from_str_radix(s, 16).ok()
}

/// Decodes a JSON string body (between the quotes) with escapes.
fn unescape(raw: &[u8]) -> Option<String> {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = *raw.get(i + 1)?;
        i += 2;
        match e {
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'/' => out.push(b'/'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'u' => {
                let mut cp = hex4(&raw[i..])?;
                i += 4;
                if (0xD800..0xDC00).contains(&cp) {
                    if raw.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let lo = hex4(&raw[i + 2..])?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return None;
                    }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
                let ch = char::from_u32(cp)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// Reads `verb`, `requestURI` and `userAgent` from one JSON line, or `None`
/// when the line needs the full parser (see the module docs).
pub fn scan_event(line: &[u8]) -> Option<AuditEvent<'_>> {
    let [verb, request_uri, user_agent] =
        scan_strings(line, [b"verb", b"requestURI", b"userAgent"])?;
    Some(AuditEvent {
        verb,
        request_uri,
        user_agent,
    })
}

/// Reads the string values of `keys` (top-level keys of the JSON object
/// `line`; `null` or absent: `None`), stopping as soon as all are found, or
/// `None` when the line needs the full parser: a key's value that is not a
/// string or `null`, broken structure, an escaped key, invalid UTF-8 in a
/// needed value, a line not ending with `}`.
pub(crate) fn scan_strings<'a, const N: usize>(
    line: &'a [u8],
    keys: [&[u8]; N],
) -> Option<[Option<Str<'a>>; N]> {
    let b = line;
    let mut out: [Option<Str<'a>>; N] = std::array::from_fn(|_| None);
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    // Bit per key seen (a `null` value counts as seen).
    let all = (1u32 << N) - 1;
    let mut seen = 0u32;
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return finish(b, i + 1, out);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let (kend, kesc) = string_end(b, i)?;
        if kesc {
            return None;
        }
        let key = &b[i + 1..kend - 1];
        i = skip_ws(b, kend);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        match keys.iter().position(|k| *k == key) {
            Some(bit) => {
                match *b.get(i)? {
                    b'"' => {
                        let (vend, vesc) = string_end(b, i)?;
                        let raw = &b[i + 1..vend - 1];
                        let s = if vesc {
                            Cow::Owned(unescape(raw)?)
                        } else {
                            Cow::Borrowed(std::str::from_utf8(raw).ok()?)
                        };
                        out[bit] = Some(Str(s));
                        i = vend;
                    }
                    b'n' if b.get(i..i + 4) == Some(b"null") => {
                        out[bit] = None;
                        i += 4;
                    }
                    // Not a string: let the full parser report it.
                    _ => return None,
                }
                seen |= 1 << bit;
                if seen == all {
                    // All found: the rest of the line is not parsed.
                    let end = line.trim_ascii_end();
                    return (end.last() == Some(&b'}')).then_some(out);
                }
            }
            // Values of the top-level object are one level down.
            None => i = skip_value(b, i, MAX_DEPTH - 1)?,
        }
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b'}') => return finish(b, i + 1, out),
            _ => return None,
        }
    }
}

fn finish<T>(b: &[u8], i: usize, found: T) -> Option<T> {
    (skip_ws(b, i) == b.len()).then_some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(line: &[u8]) {
        let fast = scan_event(line);
        let strict = sonic_rs::from_slice::<AuditEvent<'_>>(line).ok();
        match (fast, strict) {
            (Some(f), Some(s)) => assert_eq!(f, s, "{}", String::from_utf8_lossy(line)),
            (Some(f), None) => panic!("scanner accepted a line sonic rejects: {f:?}"),
            (None, _) => {}
        }
    }

    #[test]
    fn agrees_with_full_parser() {
        let lines: &[&[u8]] = &[
            br#"{"kind":"Event","requestURI":"/api/v1/pods?a=1\u0026b=2","verb":"list","user":{"username":"x","groups":["a","b"]},"sourceIPs":["1.2.3.4"],"userAgent":"e2e.test -- [sig-x] \"q\" \u00e9 \ud83d\ude00","requestObject":{"verb":"nested"}}"#,
            br#"{"annotations":{"a":"b"},"auditID":"x","level":"Request","objectRef":{"resource":"pods"},"requestObject":{"kind":"Pod","spec":{"x":[1,2,{"y":"}"}]}},"requestURI":"/x","responseStatus":{"code":201},"sourceIPs":["::1"],"stage":"ResponseComplete","userAgent":"kubectl","verb":"create"}"#,
            br#"  { "verb" : "get" , "requestURI" : "/y" , "userAgent" : null , "x": true, "n": -1.5e3 }  "#,
            br#"{"verb":"get","requestURI":"/y"}"#,
            br#"{}"#,
            br#"{"kind": 0}"#,
            br#"{"verb":"get","requestURI":"/y","userAgent":"ua","requestObject":{"#,
            br#"{"verb":"get","requestURI":"/y","userAgent":"ua"}garbage"#,
            br#"{"verb":"get","requestURI":"/y" "userAgent":"ua"}"#,
            br#"{"verb":1,"requestURI":"/y","userAgent":"ua"}"#,
            br#"{"ver\"b":"x","requestURI":"/y","verb":"get","userAgent":"ua"}"#,
            br#"[{"verb":"get"}]"#,
            br#"{"verb":"get","requestURI":"/\u00"}"#,
        ];
        for l in lines {
            same(l);
        }
        let ev = scan_event(lines[0]).unwrap();
        assert_eq!(ev.request_uri.as_deref(), Some("/api/v1/pods?a=1&b=2"));
        assert_eq!(
            ev.user_agent.as_deref(),
            Some("e2e.test -- [sig-x] \"q\" é 😀")
        );
        assert!(matches!(ev.verb, Some(Str(Cow::Borrowed("list")))));
        assert_eq!(
            scan_event(lines[1]).unwrap().verb.as_deref(),
            Some("create")
        );
        assert!(scan_event(lines[6]).is_none());
        assert!(scan_event(lines[7]).is_none());
    }
}
