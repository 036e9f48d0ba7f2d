//! `prova diff JOB1 JOB2`: what changed from job JOB1 (the base) to job
//! JOB2, test by test and JUnit case by case (the categories and the
//! duration thresholds are in `prova_results::history::compare` and
//! docs/history.md). Exit code 1 when something newly fails. From the
//! local store or, with `--server`, a server's (`GET
//! /api/v1/compare/{a}/{b}`, the same comparison).

use std::process::ExitCode;

use clap::Args;
use prova_results::history::{Change, Comparison, HistoryError, load_comparison};

use super::client::{Client, report};
use crate::cli::{ServerArgs, StoreArgs};
use crate::output::outln;
use crate::{exit, store};

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The base job (before).
    pub base: i64,
    /// The job compared with it (after).
    pub head: i64,
    /// Print the comparison as JSON (the API's `GET /api/v1/compare/{a}/{b}` body).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(args: DiffArgs) -> anyhow::Result<ExitCode> {
    let c: Comparison = match Client::new(&args.server)? {
        Some(client) => {
            let path = format!("/api/v1/compare/{}/{}", args.base, args.head);
            match client.send(client.req(reqwest::Method::GET, &path)).await {
                Ok(v) => serde_json::from_value(v)?,
                // An unknown job is a 404: exit 2, as here.
                Err(e) => return report(e),
            }
        }
        None => {
            let store = store::open(&args.store).await?;
            match load_comparison(store.as_ref(), args.base, args.head).await {
                Ok(c) => c,
                Err(e @ HistoryError::JobNotFound(_)) => {
                    eprintln!("prova: {e} (store: {})", store::url(&args.store));
                    return Ok(ExitCode::from(exit::INVALID));
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&c)?)?;
    } else {
        print(&c)?;
    }
    Ok(ExitCode::from(if c.has_new_failures() {
        exit::TESTS_FAILED
    } else {
        exit::SUCCESS
    }))
}

fn print(c: &Comparison) -> anyhow::Result<()> {
    outln!(
        "job {} ({:?}) -> job {} ({:?})",
        c.base.id,
        c.base.name,
        c.head.id,
        c.head.name
    )?;
    if c.base.name != c.head.name {
        outln!("note: the jobs have different names")?;
    }
    let sections: [(&str, &[Change]); 7] = [
        ("newly failing", &c.newly_failing),
        ("newly passing", &c.newly_passing),
        ("still failing", &c.still_failing),
        ("added", &c.added),
        ("removed", &c.removed),
        ("slower", &c.slower),
        ("faster", &c.faster),
    ];
    for (title, changes) in sections {
        if changes.is_empty() {
            continue;
        }
        outln!("{title} ({}):", changes.len())?;
        for ch in changes {
            outln!("  {}", line(ch, title == "slower" || title == "faster"))?;
        }
    }
    outln!(
        "unchanged: {} (durations change at ±{}s and ±{:.0}% together)",
        c.unchanged,
        c.duration_threshold.min_secs,
        c.duration_threshold.min_ratio * 100.0
    )?;
    Ok(())
}

/// A change in a line; `delta`: with the duration's change.
fn line(ch: &Change, delta: bool) -> String {
    let outcome = |x: &Option<prova_results::history::Execution>| {
        x.as_ref().map_or("absent", |x| x.outcome.as_str())
    };
    let mut s = format!(
        "{}: {} -> {}",
        ch.subject,
        outcome(&ch.base),
        outcome(&ch.head)
    );
    if let Some(d) = ch.duration_delta_secs.filter(|_| delta) {
        let sign = if d >= 0.0 { "+" } else { "-" };
        s.push_str(&format!(" ({sign}{})", super::history::secs(d.abs())));
    }
    let message = ch
        .head
        .as_ref()
        .filter(|h| h.outcome.is_failure())
        .and_then(|h| h.message.as_deref())
        .and_then(|m| m.lines().next());
    if let Some(m) = message {
        s.push_str(&format!(": {m}"));
    }
    s
}
