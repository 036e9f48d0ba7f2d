//! Progress as text: the plain lines of a non-terminal, and the failure
//! and wait texts the live view shares with them.

use std::time::Duration;

use prova_core::NewEvent;
use prova_core::event::names;

use crate::suites;

pub fn attempt_text(ev: &NewEvent) -> String {
    match ev.test_attempt {
        Some(a) if a > 0 => format!(" (attempt {})", a + 1),
        _ => String::new(),
    }
}

fn payload_str(ev: &NewEvent, key: &str) -> String {
    ev.payload
        .as_ref()
        .and_then(|p| p.get(key))
        .and_then(|e| e.as_str())
        .unwrap_or("")
        .to_string()
}

/// A failure, as it happens: a target out of a step, a test in error.
pub fn failure_text(ev: &NewEvent) -> Option<String> {
    let test = ev.test_name.as_deref().unwrap_or("");
    let attempt = attempt_text(ev);
    match ev.name.as_str() {
        names::TARGET_ERR => Some(format!(
            "run {} · {test}{attempt}: target {} failed at {}: {}",
            ev.run_id,
            ev.target.as_ref().map(|t| t.id.as_str()).unwrap_or(""),
            ev.step_label.as_deref().unwrap_or("?"),
            payload_str(ev, "Error")
        )),
        names::TEST_ERROR => Some(format!(
            "run {} · {test}{attempt}: error: {}",
            ev.run_id,
            payload_str(ev, "Error")
        )),
        _ => None,
    }
}

/// The line printed for an event in plain mode, if it is worth one.
pub fn plain_text(ev: &NewEvent) -> Option<String> {
    if let Some(line) = failure_text(ev) {
        return Some(line);
    }
    let test = ev.test_name.as_deref().unwrap_or("");
    let attempt = attempt_text(ev);
    let target = ev.target.as_ref().map(|t| t.id.as_str()).unwrap_or("");
    let success = ev
        .payload
        .as_ref()
        .and_then(|p| p.get("Success"))
        .and_then(|s| s.as_bool())
        == Some(true);
    Some(match ev.name.as_str() {
        names::RUN_STARTED => format!("run {} started", ev.run_id),
        names::TEST_STARTED => format!("run {} · {test}{attempt}: started", ev.run_id),
        names::TEST_FINISHED => {
            let p = ev.payload.as_ref();
            let count = |k: &str| {
                p.and_then(|p| p.get(k))
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
            };
            format!(
                "run {} · {test}{attempt}: {} ({}/{} targets passed)",
                ev.run_id,
                if success { "passed" } else { "FAILED" },
                count("PassedTargets"),
                count("TotalTargets")
            )
        }
        names::WAITING => {
            let secs = ev
                .payload
                .as_ref()
                .and_then(|p| p.get("Seconds"))
                .and_then(|s| s.as_f64())
                .unwrap_or(0.0);
            let wait = crate::output::duration(Duration::from_secs_f64(secs.max(0.0)));
            let what = ev
                .payload
                .as_ref()
                .and_then(|p| p.get("For"))
                .and_then(|f| f.as_str());
            if what == Some("Targets") {
                let p = ev.payload.clone().unwrap_or_default();
                format!("run {} · {test}{attempt}: {}", ev.run_id, held_by(&p))
            } else if ev.test_name.is_some() {
                format!(
                    "run {} · {test}{attempt}: retrying in {wait} (RetryInterval)",
                    ev.run_id
                )
            } else {
                format!("waiting {wait} before run {} (RunInterval)", ev.run_id)
            }
        }
        "JobStateCancelling" => "cancelling…".to_string(),
        _ => {
            let counts = suites::summary(ev)?;
            format!(
                "run {} · {test}{attempt} · {} · {target}: {counts}",
                ev.run_id,
                ev.step_label.as_deref().unwrap_or("?"),
            )
        }
    })
}

/// `waiting for targets a, b held by job 2` from a `Waiting {For:
/// "Targets", HeldBy}` payload.
pub fn held_by(p: &serde_json::Value) -> String {
    let parts: Vec<String> = p
        .get("HeldBy")
        .and_then(|h| h.as_array())
        .into_iter()
        .flatten()
        .map(|h| {
            let targets: Vec<&str> = h
                .get("Targets")
                .and_then(|t| t.as_array())
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str())
                .collect();
            format!(
                "target{} {} held by job {}",
                if targets.len() == 1 { "" } else { "s" },
                targets.join(", "),
                h.get("Job").map(|j| j.to_string()).unwrap_or_default()
            )
        })
        .collect();
    format!("waiting for {}", parts.join("; "))
}
