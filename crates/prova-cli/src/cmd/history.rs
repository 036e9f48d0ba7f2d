//! `prova history TEST`: a test's or a JUnit case's outcomes over the
//! newest jobs of a name, from the local store or, with `--server`, a
//! server's (`GET /api/v1/history`, the same answer); the rules are in
//! `prova_results::history` and docs/history.md.

use std::process::ExitCode;

use clap::Args;
use prova_results::history::{
    DEFAULT_LAST, FlakyReason, History, HistoryAnswer, HistoryError, HistoryRequest, Outcome,
    load_history,
};

use super::client::{Client, report};
use crate::cli::{ServerArgs, StoreArgs};
use crate::output::outln;
use crate::{exit, store};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// A ConTest test name, a JUnit case name or classname.name, or part of
    /// one (case-sensitive; exact matches win).
    pub test: String,
    /// Only jobs of this name (default: every name the test turns up in
    /// among the newest --last jobs).
    #[arg(long, value_name = "NAME")]
    pub job_name: Option<String>,
    /// How many of the newest jobs of the name to cover.
    #[arg(long, default_value_t = DEFAULT_LAST, value_name = "N")]
    pub last: u32,
    /// Print the answer as JSON (the API's `GET /api/v1/history` body).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let answer = match Client::new(&args.server)? {
        Some(client) => {
            let mut q = vec![("test", args.test.clone()), ("last", args.last.to_string())];
            if let Some(name) = &args.job_name {
                q.push(("job_name", name.clone()));
            }
            let r = client
                .req(reqwest::Method::GET, "/api/v1/history")
                .query(&q);
            match client.send(r).await {
                Ok(v) => serde_json::from_value(v)?,
                Err(e) => return report(e),
            }
        }
        None => match local(&args).await? {
            Ok(a) => a,
            Err(code) => return Ok(code),
        },
    };
    print(&answer, &args)
}

/// Where the answer came from, for "nothing matched" messages.
fn source(args: &HistoryArgs) -> String {
    match &args.server.server {
        Some(s) => format!("server: {s}"),
        None => store::url(&args.store),
    }
}

/// The answer from the local store, or the exit code of a bad request.
async fn local(args: &HistoryArgs) -> anyhow::Result<Result<HistoryAnswer, ExitCode>> {
    let store = store::open(&args.store).await?;
    let req = HistoryRequest::new(args.test.clone(), args.job_name.clone(), args.last);
    match load_history(store.as_ref(), &req).await {
        Ok(a) => Ok(Ok(a)),
        Err(
            e @ (HistoryError::EmptyText | HistoryError::TextTooLong(_) | HistoryError::BadLast(_)),
        ) => {
            eprintln!("prova: {e}");
            Ok(Err(ExitCode::from(exit::INVALID)))
        }
        Err(e) => Err(e.into()),
    }
}

fn print(answer: &HistoryAnswer, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    if args.json {
        outln!("{}", serde_json::to_string_pretty(answer)?)?;
    } else if answer.histories.is_empty() {
        nothing_matched(answer, args)?;
    } else {
        for (i, h) in answer.histories.iter().enumerate() {
            if i > 0 {
                outln!()?;
            }
            print_history(h)?;
        }
        if answer.truncated {
            outln!(
                "\n(more matched: showing the first {}; give a longer name)",
                answer.histories.len()
            )?;
        }
    }
    Ok(ExitCode::from(if answer.histories.is_empty() {
        exit::NO_MATCH
    } else {
        exit::SUCCESS
    }))
}

fn nothing_matched(answer: &HistoryAnswer, args: &HistoryArgs) -> anyhow::Result<()> {
    let scope = match &args.job_name {
        Some(n) if answer.jobs_searched == 0 => {
            outln!("no jobs named {n:?} in the store ({})", source(args))?;
            return Ok(());
        }
        Some(n) => format!("the newest {} jobs named {n:?}", answer.jobs_searched),
        None => format!("the newest {} jobs", args.last),
    };
    outln!(
        "no test or JUnit case named {:?} (or containing it) in {scope}",
        answer.text
    )?;
    if answer.known.is_empty() {
        outln!("those jobs have no tests or cases yet")?;
    } else {
        outln!("tests and cases of the newest jobs:")?;
        for k in &answer.known {
            outln!("  {k}")?;
        }
    }
    Ok(())
}

/// One letter per job, newest first: P passed, F failed, E error,
/// S skipped, I incomplete, - absent.
fn strip(h: &History) -> String {
    h.entries
        .iter()
        .map(|e| match e.execution.outcome {
            Outcome::Passed if e.execution.passed_on_retry => 'p',
            Outcome::Passed => 'P',
            Outcome::Failed => 'F',
            Outcome::Error => 'E',
            Outcome::Skipped => 'S',
            Outcome::Incomplete => 'I',
            Outcome::Absent => '-',
        })
        .collect()
}

fn ids(jobs: &[i64]) -> String {
    jobs.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_history(h: &History) -> anyhow::Result<()> {
    let s = &h.summary;
    outln!(
        "{} in jobs named {:?}: ran in {} of the newest {}",
        h.subject,
        h.job_name,
        s.executions,
        s.jobs
    )?;
    outln!(
        "  newest first: {}   (P pass, p pass on retry, F fail, E error, S skipped, I incomplete, - absent)",
        strip(h)
    )?;
    let rate = s
        .pass_rate
        .map(|r| format!("{:.1}%", r * 100.0))
        .unwrap_or_else(|| "-".into());
    outln!(
        "  pass rate {rate} ({} passed, {} failed, {} error, {} skipped)",
        s.passed,
        s.failed,
        s.errors,
        s.skipped
    )?;
    if s.flaky {
        for r in &s.flaky_reasons {
            match r {
                FlakyReason::PassedOnRetry { jobs } => {
                    outln!("  flaky: passed on retry in job {}", ids(jobs))?
                }
                FlakyReason::MixedOnSameInputs {
                    inputs,
                    switches,
                    jobs,
                } => outln!(
                    "  flaky: {switches} switches between pass and fail on the same inputs ({inputs}) over jobs {}",
                    ids(jobs)
                )?,
            }
        }
    } else {
        outln!("  flaky: no")?;
    }
    match s.first_failing_job {
        Some(j) => outln!(
            "  failing since job {j} ({} job{})",
            s.failing_streak,
            if s.failing_streak == 1 { "" } else { "s" }
        )?,
        None => outln!("  not failing")?,
    }
    if let Some(m) = s.median_passed_secs {
        outln!("  median passed duration {}", secs(m))?;
    }
    outln!(
        "  {:>6}  {:<10} {:<10} {:>8} {:>9}  {:<16}  MESSAGE",
        "JOB",
        "STATE",
        "OUTCOME",
        "ATTEMPTS",
        "DURATION",
        "INPUTS"
    )?;
    for e in &h.entries {
        let x = &e.execution;
        let message = x
            .message
            .as_deref()
            .map(|m| m.lines().next().unwrap_or_default())
            .unwrap_or("");
        outln!(
            "  {:>6}  {:<10} {:<10} {:>8} {:>9}  {:<16}  {}",
            e.job_id,
            e.job_state.as_deref().unwrap_or("-"),
            x.outcome.as_str(),
            x.attempts,
            x.duration_secs.map(secs).unwrap_or_else(|| "-".into()),
            x.inputs.as_deref().unwrap_or("-"),
            message
        )?;
    }
    Ok(())
}

pub fn secs(s: f64) -> String {
    crate::output::duration(std::time::Duration::from_secs_f64(s.max(0.0)))
}
