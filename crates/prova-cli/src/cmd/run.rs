//! `prova run FILE`: validate, run in the foreground, print the reports.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use prova_engine::plugins::reporters::junit::JUnitFile;
use prova_engine::prepare::{PrepareError, prepare_file};
use prova_engine::runner::{JobOutcome, RunOptions, run_job};
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::{exit, output, progress, store};

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let registry = super::registry();
    let mut job = match prepare_file(&args.file, &registry) {
        Ok(job) => job,
        Err(PrepareError::Invalid(e)) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(exit::INVALID));
        }
        Err(e) => {
            eprintln!("prova: error: {e:#}");
            return Ok(ExitCode::from(exit::INVALID));
        }
    };
    for w in &job.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &args.junit {
        job.add_final_reporter("junit", Arc::new(JUnitFile { path: path.clone() }));
    }
    let store = store::open(&args.store).await?;

    let cancel = CancellationToken::new();
    let hard_cancel = CancellationToken::new();
    tokio::spawn(watch_ctrl_c(cancel.clone(), hard_cancel.clone()));

    let live = std::io::stderr().is_terminal() && !args.no_progress && !args.json;
    let opts = RunOptions {
        requestor: args.requestor.clone(),
        cancel,
        hard_cancel,
        observer: Some(progress::observer(live)),
        on_created: Some(Arc::new(|id| eprintln!("job {id} started"))),
        artifacts_root: Some(store::artifacts_root(&args.store)),
        pause: Default::default(),
        server_id: None,
    };
    let outcome = run_job(job, store, opts).await?;
    print_outcome(&outcome, args.json)?;
    Ok(ExitCode::from(exit_code(&outcome)))
}

/// The exit code CI trusts: 0 only when the job completed and every
/// reporter said success.
pub fn exit_code(outcome: &JobOutcome) -> u8 {
    let reports_ok = outcome.run_reports.iter().flatten().all(|r| r.success)
        && outcome.final_reports.iter().all(|r| r.success);
    exit::for_job(Some(outcome.state), reports_ok)
}

/// First Ctrl-C: graceful cancel. Second: kill what runs and exit at once.
async fn watch_ctrl_c(cancel: CancellationToken, hard: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!(
        "\ncancelling: steps stop, cleanup runs, targets are released (Ctrl-C again to exit at once)"
    );
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        hard.cancel();
        prova_engine::plugins::steps::cmd::kill_all_children();
        eprintln!("\nexiting at once");
        std::process::exit(i32::from(exit::CANCELLED));
    }
}

fn print_outcome(outcome: &JobOutcome, json: bool) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({
            "JobID": outcome.job_id,
            "State": outcome.state,
            "Error": outcome.error,
            "Success": outcome.success(),
            "RunReports": outcome.run_reports,
            "FinalReports": outcome.final_reports,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!();
    for (i, reports) in outcome.run_reports.iter().enumerate() {
        for r in reports {
            println!(
                "run {} · {}: {} {}",
                i + 1,
                r.reporter_name,
                verdict(r.success),
                report_message(&r.data)
            );
        }
    }
    for r in &outcome.final_reports {
        println!(
            "final · {}: {} {}",
            r.reporter_name,
            verdict(r.success),
            report_message(&r.data)
        );
    }
    for run in &outcome.runs {
        for t in run.tests.iter().filter(|t| !t.skipped) {
            for target in t.targets.iter().filter(|t| !t.passed) {
                println!(
                    "  run {} · {} · target {} failed at {}: {}",
                    run.run_id,
                    t.name,
                    target.target.id,
                    target.failed_step.as_deref().unwrap_or("-"),
                    target.error.as_deref().unwrap_or("")
                );
            }
        }
    }
    let state = match &outcome.error {
        Some(e) => format!("{} ({e})", outcome.state),
        None => outcome.state.to_string(),
    };
    println!(
        "job {} {state}: {}",
        outcome.job_id,
        if outcome.success() {
            "success"
        } else {
            "FAILURE"
        }
    );
    if outcome.writer.lost > 0 {
        println!(
            "warning: {} events could not be stored",
            outcome.writer.lost
        );
    }
    let _ = output::duration;
    Ok(())
}

fn verdict(ok: bool) -> &'static str {
    if ok { "success" } else { "FAILURE" }
}

fn report_message(data: &serde_json::Value) -> String {
    match data {
        serde_json::Value::String(s) => s.clone(),
        _ => data
            .get("Message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| data.to_string()),
    }
}
