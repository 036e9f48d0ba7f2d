//! `prova events ID`: a job's events with filters.

use std::io::Write;
use std::process::ExitCode;

use prova_core::event::names;
use prova_core::status::{FINAL_REPORT, RUN_REPORT};
use prova_core::{EventQuery, JobState};
use prova_server::manager::names as server_names;

use crate::cli::EventsArgs;
use crate::{exit, output, store};

pub async fn run(mut args: EventsArgs) -> anyhow::Result<ExitCode> {
    args.names = canonical_names(&args.names);
    if let Some(client) = super::client::Client::new(&args.server)? {
        return super::client::events(&client, &args).await;
    }
    if args.follow {
        eprintln!("prova: --follow needs --server (or PROVA_SERVER)");
        return Ok(ExitCode::from(exit::INVALID));
    }
    let Some(store) = store::open_existing(&args.store).await? else {
        eprintln!(
            "prova: job {} not found: {}",
            args.id,
            store::missing(&args.store)
        );
        return Ok(ExitCode::from(exit::INVALID));
    };
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
    if events.is_empty()
        && filtered(&args)
        && let Some(status) = prova_engine::status::load_status(&*store, args.id).await?
    {
        eprintln!("prova: {}", no_match(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether any filter narrows the events.
pub fn filtered(args: &EventsArgs) -> bool {
    args.run.is_some()
        || args.test.is_some()
        || args.attempt.is_some()
        || args.step.is_some()
        || args.target.is_some()
        || !args.names.is_empty()
}

/// Said when filters match no event: what the job has, so the next try
/// can name it (a test name is matched exactly).
pub fn no_match(st: &prova_core::status::JobStatus) -> String {
    let mut tests: Vec<String> = Vec::new();
    let mut steps: Vec<String> = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    let push = |list: &mut Vec<String>, v: String| {
        if !list.contains(&v) {
            list.push(v);
        }
    };
    for run in &st.run_statuses {
        for t in &run.test_statuses {
            push(&mut tests, format!("{:?}", t.test_name));
            for s in &t.step_statuses {
                push(&mut steps, s.step_label.clone());
            }
            for target in &t.target_statuses {
                push(&mut targets, target.target.id.clone());
            }
        }
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "no events match; tests in job {}: {}; steps: {}; targets: {}; runs: {}",
        st.job_id,
        list(&tests),
        list(&steps),
        list(&targets),
        st.run_statuses.len()
    )
}

/// `--name targeterr` is `TargetErr`: event names are matched
/// case-insensitively, as descriptor keys are, against every name the
/// engine and this binary's plugins emit; an unknown name stays as written.
pub fn canonical_names(asked: &[String]) -> Vec<String> {
    let mut known: Vec<String> = [
        names::RUN_STARTED,
        names::RUN_FINISHED,
        names::TEST_STARTED,
        names::TEST_FINISHED,
        names::TEST_ERROR,
        names::TARGET_ACQUIRED,
        names::TARGET_ACQUIRE_FAILED,
        names::TARGET_RELEASED,
        names::TARGET_IN,
        names::TARGET_OUT,
        names::TARGET_ERR,
        names::COVERAGE_REPORT,
        names::WAITING,
        server_names::CANCEL_REQUESTED,
        server_names::PAUSE_REQUESTED,
        server_names::RESUME_REQUESTED,
        server_names::TAKEN_OVER,
        RUN_REPORT,
        FINAL_REPORT,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    known.extend(JobState::ALL.iter().map(|s| s.event_name().to_string()));
    let registry = super::registry();
    for (_, step) in registry.steps() {
        known.extend(step.events().iter().map(|e| e.name.to_string()));
    }
    asked
        .iter()
        .map(|a| {
            known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(a))
                .cloned()
                .unwrap_or_else(|| a.clone())
        })
        .collect()
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
