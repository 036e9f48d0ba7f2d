//! Commands in the collector container over the pod exec API: `prova
//! collector send` (the results stream) and `prova collector done`.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt as _;

use crate::archive;
use crate::collector::DEFAULT_CONTROL_DIR;
use crate::framing::{Decoder, Trailer};
use crate::job::{COLLECTOR_BINARY, COLLECTOR_CONTAINER};

/// Runs a command in the collector container; `Ok` when it exits 0.
pub async fn exec_ok(pods: &Api<Pod>, pod: &str, command: Vec<String>) -> Result<(), String> {
    let ap = AttachParams::default()
        .container(COLLECTOR_CONTAINER)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut proc = pods
        .exec(pod, command, &ap)
        .await
        .map_err(|e| format!("exec in {pod}: {e}"))?;
    let out = read_all(proc.stdout(), 64 * 1024);
    let err = read_all(proc.stderr(), 64 * 1024);
    let status = proc
        .take_status()
        .ok_or_else(|| format!("exec in {pod}: no status channel"))?;
    let (_, stderr, status) = tokio::join!(out, err, status);
    check_status(status, &stderr)
}

async fn read_all(r: Option<impl tokio::io::AsyncRead + Unpin>, max: usize) -> String {
    let Some(mut r) = r else {
        return String::new();
    };
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if out.len() < max {
            out.extend_from_slice(&buf[..n.min(max - out.len())]);
        }
    }
    String::from_utf8_lossy(&out).trim().to_string()
}

/// The exec status (channel 3): Success, or a failure with its exit code
/// from `details.causes` (never from the message text).
fn check_status(
    status: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>,
    stderr: &str,
) -> Result<(), String> {
    let Some(s) = status else {
        return Err(format!(
            "the exec connection closed without an exit status{}",
            stderr_note(stderr)
        ));
    };
    if s.status.as_deref() == Some("Success") {
        return Ok(());
    }
    let code = s
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.reason.as_deref() == Some("ExitCode")))
        .and_then(|c| c.message.clone());
    Err(match code {
        Some(c) => format!("exited with code {c}{}", stderr_note(stderr)),
        None => format!(
            "failed: {}{}",
            s.message.unwrap_or_default(),
            stderr_note(stderr)
        ),
    })
}

fn stderr_note(stderr: &str) -> String {
    if stderr.is_empty() {
        String::new()
    } else {
        format!("; stderr: {stderr}")
    }
}

/// Fetches the results directory of `pod` into `dest`: the collector
/// stream is written to a temporary file while its digest is computed,
/// verified, and only then extracted.
pub async fn fetch_results(
    pods: &Api<Pod>,
    pod: &str,
    dir: &str,
    dest: &Path,
) -> Result<(Trailer, archive::Counts), String> {
    let parent = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(&parent)
        .map_err(|e| format!("temporary file in {}: {e}", parent.display()))?;
    let ap = AttachParams::default()
        .container(COLLECTOR_CONTAINER)
        .stdin(false)
        .stdout(true)
        .stderr(true)
        .max_stdout_buf_size(256 * 1024);
    let command = vec![
        COLLECTOR_BINARY.to_string(),
        "collector".into(),
        "send".into(),
        "--dir".into(),
        dir.to_string(),
        "--control-dir".into(),
        DEFAULT_CONTROL_DIR.into(),
    ];
    let mut proc = pods
        .exec(pod, command, &ap)
        .await
        .map_err(|e| format!("exec `prova collector send` in {pod}: {e}"))?;
    let stderr = tokio::spawn(read_all(proc.stderr(), 64 * 1024));
    let status = proc
        .take_status()
        .ok_or_else(|| format!("exec in {pod}: no status channel"))?;
    let mut stdout = proc
        .stdout()
        .ok_or_else(|| format!("exec in {pod}: no stdout"))?;
    let file = tmp.reopen().map_err(|e| format!("temporary file: {e}"))?;
    let mut decoder = Decoder::new(std::io::BufWriter::new(file));
    let mut buf = vec![0u8; 64 * 1024];
    let mut decode_error = None;
    loop {
        match stdout.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                if decode_error.is_none()
                    && let Err(e) = decoder.push(&buf[..n])
                {
                    // Keep reading so the exec ends cleanly.
                    decode_error = Some(e);
                }
            }
            Err(e) => return Err(format!("reading the results stream: {e}")),
        }
    }
    let status = status.await;
    let stderr = stderr.await.unwrap_or_default();
    if let Some(e) = decode_error {
        return Err(format!("bad results stream: {e}"));
    }
    check_status(status, &stderr).map_err(|e| format!("`prova collector send` {e}"))?;
    let (trailer, _) = decoder
        .finish()
        .map_err(|e| format!("bad results stream: {e}"))?;
    let (tar_path, dest_owned): (PathBuf, PathBuf) = (tmp.path().to_path_buf(), dest.to_path_buf());
    let counts = tokio::task::spawn_blocking(move || archive::extract(&tar_path, &dest_owned))
        .await
        .map_err(|e| format!("extracting: {e}"))?
        .map_err(|e| format!("extracting results: {e}"))?;
    drop(tmp);
    if counts.files != trailer.files {
        return Err(format!(
            "the archive holds {} files but its trailer says {}",
            counts.files, trailer.files
        ));
    }
    Ok((trailer, counts))
}
