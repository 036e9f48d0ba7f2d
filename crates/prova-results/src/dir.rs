//! Walking a results directory.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use prova_core::results::{CaseStatus, TestCaseResult};

use crate::error::ResultsError;
use crate::junit::{self, MAX_JUNIT_BYTES, MAX_TOTAL_OUTPUT};

/// What a results directory held.
#[derive(Debug, Default)]
pub struct Ingested {
    /// Regular files in the directory, at any depth (links not followed).
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// JUnit files read (relative paths, `/`-separated), in walk order.
    pub junit_files: Vec<String>,
    /// Every test case of every JUnit file, in file then document order.
    pub cases: Vec<TestCaseResult>,
    /// Files that look like results but could not be read: an `*.xml` file
    /// that is not XML, a JUnit file that is malformed or too large.
    pub errors: Vec<FileError>,
}

/// A results file that could not be read.
#[derive(Debug)]
pub struct FileError {
    /// Relative to the results directory, `/`-separated.
    pub file: String,
    pub error: ResultsError,
}

/// Case counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub skipped: usize,
    /// Passed cases that failed before passing (`flakyFailure`).
    pub flaky: usize,
}

/// Failing cases named in a failure message.
const NAMED_FAILURES: usize = 5;

impl Ingested {
    /// Why these results fail the target that produced them (a step's
    /// `fail_on_test_failures`): the failed or errored cases, the first five
    /// named with the first line of their message, or else the first file
    /// that could not be read. `None` when nothing failed.
    pub fn failure_message(&self) -> Option<String> {
        let s = self.summary();
        let bad = s.failed + s.errors;
        if bad > 0 {
            let names: Vec<String> = self
                .failures()
                .take(NAMED_FAILURES)
                .map(|c| {
                    let mut n = format!("{}: {}", c.suite, c.name);
                    if let Some(m) = &c.message {
                        let m: String = m.lines().next().unwrap_or("").chars().take(120).collect();
                        n.push_str(&format!(" ({m})"));
                    }
                    n
                })
                .collect();
            let more = if bad > NAMED_FAILURES {
                format!(", and {} more", bad - NAMED_FAILURES)
            } else {
                String::new()
            };
            return Some(format!(
                "{bad} of {} test cases failed: {}{more}",
                s.total,
                names.join("; ")
            ));
        }
        self.errors.first().map(|e| {
            format!(
                "results file {} could not be read: {}",
                e.file,
                crate::junit::error_chain(&e.error)
            )
        })
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            total: self.cases.len(),
            ..Summary::default()
        };
        for c in &self.cases {
            match c.status {
                CaseStatus::Passed => s.passed += 1,
                CaseStatus::Failed => s.failed += 1,
                CaseStatus::Error => s.errors += 1,
                CaseStatus::Skipped => s.skipped += 1,
            }
            if c.flaky_failures > 0 {
                s.flaky += 1;
            }
        }
        s
    }

    /// Cases that failed or errored.
    pub fn failures(&self) -> impl Iterator<Item = &TestCaseResult> {
        self.cases
            .iter()
            .filter(|c| matches!(c.status, CaseStatus::Failed | CaseStatus::Error))
    }
}

/// Walks `dir`: counts regular files and bytes (symbolic links are not
/// followed), and reads every `*.xml` file whose root element is
/// `<testsuites>`, `<testsuite>` (or Eclipse's `<testrun>`) as JUnit.
/// Other XML files are artifacts only. An unreadable or malformed results
/// file is recorded in [`Ingested::errors`]; only a `dir` that cannot be
/// listed at all is an error.
pub fn ingest_dir(dir: &Path) -> Result<Ingested, ResultsError> {
    let meta = fs::metadata(dir).map_err(|source| ResultsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ResultsError::NotADirectory(dir.to_path_buf()));
    }
    let mut out = Ingested::default();
    let mut budget = MAX_TOTAL_OUTPUT;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    let mut first = true;
    while let Some(d) = stack.pop() {
        let listing = match fs::read_dir(&d) {
            Ok(l) => l,
            Err(source) if first => {
                return Err(ResultsError::Io { path: d, source });
            }
            Err(source) => {
                out.errors.push(FileError {
                    file: relative(dir, &d),
                    error: ResultsError::Io { path: d, source },
                });
                continue;
            }
        };
        first = false;
        let mut entries: Vec<_> = listing.filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        let mut subdirs = Vec::new();
        for e in entries {
            let path = e.path();
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                subdirs.push(path);
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            out.files += 1;
            out.bytes += meta.len();
            let is_xml = path
                .extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("xml"));
            if is_xml {
                read_xml(dir, &path, meta.len(), &mut budget, &mut out);
            }
        }
        // Depth first, in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(out)
}

fn read_xml(root: &Path, path: &Path, len: u64, budget: &mut usize, out: &mut Ingested) {
    let rel = relative(root, path);
    let fail = |out: &mut Ingested, error| {
        out.errors.push(FileError {
            file: rel.clone(),
            error,
        })
    };
    let io = |source| ResultsError::Io {
        path: path.to_path_buf(),
        source,
    };
    if len > MAX_JUNIT_BYTES {
        // Only a JUnit file this large is an error; look at its head.
        let mut head = Vec::new();
        let read = fs::File::open(path).and_then(|f| f.take(64 * 1024).read_to_end(&mut head));
        if let Err(e) = read {
            return fail(out, io(e));
        }
        if let Ok(text) = junit::decode(&head)
            && junit::is_junit(&text).unwrap_or(false)
        {
            fail(
                out,
                ResultsError::TooLarge {
                    size: len,
                    limit: MAX_JUNIT_BYTES,
                },
            );
        }
        return;
    }
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) => return fail(out, io(e)),
    };
    match junit::parse_with_budget(&bytes, &rel, budget) {
        Ok(cases) => {
            out.junit_files.push(rel.clone());
            out.cases.extend(cases);
        }
        // XML, but not a results file: an artifact like any other.
        Err(ResultsError::NotJUnit(_)) => {}
        Err(e) => fail(out, e),
    }
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}
