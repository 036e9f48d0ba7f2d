//! The reader thread: decompressed input → chunks of whole lines.
//!
//! * Chunks end at a newline; a line longer than the chunk grows the buffer
//!   up to `max_line + 1` bytes, never more. A line longer than that is
//!   streamed past (only its first bytes and its length are kept) and sent
//!   as an "oversized" marker chunk, so the worker reports it in order.
//! * When the input fails (truncated gzip/zstd, I/O error), every complete
//!   line already read is still sent; the incomplete last line is dropped
//!   and the failure recorded with its input.
//! * A JSON document is cut into its top-level values by a loop
//!   ([`skip_value`]), each flattened onto one line (raw newlines become tabs:
//!   whitespace outside strings, still invalid inside them) with the line it
//!   started on.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::scan::{skip_value, skip_ws};
use super::{CHUNK_SIZE, DOCUMENT_LIMIT, EXAMPLE_BYTES, ReadError, ReadSummary, source};

/// Extra room so that a chunk plus the start of the next line fits.
const SLACK: usize = 64 << 10;

pub(super) struct Chunk {
    pub seq: u32,
    pub data: Vec<u8>,
    pub len: usize,
    /// Set for a marker of a line longer than the cap: its length; `data`
    /// holds its first bytes.
    pub oversized: Option<u64>,
    /// Lines cut from a JSON document.
    pub document: bool,
}

#[derive(Debug, Clone, Default)]
pub(super) struct ChunkMeta {
    pub file: u32,
    pub newlines: u64,
    /// For a document chunk: the input line each of its lines started on.
    pub line_map: Option<Vec<u64>>,
}

/// An input that ended early.
#[derive(Debug, Clone)]
pub(super) struct InputFailure {
    pub file: u32,
    pub error: String,
}

/// A reusable byte buffer whose `data` stays initialized (so refilling it
/// never zeroes memory again); `filled` bytes are valid input.
struct Buf {
    data: Vec<u8>,
    filled: usize,
}

impl Buf {
    fn bytes(&self) -> &[u8] {
        &self.data[..self.filled]
    }
}

struct Producer<'a> {
    tx: &'a SyncSender<Chunk>,
    free: &'a Receiver<Vec<u8>>,
    meta: &'a Mutex<Vec<ChunkMeta>>,
    seq: u32,
    bytes: u64,
    max_line: usize,
    max_buffer: usize,
}

impl Producer<'_> {
    fn buffer(&self) -> Buf {
        Buf {
            data: self.free.try_recv().unwrap_or_default(),
            filled: 0,
        }
    }

    fn push(&mut self, meta: ChunkMeta, mut chunk: Chunk) {
        self.max_buffer = self.max_buffer.max(chunk.data.len());
        if let Ok(mut m) = self.meta.lock() {
            m.push(meta);
        }
        chunk.seq = self.seq;
        let _ = self.tx.send(chunk);
        self.seq += 1;
    }

    /// Sends the lines of `buf` (the last one may lack its newline only at
    /// the end of the input).
    fn send(&mut self, buf: Buf, file: u32) {
        if buf.filled == 0 {
            return;
        }
        self.bytes += buf.filled as u64;
        let meta = ChunkMeta {
            file,
            ..Default::default()
        };
        self.push(
            meta,
            Chunk {
                seq: 0,
                data: buf.data,
                len: buf.filled,
                oversized: None,
                document: false,
            },
        );
    }

    /// Sends the complete lines of `buf` and drops a cut last line: used
    /// when the input failed.
    fn send_complete(&mut self, mut buf: Buf, file: u32) {
        buf.filled = memchr::memrchr(b'\n', buf.bytes()).map_or(0, |i| i + 1);
        self.send(buf, file);
    }

    fn send_oversized(&mut self, prefix: Vec<u8>, len: u64, file: u32) {
        self.bytes += len;
        let meta = ChunkMeta {
            file,
            ..Default::default()
        };
        let n = prefix.len();
        self.push(
            meta,
            Chunk {
                seq: 0,
                data: prefix,
                len: n,
                oversized: Some(len),
                document: false,
            },
        );
    }

    fn send_document(&mut self, data: Vec<u8>, lines: Vec<u64>, newlines: u64, file: u32) {
        if data.is_empty() && newlines == 0 {
            return;
        }
        let meta = ChunkMeta {
            file,
            newlines,
            line_map: Some(lines),
        };
        let len = data.len();
        self.push(
            meta,
            Chunk {
                seq: 0,
                data,
                len,
                oversized: None,
                document: true,
            },
        );
    }
}

pub(super) fn produce(
    inputs: &[String],
    tx: &SyncSender<Chunk>,
    free: &Receiver<Vec<u8>>,
    meta: &Mutex<Vec<ChunkMeta>>,
    summary: &mut ReadSummary,
    progress: bool,
    max_line: usize,
) -> Result<(), ReadError> {
    let raw = Arc::new(AtomicU64::new(0));
    let mut p = Producer {
        tx,
        free,
        meta,
        seq: 0,
        bytes: 0,
        max_line,
        max_buffer: 0,
    };
    let mut last_progress = Instant::now();
    let started = Instant::now();
    for (file_idx, name) in inputs.iter().enumerate() {
        let src = source::open(name, raw.clone()).map_err(|source| ReadError::Open {
            path: name.clone(),
            source,
        })?;
        let mut reader = src.reader;
        if let Err(e) = read_one(&mut reader, file_idx as u32, &mut p, &mut |bytes| {
            if progress && last_progress.elapsed() > Duration::from_millis(250) {
                last_progress = Instant::now();
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                eprint!(
                    "\r\x1b[K{name}: {:.0} MB read, {:.0} MB/s",
                    bytes as f64 / 1e6,
                    bytes as f64 / 1e6 / secs
                );
            }
        }) {
            summary.failures.push(InputFailure {
                file: file_idx as u32,
                error: e.to_string(),
            });
        }
    }
    summary.bytes = p.bytes;
    summary.raw_bytes = raw.load(Ordering::Relaxed);
    summary.max_buffer = p.max_buffer;
    Ok(())
}

/// Reads up to `want` more bytes into `buf`; returns true at end of input.
/// On an error, the bytes read so far stay in `buf`.
fn fill(reader: &mut dyn Read, buf: &mut Buf, want: usize) -> std::io::Result<bool> {
    let target = buf.filled + want;
    if buf.data.len() < target {
        buf.data.resize(target.max(CHUNK_SIZE + SLACK), 0);
    }
    while buf.filled < target {
        match reader.read(&mut buf.data[buf.filled..target]) {
            Ok(0) => return Ok(true),
            Ok(n) => buf.filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Whether `line` is one complete JSON value (structure only; no recursion).
fn is_complete_value(line: &[u8]) -> bool {
    let start = skip_ws(line, 0);
    skip_value(line, start, usize::MAX).is_some_and(|end| skip_ws(line, end) == line.len())
}

fn read_one(
    reader: &mut dyn Read,
    file: u32,
    p: &mut Producer<'_>,
    tick: &mut dyn FnMut(u64),
) -> std::io::Result<()> {
    let mut buf = p.buffer();
    let mut eof = match fill(reader, &mut buf, CHUNK_SIZE) {
        Ok(eof) => eof,
        Err(e) => {
            p.send_complete(buf, file);
            return Err(e);
        }
    };
    // Decide between JSON lines and one JSON document.
    let first = buf.bytes().iter().position(|b| !b.is_ascii_whitespace());
    let document = match first.map(|i| buf.bytes()[i]) {
        Some(b'[') => true,
        Some(b'{') => loop {
            let start = first.unwrap_or(0);
            if let Some(nl) = memchr::memchr(b'\n', &buf.bytes()[start..]) {
                break !is_complete_value(&buf.bytes()[start..start + nl]);
            }
            // A first line longer than the cap is a long line, not the
            // start of a pretty-printed document.
            if eof || buf.filled > p.max_line {
                break false;
            }
            let want = buf.filled.min(p.max_line + 1 - buf.filled).max(1);
            eof = match fill(reader, &mut buf, want) {
                Ok(eof) => eof,
                Err(e) => {
                    p.send_complete(buf, file);
                    return Err(e);
                }
            };
        },
        _ => false,
    };
    if document && !eof {
        // Read the rest of the document, up to a limit: a big file whose
        // first line is broken is JSON lines with a bad line, not a document.
        let limit = DOCUMENT_LIMIT.saturating_sub(buf.filled);
        eof = match fill(reader, &mut buf, limit) {
            Ok(eof) => eof,
            Err(e) => {
                p.send_complete(buf, file);
                return Err(e);
            }
        };
    }
    if document && eof && split_document(buf.bytes(), file, p) {
        tick(p.bytes);
        return Ok(());
    }
    read_lines(reader, buf, eof, file, p, tick)
}

/// JSON lines, from `buf` (already read) on.
fn read_lines(
    reader: &mut dyn Read,
    mut buf: Buf,
    mut eof: bool,
    file: u32,
    p: &mut Producer<'_>,
    tick: &mut dyn FnMut(u64),
) -> std::io::Result<()> {
    let max_line = p.max_line;
    let mut target = CHUNK_SIZE;
    loop {
        if !eof && buf.filled < target {
            let want = target - buf.filled;
            match fill(reader, &mut buf, want) {
                Ok(e) => eof = e,
                Err(e) => {
                    p.send_complete(buf, file);
                    return Err(e);
                }
            }
        }
        if eof {
            // The last line may lack its newline; it may also be too long.
            let tail = memchr::memrchr(b'\n', buf.bytes()).map_or(0, |i| i + 1);
            let tail_len = buf.filled - tail;
            if tail_len > max_line {
                let prefix = buf.data[tail..tail + EXAMPLE_BYTES.min(tail_len)].to_vec();
                buf.filled = tail;
                p.send(buf, file);
                p.send_oversized(prefix, tail_len as u64, file);
            } else {
                p.send(buf, file);
            }
            tick(p.bytes);
            return Ok(());
        }
        match memchr::memrchr(b'\n', buf.bytes()) {
            Some(i) => {
                let rest = buf.filled - (i + 1);
                let mut next = p.buffer();
                if next.data.len() < rest.max(CHUNK_SIZE) {
                    next.data.resize(rest.max(CHUNK_SIZE + SLACK), 0);
                }
                next.data[..rest].copy_from_slice(&buf.data[i + 1..buf.filled]);
                next.filled = rest;
                buf.filled = i + 1;
                p.send(buf, file);
                buf = next;
                target = CHUNK_SIZE;
                tick(p.bytes);
            }
            // `buf` is one partial line longer than the cap: stream past it.
            None if buf.filled > max_line => {
                let prefix = buf.data[..EXAMPLE_BYTES.min(buf.filled)].to_vec();
                let skipped = skip_line(reader, &mut buf);
                let (len, result) = match skipped {
                    Ok((len, end)) => (len, Ok(end)),
                    Err((len, e)) => (len, Err(e)),
                };
                p.send_oversized(prefix, len, file);
                eof = result?;
                target = CHUNK_SIZE;
            }
            // A line longer than the chunk: read more, up to the cap.
            None => target = (buf.filled * 2).min(max_line + 1).max(buf.filled + 1),
        }
    }
}

/// Reads past the rest of the line whose start fills `buf`, reusing `buf`'s
/// memory. Returns the line's length and whether the input ended; `buf`
/// then holds what follows the newline.
fn skip_line(reader: &mut dyn Read, buf: &mut Buf) -> Result<(u64, bool), (u64, std::io::Error)> {
    let mut len = buf.filled as u64;
    loop {
        buf.filled = 0;
        let eof = fill(reader, buf, CHUNK_SIZE).map_err(|e| (len + buf.filled as u64, e))?;
        match memchr::memchr(b'\n', buf.bytes()) {
            Some(i) => {
                len += i as u64;
                buf.data.copy_within(i + 1..buf.filled, 0);
                buf.filled -= i + 1;
                return Ok((len, eof));
            }
            None => {
                len += buf.filled as u64;
                if eof {
                    buf.filled = 0;
                    return Ok((len, true));
                }
            }
        }
    }
}

/// Cuts a whole JSON document into its top-level values, one per line, and
/// sends them. False when `doc` is not a sequence of objects and arrays
/// (then it is read as JSON lines, which reports the bad lines).
fn split_document(doc: &[u8], file: u32, p: &mut Producer<'_>) -> bool {
    let mut spans = Vec::new();
    let mut i = skip_ws(doc, 0);
    while i < doc.len() {
        if !matches!(doc[i], b'{' | b'[') {
            return false;
        }
        let Some(end) = skip_value(doc, i, usize::MAX) else {
            return false;
        };
        spans.push((i, end));
        i = skip_ws(doc, end);
    }
    let total_lines = memchr::memchr_iter(b'\n', doc).count() as u64;
    let mut out = Vec::new();
    let mut lines = Vec::new();
    let mut line = 1u64;
    let mut counted = 0usize;
    for (k, &(s, e)) in spans.iter().enumerate() {
        line += memchr::memchr_iter(b'\n', &doc[counted..s]).count() as u64;
        counted = s;
        lines.push(line);
        out.extend(doc[s..e].iter().map(|&b| match b {
            b'\n' | b'\r' => b'\t',
            b => b,
        }));
        out.push(b'\n');
        if out.len() >= CHUNK_SIZE && k + 1 < spans.len() {
            p.bytes += out.len() as u64;
            p.send_document(
                std::mem::take(&mut out),
                std::mem::take(&mut lines),
                0,
                file,
            );
        }
    }
    p.bytes += out.len() as u64;
    p.send_document(out, lines, total_lines, file);
    true
}
