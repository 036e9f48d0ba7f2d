use std::path::Path;

use prova_ssh::{DownloadLimits, DownloadSummary, Pool, PoolOptions, SftpError};

/// A remote tree made by the test user on the target (this machine), under
/// its home, removed at the end.
struct RemoteTree {
    pool: Pool,
    config: prova_ssh::ConnectConfig,
    path: String,
}

impl RemoteTree {
    /// Runs `script` in a fresh remote directory (None: SSH tests skipped).
    async fn make(script: &str) -> Option<RemoteTree> {
        let sshd = crate::support::sshd()?;
        let pool = Pool::new(PoolOptions::default());
        let config = sshd.key_config();
        let name = format!(
            "prova-sftp-{}",
            crate::support::unique_seconds().replace('.', "-")
        );
        let full = format!("set -e; rm -rf ~/{name}; mkdir ~/{name}; cd ~/{name}; {script}; pwd");
        let outcome = pool
            .exec(
                &config,
                &prova_ssh::RemoteCommand::new("sh", ["-c", &full]),
                &Default::default(),
                |_, _| std::ops::ControlFlow::Continue(()),
            )
            .await
            .unwrap();
        assert!(
            outcome.ended == prova_ssh::Ended::Exited(prova_ssh::ExitStatus::Code(0)),
            "{}",
            outcome.stderr.text()
        );
        let path = outcome.stdout.text().trim().to_string();
        Some(RemoteTree { pool, config, path })
    }

    async fn download(
        &self,
        dir: &str,
        local: &Path,
        limits: &DownloadLimits,
    ) -> Result<DownloadSummary, SftpError> {
        self.pool
            .download_dir(&self.config, &format!("{}/{dir}", self.path), local, limits)
            .await
    }

    async fn remove(self) {
        let _ = self
            .pool
            .exec(
                &self.config,
                &prova_ssh::RemoteCommand::new("rm", ["-rf", &self.path]),
                &Default::default(),
                |_, _| std::ops::ControlFlow::Continue(()),
            )
            .await;
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

#[tokio::test]
async fn copies_a_results_tree() {
    let Some(tree) = RemoteTree::make(
        "mkdir -p suite/a suite/b/c; \
         echo '<testsuite name=\"a\"/>' > suite/a/junit.xml; \
         echo '<testsuite name=\"c\"/>' > suite/b/c/junit.xml; \
         head -c 100000 /dev/urandom > suite/b/blob.bin; \
         ln -s a/junit.xml suite/link.xml; ln -s b suite/dirlink; mkfifo suite/fifo",
    )
    .await
    else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let dest = local.path().join("results");
    let summary = tree
        .download("suite", &dest, &DownloadLimits::default())
        .await;
    tree.remove().await;
    let summary = summary.unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(read(&dest.join("a/junit.xml")), "<testsuite name=\"a\"/>\n");
    assert_eq!(
        read(&dest.join("b/c/junit.xml")),
        "<testsuite name=\"c\"/>\n"
    );
    assert_eq!(
        std::fs::metadata(dest.join("b/blob.bin")).unwrap().len(),
        100_000
    );
    // A symlink to a file inside the tree is copied as that file.
    assert_eq!(read(&dest.join("link.xml")), "<testsuite name=\"a\"/>\n");
    assert!(
        !std::fs::symlink_metadata(dest.join("link.xml"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(summary.files.len(), 4);
    assert_eq!(summary.bytes, 3 * 22 + 100_000);
    let skipped: Vec<&str> = summary
        .skipped
        .iter()
        .map(|(path, _)| path.rsplit('/').next().unwrap())
        .collect();
    assert!(
        skipped.contains(&"dirlink") && skipped.contains(&"fifo"),
        "{:?}",
        summary.skipped
    );
    assert!(!dest.join("fifo").exists() && !dest.join("dirlink").exists());
}

#[tokio::test]
async fn a_symlink_leading_out_is_refused() {
    let Some(tree) =
        RemoteTree::make("mkdir r; echo ok > r/junit.xml; ln -s /etc/passwd r/passwd").await
    else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let result = tree
        .download("r", local.path(), &DownloadLimits::default())
        .await;
    tree.remove().await;
    let err = result.unwrap_err();
    assert!(matches!(err, SftpError::SymlinkOutside { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("/etc/passwd") && text.contains("r/passwd"),
        "{text}"
    );
    assert!(!local.path().join("passwd").exists());
}

#[tokio::test]
async fn limits_bound_size_files_and_depth() {
    let Some(tree) = RemoteTree::make(
        "mkdir -p big deep/1/2/3 many; head -c 5000000 /dev/zero > big/huge.log; \
         echo x > deep/1/2/3/f; for i in 1 2 3 4 5; do echo $i > many/$i; done",
    )
    .await
    else {
        return;
    };
    let limits = DownloadLimits {
        max_total_bytes: 1_000_000,
        max_files: 3,
        max_depth: 2,
        ..DownloadLimits::default()
    };
    let local = tempfile::tempdir().unwrap();
    let mut texts = Vec::new();
    for dir in ["big", "many", "deep"] {
        let result = tree.download(dir, &local.path().join(dir), &limits).await;
        texts.push(result.map(|_| ()).unwrap_err().to_string());
    }
    tree.remove().await;
    assert!(
        texts[0].contains("1000000 bytes") && texts[0].contains("huge.log"),
        "{}",
        texts[0]
    );
    assert!(texts[1].contains("3 files"), "{}", texts[1]);
    assert!(texts[2].contains("2 directory levels"), "{}", texts[2]);
    // Nothing beyond the byte limit was written.
    let written = std::fs::metadata(local.path().join("big/huge.log"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(written <= 1_000_000, "{written}");
}

#[tokio::test]
async fn a_missing_remote_directory_is_named() {
    let Some(tree) = RemoteTree::make("true").await else {
        return;
    };
    let local = tempfile::tempdir().unwrap();
    let result = tree
        .pool
        .download_dir(
            &tree.config,
            "/nonexistent/results",
            local.path(),
            &DownloadLimits::default(),
        )
        .await;
    tree.remove().await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/results"), "{err}");
}
