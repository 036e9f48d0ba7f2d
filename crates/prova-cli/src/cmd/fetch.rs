//! What `prova start --wait` brings back from the server once the job
//! ended: its JUnit XML (`--junit`) and the files its steps kept
//! (`--artifacts`).

use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::client::Client;

/// Writes the job's merged JUnit XML to `path`.
pub async fn junit(client: &Client, id: i64, path: &Path) -> anyhow::Result<()> {
    let resp = get(client, &format!("/api/v1/jobs/{id}/junit")).await?;
    let xml = resp
        .bytes()
        .await
        .with_context(|| format!("reading the JUnit of job {id} from {}", client.base))?;
    std::fs::write(path, &xml)
        .with_context(|| format!("cannot write the JUnit of job {id} to {}", path.display()))?;
    eprintln!("wrote the JUnit of job {id} to {}", path.display());
    Ok(())
}

/// Downloads every file in the job's artifacts list into `dir`, under its
/// relative path.
pub async fn artifacts(client: &Client, id: i64, dir: &Path) -> anyhow::Result<()> {
    let list = client
        .send(client.req(
            reqwest::Method::GET,
            &format!("/api/v1/jobs/{id}/artifacts"),
        ))
        .await?;
    let files = list["Files"].as_array().cloned().unwrap_or_default();
    let (mut count, mut bytes) = (0usize, 0u64);
    for f in &files {
        let rel = f["Path"].as_str().unwrap_or_default();
        // The server is trusted no more than a tar file: nothing may land
        // outside `dir`.
        let dest = dir.join(beneath(rel).with_context(|| {
            format!("the server listed artifact {rel:?} of job {id}, which is not a relative path")
        })?);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let url_path = rel
            .split('/')
            .map(|s| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("/");
        let resp = get(client, &format!("/api/v1/jobs/{id}/artifacts/{url_path}")).await?;
        let mut out = tokio::fs::File::create(&dest)
            .await
            .with_context(|| format!("cannot create {}", dest.display()))?;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.with_context(|| format!("downloading artifact {rel:?} of job {id}"))?;
            bytes += chunk.len() as u64;
            out.write_all(&chunk)
                .await
                .with_context(|| format!("cannot write {}", dest.display()))?;
        }
        out.flush()
            .await
            .with_context(|| format!("cannot write {}", dest.display()))?;
        count += 1;
    }
    if list["Truncated"].as_bool() == Some(true) {
        eprintln!(
            "prova: job {id} has more artifacts than the server lists; only the first {count} were downloaded"
        );
    }
    eprintln!(
        "downloaded {count} artifact file(s) of job {id} ({bytes} bytes) to {}",
        dir.display()
    );
    Ok(())
}

/// A GET whose non-2xx answer becomes an error with the server's message.
async fn get(client: &Client, path: &str) -> anyhow::Result<reqwest::Response> {
    let resp = client
        .req(reqwest::Method::GET, path)
        .send()
        .await
        .with_context(|| format!("cannot reach {}", client.base))?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        anyhow::bail!(
            "GET {path}: server answered {status}: {}",
            body["Error"].as_str().unwrap_or("no message")
        );
    }
    Ok(resp)
}

/// `rel` if it is made of plain names only.
fn beneath(rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    (!rel.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_))))
        .then(|| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::beneath;

    #[test]
    fn only_plain_relative_paths_are_written() {
        assert!(beneath("run-1/t/junit.xml").is_some());
        for bad in ["", "../x", "/etc/passwd", "a/../../b", "./a"] {
            assert!(beneath(bad).is_none(), "{bad:?}");
        }
    }
}
