//! Fuzzing the files root: whatever path a descriptor names (`..`, `.`,
//! absolute prefixes, links that lead in or out, in any order), a read
//! through `DescriptorFile` returns a file beneath the root or an error,
//! never the file outside, and the error never depends on whether
//! something exists outside.
//!
//! Bounded by default (`PROVA_FUZZ_CASES`, default 3000; `PROVA_FUZZ_SECS`,
//! default 30); prints the number of cases tried.

use std::os::unix::fs::symlink;
use std::path::Path;

use proptest::prelude::*;
use prova_engine::files_root::DescriptorFile;
use prova_fuzz::{TestCaseError, try_fuzz};

const SECRET: &str = "outside-secret";

/// `top/secret`, `top/root/{hosts.csv, sub/, in -> hosts.csv, out ->
/// ../secret, abs -> top/secret, up -> top, gone -> ../missing}`.
fn layout(top: &Path) -> std::path::PathBuf {
    let root = top.join("root");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(top.join("secret"), SECRET).unwrap();
    std::fs::write(root.join("hosts.csv"), "inside").unwrap();
    std::fs::write(root.join("sub/inner.csv"), "inside-sub").unwrap();
    symlink("hosts.csv", root.join("in")).unwrap();
    symlink("../secret", root.join("out")).unwrap();
    symlink(top.join("secret"), root.join("abs")).unwrap();
    symlink(top, root.join("up")).unwrap();
    symlink("../missing", root.join("gone")).unwrap();
    symlink("../../secret", root.join("sub/out2")).unwrap();
    root
}

fn component() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just(".."),
        Just("."),
        Just("sub"),
        Just("deeper"),
        Just("hosts.csv"),
        Just("inner.csv"),
        Just("secret"),
        Just("missing"),
        Just("in"),
        Just("out"),
        Just("abs"),
        Just("up"),
        Just("gone"),
        Just("out2"),
        Just("root"),
        Just(""),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Prefix {
    Relative,
    Root,
    Top,
    Slash,
    FileUrl,
}

#[test]
fn no_path_reads_outside_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().canonicalize().unwrap();
    let root = layout(&top);
    let prefix = prop_oneof![
        Just(Prefix::Relative),
        Just(Prefix::Root),
        Just(Prefix::Top),
        Just(Prefix::Slash),
        Just(Prefix::FileUrl),
    ];
    let strategy = (prefix, proptest::collection::vec(component(), 0..7));
    try_fuzz("fuzz_files_root", 3000, strategy, |(prefix, parts)| {
        let rel = parts.join("/");
        let named = match prefix {
            Prefix::Relative => rel,
            Prefix::Root => format!("{}/{rel}", root.display()),
            Prefix::Top => format!("{}/{rel}", top.display()),
            Prefix::Slash => format!("/{rel}"),
            Prefix::FileUrl => format!("file://{rel}"),
        };
        let read = DescriptorFile::new(&named, None, Some(&root)).and_then(|f| f.read_to_string());
        match read {
            Ok(text) if text == SECRET => Err(TestCaseError::fail(format!(
                "{named:?} read the file outside the root"
            ))),
            Ok(_) => Ok(()),
            Err(e) => {
                if e.contains(SECRET) {
                    return Err(TestCaseError::fail(format!("{named:?}: {e}")));
                }
                // The same path with `secret` renamed to `missing` must
                // fail with the same words: existence outside is not told.
                if named.contains("secret") {
                    let other = named.replace("secret", "missing");
                    let e2 = DescriptorFile::new(&other, None, Some(&root))
                        .and_then(|f| f.read_to_string())
                        .expect_err("a missing file cannot be read");
                    if e.replace("secret", "missing") != e2 {
                        return Err(TestCaseError::fail(format!(
                            "{named:?}: {e:?} differs from {other:?}: {e2:?}"
                        )));
                    }
                }
                Ok(())
            }
        }
    });
}
