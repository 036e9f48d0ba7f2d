//! A job's artifacts copied into the store as each step finishes with a
//! target, so every `prova serve` instance on the same store can serve
//! them, not only the one whose step fetched them (issue 11).
//!
//! One place for every step kind: when a step returns a target, the
//! engine copies whatever is under that step's artifacts directory for the
//! target (`StepContext::artifacts_dir`: the docker, k8sjob and ssh steps'
//! results directories). The files stay on disk too. A file over
//! [`ARTIFACT_FILE_LIMIT`], or past the job's [`ARTIFACT_JOB_LIMIT`],
//! is recorded as not stored (the list says `Stored: false`); a store that
//! fails is logged. Neither fails the job.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prova_core::JobId;
use prova_store::{ARTIFACT_FILE_LIMIT, ARTIFACT_JOB_LIMIT, Store};
use tokio::io::AsyncReadExt;

/// Directory levels walked at most (as the server lists them).
const MAX_DEPTH: usize = 32;
/// Files of one step and target copied at most.
const MAX_FILES: usize = 10_000;

/// Copies a job's artifacts into the store.
pub struct ArtifactKeeper {
    store: Arc<dyn Store>,
    job_id: JobId,
    /// The job's artifacts directory (`<root>/job-<id>`): stored paths are
    /// relative to it.
    job_dir: PathBuf,
    file_limit: u64,
    job_limit: u64,
    /// One file at a time per job, so the job's limit is checked against
    /// everything stored before.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl ArtifactKeeper {
    pub fn new(store: Arc<dyn Store>, job_id: JobId, root: &Path) -> ArtifactKeeper {
        ArtifactKeeper::with_limits(store, job_id, root, ARTIFACT_FILE_LIMIT, ARTIFACT_JOB_LIMIT)
    }

    pub fn with_limits(
        store: Arc<dyn Store>,
        job_id: JobId,
        root: &Path,
        file_limit: u64,
        job_limit: u64,
    ) -> ArtifactKeeper {
        ArtifactKeeper {
            store,
            job_id,
            job_dir: root.join(format!("job-{job_id}")),
            file_limit,
            job_limit,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Copies every regular file beneath `dir` (a step's artifacts
    /// directory for one target) into the store. Nothing to do when the
    /// step kept nothing there.
    pub async fn keep(&self, dir: PathBuf) {
        let Ok(rel_dir) = dir.strip_prefix(&self.job_dir).map(Path::to_path_buf) else {
            tracing::warn!(job = self.job_id, dir = %dir.display(), "artifacts outside the job's directory are not stored");
            return;
        };
        let files = match tokio::task::spawn_blocking(move || files_beneath(&dir)).await {
            Ok(Ok(files)) => files,
            Ok(Err(e)) => {
                tracing::warn!(job = self.job_id, "cannot list artifacts to store: {e}");
                return;
            }
            Err(e) => {
                tracing::warn!(job = self.job_id, "artifact listing task: {e}");
                return;
            }
        };
        for (abs, rel) in files {
            let Some(path) = store_path(&rel_dir.join(&rel)) else {
                tracing::warn!(job = self.job_id, file = %abs.display(), "artifact name is not UTF-8: not stored");
                continue;
            };
            if let Err(e) = self.keep_file(&abs, &path).await {
                tracing::warn!(job = self.job_id, path, "cannot store artifact: {e}");
            }
        }
    }

    async fn keep_file(&self, abs: &Path, path: &str) -> Result<(), KeepError> {
        let _one = self.one_at_a_time.lock().await;
        let file = tokio::fs::File::open(abs).await?;
        let len = file.metadata().await?.len();
        if len > self.file_limit {
            self.store
                .put_unstored_artifact(self.job_id, path, len)
                .await?;
            tracing::info!(
                job = self.job_id,
                path,
                bytes = len,
                "artifact over the store's file limit: kept on this instance's disk only"
            );
            return Ok(());
        }
        // Read at most one byte past the limit: a file still growing is
        // bounded all the same.
        let mut content = Vec::with_capacity(len as usize);
        file.take(self.file_limit + 1)
            .read_to_end(&mut content)
            .await?;
        let stored = if content.len() as u64 > self.file_limit {
            self.store
                .put_unstored_artifact(self.job_id, path, content.len() as u64)
                .await?;
            false
        } else {
            self.store
                .put_artifact(self.job_id, path, &content, self.job_limit)
                .await?
        };
        if !stored {
            tracing::info!(
                job = self.job_id,
                path,
                "artifact past the store's limits: kept on this instance's disk only"
            );
        }
        Ok(())
    }
}

/// Why one file could not be stored.
#[derive(Debug, thiserror::Error)]
enum KeepError {
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] prova_store::StoreError),
}

/// `rel` as the store keeps it: `/`-separated plain names.
fn store_path(rel: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = rel
        .components()
        .map(|c| match c {
            std::path::Component::Normal(n) => n.to_str(),
            _ => None,
        })
        .collect();
    parts.map(|p| p.join("/")).filter(|p| !p.is_empty())
}

/// Every regular file beneath `dir` (symbolic links are neither followed
/// nor kept), with its path relative to `dir`; none when `dir` does not
/// exist.
fn files_beneath(dir: &Path) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![(dir.to_path_buf(), PathBuf::new(), 0usize)];
    'walk: while let Some((abs, rel, depth)) = stack.pop() {
        for entry in std::fs::read_dir(&abs)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            let rel = rel.join(entry.file_name());
            if ty.is_dir() && depth + 1 < MAX_DEPTH {
                stack.push((entry.path(), rel, depth + 1));
            } else if ty.is_file() {
                if out.len() == MAX_FILES {
                    tracing::warn!(dir = %dir.display(), "more than {MAX_FILES} artifact files: the rest are not stored");
                    break 'walk;
                }
                out.push((entry.path(), rel));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_paths_are_plain_names_joined_by_slashes() {
        assert_eq!(
            store_path(Path::new("run-1/t/attempt-0/s/h/junit.xml")).as_deref(),
            Some("run-1/t/attempt-0/s/h/junit.xml")
        );
        assert_eq!(store_path(Path::new("../x")), None);
        assert_eq!(store_path(Path::new("/x")), None);
        assert_eq!(store_path(Path::new("")), None);
    }

    #[test]
    fn files_beneath_skips_links_and_finds_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f"), b"1").unwrap();
        std::fs::write(dir.path().join("top"), b"2").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("leak")).unwrap();
        let rels: Vec<PathBuf> = files_beneath(dir.path())
            .unwrap()
            .into_iter()
            .map(|(_, r)| r)
            .collect();
        assert_eq!(rels, [PathBuf::from("a/b/f"), PathBuf::from("top")]);
        assert!(files_beneath(&dir.path().join("none")).unwrap().is_empty());
    }
}
