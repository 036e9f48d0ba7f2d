//! The live view of a running job. On a terminal: a job line that names
//! what the job waits for (run interval, retry interval, cancelling) with
//! its elapsed time, and a bar per test (elapsed, targets through its
//! steps, an ETA once the work is known, per-step counts and the JUnit
//! counts of suites), each failure printed above them when it happens, in
//! colour unless `--color never`, NO_COLOR or a non-terminal. Otherwise plain
//! lines for the events that matter. Run and final reports are not printed
//! here: `prova run` prints them once, after what they judge.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use console::Style;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use prova_core::NewEvent;
use prova_core::event::names;
use prova_engine::emit::Observer;

use crate::suites::{self, Counts, FailedCases};

mod terminal;
mod text;

use terminal::NoEchoCtl;
pub use terminal::colour;
use text::{failure_text, held_by, plain_text};

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

struct Live {
    multi: MultiProgress,
    job: ProgressBar,
    no_echo_ctl: Option<NoEchoCtl>,
}

struct State {
    live: Option<Live>,
    tests: BTreeMap<(u32, String, u32), TestView>,
    /// Steps per test (test and cleanup), when the descriptor is known:
    /// the size of a test's work, for its bar and ETA.
    steps_per_test: HashMap<String, u64>,
}

/// The progress of one job, and the failing JUnit cases it saw.
#[derive(Clone)]
pub struct Progress {
    state: Arc<Mutex<State>>,
    cases: Arc<Mutex<FailedCases>>,
}

/// Plain [`Progress`] without the descriptor: for `resume` and `retry` in
/// the foreground.
pub fn observer(live: bool) -> Observer {
    Progress::new(live, HashMap::new()).observer()
}

impl Progress {
    /// `live` selects the redrawn terminal view; `steps_per_test` (test
    /// name -> its steps) sizes the bars.
    pub fn new(live: bool, steps_per_test: HashMap<String, u64>) -> Progress {
        let live = live.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            let job = multi.add(ProgressBar::new_spinner());
            job.set_style(style("{spinner:.cyan} [{elapsed_precise}] {msg}"));
            job.enable_steady_tick(Duration::from_millis(120));
            job.set_message("starting");
            Live {
                multi,
                job,
                no_echo_ctl: NoEchoCtl::new(),
            }
        });
        Progress {
            state: Arc::new(Mutex::new(State {
                live,
                tests: BTreeMap::new(),
                steps_per_test,
            })),
            cases: Arc::default(),
        }
    }

    /// The observer to hand to the engine (or to feed a server's events).
    pub fn observer(&self) -> Observer {
        let state = self.state.clone();
        let cases = self.cases.clone();
        Arc::new(move |ev: &NewEvent| {
            let failed = cases.lock().ok().and_then(|mut c| c.observe(ev));
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            if st.live.is_some() {
                if let Some(case) = &failed {
                    println_above(
                        &st,
                        &red().apply_to(format!("✘ case failed: {case}")).to_string(),
                    );
                }
                live_update(&mut st, ev);
            } else if let Some(case) = failed {
                eprintln!("case failed: {case}");
            } else if let Some(line) = plain_text(ev) {
                eprintln!("{line}");
            }
        })
    }

    /// The job is over (or was interrupted): bars still drawn are cleared,
    /// so what prints next starts on a clean screen.
    pub fn finish(&self) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = &st.live {
            for view in st.tests.values() {
                if let Some(bar) = &view.bar
                    && !bar.is_finished()
                {
                    bar.finish_and_clear();
                }
            }
            // Finished tests stay on screen, as the run's history.
            live.job.finish_and_clear();
        }
        drop(st);
        // Drawing is over: the terminal's own settings come back.
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(live) = &mut st.live {
            live.no_echo_ctl = None;
        }
    }

    /// A line for people: above the bars on a terminal, else on stderr.
    pub fn println(&self, line: &str) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.live.is_some() {
            println_above(&st, line);
        } else {
            eprintln!("{line}");
        }
    }

    /// The failing JUnit cases seen so far.
    pub fn take_failed_cases(&self) -> FailedCases {
        std::mem::take(&mut *self.cases.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("a valid template")
        .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ")
}

fn red() -> Style {
    Style::new().red().for_stderr()
}

fn green() -> Style {
    Style::new().green().for_stderr()
}

fn yellow() -> Style {
    Style::new().yellow().for_stderr()
}

/// `text` cut so that a row with `reserved` columns of its own stays
/// short of the terminal's width: a row that fills it leaves the cursor
/// waiting to wrap, and anything the terminal then echoes (`^C`) would
/// push the rows the bars redraw one line down.
fn fit(text: &str, reserved: usize) -> String {
    let width = console::Term::stderr().size().1 as usize;
    let room = width.saturating_sub(reserved + 1).max(10);
    console::truncate_str(text, room, "…").into_owned()
}

/// Columns of the job line before its message: `⠙ [00:00:00] `.
const JOB_PREFIX: usize = 14;
/// Columns of a test bar before its message: spinner, elapsed, bar, counts.
const BAR_PREFIX: usize = 14 + 13 + 12;

/// A line above the bars, cut to the terminal's width.
fn println_above(st: &State, line: &str) {
    if let Some(live) = &st.live {
        let _ = live.multi.println(fit(line, 0));
    }
}

fn live_update(st: &mut State, ev: &NewEvent) {
    job_line(st, ev);
    if let Some(line) = failure_text(ev) {
        println_above(st, &red().apply_to(format!("✘ {line}")).to_string());
    }
    let Some(test) = ev.test_name.clone() else {
        return;
    };
    if ev.name == names::WAITING {
        return; // on the job line
    }
    let key = (ev.run_id, test.clone(), ev.test_attempt.unwrap_or(0));
    let steps = st.steps_per_test.get(&test).copied();
    let Some(live) = &st.live else { return };
    let multi = live.multi.clone();
    let view = st.tests.entry(key).or_insert_with(|| {
        let bar = multi.add(ProgressBar::new(0));
        bar.set_style(style(
            "{spinner:.cyan} [{elapsed_precise}] {bar:12.cyan/blue} {pos}/{len} {msg}",
        ));
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
    let Some(bar) = view.bar.clone() else { return };
    // The work: each target through each step (those seen so far when the
    // descriptor is not known); done: targets that left a step.
    let steps_known = steps.unwrap_or(view.steps.len() as u64).max(1);
    let done: u64 = view.steps.iter().map(|(_, c)| c.out + c.err).sum();
    bar.set_length((view.acquired * steps_known).max(done));
    bar.set_position(done);
    let mut msg = test_message(ev, &test, view);
    if steps.is_some()
        && done > 0
        && done < bar.length().unwrap_or(0)
        && bar.eta() >= Duration::from_secs(1)
    {
        msg = format!("eta {} · {msg}", indicatif::HumanDuration(bar.eta()));
    }
    if ev.name == names::TEST_FINISHED {
        let ok = ev
            .payload
            .as_ref()
            .and_then(|p| p.get("Success"))
            .and_then(|s| s.as_bool())
            == Some(true);
        let mark = if ok {
            green().apply_to("✔")
        } else {
            red().apply_to("✘")
        };
        bar.set_style(style("{msg}"));
        let line = format!(
            "[{}] {}",
            crate::output::duration(bar.elapsed()),
            test_message(ev, &test, view)
        );
        bar.finish_with_message(format!("{mark} {}", fit(&line, 2)));
    } else {
        bar.set_message(fit(&msg, BAR_PREFIX));
    }
}

/// What the job line says: the job, its run, and what it waits for.
fn job_line(st: &State, ev: &NewEvent) {
    let Some(live) = &st.live else { return };
    let wait = |p: &serde_json::Value| {
        let secs = p.get("Seconds").and_then(|s| s.as_f64()).unwrap_or(0.0);
        crate::output::duration(Duration::from_secs_f64(secs.max(0.0)))
    };
    let msg = match ev.name.as_str() {
        "JobStateStarted" => format!("job {} · started", ev.job_id),
        names::RUN_STARTED => format!("job {} · run {}", ev.job_id, ev.run_id),
        names::WAITING => {
            let p = ev.payload.clone().unwrap_or_default();
            let what = p.get("For").and_then(|f| f.as_str()).unwrap_or("");
            let text = match (what, &ev.test_name) {
                ("Targets", Some(test)) => format!(
                    "job {} · run {} · {test}: {}",
                    ev.job_id,
                    ev.run_id,
                    held_by(&p)
                ),
                ("RunInterval", _) => format!(
                    "job {} · waiting {} before run {} (RunInterval)",
                    ev.job_id,
                    wait(&p),
                    ev.run_id
                ),
                (_, Some(test)) => format!(
                    "job {} · run {} · {test}: failed; retrying in {} (RetryInterval)",
                    ev.job_id,
                    ev.run_id,
                    wait(&p)
                ),
                _ => format!("job {} · waiting {}", ev.job_id, wait(&p)),
            };
            yellow().apply_to(text).to_string()
        }
        "JobStateCancelling" => yellow()
            .apply_to(format!(
                "job {} · cancelling: steps stop, cleanup runs, targets are released",
                ev.job_id
            ))
            .to_string(),
        "JobStatePaused" => format!("job {} · paused", ev.job_id),
        _ => return,
    };
    live.job.set_message(fit(&msg, JOB_PREFIX));
}

fn test_message(ev: &NewEvent, test: &str, view: &TestView) -> String {
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
    msg
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
