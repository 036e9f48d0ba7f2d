//! Reading audit logs: fast, streaming, parallel.
//!
//! * Inputs are files or stdin (`-`), plain, gzip or zstd ([`source`]), read
//!   one after the other in the order given.
//! * **JSON lines** (what the API server writes): one reader thread
//!   ([`produce`]) cuts the decompressed stream into ~4 MiB chunks that end
//!   at a newline, and sends them over a bounded channel to one worker per
//!   core. Workers split lines with `memchr`, parse only `verb`, `requestURI`
//!   and `userAgent` ([`event`]) and feed an [`EventSink`] of their own; the
//!   sinks are merged at the end. Memory is bounded by `(channel capacity +
//!   workers) × chunk size`, whatever the log's size.
//! * A line is an event, an `EventList` (what the audit webhook sends) or a
//!   JSON array of them ([`list`]); list items are positioned as
//!   `file:line item N`.
//! * A line longer than [`ReadOptions::max_line`] is reported and skipped
//!   as it streams by: it is never held in memory.
//! * **JSON documents** — a pretty-printed event (APISnoop's
//!   `audit_event.json`), a JSON array, an `EventList`, or several of them
//!   one after the other — are detected when the first line is not a
//!   complete JSON value, read whole (up to [`DOCUMENT_LIMIT`]), cut into
//!   their top-level values without recursion, and fed through the same path.
//! * A line that is not an event is passed to [`EventSink::malformed`] with
//!   its file and line; it never stops the run. Blank lines are skipped.
//! * An input that ends early (truncated gzip/zstd, I/O error) still yields
//!   every complete line read before the cut; the failure is recorded in
//!   [`ReadSummary::input_errors`] with that count, and callers treat it as
//!   an error.

pub mod depth;
pub mod event;
pub mod list;
mod produce;
pub mod scan;
pub mod source;

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use event::{AuditEvent, EventError, parse_event, parse_event_strict};
pub use list::{for_each_event, for_each_item};
use produce::{Chunk, ChunkMeta, InputFailure, produce};

/// Size of a chunk handed to a worker.
pub const CHUNK_SIZE: usize = 4 << 20;

/// Largest input read as one JSON document (pretty-printed event, array,
/// EventList); bigger inputs are always JSON lines.
pub const DOCUMENT_LIMIT: usize = 256 << 20;

/// Default cap on the length of one line (`--max-line`).
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

/// Bytes of an over-long line kept to show in the report.
const EXAMPLE_BYTES: usize = 120;

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

/// Where an event was read: input chunk, line within the chunk, and item
/// within an `EventList`/array on that line. Resolve it to a file and line
/// with [`ReadSummary::position`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Loc {
    /// Global chunk sequence number (chunks are numbered in input order).
    pub chunk: u32,
    /// 1-based line number within the chunk.
    pub line: u32,
    /// 1-based item number within the list on that line; 0 for a plain event.
    pub item: u32,
}

/// A resolved position: file, 1-based line and, for events inside an
/// `EventList` or array, the 1-based item number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Position {
    /// The input name as given (`-` for stdin).
    pub file: String,
    /// 1-based line number in the decompressed input (for a JSON document:
    /// the line where the value starts).
    pub line: u64,
    /// Item number within the list on that line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<u64>,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(item) = self.item {
            write!(f, " item {item}")?;
        }
        Ok(())
    }
}

/// Receives every event (and every unreadable line) of the inputs.
/// Each worker thread owns one sink.
pub trait EventSink: Send {
    /// A parsed event.
    fn event(&mut self, event: &AuditEvent<'_>, loc: Loc);
    /// A line (or list item) that is not an audit event; `line` is its text
    /// (for an over-long line, only its first bytes).
    fn malformed(&mut self, error: &EventError, line: &[u8], loc: Loc);
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
    /// Inputs that ended early (e.g. a truncated gzip stream), each with
    /// the number of complete lines read before the cut. Not empty means
    /// the coverage is incomplete: callers report an error.
    pub input_errors: Vec<String>,
    /// Complete lines read per input (for a JSON document: its lines).
    pub lines: Vec<u64>,
    /// Largest buffer the reader allocated, in bytes: stays near
    /// `max(CHUNK_SIZE, max_line)` (or the document size) whatever the input.
    pub max_buffer: usize,
    /// Wall time of reading.
    pub elapsed: Duration,
    chunks: Vec<ChunkMeta>,
    first_line: Vec<u64>,
    failures: Vec<InputFailure>,
}

impl ReadSummary {
    fn finish(&mut self) {
        self.first_line = Vec::with_capacity(self.chunks.len());
        self.lines = vec![0; self.inputs.len()];
        let mut line = 1u64;
        let mut file = u32::MAX;
        for c in &self.chunks {
            if c.file != file {
                file = c.file;
                line = 1;
            }
            self.first_line.push(line);
            line += c.newlines;
            if let Some(n) = self.lines.get_mut(c.file as usize) {
                *n += c.newlines;
            }
        }
        self.input_errors = self
            .failures
            .iter()
            .map(|f| {
                let name = self.inputs.get(f.file as usize).map_or("", String::as_str);
                let lines = self.lines.get(f.file as usize).copied().unwrap_or(0);
                format!(
                    "{name}: input ends early after {lines} complete lines ({}); \
                     the lines before the cut were counted, the rest of the file is missing",
                    f.error
                )
            })
            .collect();
    }

    /// The file and line of `loc`.
    pub fn position(&self, loc: Loc) -> Position {
        let idx = loc.chunk as usize;
        let item = (loc.item > 0).then_some(loc.item as u64);
        match self.chunks.get(idx) {
            Some(meta) => Position {
                file: self
                    .inputs
                    .get(meta.file as usize)
                    .cloned()
                    .unwrap_or_default(),
                line: match &meta.line_map {
                    Some(map) => map.get(loc.line as usize - 1).copied().unwrap_or(0),
                    None => self.first_line[idx] + loc.line as u64 - 1,
                },
                item,
            },
            None => Position {
                file: String::new(),
                line: loc.line as u64,
                item,
            },
        }
    }
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
    /// Longest line read, in bytes; longer lines are reported as malformed
    /// and skipped without being held in memory.
    pub max_line: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            threads: 0,
            progress: true,
            strict: false,
            max_line: DEFAULT_MAX_LINE,
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
    let max_line = opts.max_line.max(1);
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
                    let newlines = process_chunk(&mut sink, &chunk, strict, max_line);
                    // A document's chunks carry their line count already.
                    if !chunk.document
                        && let Ok(mut m) = chunk_meta.lock()
                        && let Some(meta) = m.get_mut(chunk.seq as usize)
                    {
                        meta.newlines = newlines;
                    }
                    // Recycle ordinary buffers only: one grown for a long
                    // line or a document is freed, so memory shrinks back.
                    if chunk.data.len() <= 2 * CHUNK_SIZE {
                        let _ = free_tx.send(chunk.data);
                    }
                }
                sink
            }));
        }
        drop(free_tx);
        let mut summary = ReadSummary {
            inputs: inputs.to_vec(),
            ..Default::default()
        };
        let result = produce(
            inputs,
            &tx,
            &free_rx,
            &chunk_meta,
            &mut summary,
            progress,
            max_line,
        );
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

fn process_chunk<S: EventSink>(sink: &mut S, chunk: &Chunk, strict: bool, max_line: usize) -> u64 {
    let data = &chunk.data[..chunk.len];
    if let Some(len) = chunk.oversized {
        let loc = Loc {
            chunk: chunk.seq,
            line: 1,
            item: 0,
        };
        let error = EventError::TooLong {
            len,
            cap: max_line as u64,
        };
        sink.malformed(&error, data, loc);
        return 1;
    }
    let mut start = 0usize;
    let mut line_no = 0u32;
    let mut newlines = 0u64;
    let mut handle = |line: &[u8], line_no: u32| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            return;
        }
        let at = |item: u32| Loc {
            chunk: chunk.seq,
            line: line_no,
            item,
        };
        // Lines cut from a document are its values: the document limit
        // applies to them, not the line cap.
        if !chunk.document && line.len() > max_line {
            let error = EventError::TooLong {
                len: line.len() as u64,
                cap: max_line as u64,
            };
            sink.malformed(&error, &line[..EXAMPLE_BYTES.min(line.len())], at(0));
            return;
        }
        for_each_event(line, strict, &mut |item, body, r| match r {
            Ok(ev) => sink.event(&ev, at(item)),
            Err(e) => sink.malformed(&e, body, at(item)),
        });
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
                ..Default::default()
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
                "/d@a.json:1 item 1",
                "/e@e.json:1 item 1",
                "/a@l.log:1",
                "/b@l.log:4",
                "/c@p.json:1"
            ]
        );
        let bad: Vec<_> = bad.iter().map(|p| p.to_string()).collect();
        assert_eq!(bad, ["a.json:1 item 2", "l.log:3"]);
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
