//! The last bytes of a stream, bounded, with the count of what was dropped.

use std::collections::VecDeque;

/// Keeps the last `limit` bytes written to it.
#[derive(Debug, Clone, Default)]
pub struct OutputTail {
    bytes: VecDeque<u8>,
    limit: usize,
    total: u64,
}

impl OutputTail {
    pub fn new(limit: usize) -> Self {
        Self {
            bytes: VecDeque::new(),
            limit,
            total: 0,
        }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let keep = &data[data.len().saturating_sub(self.limit)..];
        let overflow = (self.bytes.len() + keep.len()).saturating_sub(self.limit);
        self.bytes.drain(..overflow.min(self.bytes.len()));
        self.bytes.extend(keep);
    }

    /// The kept bytes.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.iter().copied().collect()
    }

    /// The kept bytes as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// Every byte ever written, kept or not.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// True when older bytes were dropped.
    pub fn truncated(&self) -> bool {
        self.total > self.bytes.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::OutputTail;

    #[test]
    fn keeps_only_the_last_bytes() {
        let mut tail = OutputTail::new(4);
        tail.push(b"ab");
        assert_eq!(tail.bytes(), b"ab");
        assert!(!tail.truncated());
        tail.push(b"cde");
        assert_eq!(tail.bytes(), b"bcde");
        tail.push(b"0123456789");
        assert_eq!(tail.bytes(), b"6789");
        assert_eq!(tail.total_bytes(), 15);
        assert!(tail.truncated());
    }
}
