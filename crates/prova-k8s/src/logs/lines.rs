//! Bytes of a container log into whole lines: bounded memory per line,
//! the kubelet's timestamp prefix read and removed, and a cursor that lets
//! a re-opened log skip the lines already emitted.

use jiff::Timestamp;

/// Longest line emitted whole in one `K8sLog` event. A longer line becomes
/// one event holding its first `MAX_LINE_BYTES` and a marker.
pub const MAX_LINE_BYTES: usize = 256 * 1024;
/// Room for the `timestamps=true` prefix (`2006-01-02T15:04:05.000000000Z `).
const PREFIX_ROOM: usize = 64;

/// One line as it came from the server (prefix included), bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    /// The first bytes of the line, without its newline.
    pub bytes: Vec<u8>,
    /// Bytes past the bound that were counted and dropped.
    pub dropped: u64,
    /// Whether the line ended with a newline (not cut by the stream's end).
    pub complete: bool,
}

/// Cuts a byte stream into lines; holds at most `MAX_LINE_BYTES +
/// PREFIX_ROOM` bytes of an unfinished line.
#[derive(Debug, Default)]
pub struct LineSplitter {
    partial: Vec<u8>,
    dropped: u64,
}

impl LineSplitter {
    /// The complete lines in `data` (with what came before it).
    pub fn push(&mut self, mut data: &[u8]) -> Vec<RawLine> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let (piece, rest, ends) = match data.iter().position(|b| *b == b'\n') {
                Some(i) => (&data[..i], &data[i + 1..], true),
                None => (data, &[][..], false),
            };
            let room = (MAX_LINE_BYTES + PREFIX_ROOM).saturating_sub(self.partial.len());
            let keep = piece.len().min(room);
            self.partial.extend_from_slice(&piece[..keep]);
            self.dropped += (piece.len() - keep) as u64;
            if ends {
                out.push(RawLine {
                    bytes: std::mem::take(&mut self.partial),
                    dropped: std::mem::take(&mut self.dropped),
                    complete: true,
                });
            }
            data = rest;
        }
        out
    }

    /// The unfinished last line, if any (the stream ended without a newline).
    pub fn finish(&mut self) -> Option<RawLine> {
        if self.partial.is_empty() && self.dropped == 0 {
            return None;
        }
        Some(RawLine {
            bytes: std::mem::take(&mut self.partial),
            dropped: std::mem::take(&mut self.dropped),
            complete: false,
        })
    }

    /// Forgets an unfinished line (it will be read again whole).
    pub fn discard(&mut self) {
        self.partial.clear();
        self.dropped = 0;
    }
}

/// A line with its timestamp read off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub ts: Option<Timestamp>,
    /// The text as emitted: the line and its newline (none when the log
    /// ended without one); a cut line ends with a marker instead.
    pub text: String,
    pub cut: bool,
}

/// Reads the `timestamps=true` prefix, if there is one, and renders the
/// rest as text (invalid UTF-8 replaced), bounded by [`MAX_LINE_BYTES`].
pub fn parse(raw: &RawLine, timestamps: bool) -> Line {
    let (ts, body) = if timestamps {
        split_timestamp(&raw.bytes)
    } else {
        (None, &raw.bytes[..])
    };
    let mut dropped = raw.dropped;
    let body = if body.len() > MAX_LINE_BYTES {
        dropped += (body.len() - MAX_LINE_BYTES) as u64;
        &body[..MAX_LINE_BYTES]
    } else {
        body
    };
    let mut text = String::from_utf8_lossy(body).into_owned();
    let cut = dropped > 0;
    if cut {
        // A cut may fall inside a character: never emit half of one.
        while text.len() > MAX_LINE_BYTES {
            text.pop();
        }
        text.push_str(&format!(
            " [prova: line cut at {MAX_LINE_BYTES} bytes; {dropped} more bytes dropped]"
        ));
    }
    if raw.complete || cut {
        text.push('\n');
    }
    Line { ts, text, cut }
}

/// `2024-05-01T10:00:00.123456789Z rest` → (timestamp, rest). A line
/// without a readable prefix is kept whole.
fn split_timestamp(bytes: &[u8]) -> (Option<Timestamp>, &[u8]) {
    let head = &bytes[..bytes.len().min(PREFIX_ROOM)];
    let Some(sp) = head.iter().position(|b| *b == b' ') else {
        return (None, bytes);
    };
    match std::str::from_utf8(&bytes[..sp])
        .ok()
        .and_then(|s| s.parse::<Timestamp>().ok())
    {
        Some(ts) => (Some(ts), &bytes[sp + 1..]),
        None => (None, bytes),
    }
}

/// How far the log has been emitted: the timestamp of the last complete
/// line and how many complete lines carried exactly that timestamp (lines
/// can share one), plus a plain line count for servers that give no
/// timestamps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogCursor {
    last: Option<Timestamp>,
    at_last: u64,
    lines: u64,
}

impl LogCursor {
    /// Records an emitted complete line.
    pub fn advance(&mut self, ts: Option<Timestamp>) {
        self.lines += 1;
        if let Some(ts) = ts {
            if self.last == Some(ts) {
                self.at_last += 1;
            } else {
                self.last = Some(ts);
                self.at_last = 1;
            }
        }
    }

    /// Complete lines emitted so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// `sinceTime` for a re-opened log: the last timestamp cut down to its
    /// second (`sinceTime` has second precision; rounding up would lose
    /// lines). `None`: read from the start.
    pub fn since_time(&self) -> Option<Timestamp> {
        let last = self.last?;
        Timestamp::from_second(last.as_second()).ok()
    }

    /// What a log re-opened at [`Self::since_time`] must skip.
    pub fn skipper(&self) -> Skipper {
        Skipper {
            from: self.clone(),
            equal_seen: 0,
            count_seen: 0,
            past: self.lines == 0,
        }
    }
}

/// Skips, in a re-opened log, the lines at or before the cursor.
#[derive(Debug, Clone)]
pub struct Skipper {
    from: LogCursor,
    equal_seen: u64,
    count_seen: u64,
    past: bool,
}

impl Skipper {
    /// Whether the next line (with this timestamp) was already emitted.
    /// Once a line is past the cursor, nothing more is skipped.
    pub fn skip(&mut self, ts: Option<Timestamp>) -> bool {
        if self.past {
            return false;
        }
        let skip = match (self.from.last, ts) {
            (Some(last), Some(t)) if t < last => true,
            (Some(last), Some(t)) if t == last && self.equal_seen < self.from.at_last => {
                self.equal_seen += 1;
                true
            }
            (Some(_), _) => false,
            // No timestamps so far: the log was re-read from its start.
            (None, _) if self.count_seen < self.from.lines => {
                self.count_seen += 1;
                true
            }
            (None, _) => false,
        };
        if !skip {
            self.past = true;
        }
        skip
    }
}

/// One opened log: bytes in, the lines past the cursor out.
#[derive(Debug)]
pub struct Session {
    splitter: LineSplitter,
    skipper: Skipper,
}

impl Session {
    /// A log opened at `cursor.since_time()`.
    pub fn new(cursor: &LogCursor) -> Self {
        Session {
            splitter: LineSplitter::default(),
            skipper: cursor.skipper(),
        }
    }

    /// The lines in `data` not emitted before; the cursor moves over the
    /// complete ones.
    pub fn push(&mut self, data: &[u8], cursor: &mut LogCursor) -> Vec<Line> {
        let raw = self.splitter.push(data);
        self.take(&raw, cursor)
    }

    /// The stream ended. After the final read (no `follow`, the container
    /// ended) an unfinished line is the log's real last line; otherwise it
    /// is dropped, to be read again whole.
    pub fn end(mut self, cursor: &mut LogCursor, final_read: bool) -> Option<Line> {
        if !final_read {
            self.splitter.discard();
            return None;
        }
        let last = self.splitter.finish()?;
        self.take(&[last], cursor).pop()
    }

    fn take(&mut self, raw: &[RawLine], cursor: &mut LogCursor) -> Vec<Line> {
        let mut out = Vec::with_capacity(raw.len());
        for r in raw {
            let line = parse(r, true);
            if self.skipper.skip(line.ts) {
                continue;
            }
            if r.complete {
                cursor.advance(line.ts);
            }
            out.push(line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn lines_are_split_bounded_and_finished() {
        let mut s = LineSplitter::default();
        let mut lines = s.push(b"a\nb");
        lines.extend(s.push(b"c\n\nlast"));
        let texts: Vec<_> = lines.iter().map(|l| l.bytes.as_slice()).collect();
        assert_eq!(texts, [&b"a"[..], b"bc", b""]);
        let last = s.finish().unwrap();
        assert_eq!(
            (last.bytes.as_slice(), last.complete),
            (&b"last"[..], false)
        );
        assert_eq!(s.finish(), None);

        let long = vec![b'x'; MAX_LINE_BYTES + 1000];
        let mut lines = s.push(&long);
        lines.extend(s.push(b"\n"));
        assert_eq!(lines.len(), 1);
        let line = parse(&lines[0], true);
        assert!(line.cut);
        assert!(
            line.text
                .ends_with(&format!("; {} more bytes dropped]\n", 1000)),
            "{}",
            &line.text[line.text.len() - 80..]
        );
    }

    #[test]
    fn timestamps_are_read_off() {
        let raw = RawLine {
            bytes: b"2024-05-01T10:00:00.123456789Z hello world".to_vec(),
            dropped: 0,
            complete: true,
        };
        let line = parse(&raw, true);
        assert_eq!(line.ts, Some(ts("2024-05-01T10:00:00.123456789Z")));
        assert_eq!(line.text, "hello world\n");
        let plain = parse(&raw, false);
        assert_eq!(plain.ts, None);
        let odd = RawLine {
            bytes: b"not-a-time hello".to_vec(),
            dropped: 0,
            complete: false,
        };
        assert_eq!(parse(&odd, true).text, "not-a-time hello");
    }

    #[test]
    fn the_cursor_skips_what_was_seen_including_equal_timestamps() {
        let t1 = ts("2024-05-01T10:00:00.5Z");
        let t2 = ts("2024-05-01T10:00:01Z");
        let mut c = LogCursor::default();
        c.advance(Some(t1));
        c.advance(Some(t2));
        c.advance(Some(t2));
        assert_eq!(c.since_time(), Some(ts("2024-05-01T10:00:01Z")));
        let mut sk = c.skipper();
        // Re-read from 10:00:01: two lines at t2 were seen, a third is new.
        assert!(sk.skip(Some(t2)));
        assert!(sk.skip(Some(t2)));
        assert!(!sk.skip(Some(t2)));
        assert!(!sk.skip(Some(t1)), "nothing is skipped once past");

        let mut c = LogCursor::default();
        c.advance(None);
        c.advance(None);
        assert_eq!(c.since_time(), None);
        let mut sk = c.skipper();
        assert!(sk.skip(None) && sk.skip(None));
        assert!(!sk.skip(None));
    }
}
