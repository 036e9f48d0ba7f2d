//! `prova jobs`: the jobs in the store, newest first.

use std::process::ExitCode;

use prova_core::JobState;
use prova_store::JobFilter;

use crate::cli::JobsArgs;
use crate::output::outln;
use crate::{exit, output, store};

pub async fn run(args: JobsArgs) -> anyhow::Result<ExitCode> {
    let mut states = Vec::new();
    for s in &args.states {
        match JobState::parse(s) {
            Some(st) => states.push(st),
            None => {
                eprintln!(
                    "prova: unknown state {s:?}: expected one of {}",
                    JobState::ALL.map(|s| s.as_str()).join(", ")
                );
                return Ok(ExitCode::from(exit::INVALID));
            }
        }
    }
    let Some(store) = store::open_existing(&args.store).await? else {
        // Nothing recorded is an empty list, not an error; people are told.
        eprintln!("prova: {}", store::missing(&args.store));
        if args.json {
            outln!("[]")?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    let jobs = store
        .list_jobs(&JobFilter {
            states,
            tags: args.tags.clone(),
            requestor: None,
            name_contains: args.name.clone(),
            limit: Some(args.limit),
            before_id: None,
        })
        .await?;
    let verdicts = prova_engine::status::list_verdicts(&*store, &jobs).await?;
    if args.json {
        let v: Vec<_> = jobs
            .iter()
            .zip(&verdicts)
            .map(|(j, verdict)| {
                serde_json::json!({
                    "JobID": j.id,
                    "JobName": j.name,
                    "Tags": j.tags,
                    "Requestor": j.requestor,
                    "State": j.state,
                    "Verdict": verdict,
                    "CreatedAt": j.created_at,
                    "StateTime": j.state_time,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        outln!("no jobs (store: {})", store::url(&args.store))?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:>6}  {:<12} {:<9} {:<19}  {:<19}  {:<30} TAGS",
        "ID",
        "STATE",
        "VERDICT",
        "CREATED",
        "UPDATED",
        "NAME"
    )?;
    for (j, verdict) in jobs.iter().zip(&verdicts) {
        outln!(
            "{:>6}  {:<12} {:<9} {:<19}  {:<19}  {:<30} {}",
            j.id,
            j.state.map(|s| s.as_str()).unwrap_or("-"),
            verdict.as_str(),
            output::time(j.created_at),
            j.state_time.map(output::time).unwrap_or_else(|| "-".into()),
            j.name,
            j.tags.join(",")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
