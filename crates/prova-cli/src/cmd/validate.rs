//! `prova validate FILE...`: every error of every file, exit 2 if any.

use std::process::ExitCode;

use prova_core::node::Format;
use prova_engine::prepare;

use crate::cli::ValidateArgs;
use crate::exit;
use crate::output::outln;

pub fn run(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let registry = super::registry();
    let mut invalid = 0usize;
    for file in &args.files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{}: cannot read: {e}", file.display());
                invalid += 1;
                continue;
            }
        };
        let format = Format::from_path(file);
        let (errors, warnings, kind) = if prepare::is_steps_document(&text, format) {
            let d = prepare::validate_steps_str(&text, format, Some(file), &registry);
            (
                d.errors().to_vec(),
                d.warnings().to_vec(),
                "test-steps file",
            )
        } else {
            match prepare::prepare_str(&text, format, Some(file), &registry) {
                Ok(job) => (Vec::new(), job.warnings, "job descriptor"),
                Err(e) => (e.errors, e.warnings, "job descriptor"),
            }
        };
        // Unknown keys and parameters are warnings (a typo like `arg` for
        // `args` would otherwise pass silently); `--strict` makes them errors.
        let (errors, warnings) = if args.strict {
            (errors.into_iter().chain(warnings).collect(), Vec::new())
        } else {
            (errors, warnings)
        };
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        if errors.is_empty() {
            outln!("{}: valid {kind}", file.display())?;
        } else {
            invalid += 1;
            outln!(
                "{}: invalid {kind} ({} error{})",
                file.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            )?;
            for e in &errors {
                outln!("  {e}")?;
            }
        }
    }
    Ok(ExitCode::from(if invalid > 0 {
        exit::INVALID
    } else {
        exit::SUCCESS
    }))
}
