//! The test's log: `STEP: …` lines (as ginkgo's `By`) and `INFO: …`
//! lines, each with its time; printed to stderr as they happen and kept
//! for the JUnit case's system-out.

use std::sync::{Arc, Mutex};

/// Most lines one test keeps; later lines are counted, not kept, so a
/// chatty loop cannot grow memory without bound.
const MAX_LINES: usize = 10_000;

#[derive(Clone, Default)]
pub struct StepLog {
    inner: Arc<Mutex<LogInner>>,
    echo: bool,
}

#[derive(Default)]
struct LogInner {
    lines: Vec<String>,
    dropped: usize,
    step: Option<String>,
}

impl StepLog {
    /// A log that also prints each line to stderr when `echo`.
    pub fn new(echo: bool) -> StepLog {
        StepLog {
            inner: Arc::default(),
            echo,
        }
    }

    fn push(&self, line: String) {
        if self.echo {
            eprintln!("{line}");
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.lines.len() < MAX_LINES {
            inner.lines.push(line);
        } else {
            inner.dropped += 1;
        }
    }

    fn stamp() -> String {
        jiff::Timestamp::now()
            .round(jiff::Unit::Millisecond)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// Starts a step: later failures name it.
    pub fn step(&self, what: &str) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).step = Some(what.to_string());
        self.push(format!("STEP: {what} @ {}", Self::stamp()));
    }

    pub fn info(&self, what: &str) {
        self.push(format!("{} INFO: {what}", Self::stamp()));
    }

    /// The step running now (the last one started).
    pub fn current_step(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .step
            .clone()
    }

    /// The whole log, one line each.
    pub fn text(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = inner.lines.join("\n");
        if inner.dropped > 0 {
            out.push_str(&format!("\n({} more lines not kept)", inner.dropped));
        }
        out.push('\n');
        out
    }
}
