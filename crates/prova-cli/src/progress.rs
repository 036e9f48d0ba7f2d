//! The live view of a running job: on a terminal a redrawn line per test
//! (targets in, out and failed per step); otherwise plain lines for the
//! events that matter (tests starting and ending, targets failing, reports).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use prova_core::NewEvent;
use prova_core::event::names;
use prova_core::status::{FINAL_REPORT, RUN_REPORT};
use prova_engine::emit::Observer;

use crate::suites::{self, Counts, FailedCases};

#[derive(Default)]
struct StepCounts {
    inn: u64,
    out: u64,
    err: u64,
    /// JUnit cases the step's suites reported, over its targets.
    cases: Option<Counts>,
}

#[derive(Default)]
struct TestView {
    /// step label -> counts, in first-seen order
    steps: Vec<(String, StepCounts)>,
    acquired: u64,
    bar: Option<ProgressBar>,
}

struct State {
    multi: Option<MultiProgress>,
    tests: BTreeMap<(u32, String, u32), TestView>,
}

/// Builds the observer. `live` selects the redrawn terminal view.
pub fn observer(live: bool) -> Observer {
    observer_with_cases(live, Arc::default())
}

/// [`observer`] that also collects the failing JUnit cases of the job's
/// suites into `cases`, for the list printed after the run.
pub fn observer_with_cases(live: bool, cases: Arc<Mutex<FailedCases>>) -> Observer {
    let multi =
        live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
    let state = Arc::new(Mutex::new(State {
        multi,
        tests: BTreeMap::new(),
    }));
    Arc::new(move |ev: &NewEvent| {
        let failed = cases.lock().ok().and_then(|mut c| c.observe(ev));
        let mut st = state.lock().expect("progress lock");
        if st.multi.is_some() {
            if let (Some(case), Some(m)) = (&failed, &st.multi) {
                let _ = m.println(format!("case failed: {case}"));
            }
            live_update(&mut st, ev);
        } else if let Some(case) = failed {
            eprintln!("case failed: {case}");
        } else {
            plain_line(ev);
        }
    })
}

fn live_update(st: &mut State, ev: &NewEvent) {
    let Some(test) = ev.test_name.clone() else {
        if (ev.name == RUN_REPORT || ev.name == FINAL_REPORT || ev.name.starts_with("JobState"))
            && let Some(m) = &st.multi
            && let Some(line) = plain_text(ev)
        {
            let _ = m.println(line);
        }
        return;
    };
    let key = (ev.run_id, test.clone(), ev.test_attempt.unwrap_or(0));
    let multi = st.multi.clone().expect("live");
    let view = st.tests.entry(key).or_insert_with(|| {
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        TestView {
            bar: Some(bar),
            ..Default::default()
        }
    });
    match ev.name.as_str() {
        names::TARGET_ACQUIRED => view.acquired += 1,
        names::TARGET_IN | names::TARGET_OUT | names::TARGET_ERR => {
            let c = step_counts(view, ev);
            match ev.name.as_str() {
                names::TARGET_IN => c.inn += 1,
                names::TARGET_OUT => c.out += 1,
                _ => c.err += 1,
            }
        }
        _ => {
            if let Some(counts) = suites::summary(ev) {
                step_counts(view, ev)
                    .cases
                    .get_or_insert_with(Counts::default)
                    .add(counts);
            }
        }
    }
    let attempt = ev.test_attempt.unwrap_or(0);
    let mut msg = format!(
        "run {} · {test}{} · {} targets",
        ev.run_id,
        if attempt > 0 {
            format!(" (attempt {})", attempt + 1)
        } else {
            String::new()
        },
        view.acquired
    );
    for (label, c) in &view.steps {
        msg.push_str(&format!(
            " │ {label}: {} in, {} ok, {} failed",
            c.inn, c.out, c.err
        ));
        if let Some(cases) = c.cases {
            msg.push_str(&format!(" ({cases})"));
        }
    }
    if let Some(bar) = &view.bar {
        if ev.name == names::TEST_FINISHED {
            let ok = ev
                .payload
                .as_ref()
                .and_then(|p| p.get("Success"))
                .and_then(|s| s.as_bool())
                == Some(true);
            bar.finish_with_message(format!("{} {msg}", if ok { "✔" } else { "✘" }));
        } else {
            bar.set_message(msg);
        }
    }
}

/// The counts of the step `ev` is about, added in first-seen order.
fn step_counts<'a>(view: &'a mut TestView, ev: &NewEvent) -> &'a mut StepCounts {
    let label = ev.step_label.clone().unwrap_or_default();
    let idx = match view.steps.iter().position(|(l, _)| *l == label) {
        Some(i) => i,
        None => {
            view.steps.push((label, StepCounts::default()));
            view.steps.len() - 1
        }
    };
    &mut view.steps[idx].1
}

fn plain_line(ev: &NewEvent) {
    if let Some(line) = plain_text(ev) {
        eprintln!("{line}");
    }
}

/// The line printed for an event in plain mode, if it is worth one.
fn plain_text(ev: &NewEvent) -> Option<String> {
    let test = ev.test_name.as_deref().unwrap_or("");
    let attempt = ev
        .test_attempt
        .map(|a| {
            if a > 0 {
                format!(" (attempt {})", a + 1)
            } else {
                String::new()
            }
        })
        .unwrap_or_default();
    let target = ev.target.as_ref().map(|t| t.id.as_str()).unwrap_or("");
    let err = || {
        ev.payload
            .as_ref()
            .and_then(|p| p.get("Error"))
            .and_then(|e| e.as_str())
            .unwrap_or("")
            .to_string()
    };
    let msg = || {
        ev.payload
            .as_ref()
            .and_then(|p| p.get("Data"))
            .map(|d| {
                d.get("Message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| d.to_string())
            })
            .unwrap_or_default()
    };
    let success = || {
        ev.payload
            .as_ref()
            .and_then(|p| p.get("Success"))
            .and_then(|s| s.as_bool())
            == Some(true)
    };
    Some(match ev.name.as_str() {
        names::RUN_STARTED => format!("run {} started", ev.run_id),
        names::TEST_STARTED => format!("run {} · {test}{attempt}: started", ev.run_id),
        names::TARGET_ERR => format!(
            "run {} · {test}{attempt}: target {target} failed at {}: {}",
            ev.run_id,
            ev.step_label.as_deref().unwrap_or("?"),
            err()
        ),
        names::TEST_ERROR => format!("run {} · {test}{attempt}: error: {}", ev.run_id, err()),
        names::TEST_FINISHED => {
            let p = ev.payload.as_ref();
            let ok = p
                .and_then(|p| p.get("PassedTargets"))
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            let total = p
                .and_then(|p| p.get("TotalTargets"))
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            format!(
                "run {} · {test}{attempt}: {} ({ok}/{total} targets passed)",
                ev.run_id,
                if success() { "passed" } else { "FAILED" }
            )
        }
        RUN_REPORT | FINAL_REPORT => {
            let who = ev
                .payload
                .as_ref()
                .and_then(|p| p.get("ReporterName"))
                .and_then(|n| n.as_str())
                .unwrap_or("?");
            let when = if ev.name == RUN_REPORT {
                format!("run {} report", ev.run_id)
            } else {
                "final report".to_string()
            };
            format!(
                "{when} · {who}: {} {}",
                if success() { "success" } else { "FAILURE" },
                msg()
            )
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
