//! One module per command; [`dispatch`] runs the one asked for.

pub(crate) mod bench;
mod client;
mod completions;
pub(crate) mod diff;
pub(crate) mod e2e;
mod events;
mod fetch;
pub(crate) mod history;
mod jobs;
mod load;
mod plugins;
pub(crate) mod prune;
mod run;
mod serve;
mod status;
mod validate;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man => completions::man(),
        Command::Plugins(args) => plugins::run(args),
        Command::Coverage(cmd) => {
            let mut out = std::io::stdout().lock();
            // docs/coverage.md: an unreadable or malformed input (spec,
            // yaml, audit log) is exit 2, as bad usage is.
            let outcome = match prova_coverage::run(cmd, &mut out) {
                Ok(outcome) => outcome,
                Err(e) if crate::output::is_broken_pipe(&e) => return Err(e),
                Err(e) => {
                    eprintln!("prova: error: {}", crate::output::anyhow_chain(&e));
                    return Ok(ExitCode::from(crate::exit::INVALID));
                }
            };
            if let Some(attach) = outcome.attach {
                runtime()?.block_on(attach_coverage(attach))?;
            }
            Ok(ExitCode::from(outcome.exit_code))
        }
        Command::Run(args) => runtime()?.block_on(run::run(args)),
        Command::Jobs(args) => runtime()?.block_on(jobs::run(args)),
        Command::Status(args) => runtime()?.block_on(status::run(args)),
        Command::Events(args) => runtime()?.block_on(events::run(args)),
        Command::History(args) => runtime()?.block_on(history::run(args)),
        Command::Diff(args) => runtime()?.block_on(diff::run(args)),
        Command::Prune(args) => runtime()?.block_on(prune::run(args)),
        Command::Bench(args) => runtime()?.block_on(bench::run(args)),
        Command::Serve(args) => runtime()?.block_on(serve::run(args)),
        Command::Collector(args) => prova_k8s::run_collector(args),
        Command::E2e(cmd) => e2e::run(cmd),
        Command::Start(args) => runtime()?.block_on(client::start(args)),
        Command::List(args) => runtime()?.block_on(client::list(args)),
        Command::Stop(args) => runtime()?.block_on(client::action("stop", args)),
        Command::Pause(args) => runtime()?.block_on(client::action("pause", args)),
        Command::Resume(args) => runtime()?.block_on(client::action("resume", args)),
        Command::Retry(args) => runtime()?.block_on(client::retry(args)),
    }
}

/// Every plugin this binary has.
pub fn registry() -> prova_engine::Registry {
    let mut r = prova_engine::plugins::registry();
    prova_docker::register(&mut r);
    prova_k8s::register(&mut r);
    prova_ssh::register(&mut r);
    prova_coverage::reporter::register(&mut r);
    r
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// `prova coverage report --job ID`: the report becomes a `CoverageReport`
/// event of the job (of run `--run`, else of the job as a whole), so it
/// shows with the job's events.
async fn attach_coverage(attach: prova_coverage::Attach) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use prova_core::{NewEvent, event::names};

    let store = crate::store::open(&crate::cli::StoreArgs {
        db: std::env::var("PROVA_DB").ok(),
    })
    .await?;
    if store.get_job(attach.job_id).await?.is_none() {
        anyhow::bail!(
            "job {} is not in the store; nothing attached",
            attach.job_id
        );
    }
    let report: serde_json::Value = serde_json::from_str(&attach.report_json)
        .context("the coverage report to attach is not JSON")?;
    let mut event = NewEvent::job(attach.job_id, names::COVERAGE_REPORT, Some(report));
    event.run_id = attach.run_id.unwrap_or(0);
    store.append_events(&[event]).await?;
    eprintln!(
        "coverage report added to the events of job {}",
        attach.job_id
    );
    Ok(())
}
