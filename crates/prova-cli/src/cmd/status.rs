//! `prova status ID`: the status tree, rebuilt from the job's events.

use std::process::ExitCode;

use prova_core::status::JobStatus;

use crate::cli::StatusArgs;
use crate::output::{out, outln};
use crate::{exit, output, store};

pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    if let Some(client) = super::client::Client::new(&args.server)? {
        return super::client::status(&client, args.id, args.json).await;
    }
    let Some(store) = store::open_existing(&args.store).await? else {
        eprintln!(
            "prova: job {} not found: {}",
            args.id,
            store::missing(&args.store)
        );
        return Ok(ExitCode::from(exit::INVALID));
    };
    // Only the events a status needs (not step output), and the job's name.
    let Some(status) = prova_engine::status::load_status(&*store, args.id).await? else {
        eprintln!(
            "prova: job {} not found in {}",
            args.id,
            store::url(&args.store)
        );
        return Ok(ExitCode::from(exit::INVALID));
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&status)?)?;
    } else {
        out!("{}", render_tree(&status))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The status as a readable tree.
pub fn render_tree(st: &JobStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let state = st.state.map(|s| s.as_str()).unwrap_or("Unknown");
    let _ = write!(
        out,
        "job {} {:?}: {state}, verdict {}",
        st.job_id, st.name, st.verdict
    );
    if !st.state_err_msg.is_empty() {
        let _ = write!(out, " ({})", st.state_err_msg);
    }
    out.push('\n');
    if let Some(start) = st.start_time {
        let _ = write!(out, "  started {}", output::time(start));
        if let Some(end) = st.end_time {
            let d = end.duration_since(start);
            let _ = write!(
                out,
                ", ended {} after {}",
                output::time(end),
                output::duration(std::time::Duration::try_from(d).unwrap_or_default())
            );
        }
        out.push('\n');
    }
    for run in &st.run_statuses {
        let _ = writeln!(out, "├─ run {}", run.run_id);
        for t in &run.test_statuses {
            let verdict = match t.passed {
                Some(true) => "passed",
                Some(false) => "FAILED",
                None => "running",
            };
            let attempt = if t.test_attempt > 0 {
                format!(" (attempt {})", t.test_attempt + 1)
            } else {
                String::new()
            };
            let _ = writeln!(out, "│  ├─ test {:?}{attempt}: {verdict}", t.test_name);
            if let Some(e) = &t.error {
                let _ = writeln!(out, "│  │    error: {e}");
            }
            for step in &t.step_statuses {
                let ok = step
                    .target_statuses
                    .iter()
                    .filter(|s| s.out_time.is_some() && s.error.is_none())
                    .count();
                let failed = step
                    .target_statuses
                    .iter()
                    .filter(|s| s.error.is_some())
                    .count();
                let running = step.target_statuses.len() - ok - failed;
                let _ = writeln!(
                    out,
                    "│  │  ├─ step {}: {ok} ok, {failed} failed{}",
                    step.step_label,
                    if running > 0 {
                        format!(", {running} running")
                    } else {
                        String::new()
                    }
                );
            }
            for target in &t.target_statuses {
                let how = match (&target.failed_step, &target.error) {
                    (Some(step), Some(e)) => format!("failed at {step}: {e}"),
                    _ if target.released_time.is_some() => "released".to_string(),
                    _ => "acquired".to_string(),
                };
                let _ = writeln!(out, "│  │  └─ target {}: {how}", target.target);
            }
        }
    }
    let reports = &st.job_report;
    for (i, rs) in reports.run_reports.iter().enumerate() {
        for r in rs {
            let _ = writeln!(
                out,
                "├─ run {} report {}: {}",
                i + 1,
                r.reporter_name,
                if r.success { "success" } else { "FAILURE" }
            );
        }
    }
    for r in &reports.final_reports {
        let _ = writeln!(
            out,
            "└─ final report {}: {}",
            r.reporter_name,
            if r.success { "success" } else { "FAILURE" }
        );
    }
    out
}
