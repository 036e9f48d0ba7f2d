//! Opening an audit input: a file or stdin (`-`), plain, gzip or zstd.
//!
//! Compression is detected from the first bytes (gzip `1f 8b`, zstd
//! `28 b5 2f fd`), not from the file name, so `audit.log.1` that is really
//! gzip works, and so does a compressed stream on stdin. Concatenated gzip
//! members (as `logrotate` + `cat` make) are all read.

use std::fs::File;
use std::io::{self, Read};

/// Compression of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain text.
    None,
    /// gzip (`.gz`).
    Gzip,
    /// Zstandard (`.zst`).
    Zstd,
}

/// An opened, decompressing input.
pub struct Source {
    /// Decompressed bytes.
    pub reader: Box<dyn Read + Send>,
    /// What was detected.
    pub compression: Compression,
}

/// Counts bytes read through it (compressed size for progress).
struct Counting<R> {
    inner: R,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `name` (`-` = stdin) and wraps it in a decompressor if needed.
/// `raw_bytes` is increased by every byte read from the file itself.
pub fn open(
    name: &str,
    raw_bytes: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> io::Result<Source> {
    let inner: Box<dyn Read + Send> = if name == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(name)?)
    };
    let mut inner = Counting {
        inner,
        count: raw_bytes,
    };
    let mut magic = Vec::with_capacity(4);
    (&mut inner).take(4).read_to_end(&mut magic)?;
    let compression = match magic.as_slice() {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd] => Compression::Zstd,
        _ => Compression::None,
    };
    let chained = io::Cursor::new(magic).chain(inner);
    let reader: Box<dyn Read + Send> = match compression {
        Compression::None => Box::new(chained),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(1 << 20, chained),
        )),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(chained)?),
    };
    Ok(Source {
        reader,
        compression,
    })
}
