//! Fuzzing the results stream reader (`archive::unpack`, what the Docker
//! archive API and the collector send): random bytes, truncated and
//! mutated real archives (built from `shared/corpus/junit` files, with the
//! hostile entries a container could add) never panic, never write outside
//! the destination, never create a link, and keep the byte bound.
//!
//! Bounded by default; see `support/fuzz.rs` for longer runs. Each test
//! prints the cases it tried.

mod support;

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use prova_fuzz::fuzz;
use prova_results::archive::{Limits, unpack};
use support::mutation::{mutate, mutation};
use tar::{EntryType, Header};

const LIMITS: Limits = Limits {
    max_bytes: 512 * 1024,
    max_entries: 200,
};

/// A tar header with a raw name (`set_path` refuses `..` and absolute
/// paths, which a hostile stream holds).
fn header(path: &str, kind: EntryType, size: u64, link: Option<&str>) -> Header {
    let mut h = Header::new_gnu();
    let name = &mut h.as_old_mut().name;
    let n = path.len().min(name.len());
    name[..n].copy_from_slice(&path.as_bytes()[..n]);
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    h
}

/// Results archives as Docker sends them (`results/` first): corpus JUnit
/// files in nested folders, and one with every hostile entry kind.
fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/junit");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the JUnit corpus {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.metadata().is_ok_and(|m| m.len() <= 16 * 1024))
        .collect();
    files.sort();
    let mut seeds = Vec::new();
    for chunk in files.chunks(6) {
        let mut b = tar::Builder::new(Vec::new());
        b.append(&header("results/", EntryType::Directory, 0, None), &[][..])
            .unwrap();
        for (i, p) in chunk.iter().enumerate() {
            let data = std::fs::read(p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy();
            let path = format!("results/{}{name}", "sub/".repeat(i % 3));
            b.append(
                &header(&path, EntryType::Regular, data.len() as u64, None),
                &data[..],
            )
            .unwrap();
        }
        seeds.push(b.into_inner().unwrap());
    }
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, link) in [
        ("results/../escape.txt", EntryType::Regular, None),
        ("/tmp/prova-fuzz-abs.txt", EntryType::Regular, None),
        ("results/link", EntryType::Symlink, Some("..")),
        ("results/link/through.txt", EntryType::Regular, None),
        ("results/hard", EntryType::Link, Some("../../etc/passwd")),
        ("results/dev", EntryType::Char, None),
        ("results/fifo", EntryType::Fifo, None),
        ("results/ok.xml", EntryType::Regular, None),
    ] {
        b.append(&header(path, kind, 4, link), &b"data"[..])
            .unwrap();
    }
    seeds.push(b.into_inner().unwrap());
    assert!(seeds.len() >= 5);
    seeds
}

/// Pieces of tar structure worth splicing in.
const FRAGMENTS: &[&[u8]] = &[
    b"../../../",
    b"/etc/passwd\0",
    b"ustar\x0000",
    b"ustar  \0",
    b"././@LongLink\0",
    b"77777777777\0",
    b"00000001000\0",
    &[0u8; 512],
    b"2",
    b"1",
    b"5",
    b"L",
    b"x",
];

/// Unpacks `bytes` into a fresh `dest` beside a `sentinel` folder, then
/// checks the tree: nothing outside `dest`, no link, bytes within bounds.
fn unpack_and_check(bytes: &[u8], strip: usize) {
    let top = tempfile::tempdir().unwrap();
    let dest = top.path().join("dest");
    let sentinel = top.path().join("sentinel");
    std::fs::create_dir(&sentinel).unwrap();
    let result = unpack(bytes, &dest, strip, &LIMITS);
    let mut names: Vec<_> = std::fs::read_dir(top.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["dest", "sentinel"], "written beside dest");
    assert_eq!(std::fs::read_dir(&sentinel).unwrap().count(), 0);
    assert!(!Path::new("/tmp/prova-fuzz-abs.txt").exists());
    let (files, bytes_on_disk) = walk(&dest);
    if let Ok(u) = result {
        assert_eq!((u.files, u.bytes), (files, bytes_on_disk));
        assert_eq!(u.sha256.len(), 64);
    }
    assert!(bytes_on_disk <= LIMITS.max_bytes, "{bytes_on_disk} bytes");
    assert!(files <= LIMITS.max_entries);
}

/// Regular files and their bytes below `dir`; panics on anything else.
fn walk(dir: &Path) -> (u64, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p);
            } else {
                assert!(m.is_file(), "{} is neither file nor directory", p.display());
                files += 1;
                bytes += m.len();
            }
        }
    }
    (files, bytes)
}

#[test]
fn mutated_and_truncated_archives() {
    let seeds = seeds();
    let n = seeds.len();
    fuzz(
        "fuzz_collector_stream (mutated archives)",
        1_500,
        (
            0..n,
            proptest::collection::vec(mutation(FRAGMENTS), 1..6),
            0usize..3,
        ),
        |(i, mutations, strip)| unpack_and_check(&mutate(&seeds[i], &mutations), strip),
    );
}

#[test]
fn random_streams() {
    fuzz(
        "fuzz_collector_stream (random bytes)",
        1_500,
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2048),
            // A valid first header, then noise.
            proptest::collection::vec(any::<u8>(), 0..2048).prop_map(|tail| {
                let mut v = header("results/a.xml", EntryType::Regular, 100, None)
                    .as_bytes()
                    .to_vec();
                v.extend(tail);
                v
            }),
        ],
        |bytes| unpack_and_check(&bytes, 1),
    );
}

#[test]
fn every_truncation_of_a_real_archive() {
    let seed = &seeds()[0];
    let mut tried = 0;
    for cut in (0..seed.len()).step_by(97) {
        unpack_and_check(&seed[..cut], 1);
        tried += 1;
    }
    println!("fuzz_collector_stream (truncations): {tried} cases tried");
}
