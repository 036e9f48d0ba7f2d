//! Unpacking a results archive (a tar stream) into a directory, safely.
//!
//! The stream comes from a container or a Job that prova does not trust:
//! - entries with an absolute path, a `..` component or a drive prefix are
//!   not written (they are listed in [`Unpacked::skipped`]);
//! - symbolic and hard links, devices and FIFOs are not created (listed
//!   too): nothing written can point outside `dest`, and no later entry can
//!   be written through a link;
//! - only regular files and directories are created, with default
//!   permissions (no setuid bits, no owners);
//! - the unpacked bytes and the number of entries are bounded
//!   ([`Limits`]); past them unpacking stops with an error;
//! - the whole stream is hashed (sha256), as it arrived.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use tar::EntryType;

use crate::error::ResultsError;

/// Bounds on what an archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of file content, in all.
    pub max_bytes: u64,
    /// Entries of any kind.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 30,
            max_entries: 100_000,
        }
    }
}

/// What an archive unpacked to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unpacked {
    /// Regular files written.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// sha256 of the whole tar stream, lowercase hex.
    pub sha256: String,
    /// Entries not written, and why.
    pub skipped: Vec<Skipped>,
}

/// An archive entry that was not written.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// Unpacks the tar stream `reader` into `dest` (created if missing),
/// dropping the first `strip_components` path components of every entry
/// (1 for Docker's archive API, whose entries start with the directory's
/// own name). See the module documentation for what is refused.
pub fn unpack(
    reader: impl Read,
    dest: &Path,
    strip_components: usize,
    limits: &Limits,
) -> Result<Unpacked, ResultsError> {
    let io_at = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ResultsError::Io { path, source }
    };
    fs::create_dir_all(dest).map_err(io_at(dest))?;
    if fs::symlink_metadata(dest)
        .map_err(io_at(dest))?
        .file_type()
        .is_symlink()
    {
        return Err(ResultsError::Archive(format!(
            "destination {} is a symbolic link",
            dest.display()
        )));
    }
    let hashing = HashingReader {
        inner: reader,
        hasher: Sha256::new(),
    };
    let mut archive = tar::Archive::new(hashing);
    let mut out = Unpacked::default();
    let mut entries_seen = 0u64;
    let bad = |e: io::Error| ResultsError::Archive(format!("unreadable tar stream: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        entries_seen += 1;
        if entries_seen > limits.max_entries {
            return Err(ResultsError::Archive(format!(
                "more than {} entries",
                limits.max_entries
            )));
        }
        let raw = entry.path().map_err(bad)?.into_owned();
        let shown = raw.to_string_lossy().into_owned();
        let Some(rel) = safe_relative(&raw, strip_components) else {
            if !is_stripped_prefix(&raw, strip_components) {
                out.skipped.push(Skipped {
                    path: shown,
                    reason: "unsafe path (absolute or with `..`)".into(),
                });
            }
            continue;
        };
        let kind = entry.header().entry_type();
        let target = dest.join(&rel);
        match kind {
            EntryType::Directory => {
                ensure_dirs(dest, &rel, true)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                ensure_dirs(dest, &rel, false)?;
                if let Ok(m) = fs::symlink_metadata(&target)
                    && !m.is_file()
                {
                    out.skipped.push(Skipped {
                        path: shown,
                        reason: "a directory or link of that name exists".into(),
                    });
                    continue;
                }
                let room = limits.max_bytes - out.bytes;
                let mut file = fs::File::create(&target).map_err(io_at(&target))?;
                let n = io::copy(&mut (&mut entry).take(room.saturating_add(1)), &mut file)
                    .map_err(io_at(&target))?;
                if n > room {
                    return Err(ResultsError::Archive(format!(
                        "more than {} bytes of files",
                        limits.max_bytes
                    )));
                }
                out.files += 1;
                out.bytes += n;
            }
            other => {
                let what = match other {
                    EntryType::Symlink => "symbolic link",
                    EntryType::Link => "hard link",
                    EntryType::Char | EntryType::Block => "device",
                    EntryType::Fifo => "FIFO",
                    _ => "unsupported entry type",
                };
                out.skipped.push(Skipped {
                    path: shown,
                    reason: format!("{what} (not extracted)"),
                });
            }
        }
    }
    // Hash what follows the last entry too (end blocks, padding).
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(bad)?;
    out.sha256 = hex(&rest.hasher.finalize());
    Ok(out)
}

/// The entry's path below the stripped components, if every component is
/// a plain name. `None` for unsafe paths and for the stripped prefix itself.
fn safe_relative(path: &Path, strip: usize) -> Option<PathBuf> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if parts.len() <= strip {
        return None;
    }
    Some(parts[strip..].iter().collect())
}

/// Whether `path` is a safe path that is only the stripped prefix (e.g. the
/// archive's top directory), which is expected and not worth reporting.
fn is_stripped_prefix(path: &Path, strip: usize) -> bool {
    let mut n = 0;
    for c in path.components() {
        match c {
            Component::Normal(_) => n += 1,
            Component::CurDir => {}
            _ => return false,
        }
    }
    n <= strip
}

/// Creates the directories of `rel` below `dest` (all of it when `whole`,
/// else its parent), refusing to go through anything that is not a
/// directory we can trust (a link, a file).
fn ensure_dirs(dest: &Path, rel: &Path, whole: bool) -> Result<(), ResultsError> {
    let comps: Vec<_> = rel.components().collect();
    let upto = if whole {
        comps.len()
    } else {
        comps.len().saturating_sub(1)
    };
    let mut cur = dest.to_path_buf();
    for c in &comps[..upto] {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(ResultsError::Archive(format!(
                    "{} is in the way of a directory",
                    rel.display()
                )));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).map_err(|source| ResultsError::Io {
                    path: cur.clone(),
                    source,
                })?;
            }
            Err(source) => {
                return Err(ResultsError::Io {
                    path: cur.clone(),
                    source,
                });
            }
        }
    }
    Ok(())
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: &str, kind: EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // set_path refuses `..` and absolute paths: write the raw name.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn tar_of(entries: &[(&str, EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = header(path, *kind, data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
                h.set_cksum();
            }
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_files_and_strips_the_top_directory() {
        let t = tar_of(&[
            ("results/", EntryType::Directory, b"", None),
            (
                "results/junit.xml",
                EntryType::Regular,
                b"<testsuite/>",
                None,
            ),
            ("results/sub/log.txt", EntryType::Regular, b"hello", None),
        ]);
        let d = tempfile::tempdir().unwrap();
        let u = unpack(&t[..], d.path(), 1, &Limits::default()).unwrap();
        assert_eq!((u.files, u.bytes), (2, 17));
        assert!(u.skipped.is_empty(), "{:?}", u.skipped);
        assert_eq!(fs::read(d.path().join("sub/log.txt")).unwrap(), b"hello");
        assert_eq!(u.sha256, hex(&Sha256::digest(&t)));
    }

    #[test]
    fn refuses_escapes_and_links() {
        let outside = tempfile::tempdir().unwrap();
        let d = tempfile::tempdir().unwrap();
        let abs = format!("{}/abs.txt", outside.path().display());
        let t = tar_of(&[
            ("r/../../evil.txt", EntryType::Regular, b"x", None),
            (&abs, EntryType::Regular, b"x", None),
            ("r/link", EntryType::Symlink, b"", Some("/etc")),
            ("r/up", EntryType::Symlink, b"", Some("..")),
            ("r/hard", EntryType::Link, b"", Some("/etc/passwd")),
            ("r/link/passwd", EntryType::Regular, b"x", None),
            ("r/dev", EntryType::Char, b"", None),
            ("r/ok.txt", EntryType::Regular, b"fine", None),
        ]);
        let u = unpack(&t[..], d.path(), 1, &Limits::default()).unwrap();
        assert_eq!(u.files, 2, "{u:?}");
        let reasons: Vec<_> = u.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(reasons.len(), 6, "{reasons:?}");
        assert!(!outside.path().join("abs.txt").exists());
        assert!(!d.path().parent().unwrap().join("evil.txt").exists());
        // `link` was never made a link: `link/passwd` landed in a real dir.
        let m = fs::symlink_metadata(d.path().join("link")).unwrap();
        assert!(m.is_dir());
        assert!(fs::symlink_metadata(d.path().join("up")).is_err());
        assert_eq!(fs::read(d.path().join("ok.txt")).unwrap(), b"fine");
    }

    #[test]
    fn enforces_limits() {
        let t = tar_of(&[
            ("r/a", EntryType::Regular, &[0u8; 600], None),
            ("r/b", EntryType::Regular, &[0u8; 600], None),
        ]);
        let d = tempfile::tempdir().unwrap();
        let small = Limits {
            max_bytes: 1000,
            max_entries: 10,
        };
        let e = unpack(&t[..], d.path(), 1, &small).unwrap_err();
        assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
        let few = Limits {
            max_bytes: 1 << 20,
            max_entries: 1,
        };
        let e = unpack(&t[..], d.path(), 1, &few).unwrap_err();
        assert!(e.to_string().contains("more than 1 entries"), "{e}");
        let e = unpack(&b"not a tar at all, no"[..], d.path(), 1, &few).unwrap_err();
        assert!(e.to_string().contains("results archive"), "{e}");
    }
}
