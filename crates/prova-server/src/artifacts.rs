//! A job's artifacts (the results directories its docker, k8sjob and ssh
//! steps kept), listed and downloaded:
//!
//! - `GET /api/v1/jobs/{id}/artifacts`: every file, relative to the job's
//!   directory, with its size and whether the store has it (bounded by
//!   [`MAX_LISTED`]).
//! - `GET /api/v1/jobs/{id}/artifacts/{path}`: one file's bytes.
//!
//! The page session has the same download at `/jobs/{id}/artifacts/{path}`.
//!
//! The engine copies each step's files into the store as the step
//! finishes (`prova_engine::keep_artifacts`), so every instance on the
//! same store serves them; a file is read from the store one piece
//! ([`prova_store::ARTIFACT_CHUNK`]) at a time. Files the store does not
//! have (over its limits, or kept before migration 0007) are read from
//! this instance's disk, under `<artifacts root>/job-<id>/`, when they are
//! there.
//!
//! A path is checked before anything is read: `..`, `.`, empty segments
//! and absolute paths are refused. On disk the job's directory is opened
//! with cap-std, which resolves the path beneath it as `openat2`'s
//! `RESOLVE_BENEATH` does, so a symbolic link that leads out of it (or is
//! swapped in after a check) cannot lead out either.

use std::path::{Component, Path, PathBuf};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use prova_core::JobId;
use serde::Serialize;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiPath;

/// Files listed at most; `Truncated` says when there were more.
pub const MAX_LISTED: usize = 10_000;
/// Directory levels walked at most.
const MAX_DEPTH: usize = 32;
/// Longest path accepted in a download request.
const MAX_PATH: usize = 4096;

/// The routes, relative to `/api/v1`.
pub fn routes() -> crate::api::Routes {
    crate::api::Routes::default()
        .route("/jobs/{id}/artifacts", get(list))
        .route("/jobs/{id}/artifacts/{*path}", get(download))
}

/// One file of a job's artifacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ArtifactFile {
    /// Relative to the job's artifacts directory, `/`-separated:
    /// `run-<n>/<test>/attempt-<a>/<step>/<target>/<file>`.
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Bytes")]
    pub bytes: u64,
    /// The store has the file: every instance serves it. `false`: it is
    /// only on the disk of the instance whose step kept it (over the
    /// store's limits, or kept before the store had artifacts), and only
    /// that instance serves it.
    #[serde(rename = "Stored")]
    pub stored: bool,
}

/// The answer of `GET /api/v1/jobs/{id}/artifacts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ArtifactList {
    #[serde(rename = "JobID")]
    #[schema(value_type = i64)]
    pub job_id: JobId,
    /// In path order.
    #[serde(rename = "Files")]
    pub files: Vec<ArtifactFile>,
    /// More files exist than were listed.
    #[serde(rename = "Truncated")]
    pub truncated: bool,
}

/// Why a file could not be served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    #[error("artifact path {0:?}: {1}")]
    BadPath(String, &'static str),
    #[error("job {0} has no artifact {1:?}")]
    NotFound(JobId, String),
    #[error(
        "artifact {1:?} of job {0} is not in the store (over its limits): only the instance that ran the step has it"
    )]
    NotStored(JobId, String),
    #[error("cannot read artifact {path:?} of job {id}")]
    Io {
        id: JobId,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<ArtifactError> for ApiError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::BadPath(..) => ApiError::BadRequest(e.to_string()),
            ArtifactError::NotFound(..) | ArtifactError::NotStored(..) => {
                ApiError::NotFound(e.to_string())
            }
            ArtifactError::Io { .. } => ApiError::Internal(format!("{e}: {:?}", e)),
        }
    }
}

/// The directory a job's steps keep their files in (see
/// `StepContext::artifacts_dir`).
pub fn job_dir(root: &Path, id: JobId) -> PathBuf {
    root.join(format!("job-{id}"))
}

/// Every regular file beneath the job's directory (symbolic links are
/// not followed nor listed), at most [`MAX_LISTED`]. A job without a
/// directory has no artifacts.
pub fn list_files(root: &Path, id: JobId) -> std::io::Result<ArtifactList> {
    let mut out = ArtifactList {
        job_id: id,
        ..Default::default()
    };
    let top = job_dir(root, id);
    if !top.is_dir() {
        return Ok(out);
    }
    // Depth-first with an explicit stack: (directory, its relative path, depth).
    let mut stack = vec![(top, String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if ty.is_dir() && depth + 1 < MAX_DEPTH {
                stack.push((entry.path(), path, depth + 1));
            } else if ty.is_file() {
                if out.files.len() == MAX_LISTED {
                    out.truncated = true;
                    break;
                }
                out.files.push(ArtifactFile {
                    path,
                    bytes: entry.metadata()?.len(),
                    stored: false,
                });
            }
        }
        if out.truncated {
            break;
        }
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// A download path checked before any file is touched: relative, made of
/// plain names only.
pub fn checked_relative(path: &str) -> Result<PathBuf, ArtifactError> {
    let bad = |why| ArtifactError::BadPath(path.chars().take(200).collect(), why);
    if path.is_empty() {
        return Err(bad("empty: expected a path from the artifacts list"));
    }
    if path.len() > MAX_PATH {
        return Err(bad("longer than 4096 bytes"));
    }
    if path.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    // By segment, not `Path::components`, which drops interior `.` and
    // empty segments silently.
    if path.starts_with('/') {
        return Err(bad("must be relative to the job's artifacts directory"));
    }
    for seg in path.split('/') {
        match seg {
            "" => return Err(bad("has an empty segment (`//` or a trailing `/`)")),
            "." => return Err(bad("`.` is not allowed")),
            ".." => return Err(bad("`..` is not allowed")),
            _ => {}
        }
    }
    let p = Path::new(path);
    if !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(bad("must be made of plain names"));
    }
    Ok(p.to_path_buf())
}

/// Opens one of the job's files for reading, resolved beneath the job's
/// directory (symbolic links that lead out of it are refused); returns it
/// with its size.
pub fn open(root: &Path, id: JobId, path: &str) -> Result<(std::fs::File, u64), ArtifactError> {
    let rel = checked_relative(path)?;
    let not_found = || ArtifactError::NotFound(id, path.to_string());
    let io = |source| ArtifactError::Io {
        id,
        path: path.to_string(),
        source,
    };
    let dir = match Dir::open_ambient_dir(job_dir(root, id), ambient_authority()) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(io(e)),
    };
    let file = match dir.open(&rel) {
        Ok(f) => f,
        // cap-std answers PermissionDenied for a path that escapes.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            return Err(not_found());
        }
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_found());
    }
    Ok((file.into_std(), meta.len()))
}

/// The response carrying a file, as an attachment named after it: from
/// the store when it has the file (one piece at a time), else from this
/// instance's disk.
pub async fn file_response(state: &AppState, id: JobId, path: &str) -> Result<Response, ApiError> {
    if state.store.get_job(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("job {id} not found")));
    }
    checked_relative(path)?;
    let known = state.store.artifact(id, path).await?;
    if let Some(meta) = known.as_ref().filter(|m| m.stored) {
        return Ok(attachment(
            path,
            meta.bytes,
            Body::from_stream(stored_pieces(state, id, path)),
        ));
    }
    let root = state.config.artifacts_root.clone();
    let owned = path.to_string();
    let opened = tokio::task::spawn_blocking(move || open(&root, id, &owned))
        .await
        .map_err(|e| ApiError::Internal(format!("artifact open task: {e}")))?;
    let (file, len) = match opened {
        Ok(found) => found,
        // The store knows the file but kept it on another instance's disk.
        Err(ArtifactError::NotFound(..)) if known.is_some() => {
            return Err(ArtifactError::NotStored(id, path.to_string()).into());
        }
        Err(e) => return Err(e.into()),
    };
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok(attachment(path, len, Body::from_stream(stream)))
}

/// A stored file's content as a stream of its pieces, read one at a time
/// as the client takes them: a download holds one piece in memory.
fn stored_pieces(
    state: &AppState,
    id: JobId,
    path: &str,
) -> impl futures::Stream<Item = std::io::Result<axum::body::Bytes>> + Send + 'static {
    let store = state.store.clone();
    let path = path.to_string();
    futures::stream::try_unfold(0u64, move |seq| {
        let (store, path) = (store.clone(), path.clone());
        async move {
            match store.artifact_chunk(id, &path, seq).await {
                Ok(Some(piece)) => Ok(Some((axum::body::Bytes::from(piece), seq + 1))),
                Ok(None) => Ok(None),
                Err(e) => {
                    tracing::warn!(job = id, path, "cannot read a stored artifact: {e:?}");
                    Err(std::io::Error::other(e))
                }
            }
        }
    })
}

/// The response headers of a download named after the file's last segment.
fn attachment(path: &str, len: u64, body: Body) -> Response {
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A name with quotes or control characters would break the header.
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_control() || c == '"' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// The job's files, or 404 when there is no such job: those the store
/// has, and those on this instance's disk it does not (`Stored: false`),
/// in path order, at most [`MAX_LISTED`].
pub async fn load_list(state: &AppState, id: JobId) -> Result<ArtifactList, ApiError> {
    if state.store.get_job(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("job {id} not found")));
    }
    let stored = state.store.list_artifacts(id, MAX_LISTED + 1).await?;
    let root = state.config.artifacts_root.clone();
    let local = tokio::task::spawn_blocking(move || list_files(&root, id))
        .await
        .map_err(|e| ApiError::Internal(format!("artifact list task: {e}")))?
        .map_err(|e| ApiError::Internal(format!("cannot list the artifacts of job {id}: {e}")))?;
    Ok(merge(id, stored, local))
}

/// The store's files of a job and those on disk it does not have, in path
/// order, at most [`MAX_LISTED`].
fn merge(id: JobId, stored: Vec<prova_store::ArtifactMeta>, local: ArtifactList) -> ArtifactList {
    let mut files: std::collections::BTreeMap<String, ArtifactFile> = stored
        .into_iter()
        .map(|m| {
            let f = ArtifactFile {
                path: m.path,
                bytes: m.bytes,
                stored: m.stored,
            };
            (f.path.clone(), f)
        })
        .collect();
    for f in local.files {
        files.entry(f.path.clone()).or_insert(f);
    }
    let truncated = local.truncated || files.len() > MAX_LISTED;
    ArtifactList {
        job_id: id,
        files: files.into_values().take(MAX_LISTED).collect(),
        truncated,
    }
}

/// List a job's artifacts.
///
/// The files the job's steps kept (the docker, k8sjob and ssh steps'
/// results directories), in path order, at most 10,000: those in the
/// store (any instance serves them) and those only on this instance's
/// disk (`Stored: false`); symbolic links are not listed.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/artifacts", operation_id = "listArtifacts", tag = "jobs", params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, body = ArtifactList, description = "The files the job's steps kept (results directories), in path order: in the store, and on this instance's disk only (`Stored: false`)"),
        (status = 400, body = crate::error::ErrorBody, description = "A job id that is not a number"),
        (status = 404, body = crate::error::ErrorBody, description = "No such job")))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<JobId>,
) -> Result<Json<ArtifactList>, ApiError> {
    Ok(Json(load_list(&state, id).await?))
}

/// Download one of a job's artifacts.
///
/// From the store when it has the file, else from this instance's disk,
/// beneath the job's artifacts directory: `..`, `.` and absolute paths
/// are refused, and a symbolic link that leads out of it is answered as a
/// missing file.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/artifacts/{path}", operation_id = "downloadArtifact", tag = "jobs",
    params(("id" = i64, Path, description = "The job"), ("path" = String, Path, description = "A file's Path from the artifacts list")),
    responses(
        (status = 200, body = String, content_type = "application/octet-stream", description = "The file's bytes, as an attachment"),
        (status = 400, body = crate::error::ErrorBody, description = "A path with `..`, `.` or a leading `/`, or a job id that is not a number"),
        (status = 404, body = crate::error::ErrorBody, description = "No such job, or no such file in the store nor beneath the job's artifacts directory on this instance (links that lead out of it count as none; a file over the store's limits is only on the instance that ran its step)")))]
pub async fn download(
    State(state): State<AppState>,
    ApiPath((id, path)): ApiPath<(JobId, String)>,
) -> Result<Response, ApiError> {
    file_response(&state, id, &path).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_names_pass() {
        assert!(checked_relative("run-1/t/attempt-0/s/host/junit.xml").is_ok());
        for bad in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "./a",
            "a/./b",
            "a//b",
            "a/",
        ] {
            assert!(
                matches!(checked_relative(bad), Err(ArtifactError::BadPath(..))),
                "{bad:?} passed"
            );
        }
    }

    #[test]
    fn links_out_of_the_job_directory_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = job_dir(root.path(), 7).join("run-1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("out.txt"), b"hello").unwrap();
        std::fs::write(root.path().join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink(root.path().join("secret"), dir.join("leak")).unwrap();
        std::os::unix::fs::symlink("out.txt", dir.join("inside")).unwrap();

        let (_, len) = open(root.path(), 7, "run-1/out.txt").unwrap();
        assert_eq!(len, 5);
        // A link that stays inside is followed; one that leads out is not.
        assert_eq!(open(root.path(), 7, "run-1/inside").unwrap().1, 5);
        assert!(matches!(
            open(root.path(), 7, "run-1/leak"),
            Err(ArtifactError::NotFound(..))
        ));
        // Another job's directory is out of reach too.
        assert!(matches!(
            open(root.path(), 8, "run-1/out.txt"),
            Err(ArtifactError::NotFound(..))
        ));
        assert!(matches!(
            open(root.path(), 7, "run-1"),
            Err(ArtifactError::NotFound(..))
        ));

        let listed = list_files(root.path(), 7).unwrap();
        assert_eq!(
            listed.files,
            [ArtifactFile {
                path: "run-1/out.txt".into(),
                bytes: 5,
                stored: false,
            }]
        );
        assert!(!listed.truncated);
        assert!(list_files(root.path(), 9).unwrap().files.is_empty());
    }
}
