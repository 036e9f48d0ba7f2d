//! `prova events ID`: a job's events with filters.

use std::io::Write;
use std::process::ExitCode;

use prova_core::EventQuery;

use crate::cli::EventsArgs;
use crate::{exit, output, store};

pub async fn run(args: EventsArgs) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::client::Client::new(&args.server) {
        return super::client::events(&client, &args).await;
    }
    if args.follow {
        eprintln!("prova: --follow needs --server (or PROVA_SERVER)");
        return Ok(ExitCode::from(exit::INVALID));
    }
    let store = store::open(&args.store).await?;
    if store.get_job(args.id).await?.is_none() {
        eprintln!(
            "prova: job {} not found in {}",
            args.id,
            store::url(&args.store)
        );
        return Ok(ExitCode::from(exit::INVALID));
    }
    let q = EventQuery {
        job_id: Some(args.id),
        run_id: args.run,
        test_name: args.test.clone(),
        test_attempt: args.attempt,
        step_label: args.step.clone(),
        target_id: args.target.clone(),
        names: args.names.clone(),
        ..Default::default()
    };
    let events = store.query_events(&q).await?;
    let mut out = std::io::stdout().lock();
    for ev in &events {
        if args.json {
            serde_json::to_writer(&mut out, ev)?;
            writeln!(out)?;
        } else {
            writeln!(out, "{}", line(ev))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One event as a line for people.
pub fn line(ev: &prova_core::Event) -> String {
    let mut where_ = format!("run {}", ev.run_id);
    if let Some(t) = &ev.test_name {
        where_.push_str(&format!(" · {t}"));
        if let Some(a) = ev.test_attempt.filter(|a| *a > 0) {
            where_.push_str(&format!(" (attempt {})", a + 1));
        }
    }
    if let Some(s) = &ev.step_label {
        where_.push_str(&format!(" · {s}"));
    }
    if let Some(t) = &ev.target {
        where_.push_str(&format!(" · {}", t.id));
    }
    let payload = ev
        .payload
        .as_ref()
        .map(|p| format!(" {p}"))
        .unwrap_or_default();
    format!(
        "{:>7} {} {:<18} {where_}{payload}",
        ev.seq,
        output::time(ev.emit_time),
        ev.name
    )
}
