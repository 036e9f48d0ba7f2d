//! Reading audit logs: fast, streaming, parallel.
//!
//! * Inputs are files or stdin (`-`), plain, gzip or zstd ([`source`]), read
//!   one after the other in the order given.
//! * **JSON lines** (what the API server writes): one reader thread cuts the
//!   decompressed stream into ~4 MiB chunks that end at a newline
//!   (`memchr::memrchr`), and sends them over a bounded channel to one worker
//!   per core. Workers split lines with `memchr`, parse only `verb`,
//!   `requestURI` and `userAgent` ([`event`]) and feed an [`EventSink`] of
//!   their own; the sinks are merged at the end. Memory is bounded by
//!   `(channel capacity + workers) × chunk size`, whatever the log's size.
//!   Chunk buffers are recycled.
//! * **One JSON document** — a pretty-printed event (APISnoop's
//!   `audit_event.json`), a JSON array of events, or an `EventList`
//!   (`{"items": [...]}`) — is detected when the first line is not a complete
//!   JSON value, read whole, and its events are fed through the same path.
//!   Positions are then "item N" instead of "line N".
//! * A line that is not an event is passed to [`EventSink::malformed`] with
//!   its file and line; it never stops the run. Blank lines are skipped.

pub mod event;
pub mod scan;
pub mod source;

use std::io::{IsTerminal, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

pub use event::{AuditEvent, EventError, parse_event, parse_event_strict};

/// Size of a chunk handed to a worker.
pub const CHUNK_SIZE: usize = 4 << 20;

/// Largest input read as one JSON document (pretty-printed event, array,
/// EventList); bigger inputs are always JSON lines.
pub const DOCUMENT_LIMIT: usize = 256 << 20;

/// Errors that stop reading.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// An input could not be opened.
    #[error("cannot open audit log {path}: {source}")]
    Open {
        /// The input.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where an event was read: input, chunk and line within the chunk.
/// Resolve it to a file and line with [`ReadSummary::position`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Loc {
    /// Global chunk sequence number (chunks are numbered in input order).
    pub chunk: u32,
    /// 1-based line (or item) number within the chunk.
    pub line: u32,
}

/// A resolved position: file and 1-based line (or item) number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Position {
    /// The input name as given (`-` for stdin).
    pub file: String,
    /// 1-based line number in the decompressed input (or item number).
    pub line: u64,
    /// True when `line` counts items of a JSON array / EventList.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub item: bool,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.item {
            write!(f, "{} item {}", self.file, self.line)
        } else {
            write!(f, "{}:{}", self.file, self.line)
        }
    }
}

/// Receives every event (and every unreadable line) of the inputs.
/// Each worker thread owns one sink.
pub trait EventSink: Send {
    /// A parsed event.
    fn event(&mut self, event: &AuditEvent<'_>, loc: Loc);
    /// A line that is not an audit event.
    fn malformed(&mut self, error: &EventError, line: &[u8], loc: Loc);
}

#[derive(Debug, Clone, Copy, Default)]
struct ChunkMeta {
    file: u32,
    newlines: u64,
    items: bool,
}

/// What was read, and how to turn a [`Loc`] into a file and line.
#[derive(Debug, Default, Clone)]
pub struct ReadSummary {
    /// Input names, in order.
    pub inputs: Vec<String>,
    /// Decompressed bytes read.
    pub bytes: u64,
    /// Bytes read from the inputs themselves (compressed size).
    pub raw_bytes: u64,
    /// Errors that ended an input early (e.g. a truncated gzip stream).
    pub input_errors: Vec<String>,
    /// Wall time of reading.
    pub elapsed: Duration,
    chunks: Vec<ChunkMeta>,
    first_line: Vec<u64>,
}

impl ReadSummary {
    fn finish(&mut self) {
        self.first_line = Vec::with_capacity(self.chunks.len());
        let mut line = 1u64;
        let mut file = u32::MAX;
        for c in &self.chunks {
            if c.file != file {
                file = c.file;
                line = 1;
            }
            self.first_line.push(line);
            line += c.newlines;
        }
    }

    /// The file and line of `loc`.
    pub fn position(&self, loc: Loc) -> Position {
        let idx = loc.chunk as usize;
        match self.chunks.get(idx) {
            Some(meta) => Position {
                file: self
                    .inputs
                    .get(meta.file as usize)
                    .cloned()
                    .unwrap_or_default(),
                line: self.first_line[idx] + loc.line as u64 - 1,
                item: meta.items,
            },
            None => Position {
                file: String::new(),
                line: loc.line as u64,
                item: false,
            },
        }
    }
}

struct Chunk {
    seq: u32,
    data: Vec<u8>,
    len: usize,
}

/// Options for [`read_events`].
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Worker threads (0 = one per core).
    pub threads: usize,
    /// Print progress to stderr (only honoured when stderr is a terminal).
    pub progress: bool,
    /// Validate every line completely with the full JSON parser instead of
    /// stopping once `verb`, `requestURI` and `userAgent` are read.
    pub strict: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            threads: 0,
            progress: true,
            strict: false,
        }
    }
}

/// Reads all `inputs`, feeding events to sinks made by `make_sink` (one per
/// worker). Returns the sinks (merge them) and the read summary.
pub fn read_events<S, F>(
    inputs: &[String],
    opts: &ReadOptions,
    make_sink: F,
) -> Result<(Vec<S>, ReadSummary), ReadError>
where
    S: EventSink,
    F: Fn() -> S + Sync,
{
    let started = Instant::now();
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let progress = opts.progress && std::io::stderr().is_terminal();
    let strict = opts.strict;
    let (tx, rx) = sync_channel::<Chunk>(threads + 2);
    let rx = Mutex::new(rx);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let chunk_meta: Mutex<Vec<ChunkMeta>> = Mutex::new(Vec::new());

    let (sinks, mut summary) = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for _ in 0..threads {
            let free_tx = free_tx.clone();
            let rx = &rx;
            let make_sink = &make_sink;
            let chunk_meta = &chunk_meta;
            handles.push(scope.spawn(move || {
                let mut sink = make_sink();
                loop {
                    let next = rx.lock().map(|r| r.recv());
                    let Ok(Ok(chunk)) = next else { break };
                    let newlines = process_chunk(&mut sink, &chunk, strict);
                    if let Ok(mut m) = chunk_meta.lock()
                        && let Some(meta) = m.get_mut(chunk.seq as usize)
                    {
                        meta.newlines = newlines;
                    }
                    let _ = free_tx.send(chunk.data);
                }
                sink
            }));
        }
        drop(free_tx);
        let mut summary = ReadSummary {
            inputs: inputs.to_vec(),
            ..Default::default()
        };
        let result = produce(inputs, &tx, &free_rx, &chunk_meta, &mut summary, progress);
        drop(tx);
        let sinks: Vec<S> = handles
            .into_iter()
            .map(|h| h.join().expect("audit worker panicked"))
            .collect();
        result.map(|()| (sinks, summary))
    })?;
    summary.chunks = chunk_meta.into_inner().unwrap_or_default();
    summary.finish();
    summary.elapsed = started.elapsed();
    if progress {
        eprint!("\r\x1b[K");
    }
    Ok((sinks, summary))
}

fn process_chunk<S: EventSink>(sink: &mut S, chunk: &Chunk, strict: bool) -> u64 {
    let parse = if strict {
        parse_event_strict
    } else {
        parse_event
    };
    let data = &chunk.data[..chunk.len];
    let mut start = 0usize;
    let mut line_no = 0u32;
    let mut newlines = 0u64;
    let mut handle = |line: &[u8], line_no: u32| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let loc = Loc {
            chunk: chunk.seq,
            line: line_no,
        };
        match parse(line) {
            Ok(ev) => sink.event(&ev, loc),
            Err(e) => sink.malformed(&e, line, loc),
        }
    };
    for end in memchr::memchr_iter(b'\n', data) {
        line_no += 1;
        newlines += 1;
        handle(&data[start..end], line_no);
        start = end + 1;
    }
    if start < data.len() {
        handle(&data[start..], line_no + 1);
    }
    newlines
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
}

impl Producer<'_> {
    fn buffer(&self) -> Buf {
        Buf {
            data: self.free.try_recv().unwrap_or_default(),
            filled: 0,
        }
    }

    fn send(&mut self, buf: Buf, file: u32, items: bool) {
        if buf.filled == 0 {
            return;
        }
        self.bytes += buf.filled as u64;
        if let Ok(mut m) = self.meta.lock() {
            m.push(ChunkMeta {
                file,
                newlines: 0,
                items,
            });
        }
        let _ = self.tx.send(Chunk {
            seq: self.seq,
            data: buf.data,
            len: buf.filled,
        });
        self.seq += 1;
    }
}

fn produce(
    inputs: &[String],
    tx: &SyncSender<Chunk>,
    free: &Receiver<Vec<u8>>,
    meta: &Mutex<Vec<ChunkMeta>>,
    summary: &mut ReadSummary,
    progress: bool,
) -> Result<(), ReadError> {
    let raw = Arc::new(AtomicU64::new(0));
    let mut p = Producer {
        tx,
        free,
        meta,
        seq: 0,
        bytes: 0,
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
            summary.input_errors.push(format!("{name}: {e}"));
        }
    }
    summary.bytes = p.bytes;
    summary.raw_bytes = raw.load(Ordering::Relaxed);
    Ok(())
}

/// Reads up to `want` more bytes into `buf`; returns true at end of input.
fn fill(reader: &mut dyn Read, buf: &mut Buf, want: usize) -> std::io::Result<bool> {
    let target = buf.filled + want;
    if buf.data.len() < target {
        buf.data.resize(target.max(CHUNK_SIZE + (64 << 10)), 0);
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

fn read_one(
    reader: &mut dyn Read,
    file: u32,
    p: &mut Producer<'_>,
    tick: &mut dyn FnMut(u64),
) -> std::io::Result<()> {
    let mut buf = p.buffer();
    let mut eof = fill(reader, &mut buf, CHUNK_SIZE)?;
    // Decide between JSON lines and one JSON document.
    let first = buf.bytes().iter().position(|b| !b.is_ascii_whitespace());
    let document = match first.map(|i| buf.bytes()[i]) {
        Some(b'[') => true,
        Some(b'{') => loop {
            let start = first.unwrap_or(0);
            if let Some(nl) = memchr::memchr(b'\n', &buf.bytes()[start..]) {
                let line = &buf.bytes()[start..start + nl];
                break sonic_rs::from_slice::<serde::de::IgnoredAny>(line).is_err();
            }
            if eof {
                break false;
            }
            let len = buf.filled;
            eof = fill(reader, &mut buf, len.max(CHUNK_SIZE))?;
        },
        _ => false,
    };
    if document && !eof {
        // Read the rest of the document, up to a limit: a big file whose
        // first line is broken is JSON lines with a bad line, not a document.
        let limit = DOCUMENT_LIMIT.saturating_sub(buf.filled);
        eof = fill(reader, &mut buf, limit)?;
    }
    if document
        && eof
        && let Some(items) = document_items(buf.bytes())
    {
        let mut out = Vec::new();
        for item in items {
            if let Ok(line) = serde_json::to_vec(&item) {
                out.extend_from_slice(&line);
            }
            out.push(b'\n');
            if out.len() >= CHUNK_SIZE {
                let filled = out.len();
                p.send(
                    Buf {
                        data: std::mem::take(&mut out),
                        filled,
                    },
                    file,
                    true,
                );
            }
        }
        let filled = out.len();
        p.send(Buf { data: out, filled }, file, true);
        tick(p.bytes);
        return Ok(());
    }
    // Not one valid document after all: JSON lines, which reports the bad lines.
    let mut target = CHUNK_SIZE;
    loop {
        while !eof && buf.filled < target {
            let want = target - buf.filled;
            eof = fill(reader, &mut buf, want)?;
        }
        if eof {
            p.send(buf, file, false);
            tick(p.bytes);
            return Ok(());
        }
        match memchr::memrchr(b'\n', buf.bytes()) {
            Some(i) => {
                let rest = buf.filled - (i + 1);
                let mut next = p.buffer();
                if next.data.len() < rest.max(CHUNK_SIZE) {
                    next.data.resize(rest.max(CHUNK_SIZE + (64 << 10)), 0);
                }
                next.data[..rest].copy_from_slice(&buf.data[i + 1..buf.filled]);
                next.filled = rest;
                buf.filled = i + 1;
                p.send(buf, file, false);
                buf = next;
                target = CHUNK_SIZE;
                tick(p.bytes);
            }
            // A line longer than the chunk: read more.
            None => target = buf.filled * 2,
        }
    }
}

/// The events of a JSON document: an array, an `{"items": [...]}` list, or
/// one event object.
fn document_items(buf: &[u8]) -> Option<Vec<serde_json::Value>> {
    let v: serde_json::Value = serde_json::from_slice(buf).ok()?;
    match v {
        serde_json::Value::Array(a) => Some(a),
        serde_json::Value::Object(mut o) => match o.remove("items") {
            Some(serde_json::Value::Array(a)) if !o.contains_key("requestURI") => Some(a),
            Some(items) => {
                o.insert("items".into(), items);
                Some(vec![serde_json::Value::Object(o)])
            }
            None => Some(vec![serde_json::Value::Object(o)]),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        events: Vec<(String, Loc)>,
        bad: Vec<Loc>,
    }

    impl EventSink for Collect {
        fn event(&mut self, e: &AuditEvent<'_>, loc: Loc) {
            self.events
                .push((e.request_uri.as_deref().unwrap_or("").to_string(), loc));
        }
        fn malformed(&mut self, _: &EventError, _: &[u8], loc: Loc) {
            self.bad.push(loc);
        }
    }

    fn read(files: &[(&str, &[u8])]) -> (Vec<(String, Position)>, Vec<Position>) {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|(n, data)| {
                let p = dir.path().join(n);
                std::fs::write(&p, data).unwrap();
                p.display().to_string()
            })
            .collect();
        let (sinks, summary) = read_events(
            &names,
            &ReadOptions {
                threads: 2,
                progress: false,
                strict: false,
            },
            Collect::default,
        )
        .unwrap();
        let mut ev = Vec::new();
        let mut bad = Vec::new();
        for s in sinks {
            for (u, l) in s.events {
                let mut pos = summary.position(l);
                pos.file = pos.file.rsplit('/').next().unwrap().to_string();
                ev.push((u, pos));
            }
            for l in s.bad {
                let mut pos = summary.position(l);
                pos.file = pos.file.rsplit('/').next().unwrap().to_string();
                bad.push(pos);
            }
        }
        ev.sort_by(|a, b| (&a.1.file, a.1.line).cmp(&(&b.1.file, b.1.line)));
        bad.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        (ev, bad)
    }

    #[test]
    fn lines_docs_and_errors() {
        let lines = b"{\"verb\":\"get\",\"requestURI\":\"/a\"}\n\nnot json\r\n{\"verb\":\"get\",\"requestURI\":\"/b\"}";
        let pretty = b" {\n  \"verb\": \"get\",\n  \"requestURI\": \"/c\"\n }\n";
        let array = b"[{\"verb\":\"get\",\"requestURI\":\"/d\"},{\"kind\":0}]";
        let list =
            b"{\"kind\":\"EventList\",\n\"items\":[{\"verb\":\"get\",\"requestURI\":\"/e\"}]}";
        let (ev, bad) = read(&[
            ("l.log", lines),
            ("p.json", pretty),
            ("a.json", array),
            ("e.json", list),
        ]);
        let uris: Vec<_> = ev.iter().map(|(u, p)| format!("{u}@{p}")).collect();
        assert_eq!(
            uris,
            [
                "/d@a.json item 1",
                "/e@e.json item 1",
                "/a@l.log:1",
                "/b@l.log:4",
                "/c@p.json item 1"
            ]
        );
        let bad: Vec<_> = bad.iter().map(|p| p.to_string()).collect();
        assert_eq!(bad, ["a.json item 2", "l.log:3"]);
    }

    #[test]
    fn big_input_crosses_chunks_and_compression() {
        let mut data = Vec::new();
        let n = 40_000;
        for i in 0..n {
            if i == 30_000 {
                data.extend_from_slice(b"{broken\n");
            } else {
                data.extend_from_slice(
                    format!(
                        "{{\"verb\":\"get\",\"requestURI\":\"/x/{i}\",\"pad\":\"{}\"}}\n",
                        "p".repeat(i % 600)
                    )
                    .as_bytes(),
                );
            }
        }
        assert!(data.len() > CHUNK_SIZE * 2);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &data).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&data[..], 1).unwrap();
        for (name, bytes) in [("a.log", &data), ("a.log.gz", &gz), ("a.zst", &zst)] {
            let (ev, bad) = read(&[(name, bytes)]);
            assert_eq!(ev.len(), n - 1, "{name}");
            for (u, p) in &ev {
                assert_eq!(u, &format!("/x/{}", p.line - 1), "{name}");
            }
            assert_eq!(bad.len(), 1);
            assert_eq!(bad[0].line, 30_001);
        }
    }
}
