//! Files that plugins write (the `junit` reporter's `File`), confined to
//! the server's `--files-root` like the files descriptors read.
//!
//! With a files root, the name is resolved lexically first (relative to
//! the descriptor's folder, else the root; `..` folded), and must lie
//! beneath the root; then, when the file is written, every directory on
//! the way is checked (or created) one at a time: an existing one must
//! resolve, links and all, to a directory beneath the root. The file is
//! written to a new temporary file in that directory and renamed over the
//! name, so a link planted at the name is replaced, never followed. Every
//! refusal has one message, whether or not anything exists outside.
//!
//! Without a files root (`prova run`), the file is written as named.

use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use crate::files_root::split_at_root;

/// Where a plugin's output file goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// What the descriptor said (for messages).
    named: String,
    place: Place,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// No files root: as named.
    Ambient(PathBuf),
    /// Beneath `root` (canonical), at `relative` (plain names only).
    Beneath { root: PathBuf, relative: PathBuf },
}

impl OutputFile {
    /// A file written as named (no files root).
    pub fn ambient(path: impl Into<PathBuf>) -> OutputFile {
        let path = path.into();
        OutputFile {
            named: path.display().to_string(),
            place: Place::Ambient(path),
        }
    }

    /// `file` as named in a descriptor in `descriptor_dir`, beneath `root`.
    /// Checks what exists today (so a bad name fails at submission); the
    /// write checks again.
    pub fn beneath(
        file: &str,
        descriptor_dir: Option<&Path>,
        root: &Path,
    ) -> Result<OutputFile, String> {
        let base = descriptor_dir.unwrap_or(root);
        let joined = prova_core::descriptor::resolve_relative(Some(base), file);
        // `..` is folded by name here (a folder created later may be named
        // and left); links are checked as each folder is reached.
        let folded = std::path::absolute(&joined)
            .ok()
            .and_then(|a| fold_dots(&a));
        let (canonical_root, relative) = match folded {
            Some(folded) => split_at_root(&folded, root)?,
            None => Err(root.canonicalize().unwrap_or_else(|_| root.to_path_buf())),
        }
        .map_err(|root| outside(file, &root))?;
        if relative.file_name().is_none() {
            return Err(format!(
                "{file:?} names the files root itself, not a file beneath it"
            ));
        }
        let out = OutputFile {
            named: file.to_string(),
            place: Place::Beneath {
                root: canonical_root,
                relative,
            },
        };
        out.parent_dir(false)?;
        Ok(out)
    }

    /// The path for messages and reports.
    pub fn display_path(&self) -> PathBuf {
        match &self.place {
            Place::Ambient(p) => p.clone(),
            Place::Beneath { root, relative } => root.join(relative),
        }
    }

    /// Writes `bytes` to the file (its directories created), beneath the
    /// root when there is one.
    pub fn write(&self, bytes: &[u8]) -> Result<(), String> {
        let cannot = |e: io::Error| format!("cannot write {}: {e}", self.display_path().display());
        match &self.place {
            Place::Ambient(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(cannot)?;
                }
                std::fs::write(path, bytes).map_err(cannot)
            }
            Place::Beneath { root, relative } => {
                let missing = || outside(&self.named, root);
                let dir = self.parent_dir(true)?.ok_or_else(missing)?;
                let name = relative.file_name().ok_or_else(missing)?;
                let target = dir.join(name);
                let tmp = dir.join(format!(
                    ".{}.{}.tmp",
                    name.to_string_lossy(),
                    std::process::id()
                ));
                // `create_new` fails on anything already there, a link
                // included; `rename` replaces a link rather than follow it.
                let written = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)
                    .and_then(|mut f| f.write_all(bytes))
                    .and_then(|()| std::fs::rename(&tmp, &target));
                if written.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                written.map_err(cannot)
            }
        }
    }

    /// The canonical directory the file goes in, every step of it checked
    /// to stay beneath the root; missing ones are created when `create`
    /// (else `None` is returned at the first missing one).
    fn parent_dir(&self, create: bool) -> Result<Option<PathBuf>, String> {
        let Place::Beneath { root, relative } = &self.place else {
            return Ok(None);
        };
        let mut dir = root.clone();
        let parents = relative.parent().into_iter().flat_map(Path::components);
        for part in parents {
            let next = dir.join(part);
            match std::fs::symlink_metadata(&next) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !create {
                        return Ok(None);
                    }
                    // `mkdir` does not follow a link at its last component
                    // and `dir` is checked: this creates beneath the root.
                    match std::fs::create_dir(&next) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(self.cannot_create(&next, root, e)),
                    }
                    dir = self.checked(&next, root)?;
                }
                Ok(_) => dir = self.checked(&next, root)?,
                Err(e) => return Err(self.cannot_create(&next, root, e)),
            }
        }
        Ok(Some(dir))
    }

    /// `path` resolved (links and all): a directory beneath `root`.
    fn checked(&self, path: &Path, root: &Path) -> Result<PathBuf, String> {
        match path.canonicalize() {
            Ok(real) if real.starts_with(root) && real.is_dir() => Ok(real),
            Ok(real) if real.starts_with(root) => Err(format!(
                "cannot write {:?}: {} is not a directory",
                self.named,
                real.display()
            )),
            _ => Err(outside(&self.named, root)),
        }
    }

    fn cannot_create(&self, path: &Path, root: &Path, e: io::Error) -> String {
        let shown = path.strip_prefix(root).unwrap_or(path);
        format!(
            "cannot write {:?}: cannot create {} beneath the files root {}: {e}",
            self.named,
            shown.display(),
            root.display()
        )
    }
}

/// `path` (absolute) with `.` dropped and `..` folded into its parent;
/// `None` if a `..` climbs above `/`.
fn fold_dots(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// One message for every path that leads out, so that an answer never
/// tells whether something exists outside the root.
fn outside(named: &str, root: &Path) -> String {
    format!(
        "{named:?} is not a writable file beneath the files root {} (paths and links may not lead outside it)",
        root.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let top = tempfile::tempdir().unwrap();
        let root = top.path().join("root");
        let outside = top.path().join("outside");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        (top, root, outside)
    }

    #[test]
    fn relative_names_land_beneath_the_root() {
        let (_t, root, _) = setup();
        let f = OutputFile::beneath("reports/./a/../junit.xml", None, &root).unwrap();
        f.write(b"<x/>").unwrap();
        let written = root.canonicalize().unwrap().join("reports/junit.xml");
        assert_eq!(std::fs::read(&written).unwrap(), b"<x/>");
        assert_eq!(f.display_path(), written);
        // An absolute name beneath the root is fine too.
        let abs = root.join("abs.xml");
        OutputFile::beneath(abs.to_str().unwrap(), None, &root)
            .unwrap()
            .write(b"y")
            .unwrap();
        assert!(abs.is_file());
    }

    #[test]
    fn escapes_are_refused_with_one_message() {
        let (_t, root, outside_dir) = setup();
        std::fs::write(outside_dir.join("exists.xml"), "keep").unwrap();
        let abs_out = outside_dir.join("exists.xml");
        let abs_missing = outside_dir.join("missing.xml");
        let mut messages = Vec::new();
        for name in [
            "../outside/exists.xml",
            "../outside/missing.xml",
            abs_out.to_str().unwrap(),
            abs_missing.to_str().unwrap(),
            "/etc/passwd",
            "a/../../outside/exists.xml",
        ] {
            let e = OutputFile::beneath(name, None, &root).unwrap_err();
            assert!(
                e.contains("is not a writable file beneath the files root"),
                "{e}"
            );
            messages.push(e.replace(name, "NAME"));
        }
        // Whether the file outside exists changes nothing in the answer.
        assert!(messages.windows(2).all(|w| w[0] == w[1]), "{messages:#?}");
        assert_eq!(std::fs::read_to_string(&abs_out).unwrap(), "keep");
        assert!(!abs_missing.exists());
    }

    #[test]
    fn links_leading_out_are_not_followed() {
        let (_t, root, outside_dir) = setup();
        // A directory link out, at submission and swapped in afterwards.
        std::os::unix::fs::symlink(&outside_dir, root.join("out")).unwrap();
        let e = OutputFile::beneath("out/junit.xml", None, &root).unwrap_err();
        assert!(e.contains("beneath the files root"), "{e}");
        let later = OutputFile::beneath("later/sub/junit.xml", None, &root).unwrap();
        std::os::unix::fs::symlink(&outside_dir, root.join("later")).unwrap();
        let e = later.write(b"x").unwrap_err();
        assert!(e.contains("beneath the files root"), "{e}");
        assert!(!outside_dir.join("sub").exists());
        // A link at the file's own name (dangling or not) is replaced by
        // the file, and what it pointed at is untouched.
        std::fs::write(outside_dir.join("target.xml"), "keep").unwrap();
        std::os::unix::fs::symlink(outside_dir.join("target.xml"), root.join("j.xml")).unwrap();
        std::os::unix::fs::symlink(outside_dir.join("new.xml"), root.join("k.xml")).unwrap();
        for name in ["j.xml", "k.xml"] {
            OutputFile::beneath(name, None, &root)
                .unwrap()
                .write(b"mine")
                .unwrap();
            let m = std::fs::symlink_metadata(root.join(name)).unwrap();
            assert!(m.is_file(), "{name} is still a link");
        }
        assert_eq!(
            std::fs::read_to_string(outside_dir.join("target.xml")).unwrap(),
            "keep"
        );
        assert!(!outside_dir.join("new.xml").exists());
        // A link that stays beneath the root is fine.
        std::fs::create_dir(root.join("real")).unwrap();
        std::os::unix::fs::symlink(root.join("real"), root.join("alias")).unwrap();
        OutputFile::beneath("alias/j.xml", None, &root)
            .unwrap()
            .write(b"z")
            .unwrap();
        assert!(root.join("real/j.xml").is_file());
    }

    #[test]
    fn relative_to_the_descriptors_folder_under_the_root() {
        let (_t, root, _) = setup();
        let jobs = root.join("jobs");
        std::fs::create_dir(&jobs).unwrap();
        let f = OutputFile::beneath("out.xml", Some(&jobs), &root).unwrap();
        f.write(b"x").unwrap();
        assert!(jobs.join("out.xml").is_file());
        assert!(OutputFile::beneath("../../x.xml", Some(&jobs), &root).is_err());
        assert!(OutputFile::beneath(".", None, &root).is_err());
    }
}
