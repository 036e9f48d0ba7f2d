//! The collector stream: how `prova collector send` frames a tar archive of
//! the results directory so that the receiver can tell a complete, intact
//! archive from a truncated or corrupted one.
//!
//! ```text
//! stream  = MAGIC frame* end
//! MAGIC   = "PROVA-COLLECT/1\n"                     (16 bytes)
//! frame   = tag:u8 len:u32 (big endian) payload[len]
//!   'D'   data: the next bytes of the tar archive (len <= 64 KiB)
//!   'E'   end: JSON trailer {"files","bytes","tar_bytes","sha256"}; sha256 is
//!         the hex SHA-256 of every data byte, in order; nothing may follow
//!   'X'   error: UTF-8 text; the sender failed and the archive is invalid
//! ```
//!
//! The receiver ([`Decoder`]) checks the magic, the frame tags, the length
//! and the digest of the data, and that the stream ends right after the
//! trailer. A stream that ends before its trailer is truncated.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The first bytes of every collector stream.
pub const MAGIC: &[u8; 16] = b"PROVA-COLLECT/1\n";
/// Largest payload of a data frame the sender writes.
pub const MAX_DATA_FRAME: usize = 64 * 1024;
/// Largest payload the receiver accepts in any frame.
const MAX_FRAME: usize = 1024 * 1024;

const TAG_DATA: u8 = b'D';
const TAG_END: u8 = b'E';
const TAG_ERROR: u8 = b'X';

/// What the trailer says about the archive (also the collector's summary).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trailer {
    /// Regular files in the archive.
    pub files: u64,
    /// Bytes of file content in the archive.
    pub bytes: u64,
    /// Bytes of the tar archive itself.
    pub tar_bytes: u64,
    /// Hex SHA-256 of the tar archive.
    pub sha256: String,
}

/// Why a collector stream was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("not a collector stream (bad magic {0:?})")]
    BadMagic(String),
    #[error("unknown frame tag {0:#04x} at byte {1}")]
    BadTag(u8, u64),
    #[error("frame of {0} bytes is larger than the limit")]
    TooLarge(usize),
    #[error("the collector reported an error: {0}")]
    Sender(String),
    #[error("bad trailer")]
    BadTrailer(#[source] serde_json::Error),
    #[error("checksum mismatch: trailer says sha256 {expected}, received data hashes to {actual}")]
    ChecksumMismatch { expected: String, actual: String },
    #[error("length mismatch: trailer says {expected} bytes, received {actual}")]
    LengthMismatch { expected: u64, actual: u64 },
    #[error("{0} unexpected bytes after the trailer")]
    TrailingData(usize),
    #[error("stream truncated: it ended before the trailer")]
    Truncated,
    #[error("cannot write the received archive")]
    Sink(#[source] io::Error),
}

/// Writes a collector stream to `out`: [`Write`] the tar bytes into it, then
/// [`FrameWriter::finish`] with the counts.
pub struct FrameWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    hasher: Sha256,
    tar_bytes: u64,
    started: bool,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(out: W) -> Self {
        FrameWriter {
            out,
            buf: Vec::with_capacity(MAX_DATA_FRAME),
            hasher: Sha256::new(),
            tar_bytes: 0,
            started: false,
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.out.write_all(MAGIC)?;
            self.started = true;
        }
        Ok(())
    }

    fn frame(&mut self, tag: u8, payload: &[u8]) -> io::Result<()> {
        self.start()?;
        let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
        self.out.write_all(&[tag])?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(payload)
    }

    fn flush_data(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let data = std::mem::take(&mut self.buf);
            self.frame(TAG_DATA, &data)?;
            self.buf = data;
            self.buf.clear();
        }
        Ok(())
    }

    /// Ends the stream with its trailer; returns the trailer.
    pub fn finish(mut self, files: u64, bytes: u64) -> io::Result<(Trailer, W)> {
        self.flush_data()?;
        let trailer = Trailer {
            files,
            bytes,
            tar_bytes: self.tar_bytes,
            sha256: hex(&self.hasher.clone().finalize()),
        };
        let json = serde_json::to_vec(&trailer).map_err(io::Error::other)?;
        self.frame(TAG_END, &json)?;
        self.out.flush()?;
        Ok((trailer, self.out))
    }

    /// Ends the stream with an error frame: the receiver rejects it.
    pub fn fail(mut self, message: &str) -> io::Result<W> {
        self.buf.clear();
        self.frame(TAG_ERROR, message.as_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(MAX_DATA_FRAME - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.hasher.update(&data[..n]);
        self.tar_bytes += n as u64;
        if self.buf.len() == MAX_DATA_FRAME {
            self.flush_data()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_data()?;
        self.out.flush()
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

enum State {
    Magic,
    Header,
    Payload { tag: u8, len: usize },
    Ended,
}

/// Decodes a collector stream incrementally: feed it bytes as they arrive
/// with [`Decoder::push`] (data goes to `sink`), then [`Decoder::finish`].
pub struct Decoder<W: Write> {
    sink: W,
    state: State,
    pending: Vec<u8>,
    hasher: Sha256,
    received: u64,
    position: u64,
    trailer: Option<Trailer>,
}

impl<W: Write> Decoder<W> {
    pub fn new(sink: W) -> Self {
        Decoder {
            sink,
            state: State::Magic,
            pending: Vec::new(),
            hasher: Sha256::new(),
            received: 0,
            position: 0,
            trailer: None,
        }
    }

    /// Feeds the next bytes of the stream.
    pub fn push(&mut self, mut data: &[u8]) -> Result<(), FrameError> {
        while !data.is_empty() {
            if let State::Ended = self.state {
                return Err(FrameError::TrailingData(data.len()));
            }
            let want = match self.state {
                State::Magic => MAGIC.len(),
                State::Header => 5,
                State::Payload { len, .. } => len,
                State::Ended => unreachable!(),
            };
            let take = (want - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            self.position += take as u64;
            if self.pending.len() == want {
                let chunk = std::mem::take(&mut self.pending);
                self.complete(&chunk)?;
            }
        }
        Ok(())
    }

    fn complete(&mut self, chunk: &[u8]) -> Result<(), FrameError> {
        match self.state {
            State::Magic => {
                if chunk != MAGIC {
                    return Err(FrameError::BadMagic(
                        String::from_utf8_lossy(chunk).into_owned(),
                    ));
                }
                self.state = State::Header;
            }
            State::Header => {
                let tag = chunk[0];
                let len = u32::from_be_bytes([chunk[1], chunk[2], chunk[3], chunk[4]]) as usize;
                if !matches!(tag, TAG_DATA | TAG_END | TAG_ERROR) {
                    return Err(FrameError::BadTag(tag, self.position - 5));
                }
                if len > MAX_FRAME {
                    return Err(FrameError::TooLarge(len));
                }
                self.state = State::Payload { tag, len };
                if len == 0 {
                    self.complete(&[])?;
                }
            }
            State::Payload { tag, .. } => match tag {
                TAG_DATA => {
                    self.hasher.update(chunk);
                    self.received += chunk.len() as u64;
                    self.sink.write_all(chunk).map_err(FrameError::Sink)?;
                    self.state = State::Header;
                }
                TAG_END => {
                    let t: Trailer =
                        serde_json::from_slice(chunk).map_err(FrameError::BadTrailer)?;
                    self.trailer = Some(t);
                    self.state = State::Ended;
                }
                _ => {
                    return Err(FrameError::Sender(
                        String::from_utf8_lossy(chunk).into_owned(),
                    ));
                }
            },
            State::Ended => unreachable!(),
        }
        Ok(())
    }

    /// Checks that the stream was complete and intact; returns the trailer
    /// and the sink.
    pub fn finish(mut self) -> Result<(Trailer, W), FrameError> {
        let Some(trailer) = self.trailer.take() else {
            return Err(FrameError::Truncated);
        };
        let actual = hex(&self.hasher.finalize());
        if actual != trailer.sha256 {
            return Err(FrameError::ChecksumMismatch {
                expected: trailer.sha256,
                actual,
            });
        }
        if self.received != trailer.tar_bytes {
            return Err(FrameError::LengthMismatch {
                expected: trailer.tar_bytes,
                actual: self.received,
            });
        }
        self.sink.flush().map_err(FrameError::Sink)?;
        Ok((trailer, self.sink))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(data: &[u8]) -> Vec<u8> {
        let mut w = FrameWriter::new(Vec::new());
        w.write_all(data).unwrap();
        w.finish(1, data.len() as u64).unwrap().1
    }

    fn decode(stream: &[u8], step: usize) -> Result<(Trailer, Vec<u8>), FrameError> {
        let mut d = Decoder::new(Vec::new());
        for c in stream.chunks(step) {
            d.push(c)?;
        }
        d.finish()
    }

    #[test]
    fn round_trips_in_any_chunking() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let stream = encode(&data);
        for step in [1, 7, 4096, 1 << 20] {
            let (t, out) = decode(&stream, step).unwrap();
            assert_eq!(out, data);
            assert_eq!(t.tar_bytes, data.len() as u64);
            assert_eq!(t.sha256.len(), 64);
        }
    }

    #[test]
    fn flipped_data_byte_is_a_checksum_mismatch() {
        let mut stream = encode(b"hello world");
        stream[MAGIC.len() + 5 + 3] ^= 0x20;
        assert!(matches!(
            decode(&stream, 3),
            Err(FrameError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn missing_trailer_is_truncation() {
        let stream = encode(b"hello world");
        let cut = MAGIC.len() + 5 + 11;
        assert!(matches!(
            decode(&stream[..cut], 4),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn bytes_after_the_trailer_are_rejected() {
        let mut stream = encode(b"x");
        stream.push(0);
        assert!(matches!(
            decode(&stream, 100),
            Err(FrameError::TrailingData(1))
        ));
    }

    #[test]
    fn sender_error_and_bad_magic() {
        let w = FrameWriter::new(Vec::new());
        let stream = w.fail("disk on fire").unwrap();
        let err = decode(&stream, 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the collector reported an error: disk on fire"
        );
        let err = decode(b"HTTP/1.1 500 Internal\n", 5).unwrap_err();
        assert!(matches!(err, FrameError::BadMagic(_)));
    }
}
