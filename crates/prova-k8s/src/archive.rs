//! The tar side of the results directory: archiving it in a stable order
//! (collector) and extracting it without letting it escape its destination
//! (prova, through `prova_results::archive::unpack`, shared with the docker
//! step).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use tar::Builder;

/// What an archive holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Regular files.
    pub files: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Entries left out: symbolic and hard links, devices, FIFOs, sockets.
    pub skipped: u64,
}

/// Writes a tar archive of everything under `dir` (paths relative to it,
/// sorted, symlinks not followed and left out) to `out`. A missing `dir`
/// gives an empty archive.
pub fn write_tar(dir: &Path, out: impl Write) -> io::Result<Counts> {
    let mut builder = Builder::new(out);
    builder.follow_symlinks(false);
    let mut counts = Counts::default();
    if dir.is_dir() {
        walk(dir, Path::new(""), &mut builder, &mut counts)?;
    }
    builder.into_inner()?.flush()?;
    Ok(counts)
}

fn walk<W: Write>(
    root: &Path,
    rel: &Path,
    builder: &mut Builder<W>,
    counts: &mut Counts,
) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let rel = rel.join(entry.file_name());
        let full = root.join(&rel);
        let ft = entry.file_type()?;
        if ft.is_dir() {
            builder.append_dir(&rel, &full)?;
            walk(root, &rel, builder, counts)?;
        } else if ft.is_file() {
            let mut f = File::open(&full)?;
            let meta = f.metadata()?;
            let mut header = tar::Header::new_gnu();
            header.set_metadata(&meta);
            builder.append_data(&mut header, &rel, &mut f)?;
            counts.files += 1;
            counts.bytes += meta.len();
        } else {
            counts.skipped += 1;
        }
    }
    Ok(())
}

/// Extracts the archive at `tar` into `dest` with the results crate's safe
/// unpacker; an entry that would land outside `dest` fails the whole
/// extraction (the collector never writes one, so it means tampering).
pub fn extract(tar: &Path, dest: &Path) -> Result<Counts, String> {
    let file = File::open(tar).map_err(|e| format!("cannot read the archive: {e}"))?;
    let unpacked =
        prova_results::archive::unpack(file, dest, 0, &prova_results::archive::Limits::default())
            .map_err(|e| prova_results::junit::error_chain(&e))?;
    if let Some(bad) = unpacked
        .skipped
        .iter()
        .find(|s| s.reason.starts_with("unsafe path"))
    {
        return Err(format!(
            "entry {:?} would land outside the destination",
            bad.path
        ));
    }
    Ok(Counts {
        files: unpacked.files,
        bytes: unpacked.bytes,
        skipped: unpacked.skipped.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tar::EntryType;

    #[test]
    fn round_trip_keeps_files_and_drops_links() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("junit.xml"), "<testsuites/>").unwrap();
        std::fs::write(src.path().join("a/b/log.txt"), "hello").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.path().join("evil")).unwrap();
        let mut tar = Vec::new();
        let c = write_tar(src.path(), &mut tar).unwrap();
        assert_eq!((c.files, c.bytes, c.skipped), (2, 18, 1));

        let work = tempfile::tempdir().unwrap();
        let tar_path = work.path().join("r.tar");
        std::fs::write(&tar_path, &tar).unwrap();
        let dest = work.path().join("out");
        let c = extract(&tar_path, &dest).unwrap();
        assert_eq!((c.files, c.bytes), (2, 18));
        assert_eq!(
            std::fs::read_to_string(dest.join("a/b/log.txt")).unwrap(),
            "hello"
        );
        assert!(!dest.join("evil").exists());
    }

    #[test]
    fn refuses_entries_that_climb_out() {
        let mut data = Vec::new();
        {
            let mut b = Builder::new(&mut data);
            let mut h = tar::Header::new_old();
            // Bypass the builder's own path checks by writing the name raw.
            h.as_old_mut().name[..9].copy_from_slice(b"../escape");
            h.set_size(1);
            h.set_entry_type(EntryType::Regular);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
            b.finish().unwrap();
        }
        let work = tempfile::tempdir().unwrap();
        let tar_path = work.path().join("bad.tar");
        std::fs::write(&tar_path, &data).unwrap();
        let err = extract(&tar_path, &work.path().join("out")).unwrap_err();
        assert!(err.contains("would land outside the destination"), "{err}");
        assert!(!work.path().join("escape").exists());
    }
}
