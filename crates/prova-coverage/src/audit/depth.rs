//! Nesting depth of a JSON text, measured without recursion.
//!
//! `sonic-rs` skips ignored values (`requestObject`, `responseObject`, …)
//! recursively and without a depth limit, so a line nested 30,000 deep
//! overflows the stack and aborts the process. Every text is measured here
//! first, with a loop, and refused when it is nested deeper than
//! [`MAX_DEPTH`]; only then is it handed to the full parser.

/// Deepest nesting of objects and arrays accepted in one audit event (or
/// `EventList`). Real events stay far below it: Kubernetes objects, CRD
/// schemas included, nest a few dozen levels.
pub const MAX_DEPTH: usize = 512;

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
    // Fast exit: a text with no more opening brackets than `limit` cannot be
    // deeper than `limit` (most lines end here after one memchr pass).
    let openers = memchr::memchr2_iter(b'{', b'[', b).take(limit + 1).count();
    if openers <= limit {
        return Ok(());
    }
    let mut depth = 0usize;
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
                        None => return Ok(()),
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
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
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
    }

    #[test]
    fn positions() {
        assert_eq!(line_col(b"ab\ncd", 4), (2, 2));
        assert_eq!(line_col(b"abc", 0), (1, 1));
    }
}
