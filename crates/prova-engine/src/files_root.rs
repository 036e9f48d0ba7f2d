//! Files named in descriptors, opened beneath the server's `--files-root`.
//!
//! A path is never checked first and opened later (a symlink swapped in
//! between the two would be followed). Instead a [`DescriptorFile`] keeps the
//! root and the path relative to it, and every read opens the file once,
//! from a handle on the root directory, with `openat`-style resolution
//! (`cap-std`: `openat2(RESOLVE_BENEATH)` on Linux, a per-component
//! `O_NOFOLLOW` walk elsewhere). A `..` that climbs above the root, an
//! absolute path outside it and a symlink that leads out are all refused
//! with one message, whether or not the file outside exists. Symlinks that
//! stay beneath the root are resolved beneath it.
//!
//! Without a files root (`prova run`), files are opened as named.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::OpenOptionsExt as _;
use std::os::unix::fs::OpenOptionsExt as _;

/// The largest file read through [`DescriptorFile::read_to_string`]: 64 MiB
/// (an inventory of a million targets is about 60 MiB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// A file named in a descriptor, as it is to be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorFile {
    /// What the descriptor said (for messages).
    named: String,
    place: Place,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// No files root: the path as resolved against the descriptor's folder.
    Ambient(PathBuf),
    /// Beneath `root` (canonical), at `relative` (no leading `/`).
    Beneath { root: PathBuf, relative: PathBuf },
}

impl DescriptorFile {
    /// `file` as named in a descriptor living in `descriptor_dir` (relative
    /// names resolve against it, else against `files_root`). With a files
    /// root, the result must lie beneath it; nothing is opened yet.
    pub fn new(
        file: &str,
        descriptor_dir: Option<&Path>,
        files_root: Option<&Path>,
    ) -> Result<DescriptorFile, String> {
        let base = descriptor_dir.or(files_root);
        let path = prova_core::descriptor::resolve_relative(base, file);
        let Some(root) = files_root else {
            return Ok(DescriptorFile {
                named: file.to_string(),
                place: Place::Ambient(path),
            });
        };
        let (canonical_root, relative) =
            split_at_root(&path, root)?.map_err(|root| outside(file, &root))?;
        // What lies beneath is resolved by the kernel from the root's handle.
        if relative.components().any(|c| {
            !matches!(
                c,
                Component::Normal(_) | Component::CurDir | Component::ParentDir
            )
        }) {
            return Err(outside(file, &canonical_root));
        }
        Ok(DescriptorFile {
            named: file.to_string(),
            place: Place::Beneath {
                root: canonical_root,
                relative,
            },
        })
    }

    /// The path for messages and for formats guessed from the extension.
    pub fn display_path(&self) -> PathBuf {
        match &self.place {
            Place::Ambient(p) => p.clone(),
            Place::Beneath { root, relative } => root.join(relative),
        }
    }

    /// Opens the file once, beneath the root when there is one. Only
    /// regular files are accepted (a FIFO would block the reader forever).
    pub fn open(&self) -> Result<std::fs::File, String> {
        let file = match &self.place {
            Place::Ambient(path) => std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nonblocking())
                .open(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
            Place::Beneath { root, relative } => {
                let dir = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority())
                    .map_err(|e| format!("the files root {} is unusable: {e}", root.display()))?;
                let mut options = cap_std::fs::OpenOptions::new();
                options.read(true).custom_flags(nonblocking());
                match dir.open_with(relative, &options) {
                    Ok(f) => f.into_std(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // Only a lookup beneath the root can say "missing":
                        // an escape is refused before anything outside is
                        // looked at.
                        return Err(format!(
                            "cannot read {:?}: no such file beneath the files root {}",
                            self.named,
                            root.display()
                        ));
                    }
                    Err(_) => return Err(outside(&self.named, root)),
                }
            }
        };
        let meta = file
            .metadata()
            .map_err(|e| format!("cannot read {}: {e}", self.display_path().display()))?;
        if !meta.is_file() {
            return Err(format!(
                "cannot read {}: not a regular file",
                self.display_path().display()
            ));
        }
        Ok(file)
    }

    /// Reads the whole file as UTF-8, at most [`MAX_FILE_BYTES`].
    pub fn read_to_string(&self) -> Result<String, String> {
        let file = self.open()?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", self.display_path().display()))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(format!(
                "{} is larger than {} MiB",
                self.display_path().display(),
                MAX_FILE_BYTES >> 20
            ));
        }
        String::from_utf8(bytes).map_err(|e| {
            format!(
                "{}: not UTF-8 at byte {}",
                self.display_path().display(),
                e.utf8_error().valid_up_to()
            )
        })
    }
}

/// One message for every path that leads out, so that an answer never
/// tells whether something exists outside the root.
/// `path` split into the files root (canonical) and the part beneath it:
/// `Err` if the root is unusable, `Ok(Err(canonical root))` if `path` does
/// not start with the root. The root may be named through a symlink (`/tmp`
/// on macOS), so either spelling of it is accepted. Nothing beneath the
/// root is looked at.
pub(crate) fn split_at_root(
    path: &Path,
    root: &Path,
) -> Result<Result<(PathBuf, PathBuf), PathBuf>, String> {
    let canonical_root = root
        .canonicalize()
        .map_err(|e| format!("the files root {} is unusable: {e}", root.display()))?;
    let absolute_root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let Ok(absolute) = std::path::absolute(path) else {
        return Ok(Err(canonical_root));
    };
    let relative = match absolute
        .strip_prefix(&canonical_root)
        .or_else(|_| absolute.strip_prefix(&absolute_root))
    {
        Ok(r) => r.to_path_buf(),
        Err(_) => return Ok(Err(canonical_root)),
    };
    Ok(Ok((canonical_root, relative)))
}

fn outside(named: &str, root: &Path) -> String {
    format!(
        "{named:?} is outside the files root {} (or a link leads out of it)",
        root.display()
    )
}

/// `O_NONBLOCK`: opening a FIFO must not wait for a writer. Reads of a
/// regular file ignore it.
fn nonblocking() -> i32 {
    nix::fcntl::OFlag::O_NONBLOCK.bits()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// `root/` with `hosts.csv`, and a `secret` beside the root.
    fn layout() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("hosts.csv"), "1,a,,\n").unwrap();
        std::fs::write(dir.path().join("secret"), "s3cret\n").unwrap();
        (dir, root)
    }

    fn read(file: &str, root: &Path) -> Result<String, String> {
        DescriptorFile::new(file, None, Some(root))?.read_to_string()
    }

    #[test]
    fn files_beneath_the_root_are_read() {
        let (_dir, root) = layout();
        assert_eq!(read("hosts.csv", &root).unwrap(), "1,a,,\n");
        assert_eq!(read("sub/../hosts.csv", &root).unwrap(), "1,a,,\n");
        let absolute = root.join("hosts.csv");
        assert_eq!(read(absolute.to_str().unwrap(), &root).unwrap(), "1,a,,\n");
        symlink("hosts.csv", root.join("alias.csv")).unwrap();
        assert_eq!(read("alias.csv", &root).unwrap(), "1,a,,\n");
    }

    #[test]
    fn escapes_are_refused_alike_whether_the_file_outside_exists_or_not() {
        let (dir, root) = layout();
        let secret = dir.path().join("secret");
        symlink(&secret, root.join("out.csv")).unwrap();
        symlink("../secret", root.join("out-rel.csv")).unwrap();
        symlink(dir.path().join("missing"), root.join("out-missing.csv")).unwrap();
        symlink("../missing", root.join("out-rel-missing.csv")).unwrap();
        symlink(dir.path(), root.join("up")).unwrap();
        let pairs = [
            ("../secret", "../missing"),
            ("sub/../../secret", "sub/../../missing"),
            ("out.csv", "out-missing.csv"),
            ("out-rel.csv", "out-rel-missing.csv"),
            ("up/secret", "up/missing"),
        ];
        for (exists, missing) in pairs {
            let a = read(exists, &root).unwrap_err();
            let b = read(missing, &root).unwrap_err();
            assert!(a.contains("outside the files root"), "{exists}: {a}");
            // The same words, but for the name the descriptor gave.
            assert_eq!(a.replace(exists, "NAME"), b.replace(missing, "NAME"));
        }
        let a = read(secret.to_str().unwrap(), &root).unwrap_err();
        let b = read(dir.path().join("missing").to_str().unwrap(), &root).unwrap_err();
        assert!(a.contains("outside the files root"), "{a}");
        assert_eq!(a.replace("secret", "X"), b.replace("missing", "X"));
    }

    #[test]
    fn a_symlink_swapped_in_after_the_check_is_not_followed_out() {
        let (dir, root) = layout();
        let file = DescriptorFile::new("hosts.csv", None, Some(&root)).unwrap();
        assert!(file.read_to_string().is_ok());
        std::fs::remove_file(root.join("hosts.csv")).unwrap();
        symlink(dir.path().join("secret"), root.join("hosts.csv")).unwrap();
        let err = file.read_to_string().unwrap_err();
        assert!(err.contains("outside the files root"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let (_dir, root) = layout();
        nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read("fifo", &root).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        let err = read("sub", &root).unwrap_err();
        assert!(
            err.contains("not a regular file") || err.contains("outside"),
            "{err}"
        );
        let big = std::fs::File::create(root.join("big")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        let err = read("big", &root).unwrap_err();
        assert!(err.contains("larger than 64 MiB"), "{err}");
        let err = read("nope.csv", &root).unwrap_err();
        assert!(err.contains("no such file beneath the files root"), "{err}");
    }

    #[test]
    fn without_a_root_files_are_read_as_named() {
        let (dir, root) = layout();
        let f = DescriptorFile::new("../secret", Some(&root), None).unwrap();
        assert_eq!(f.read_to_string().unwrap(), "s3cret\n");
        assert_eq!(f.display_path(), root.join("../secret"));
        drop(dir);
    }
}
