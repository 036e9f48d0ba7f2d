//! Nesting depth of a JSON text, measured without recursion.
//!
//! `sonic-rs` skips ignored values (`requestObject`, `responseObject`, …)
//! recursively and without a depth limit, so a line nested 30,000 deep
//! overflows the stack and aborts the process; its frames are also large
//! (about 40 KB per level in a debug build, so 50 levels overflow a 2 MiB
//! thread). Every text is measured here first, with a loop, and refused
//! when it is nested deeper than [`MAX_DEPTH`]; texts deeper than
//! [`SONIC_MAX_DEPTH`] go to `serde_json`, whose frames are small.

/// Deepest nesting of objects and arrays accepted in one audit event
/// (serde_json's own limit). Real events stay well below it: Kubernetes
/// objects, CRD schemas and managed fields included, nest a few dozen levels.
pub const MAX_DEPTH: usize = 128;

/// Deepest nesting handed to `sonic-rs` (safe on a 2 MiB thread even in a
/// debug build); deeper texts are parsed by `serde_json`.
pub const SONIC_MAX_DEPTH: usize = 24;

/// Where a text first goes deeper than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    /// The limit that was exceeded.
    pub limit: usize,
    /// Byte offset (0-based) of the bracket that exceeded it.
    pub offset: usize,
}

/// Checks that `b` never nests objects/arrays deeper than `limit`. Brackets
/// inside strings do not count. The text is not otherwise validated.
pub fn check_depth(b: &[u8], limit: usize) -> Result<(), TooDeep> {
    nesting_depth(b, limit, limit).map(|_| ())
}

/// The nesting depth of `b`, or an upper bound of it no larger than
/// `cheap`: when `b` has at most `cheap` opening brackets their count is
/// returned after one `memchr` pass. Errs when deeper than `limit`.
pub fn nesting_depth(b: &[u8], limit: usize, cheap: usize) -> Result<usize, TooDeep> {
    let openers = memchr::memchr2_iter(b'{', b'[', b)
        .take(cheap.min(limit) + 1)
        .count();
    if openers <= cheap.min(limit) {
        return Ok(openers);
    }
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                // Skip the string: find its unescaped closing quote.
                let mut j = i + 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &b[j.min(b.len())..]) {
                        Some(k) if b[j + k] == b'\\' => j += k + 2,
                        Some(k) => {
                            j += k + 1;
                            break;
                        }
                        None => return Ok(deepest),
                    }
                }
                i = j;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return Err(TooDeep { limit, offset: i });
                }
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(deepest)
}

/// 1-based line and column of byte `offset` in `b` (columns count bytes).
pub fn line_col(b: &[u8], offset: usize) -> (usize, usize) {
    let before = &b[..offset.min(b.len())];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let col = offset - memchr::memrchr(b'\n', before).map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_depth_outside_strings() {
        assert_eq!(check_depth(b"[[[]]]", 3), Ok(()));
        assert_eq!(
            check_depth(b"[[[[]]]]", 3),
            Err(TooDeep {
                limit: 3,
                offset: 3
            })
        );
        // Brackets in strings (escaped quotes included) do not count.
        assert_eq!(check_depth(br#"{"a":"[[[[\"[[[[","b":[1]}"#, 2), Ok(()));
        // Siblings do not add up.
        assert_eq!(check_depth(b"[[],[],[],[]]", 2), Ok(()));
        // Unterminated string, or a backslash at the very end: no panic.
        assert_eq!(check_depth(b"[\"[[[\\", 1), Ok(()));
        assert_eq!(check_depth(b"[\"[[[", 1), Ok(()));
        assert!(check_depth(&[b'['; 100_000], 512).is_err());
        // Exact depth past the cheap bound; the opener count below it.
        assert_eq!(nesting_depth(b"[[],[],[]]", 10, 2), Ok(2));
        assert_eq!(nesting_depth(b"[[],[],[]]", 10, 8), Ok(4));
    }

    #[test]
    fn positions() {
        assert_eq!(line_col(b"ab\ncd", 4), (2, 2));
        assert_eq!(line_col(b"abc", 0), (1, 1));
    }
}
