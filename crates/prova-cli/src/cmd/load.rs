//! Reading a descriptor for `run` and `start`: every error printed once,
//! under the file's name; warnings printed, or refused with `--strict`.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use prova_core::diag::Diagnostic;
use prova_engine::prepare::{PrepareError, PreparedJob, prepare_file};

use crate::exit;

/// The prepared job, or the exit code after the errors were printed.
pub fn descriptor(file: &Path, strict: bool) -> Result<PreparedJob, ExitCode> {
    let registry = super::registry();
    match prepare_file(file, &registry) {
        Ok(job) => {
            if strict && !job.warnings.is_empty() {
                print_invalid(file, &job.warnings, &[], "(--strict: warnings are errors)");
                return Err(ExitCode::from(exit::INVALID));
            }
            for w in &job.warnings {
                eprintln!("warning: {w}");
            }
            Ok(job)
        }
        Err(PrepareError::Invalid(e)) => {
            if strict {
                let mut all = e.errors.clone();
                all.extend(e.warnings.iter().cloned());
                print_invalid(file, &all, &[], "");
            } else {
                print_invalid(file, &e.errors, &e.warnings, "");
            }
            Err(ExitCode::from(exit::INVALID))
        }
        Err(e) => {
            eprintln!("prova: error: {}", crate::output::error_chain(&e));
            Err(ExitCode::from(exit::INVALID))
        }
    }
}

/// Steps per test (its steps and cleanup steps): the size of each test's
/// work, for the progress bars of `run` and `start --wait`.
pub fn steps_per_test(job: &PreparedJob) -> HashMap<String, u64> {
    job.tests
        .iter()
        .map(|t| (t.name.clone(), (t.steps.len() + t.cleanup.len()) as u64))
        .collect()
}

/// `FILE: invalid job descriptor (N errors)` and each error once; the
/// diagnostics carry the file, line and field path themselves.
fn print_invalid(file: &Path, errors: &[Diagnostic], warnings: &[Diagnostic], note: &str) {
    let n = errors.len();
    let note = if note.is_empty() {
        String::new()
    } else {
        format!(" {note}")
    };
    eprintln!(
        "{}: invalid job descriptor ({n} error{}){note}",
        file.display(),
        if n == 1 { "" } else { "s" }
    );
    for e in errors {
        eprintln!("  {e}");
    }
    for w in warnings {
        eprintln!("warning: {w}");
    }
}
