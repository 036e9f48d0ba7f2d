//! `prova run FILE`: validate, run in the foreground, print the reports.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use prova_engine::ownership;
use prova_engine::plugins::reporters::junit::JUnitFile;
use prova_engine::runner::{JobOutcome, RunOptions, run_job};
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;
use crate::output::outln;
use crate::suites::FailedCases;
use crate::{exit, output, progress, store};

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut job = match super::load::descriptor(&args.file, args.strict) {
        Ok(job) => job,
        Err(code) => return Ok(code),
    };
    if let Some(path) = &args.junit {
        job.add_final_reporter("junit", Arc::new(JUnitFile { path: path.clone() }));
    }
    let store = store::open(&args.store).await?;

    // This process owns the job through a lease it renews; a job whose
    // `prova run` was killed is ended here, by the next one on the store.
    let owner = ownership::process_owner();
    match ownership::reap_abandoned(&*store, &owner).await {
        Ok(ended) => {
            for id in ended {
                eprintln!(
                    "job {id} was abandoned by a prova that stopped while it ran: marked failed, its targets freed"
                );
            }
        }
        Err(e) => eprintln!(
            "warning: cannot look for abandoned jobs: {}",
            output::error_chain(&e)
        ),
    }
    let _heartbeat = ownership::Heartbeat::start(store.clone(), owner.clone());

    let cancel = CancellationToken::new();
    let hard_cancel = CancellationToken::new();
    let job_id = Arc::new(std::sync::OnceLock::new());

    let live = std::io::stderr().is_terminal() && !args.no_progress && !args.json;
    let progress = progress::Progress::new(live, super::load::steps_per_test(&job));
    tokio::spawn(watch_signals(
        cancel.clone(),
        hard_cancel.clone(),
        progress.clone(),
    ));
    let created = job_id.clone();
    let shown = progress.clone();
    let opts = RunOptions {
        requestor: args.requestor.clone(),
        cancel,
        hard_cancel: hard_cancel.clone(),
        observer: Some(progress.observer()),
        on_created: Some(Arc::new(move |id| {
            let _ = created.set(id);
            shown.println(&format!("job {id} started"));
        })),
        artifacts_root: Some(store::artifacts_root(&args.store)),
        pause: Default::default(),
        server_id: Some(owner.clone()),
    };
    let run = run_job(job, store.clone(), opts);
    // After a second interrupt the engine stops cleanup and releases the
    // targets; should it not end within a few seconds, the job is ended in
    // the store from here, so it never stays `Cancelling`.
    let forced = async {
        hard_cancel.cancelled().await;
        tokio::time::sleep(HARD_EXIT_GRACE).await;
    };
    let outcome = tokio::select! {
        outcome = run => outcome,
        () = forced => {
            progress.finish();
            if let Some(&id) = job_id.get() {
                end_at_once(&*store, id).await;
            }
            clean_up_abandoned_steps(&hard_cancel).await;
            eprintln!("exiting at once");
            return Ok(ExitCode::from(exit::CANCELLED));
        }
    };
    clean_up_abandoned_steps(&hard_cancel).await;
    let outcome = outcome?;
    if let Err(e) = store.release_lease(outcome.job_id, &owner).await {
        tracing::warn!("cannot release the job's lease: {e}");
    }
    // The job's verdict is the exit code, even when stdout is a closed pipe
    // (`prova run job.yaml | head -1`).
    // The bars leave the screen before the reports print, once, below.
    progress.finish();
    let cases = progress.take_failed_cases();
    if let Err(e) = print_outcome(&outcome, &cases, args.json)
        && !crate::output::is_broken_pipe(&e)
    {
        return Err(e);
    }
    Ok(ExitCode::from(exit_code(&outcome)))
}

/// How long what steps started gets to be cleaned up after a second
/// interrupt (containers removed, remote commands killed).
const HARD_EXIT_CLEANUP: std::time::Duration = std::time::Duration::from_secs(10);

/// How long the engine gets to end the job after a second interrupt.
const HARD_EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// After a second interrupt the engine dropped its steps: what they started
/// that outlives them (process groups, containers, Kubernetes Jobs, remote
/// commands) is ended before prova exits (a third interrupt does not wait).
async fn clean_up_abandoned_steps(hard_cancel: &CancellationToken) {
    if !hard_cancel.is_cancelled() {
        return;
    }
    let left = prova_engine::plugin::hard_exit::run_all(HARD_EXIT_CLEANUP).await;
    for what in left {
        eprintln!("warning: cleanup did not finish: {what}");
    }
}

/// Ends the job in the store without the engine (it did not finish after a
/// second interrupt): `Cancelled` with the reason, targets unlocked, lease
/// dropped. Bounded, so a stuck store cannot keep prova from exiting.
async fn end_at_once(store: &dyn prova_store::Store, job_id: prova_core::JobId) {
    let end = ownership::record_end(
        store,
        job_id,
        prova_core::JobState::Cancelled,
        serde_json::json!({
            "Error": "cancelled at once by a second interrupt: cleanup did not finish"
        }),
    );
    match tokio::time::timeout(std::time::Duration::from_secs(5), end).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!(
            "warning: cannot record the job's end: {}",
            output::error_chain(&e)
        ),
        Err(_) => {
            eprintln!("warning: the store did not answer; the next prova on it ends the job")
        }
    }
}

/// The exit code CI trusts: 0 only when the job completed and every
/// reporter said success.
pub fn exit_code(outcome: &JobOutcome) -> u8 {
    exit::for_verdict(outcome.verdict())
}

/// Interrupts: Ctrl-C (SIGINT), SIGTERM and SIGHUP all mean "stop". The
/// first cancels gracefully (steps stop, cleanup runs, targets are
/// released); the second kills what runs, skips the rest of cleanup and
/// ends the job at once; a third exits on the spot.
async fn watch_signals(
    cancel: CancellationToken,
    hard: CancellationToken,
    shown: progress::Progress,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ];
    let mut streams = Vec::new();
    for kind in kinds {
        match signal(kind) {
            Ok(s) => streams.push(s),
            Err(e) => tracing::warn!("cannot watch signal {kind:?}: {e}"),
        }
    }
    if streams.is_empty() {
        return;
    }
    // Said above the bars on a terminal, so the screen stays whole.
    next_signal(&mut streams).await;
    shown.println(
        "cancelling: steps stop, cleanup runs, targets are released (interrupt again to stop cleanup and exit)",
    );
    cancel.cancel();
    next_signal(&mut streams).await;
    hard.cancel();
    shown.println(
        "stopping at once: cleanup skipped, targets released (interrupt again to exit now)",
    );
    next_signal(&mut streams).await;
    // Exiting on the spot: the terminal gets its settings back first.
    shown.finish();
    std::process::exit(i32::from(exit::CANCELLED));
}

/// Waits for any of the watched signals.
async fn next_signal(streams: &mut [tokio::signal::unix::Signal]) {
    futures::future::select_all(streams.iter_mut().map(|s| Box::pin(s.recv()))).await;
}

fn print_outcome(outcome: &JobOutcome, cases: &FailedCases, json: bool) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({
            "JobID": outcome.job_id,
            "State": outcome.state,
            "Error": outcome.error,
            "Success": outcome.success(),
            "Verdict": outcome.verdict(),
            "RunReports": outcome.run_reports,
            "FinalReports": outcome.final_reports,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    outln!()?;
    for (i, reports) in outcome.run_reports.iter().enumerate() {
        for r in reports {
            outln!(
                "run {} · {}: {} {}",
                i + 1,
                r.reporter_name,
                verdict(r.success),
                report_message(&r.data)
            )?;
        }
    }
    for r in &outcome.final_reports {
        outln!(
            "final · {}: {} {}",
            r.reporter_name,
            verdict(r.success),
            report_message(&r.data)
        )?;
    }
    for run in &outcome.runs {
        for t in run.tests.iter().filter(|t| !t.skipped) {
            for target in t.targets.iter().filter(|t| !t.passed) {
                outln!(
                    "  run {} · {} · target {} failed at {}: {}",
                    run.run_id,
                    t.name,
                    target.target.id,
                    target.failed_step.as_deref().unwrap_or("-"),
                    target.error.as_deref().unwrap_or("")
                )?;
            }
        }
    }
    let state = match &outcome.error {
        Some(e) => format!("{} ({e})", outcome.state),
        None => outcome.state.to_string(),
    };
    if !cases.listed.is_empty() {
        outln!("failed test cases:")?;
        for c in &cases.listed {
            outln!("  {c}")?;
        }
        if cases.more > 0 {
            outln!(
                "  … and {} more (prova events {} --name TestCaseResult)",
                cases.more,
                outcome.job_id
            )?;
        }
    }
    if outcome.verdict() == prova_core::status::Verdict::Error
        && outcome
            .runs
            .iter()
            .flat_map(|r| &r.tests)
            .flat_map(|t| &t.targets)
            .any(|t| t.infra)
    {
        outln!("{INFRA_HINT}")?;
    }
    outln!(
        "job {} {state}: {}",
        outcome.job_id,
        if outcome.success() {
            "success".to_string()
        } else {
            format!("FAILURE (verdict {})", outcome.verdict())
        }
    )?;
    if outcome.writer.lost > 0 {
        outln!(
            "warning: {} events could not be stored",
            outcome.writer.lost
        )?;
    }
    Ok(())
}

/// Said when steps could not do their work: the exit code is 3, and the
/// fix is in the environment, not in the tests.
const INFRA_HINT: &str = "hint: the infrastructure failed, not the tests (exit 3): check that what the steps need is reachable: a Kubernetes cluster (KUBECONFIG or ~/.kube/config, `kubectl get nodes`), the Docker daemon (`docker info`), the SSH hosts";

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
