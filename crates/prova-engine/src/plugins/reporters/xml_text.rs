//! Text bound for a JUnit file: only characters XML 1.0 allows, and at
//! most so many bytes.
//!
//! quick-junit drops the C0 controls (and ANSI escape sequences) but
//! writes U+FFFE and U+FFFF as they are, which no XML parser accepts. Here
//! every character XML 1.0 forbids (U+0000-U+0008, U+000B, U+000C,
//! U+000E-U+001F, U+FFFE, U+FFFF) becomes U+FFFD, so that what was there
//! stays visible. ESC (U+001B) is left for quick-junit, which strips the
//! colour sequences it starts (and then ESC itself).

/// Bytes kept of a name (suite, case, classname).
pub const MAX_NAME_BYTES: usize = 4096;
/// Bytes kept of a message (a failure's, a rerun's).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Bytes kept of each of system-out, system-err and a failure's text.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Whether XML 1.0 allows `c` in a document (Rust strings hold no
/// surrogates).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{1b}' | '\u{20}'..='\u{fffd}' | '\u{10000}'..)
}

/// `s` with forbidden characters replaced, cut after `max` bytes (at a
/// character boundary) with a `…[N more bytes]` marker.
pub fn head(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 24);
    for (i, c) in s.char_indices() {
        let c = if xml_char(c) { c } else { '\u{fffd}' };
        if out.len() + c.len_utf8() > max {
            out.push_str(&format!("…[{} more bytes]", s.len() - i));
            break;
        }
        out.push(c);
    }
    out
}

/// The last bytes of a stream of text, at most `cap` of them kept (memory
/// stays under twice that while text arrives).
#[derive(Debug, Default)]
pub struct Tail {
    text: String,
    dropped: u64,
}

impl Tail {
    pub fn push(&mut self, s: &str, cap: usize) {
        self.text.push_str(s);
        if self.text.len() > cap.saturating_mul(2) {
            self.keep_last(cap);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The kept text, at most `cap` bytes, marked `[N bytes before]…` when
    /// earlier text was dropped; forbidden characters replaced.
    pub fn finish(mut self, cap: usize) -> String {
        self.keep_last(cap);
        let text = head(&self.text, usize::MAX);
        if self.dropped == 0 {
            text
        } else {
            format!("[{} bytes before]…{text}", self.dropped)
        }
    }

    fn keep_last(&mut self, cap: usize) {
        if self.text.len() <= cap {
            return;
        }
        let mut start = self.text.len() - cap;
        while !self.text.is_char_boundary(start) {
            start += 1;
        }
        self.dropped += start as u64;
        self.text.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_characters_become_replacement_characters() {
        let all: String = (0u32..0x20)
            .filter_map(char::from_u32)
            .chain(['\u{fffe}', '\u{ffff}', 'a', '\u{10ffff}'])
            .collect();
        let got = head(&all, usize::MAX);
        let kept: String = got.chars().filter(|c| *c != '\u{fffd}').collect();
        assert_eq!(kept, "\t\n\r\u{1b}a\u{10ffff}");
        assert_eq!(got.chars().filter(|c| *c == '\u{fffd}').count(), 30);
    }

    #[test]
    fn head_cuts_at_a_boundary_and_marks_it() {
        assert_eq!(head("abcdef", 3), "abc…[3 more bytes]");
        assert_eq!(head("éé", 3), "é…[2 more bytes]");
        assert_eq!(head("abc", 3), "abc");
        // A replaced control counts as the 3 bytes it becomes.
        assert_eq!(head("\u{0}\u{0}", 4), "\u{fffd}…[1 more bytes]");
    }

    #[test]
    fn tail_keeps_the_end_in_bounded_memory() {
        let mut t = Tail::default();
        for _ in 0..10_000 {
            t.push("0123456789", 100);
            assert!(t.text.len() <= 200);
        }
        let s = t.finish(100);
        assert_eq!(
            s,
            format!("[99900 bytes before]…{}", "0123456789".repeat(10))
        );
        let mut t = Tail::default();
        t.push("ééé", 3);
        assert_eq!(t.finish(3), "[4 bytes before]…é");
    }
}
