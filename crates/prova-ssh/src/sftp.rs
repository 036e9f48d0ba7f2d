//! Copies a remote directory tree (a test suite's results directory) to a
//! local directory over SFTP, treating the remote side as untrusted:
//!
//! - bounded: number of files, total bytes, directory depth, entries listed;
//! - every remote name must be one plain path component (no `/`, `.`, `..`,
//!   NUL), so nothing is written outside the local destination;
//! - local files are created new (`O_EXCL`), never through an existing file
//!   or symlink;
//! - a symlink is followed only to a regular file inside the remote root (as
//!   the server resolves it); one leading outside is an error, one to a
//!   directory is skipped (no cycles); FIFOs, sockets and devices are
//!   skipped, never opened.
//!
//! russh-sftp's `SftpSession::read_dir` collects a whole directory in
//! memory, so listing uses the raw session with a bound on entries. File
//! types come from `FileAttributes::file_type` (the mode's type bits
//! compared whole); its `is_regular`/`is_dir` test single bits, so a
//! symlink (0o120000) also passes `is_regular` and a socket `is_dir`.

use std::path::{Path, PathBuf};

use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as RawError;
use russh_sftp::protocol::{FileAttributes, FileType, OpenFlags, StatusCode};
use tokio::io::AsyncWriteExt;

use crate::connect::{ConnectError, Connection};

/// Bounds of one download.
#[derive(Debug, Clone)]
pub struct DownloadLimits {
    pub max_files: usize,
    pub max_total_bytes: u64,
    /// Directories below the root (the root's files are at depth 0).
    pub max_depth: usize,
    /// Directory entries listed in all, files or not.
    pub max_entries: usize,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        Self {
            max_files: 10_000,
            max_total_bytes: 1 << 30,
            max_depth: 32,
            max_entries: 100_000,
        }
    }
}

/// What was copied and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadSummary {
    /// Local paths of the files written, relative to the destination.
    pub files: Vec<PathBuf>,
    pub bytes: u64,
    /// Remote entries not copied, with why.
    pub skipped: Vec<(String, String)>,
}

/// Why a download failed. Each message names the remote path concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SftpError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("{target}: cannot start SFTP")]
    Start {
        target: String,
        #[source]
        source: Box<russh::Error>,
    },
    #[error("{target}: SFTP {op} {path}")]
    Remote {
        target: String,
        op: &'static str,
        path: String,
        #[source]
        source: RawError,
    },
    #[error("{target}: remote results directory {path} is not a directory")]
    NotADirectory { target: String, path: String },
    #[error(
        "{target}: remote entry {name:?} in {dir} is not a plain file name; refusing to copy it"
    )]
    BadName {
        target: String,
        dir: String,
        name: String,
    },
    #[error(
        "{target}: remote symlink {path} leads to {resolved}, outside {root}; refusing to follow it"
    )]
    SymlinkOutside {
        target: String,
        path: String,
        resolved: String,
        root: String,
    },
    #[error("{target}: remote results exceed the limit of {limit} {what} (at {path})")]
    Limit {
        target: String,
        what: &'static str,
        limit: u64,
        path: String,
    },
    #[error("cannot write {}", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Bytes asked per SFTP read (OpenSSH serves up to 255 KiB; 32 KiB is what
/// every server allows).
const READ_CHUNK: u32 = 32 * 1024;

/// Copies the tree at `remote` into `local` (created if missing; files in it
/// must not exist yet).
pub async fn download_dir(
    conn: &Connection,
    remote: &str,
    local: &Path,
    limits: &DownloadLimits,
) -> Result<DownloadSummary, SftpError> {
    let target = conn.target().to_string();
    let channel = conn.open_session().await?;
    channel
        .request_subsystem(true, "sftp")
        .await
        .map_err(|source| SftpError::Start {
            target: target.clone(),
            source: Box::new(source),
        })?;
    let sftp = RawSftpSession::new(channel.into_stream());
    sftp.init().await.map_err(|source| SftpError::Remote {
        target: target.clone(),
        op: "init",
        path: remote.to_string(),
        source,
    })?;
    let mut copy = Copy {
        sftp,
        target,
        limits: limits.clone(),
        root: String::new(),
        summary: DownloadSummary::default(),
        entries: 0,
    };
    let result = copy.run(remote, local).await;
    let _closing = copy.sftp.close_session();
    result.map(|()| copy.summary)
}

struct Copy {
    sftp: RawSftpSession,
    target: String,
    limits: DownloadLimits,
    /// The remote root as the server resolves it.
    root: String,
    summary: DownloadSummary,
    entries: usize,
}

impl Copy {
    fn remote_err(&self, op: &'static str, path: &str) -> impl FnOnce(RawError) -> SftpError {
        let target = self.target.clone();
        let path = path.to_string();
        move |source| SftpError::Remote {
            target,
            op,
            path,
            source,
        }
    }

    async fn run(&mut self, remote: &str, local: &Path) -> Result<(), SftpError> {
        let name = self
            .sftp
            .realpath(remote)
            .await
            .map_err(self.remote_err("resolve", remote))?;
        self.root = name
            .files
            .first()
            .map(|f| f.filename.clone())
            .unwrap_or_else(|| remote.to_string());
        let attrs = self
            .sftp
            .stat(self.root.as_str())
            .await
            .map_err(self.remote_err("stat", remote))?
            .attrs;
        if attrs.file_type() != FileType::Dir {
            return Err(SftpError::NotADirectory {
                target: self.target.clone(),
                path: remote.to_string(),
            });
        }
        tokio::fs::create_dir_all(local)
            .await
            .map_err(|source| SftpError::Local {
                path: local.to_path_buf(),
                source,
            })?;
        // Depth-first with an explicit stack: no recursion on remote input.
        let mut stack = vec![(
            self.root.clone(),
            local.to_path_buf(),
            PathBuf::new(),
            0usize,
        )];
        while let Some((dir, local_dir, relative, depth)) = stack.pop() {
            for (name, attrs) in self.list(&dir).await? {
                let path = format!("{}/{name}", dir.trim_end_matches('/'));
                let local_path = local_dir.join(&name);
                let rel = relative.join(&name);
                let kind = attrs.file_type();
                if kind == FileType::Dir {
                    if depth + 1 > self.limits.max_depth {
                        return Err(self.limit(
                            "directory levels",
                            self.limits.max_depth as u64,
                            &path,
                        ));
                    }
                    create_local_dir(&local_path).await?;
                    stack.push((path, local_path, rel, depth + 1));
                } else if kind == FileType::File {
                    self.copy_file(&path, &local_path, rel, &attrs).await?;
                } else if kind == FileType::Symlink {
                    self.copy_symlink(&path, &local_path, rel).await?;
                } else {
                    self.skip(path, "not a regular file, directory or symlink");
                }
            }
        }
        Ok(())
    }

    /// One directory's entries (without `.` and `..`), each name checked.
    async fn list(&mut self, dir: &str) -> Result<Vec<(String, FileAttributes)>, SftpError> {
        let handle = self
            .sftp
            .opendir(dir)
            .await
            .map_err(self.remote_err("open directory", dir))?
            .handle;
        let mut entries = Vec::new();
        let result = loop {
            match self.sftp.readdir(handle.as_str()).await {
                Ok(name) => {
                    let mut failed = None;
                    for file in name.files {
                        if file.filename == "." || file.filename == ".." {
                            continue;
                        }
                        self.entries += 1;
                        if self.entries > self.limits.max_entries {
                            failed = Some(self.limit(
                                "directory entries",
                                self.limits.max_entries as u64,
                                dir,
                            ));
                            break;
                        }
                        if !plain_name(&file.filename) {
                            failed = Some(SftpError::BadName {
                                target: self.target.clone(),
                                dir: dir.to_string(),
                                name: file.filename,
                            });
                            break;
                        }
                        entries.push((file.filename, file.attrs));
                    }
                    if let Some(err) = failed {
                        break Err(err);
                    }
                }
                Err(RawError::Status(status)) if status.status_code == StatusCode::Eof => {
                    break Ok(());
                }
                Err(err) => break Err(self.remote_err("list", dir)(err)),
            }
        };
        let _ = self.sftp.close(handle).await;
        result?;
        Ok(entries)
    }

    async fn copy_symlink(
        &mut self,
        path: &str,
        local: &Path,
        rel: PathBuf,
    ) -> Result<(), SftpError> {
        let resolved = match self.sftp.realpath(path).await {
            Ok(name) => name
                .files
                .first()
                .map(|f| f.filename.clone())
                .unwrap_or_default(),
            // Dangling: nothing to copy.
            Err(_) => {
                self.skip(path.to_string(), "dangling symlink");
                return Ok(());
            }
        };
        let root = self.root.trim_end_matches('/');
        if !resolved.starts_with(&format!("{root}/")) {
            return Err(SftpError::SymlinkOutside {
                target: self.target.clone(),
                path: path.to_string(),
                resolved,
                root: self.root.clone(),
            });
        }
        let attrs = match self.sftp.stat(resolved.as_str()).await {
            Ok(attrs) => attrs.attrs,
            Err(_) => {
                self.skip(path.to_string(), "dangling symlink");
                return Ok(());
            }
        };
        match attrs.file_type() {
            FileType::File => self.copy_file(&resolved, local, rel, &attrs).await,
            FileType::Dir => {
                self.skip(path.to_string(), "symlink to a directory (not followed)");
                Ok(())
            }
            _ => {
                self.skip(path.to_string(), "symlink to a special file");
                Ok(())
            }
        }
    }

    async fn copy_file(
        &mut self,
        path: &str,
        local: &Path,
        rel: PathBuf,
        attrs: &FileAttributes,
    ) -> Result<(), SftpError> {
        if self.summary.files.len() >= self.limits.max_files {
            return Err(self.limit("files", self.limits.max_files as u64, path));
        }
        let budget = self.limits.max_total_bytes - self.summary.bytes;
        if attrs.size.unwrap_or(0) > budget {
            return Err(self.limit("bytes", self.limits.max_total_bytes, path));
        }
        let handle = self
            .sftp
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map_err(self.remote_err("open", path))?
            .handle;
        let result = self.read_into(path, handle.as_str(), local, budget).await;
        let _ = self.sftp.close(handle).await;
        let written = result?;
        self.summary.bytes += written;
        self.summary.files.push(rel);
        Ok(())
    }

    /// Reads the open remote file into a new local file; the size is
    /// enforced while reading, whatever the listing said.
    async fn read_into(
        &self,
        path: &str,
        handle: &str,
        local: &Path,
        budget: u64,
    ) -> Result<u64, SftpError> {
        let local_err = |source| SftpError::Local {
            path: local.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(local)
            .await
            .map_err(local_err)?;
        let mut offset = 0u64;
        loop {
            let data = match self.sftp.read(handle, offset, READ_CHUNK).await {
                Ok(data) => data.data,
                Err(RawError::Status(status)) if status.status_code == StatusCode::Eof => break,
                Err(err) => return Err(self.remote_err("read", path)(err)),
            };
            if data.is_empty() {
                break;
            }
            offset += data.len() as u64;
            if offset > budget {
                return Err(self.limit("bytes", self.limits.max_total_bytes, path));
            }
            file.write_all(&data).await.map_err(local_err)?;
        }
        file.flush().await.map_err(local_err)?;
        Ok(offset)
    }

    fn skip(&mut self, path: String, why: &str) {
        tracing::debug!(target = %self.target, "not copying {path}: {why}");
        self.summary.skipped.push((path, why.to_string()));
    }

    fn limit(&self, what: &'static str, limit: u64, path: &str) -> SftpError {
        SftpError::Limit {
            target: self.target.clone(),
            what,
            limit,
            path: path.to_string(),
        }
    }
}

/// One path component that names nothing but itself.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

async fn create_local_dir(path: &Path) -> Result<(), SftpError> {
    tokio::fs::create_dir(path)
        .await
        .map_err(|source| SftpError::Local {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::plain_name;

    #[test]
    fn only_plain_names_pass() {
        assert!(plain_name("junit.xml"));
        assert!(plain_name("..hidden"));
        for bad in ["", ".", "..", "a/b", "/etc", "a\0b"] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }
}
