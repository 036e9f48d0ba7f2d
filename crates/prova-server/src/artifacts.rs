//! A job's artifacts (the results directories its docker, k8sjob and ssh
//! steps kept, under `<artifacts root>/job-<id>/`), listed and downloaded:
//!
//! - `GET /api/v1/jobs/{id}/artifacts`: every regular file, relative to the
//!   job's directory, with its size (bounded by [`MAX_LISTED`]).
//! - `GET /api/v1/jobs/{id}/artifacts/{path}`: one file's bytes.
//!
//! The page session has the same download at `/jobs/{id}/artifacts/{path}`.
//! A path is confined to the job's directory: `..`, absolute paths and
//! symbolic links that lead out of it are refused. The directory is opened
//! with cap-std, which resolves the path beneath it as `openat2`'s
//! `RESOLVE_BENEATH` does, so a link swapped in after a check cannot lead
//! out either.

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
            ArtifactError::NotFound(..) => ApiError::NotFound(e.to_string()),
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

/// The response carrying a file: streamed, as an attachment named after it.
pub async fn file_response(state: &AppState, id: JobId, path: &str) -> Result<Response, ApiError> {
    if state.store.get_job(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("job {id} not found")));
    }
    let root = state.config.artifacts_root.clone();
    let owned = path.to_string();
    let (file, len) = tokio::task::spawn_blocking(move || open(&root, id, &owned))
        .await
        .map_err(|e| ApiError::Internal(format!("artifact open task: {e}")))??;
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
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The job's files, or 404 when there is no such job.
pub async fn load_list(state: &AppState, id: JobId) -> Result<ArtifactList, ApiError> {
    if state.store.get_job(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("job {id} not found")));
    }
    let root = state.config.artifacts_root.clone();
    tokio::task::spawn_blocking(move || list_files(&root, id))
        .await
        .map_err(|e| ApiError::Internal(format!("artifact list task: {e}")))?
        .map_err(|e| ApiError::Internal(format!("cannot list the artifacts of job {id}: {e}")))
}

/// List a job's artifacts.
///
/// The files the job's steps kept on this server (the docker, k8sjob and
/// ssh steps' results directories), in path order, at most 10,000;
/// symbolic links are not listed.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/artifacts", operation_id = "listArtifacts", tag = "jobs", params(("id" = i64, Path, description = "The job")),
    responses(
        (status = 200, body = ArtifactList, description = "The files the job's steps kept on this server (results directories), in path order; none when the job kept none here"),
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
/// The file is opened beneath the job's artifacts directory: `..`, `.`
/// and absolute paths are refused, and a symbolic link that leads out of
/// it is answered as a missing file.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/artifacts/{path}", operation_id = "downloadArtifact", tag = "jobs",
    params(("id" = i64, Path, description = "The job"), ("path" = String, Path, description = "A file's Path from the artifacts list")),
    responses(
        (status = 200, body = String, content_type = "application/octet-stream", description = "The file's bytes, as an attachment"),
        (status = 400, body = crate::error::ErrorBody, description = "A path with `..`, `.` or a leading `/`, or a job id that is not a number"),
        (status = 404, body = crate::error::ErrorBody, description = "No such job, or no such file beneath the job's artifacts directory (links that lead out of it count as none)")))]
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
                bytes: 5
            }]
        );
        assert!(!listed.truncated);
        assert!(list_files(root.path(), 9).unwrap().files.is_empty());
    }
}
