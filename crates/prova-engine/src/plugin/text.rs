//! Text helpers every plugin needs for its messages.

/// An error and its causes, one `: ` apart, with a cause that only repeats
/// the message before it left out (many errors print their source too).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        source = e.source();
    }
    out
}

/// The last `max` bytes of some output, as trimmed text (cut on a character
/// boundary, marked with `…`): what failure messages show.
pub fn tail_text(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// A bounded buffer that keeps the last `cap` bytes written to it: output
/// of commands, where errors usually are at the end.
#[derive(Debug, Clone)]
pub struct TailBuffer {
    buf: Vec<u8>,
    cap: usize,
    /// Bytes dropped from the front.
    dropped: u64,
}

impl TailBuffer {
    pub fn new(cap: usize) -> TailBuffer {
        TailBuffer {
            buf: Vec::new(),
            cap,
            dropped: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        // Trim in amortised batches: only when twice over the cap.
        if self.buf.len() > 2 * self.cap.max(1) {
            self.trim();
        }
    }

    /// Drops all but the last `cap` bytes now (before reading them).
    pub fn trim(&mut self) {
        if self.buf.len() > self.cap {
            let cut = self.buf.len() - self.cap;
            self.buf.drain(..cut);
            self.dropped += cut as u64;
        }
    }

    /// The bytes kept (up to twice the cap until [`Self::trim`]).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// How many bytes were dropped from the front.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The kept bytes and how many were dropped before them.
    pub fn into_parts(mut self) -> (Vec<u8>, u64) {
        self.trim();
        (self.buf, self.dropped)
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.into_parts().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn a_cause_the_message_already_shows_is_not_repeated() {
        let e = Repeats(std::io::Error::other("disk full"));
        assert_eq!(error_chain(&e), "outer: disk full");
    }

    #[test]
    fn tails_keep_the_end_on_a_character_boundary() {
        assert_eq!(tail_text("héllo wörld".as_bytes(), 5), "…örld");
        assert_eq!(tail_text("héllo".as_bytes(), 5), "…éllo");
        assert_eq!(tail_text("éé".as_bytes(), 3), "…é");
        let mut t = TailBuffer::new(4);
        for chunk in [&b"abc"[..], b"defgh", b"ij"] {
            t.push(chunk);
        }
        assert_eq!(t.into_parts(), (b"ghij".to_vec(), 6));
    }
}
