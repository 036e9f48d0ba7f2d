//! `CSVFileTargetManager`: targets from a CSV inventory of `ID,FQDN,IPv4,IPv6`
//! lines (`FileURI`, relative to the descriptor). `HostPrefixes` keeps
//! targets whose FQDN starts with one of them; `Shuffle` picks at random;
//! at least `MinNumberDevices` must be available and at most
//! `MaxNumberDevices` are taken.
//!
//! The file is read when the job is prepared (so a bad inventory is a
//! validation error) and again at each acquisition (so edits between runs
//! are seen, as in ConTest). Each read opens the file once, beneath the
//! server's files root when there is one ([`DescriptorFile`]): a symlink
//! swapped in after submission cannot lead the read outside the root.

use std::sync::Arc;

use async_trait::async_trait;
use prova_core::descriptor::{check_keys, opt_u32};
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::{Node, Value};
use prova_core::{JobId, Target};
use rand::seq::SliceRandom;
use tokio_util::sync::CancellationToken;

use crate::plugin::{DescriptorFile, PrepareCtx, TargetLocker, TargetManager, TargetSource};

pub struct CsvFileTargetManager;

#[derive(Debug, Clone)]
struct Config {
    file: DescriptorFile,
    min: u32,
    max: u32,
    host_prefixes: Vec<String>,
    shuffle: bool,
}

impl TargetManager for CsvFileTargetManager {
    fn prepare(
        &self,
        acquire: &Node,
        path: &FieldPath,
        _release: &Node,
        ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<Arc<dyn TargetSource>> {
        let Some(map) = acquire.as_map() else {
            diags.error(path, acquire.pos, format!("expected {{FileURI, MinNumberDevices, MaxNumberDevices, HostPrefixes, Shuffle}}, found {}", acquire.type_name()));
            return None;
        };
        check_keys(
            map,
            path,
            &[
                "FileURI",
                "MinNumberDevices",
                "MaxNumberDevices",
                "HostPrefixes",
                "Shuffle",
            ],
            diags,
        );
        let file = match acquire.get_ci("FileURI").and_then(Node::as_str) {
            Some(f) if !f.trim().is_empty() => {
                match ctx.file(f.strip_prefix("file://").unwrap_or(f)) {
                    Ok(p) => p,
                    Err(e) => {
                        diags.error(
                            &path.key("FileURI"),
                            acquire.get_ci("FileURI").and_then(|n| n.pos),
                            e,
                        );
                        return None;
                    }
                }
            }
            _ => {
                diags.error(
                    &path.key("FileURI"),
                    acquire.pos,
                    "missing: expected the path of a CSV file of ID,FQDN,IPv4,IPv6 lines",
                );
                return None;
            }
        };
        let min = opt_u32(acquire, path, "MinNumberDevices", diags).unwrap_or(1);
        let max = opt_u32(acquire, path, "MaxNumberDevices", diags).unwrap_or(u32::MAX);
        if max < min {
            diags.error(
                &path.key("MaxNumberDevices"),
                acquire.pos,
                format!("MaxNumberDevices ({max}) is less than MinNumberDevices ({min})"),
            );
        }
        let shuffle = match acquire.get_ci("Shuffle").map(|n| &n.value) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                diags.error(&path.key("Shuffle"), acquire.pos, "expected true or false");
                false
            }
        };
        let host_prefixes = match acquire.get_ci("HostPrefixes") {
            None => Vec::new(),
            Some(n) if n.is_null() => Vec::new(),
            Some(n) => match n.as_seq() {
                Some(items) => items.iter().map(Node::scalar_text).collect(),
                None => {
                    diags.error(
                        &path.key("HostPrefixes"),
                        n.pos,
                        "expected a list of host name prefixes",
                    );
                    Vec::new()
                }
            },
        };
        let cfg = Config {
            file,
            min,
            max,
            host_prefixes,
            shuffle,
        };
        match read_inventory(&cfg.file) {
            Ok(targets) => {
                let n = select(&cfg, targets).len();
                if (n as u32) < cfg.min {
                    diags.error(
                        &path.key("MinNumberDevices"),
                        acquire.pos,
                        format!(
                            "{} has {n} matching targets, fewer than MinNumberDevices {}",
                            cfg.file.display_path().display(),
                            cfg.min
                        ),
                    );
                }
            }
            Err(e) => diags.error(
                &path.key("FileURI"),
                acquire.get_ci("FileURI").and_then(|n| n.pos),
                e,
            ),
        }
        Some(Arc::new(CsvSource(cfg)))
    }
}

struct CsvSource(Config);

#[async_trait]
impl TargetSource for CsvSource {
    async fn acquire(
        &self,
        _job: JobId,
        cancel: &CancellationToken,
        locker: &dyn TargetLocker,
    ) -> Result<Vec<Target>, String> {
        let cfg = self.0.clone();
        loop {
            let file = cfg.file.clone();
            let inventory = tokio::task::spawn_blocking(move || read_inventory(&file))
                .await
                .map_err(|e| e.to_string())??;
            // Every matching candidate, in the order chosen (shuffled or
            // not); TryLock takes the free ones, then up to Max are kept.
            let candidates = select(
                &Config {
                    max: u32::MAX,
                    ..cfg.clone()
                },
                inventory,
            );
            if (candidates.len() as u32) < cfg.min {
                return Err(format!(
                    "{} has {} matching targets, fewer than MinNumberDevices {}",
                    cfg.file.display_path().display(),
                    candidates.len(),
                    cfg.min
                ));
            }
            let ids: Vec<String> = candidates.iter().map(|t| t.id.clone()).collect();
            let locked = locker.try_lock(&ids).await?;
            let mut chosen: Vec<Target> = candidates
                .into_iter()
                .filter(|t| locked.contains(&t.id))
                .collect();
            if chosen.len() as u32 >= cfg.min {
                let extra: Vec<String> = chosen
                    .iter()
                    .skip(cfg.max as usize)
                    .map(|t| t.id.clone())
                    .collect();
                locker.unlock(&extra).await?;
                chosen.truncate(cfg.max as usize);
                return Ok(chosen);
            }
            locker.unlock(&locked).await?;
            tokio::select! {
                _ = tokio::time::sleep(super::LOCK_RETRY) => {}
                _ = cancel.cancelled() => return Err("cancelled while waiting for locked targets".into()),
            }
        }
    }
    async fn release(&self, _job: JobId, _targets: &[Target]) -> Result<(), String> {
        Ok(())
    }
}

fn select(cfg: &Config, mut targets: Vec<Target>) -> Vec<Target> {
    if !cfg.host_prefixes.is_empty() {
        targets.retain(|t| {
            cfg.host_prefixes
                .iter()
                .any(|p| t.fqdn.starts_with(p.as_str()))
        });
    }
    if cfg.shuffle {
        targets.shuffle(&mut rand::rng());
    }
    targets.truncate(cfg.max as usize);
    targets
}

/// Reads `ID,FQDN,IPv4,IPv6` lines. Blank lines and `#` comments are
/// skipped; errors name the file and line.
fn read_inventory(file: &DescriptorFile) -> Result<Vec<Target>, String> {
    let text = file.read_to_string()?;
    parse_inventory(&text).map_err(|e| format!("{}:{e}", file.display_path().display()))
}

pub(crate) fn parse_inventory(text: &str) -> Result<Vec<Target>, String> {
    let mut out: Vec<Target> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != 4 {
            return Err(format!(
                "{n}: expected 4 fields ID,FQDN,IPv4,IPv6, found {}",
                fields.len()
            ));
        }
        let t = Target {
            id: fields[0].to_string(),
            fqdn: fields[1].to_string(),
            primary_ipv4: fields[2].to_string(),
            primary_ipv6: fields[3].to_string(),
        };
        if t.id.is_empty() {
            return Err(format!("{n}: empty ID"));
        }
        if !t.primary_ipv4.is_empty() && t.primary_ipv4.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(format!("{n}: invalid IPv4 address {:?}", t.primary_ipv4));
        }
        if !t.primary_ipv6.is_empty() && t.primary_ipv6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{n}: invalid IPv6 address {:?}", t.primary_ipv6));
        }
        if out.iter().any(|o| o.id == t.id) {
            return Err(format!("{n}: duplicate ID {:?}", t.id));
        }
        out.push(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contest_inventory() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/contest/descriptors/hosts.csv"
        ))
        .unwrap();
        let t = parse_inventory(&text).unwrap();
        assert_eq!(t.len(), 6);
        assert_eq!(t[0].id, "1234");
        assert_eq!(t[0].fqdn, "compute1234");
        assert_eq!(t[0].primary_ipv4, "172.16.5.6");
    }

    #[test]
    fn rejects_bad_lines_with_their_number() {
        assert_eq!(
            parse_inventory("1,a,,\n2,b\n").unwrap_err(),
            "2: expected 4 fields ID,FQDN,IPv4,IPv6, found 2"
        );
        assert!(
            parse_inventory("1,a,300.1.1.1,\n")
                .unwrap_err()
                .contains("invalid IPv4")
        );
    }

    #[test]
    fn selects_by_prefix_and_max() {
        let t = parse_inventory("1,uselesshost1,,\n2,compute2,,\n3,uselesshost3,,\n").unwrap();
        let cfg = Config {
            file: DescriptorFile::new("hosts.csv", None, None).unwrap(),
            min: 1,
            max: 1,
            host_prefixes: vec!["useless".into()],
            shuffle: false,
        };
        let s = select(&cfg, t);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].id, "1");
    }

    /// Locks whatever it is asked for.
    struct FreeLocks;

    #[async_trait]
    impl TargetLocker for FreeLocks {
        async fn try_lock(&self, ids: &[String]) -> Result<Vec<String>, String> {
            Ok(ids.to_vec())
        }
        async fn lock_all(&self, _ids: &[String]) -> Result<bool, String> {
            Ok(true)
        }
        async fn unlock(&self, _ids: &[String]) -> Result<(), String> {
            Ok(())
        }
    }

    fn prepare_in(root: &std::path::Path, file: &str) -> Result<Arc<dyn TargetSource>, String> {
        let node = prova_core::node::parse_document(
            &format!("{{FileURI: {file:?}}}"),
            prova_core::node::Format::Yaml,
        )
        .unwrap();
        let ctx = PrepareCtx {
            descriptor_dir: None,
            files_root: Some(root),
        };
        let mut diags = Diagnostics::new(None);
        let source =
            CsvFileTargetManager.prepare(&node, &FieldPath::root(), &node, &ctx, &mut diags);
        match diags.into_result() {
            Ok(_) => Ok(source.expect("prepared")),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn a_symlink_swapped_in_after_submission_is_not_followed_out_of_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("hosts.csv"), "1,inside,,\n").unwrap();
        std::fs::write(dir.path().join("other.csv"), "666,outside,,\n").unwrap();
        let source = prepare_in(&root, "hosts.csv").unwrap();
        let cancel = CancellationToken::new();
        let got = source.acquire(1, &cancel, &FreeLocks).await.unwrap();
        assert_eq!(got[0].fqdn, "inside");
        // Swapped after the job was accepted: the next read must not follow.
        std::fs::remove_file(root.join("hosts.csv")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("other.csv"), root.join("hosts.csv")).unwrap();
        let err = source.acquire(1, &cancel, &FreeLocks).await.unwrap_err();
        assert!(err.contains("outside the files root"), "{err}");
    }

    #[test]
    fn inventories_outside_the_root_are_refused_at_submission() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(dir.path().join("other.csv"), "666,outside,,\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("other.csv"), root.join("link.csv")).unwrap();
        let outside = dir.path().join("other.csv");
        for file in [
            outside.to_str().unwrap(),
            "../other.csv",
            "link.csv",
            "file://../other.csv",
        ] {
            let err = prepare_in(&root, file).err().expect(file);
            assert!(err.contains("outside the files root"), "{file}: {err}");
            assert!(!err.contains("666"), "{err}");
        }
    }
}
