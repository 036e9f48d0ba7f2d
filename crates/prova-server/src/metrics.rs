//! Prometheus metrics at `/metrics`: running jobs, jobs ended by verdict,
//! acquired targets, events emitted and written, the event writer's queue,
//! step durations by step.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use prova_core::event::names;
use prova_core::status::Verdict;
use prova_core::{EventKind, JobId, JobState, NewEvent};

/// (job, run, test, attempt, step, target): one target in one step.
type StepKey = (JobId, u32, String, u32, String, String);
/// (job, run, test, attempt, target): one target held by one test attempt.
type HeldKey = (JobId, u32, String, u32, String);

/// Step labels are the descriptor's: distinct ones beyond this share the
/// label `_other`, so a stream of generated labels cannot grow the
/// exposition (and the server's memory) without bound.
pub const MAX_STEP_LABELS: usize = 200;
/// Targets in steps tracked at once for their durations; beyond this new
/// ones are not timed (a job cancelled mid-step leaves entries until it
/// ends, when they are dropped).
pub const MAX_IN_FLIGHT: usize = 100_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabel {
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabel {
    step: String,
}

pub struct Metrics {
    registry: Registry,
    pub running_jobs: Gauge,
    pub acquired_targets: Gauge,
    pub events: Counter,
    jobs_ended: Family<VerdictLabel, Counter>,
    step_seconds: Family<StepLabel, Histogram>,
    events_written: Counter,
    events_lost: Counter,
    writer_queue: Gauge,
    tracked: Mutex<Tracked>,
}

/// What the gauges and histograms are computed from.
#[derive(Default)]
struct Tracked {
    in_flight: HashMap<StepKey, jiff::Timestamp>,
    /// Targets acquired and not yet released: the acquired-targets gauge is
    /// its size, so a release this server never saw acquired (a job resumed
    /// after a restart) cannot drive it below zero.
    held: HashSet<HeldKey>,
    step_labels: HashSet<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("prova");
        let running_jobs = Gauge::default();
        let acquired_targets = Gauge::default();
        let events = Counter::default();
        let jobs_ended = Family::<VerdictLabel, Counter>::default();
        let step_seconds = Family::<StepLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 12))
        });
        let events_written = Counter::default();
        let events_lost = Counter::default();
        let writer_queue = Gauge::default();
        registry.register(
            "running_jobs",
            "Jobs this instance is running",
            running_jobs.clone(),
        );
        registry.register(
            "acquired_targets",
            "Targets held by running tests",
            acquired_targets.clone(),
        );
        registry.register("events", "Events emitted by jobs", events.clone());
        registry.register(
            "jobs_ended",
            "Jobs that ended on this instance, by verdict (passed, failed, error, cancelled)",
            jobs_ended.clone(),
        );
        registry.register(
            "step_duration_seconds",
            "Time a target spends in a step, by step label",
            step_seconds.clone(),
        );
        registry.register(
            "events_written",
            "Events the event writers stored",
            events_written.clone(),
        );
        registry.register(
            "events_lost",
            "Events the event writers could not store after retries",
            events_lost.clone(),
        );
        registry.register(
            "event_writer_queue",
            "Events emitted and not yet stored (the writers' queue depth)",
            writer_queue.clone(),
        );
        Metrics {
            registry,
            running_jobs,
            acquired_targets,
            events,
            jobs_ended,
            step_seconds,
            events_written,
            events_lost,
            writer_queue,
            tracked: Mutex::new(Tracked::default()),
        }
    }

    /// A job ended (or its task died): counted under its verdict.
    pub fn job_ended(&self, verdict: Verdict) {
        self.jobs_ended
            .get_or_create(&VerdictLabel {
                verdict: verdict.as_str().to_string(),
            })
            .inc();
    }

    /// Called for every event a job emits.
    pub fn observe(&self, ev: &NewEvent) {
        self.events.inc();
        let mut t = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        match ev.name.as_str() {
            names::TARGET_ACQUIRED | names::TARGET_RELEASED => {
                let Some(target) = &ev.target else { return };
                let key = (
                    ev.job_id,
                    ev.run_id,
                    ev.test_name.clone().unwrap_or_default(),
                    ev.test_attempt.unwrap_or(0),
                    target.id.clone(),
                );
                if ev.name == names::TARGET_ACQUIRED {
                    t.held.insert(key);
                } else {
                    t.held.remove(&key);
                }
            }
            names::TARGET_IN | names::TARGET_OUT | names::TARGET_ERR => {
                let label = ev.step_label.clone().unwrap_or_default();
                let key = (
                    ev.job_id,
                    ev.run_id,
                    ev.test_name.clone().unwrap_or_default(),
                    ev.test_attempt.unwrap_or(0),
                    label.clone(),
                    ev.target.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
                );
                if ev.name == names::TARGET_IN {
                    if t.in_flight.len() < MAX_IN_FLIGHT {
                        t.in_flight.insert(key, ev.emit_time);
                    }
                } else if let Some(start) = t.in_flight.remove(&key) {
                    let secs = ev.emit_time.duration_since(start).as_secs_f64();
                    let step = bounded_label(&mut t.step_labels, label);
                    self.step_seconds
                        .get_or_create(&StepLabel { step })
                        .observe(secs.max(0.0));
                }
            }
            name if ev.kind == EventKind::Job
                && JobState::parse(name).is_some_and(|s| s.is_final() || s == JobState::Paused) =>
            {
                // A job that ended or paused holds nothing any more here,
                // whatever events it did not get to send.
                t.held.retain(|k| k.0 != ev.job_id);
                t.in_flight.retain(|k, _| k.0 != ev.job_id);
            }
            _ => {}
        }
        self.acquired_targets.set(t.held.len() as i64);
    }

    /// Where other parts of the server (the audit sink) add their metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let w = prova_engine::emit::writer_counters();
        // Counters only go up: add what was written since the last scrape
        // (under the lock, so two scrapes at once do not both add it).
        let _one_scrape = self.tracked.lock().unwrap_or_else(|e| e.into_inner());
        let add = |c: &Counter, now: u64| {
            let seen = c.get();
            if now > seen {
                c.inc_by(now - seen);
            }
        };
        add(&self.events_written, w.written);
        add(&self.events_lost, w.lost);
        self.writer_queue.set(w.queued as i64);
        drop(_one_scrape);
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}

/// `label`, or `_other` once [`MAX_STEP_LABELS`] distinct ones were seen.
fn bounded_label(seen: &mut HashSet<String>, label: String) -> String {
    if seen.contains(&label) {
        return label;
    }
    if seen.len() >= MAX_STEP_LABELS {
        return "_other".to_string();
    }
    seen.insert(label.clone());
    label
}

#[cfg(test)]
mod tests {
    use super::*;
    use prova_core::Target;

    fn target_event(name: &str, job: JobId, target: &str) -> NewEvent {
        let mut ev = NewEvent::job(job, name, None);
        ev.kind = EventKind::Test;
        ev.run_id = 1;
        ev.test_name = Some("t".into());
        ev.test_attempt = Some(0);
        ev.step_label = Some("s".into());
        ev.target = Some(Target {
            id: target.into(),
            ..Default::default()
        });
        ev
    }

    #[test]
    fn a_release_never_seen_acquired_leaves_the_gauge_at_zero() {
        let m = Metrics::new();
        // A job resumed after a restart releases what an earlier process
        // acquired.
        m.observe(&target_event(names::TARGET_RELEASED, 1, "a"));
        assert_eq!(m.acquired_targets.get(), 0);
        m.observe(&target_event(names::TARGET_ACQUIRED, 2, "a"));
        m.observe(&target_event(names::TARGET_ACQUIRED, 2, "b"));
        assert_eq!(m.acquired_targets.get(), 2);
        m.observe(&target_event(names::TARGET_RELEASED, 2, "a"));
        assert_eq!(m.acquired_targets.get(), 1);
        // The job ends without releasing b: nothing stays held.
        m.observe(&NewEvent::job(2, JobState::Failed.event_name(), None));
        assert_eq!(m.acquired_targets.get(), 0);
    }

    #[test]
    fn step_durations_are_labelled_by_step_and_bounded() {
        let m = Metrics::new();
        m.observe(&target_event(names::TARGET_IN, 1, "a"));
        m.observe(&target_event(names::TARGET_OUT, 1, "a"));
        let text = m.render();
        assert!(
            text.contains("prova_step_duration_seconds_count{step=\"s\"} 1"),
            "{text}"
        );
        let mut seen = HashSet::new();
        for i in 0..MAX_STEP_LABELS {
            assert_eq!(bounded_label(&mut seen, format!("l{i}")), format!("l{i}"));
        }
        assert_eq!(bounded_label(&mut seen, "new".into()), "_other");
        assert_eq!(bounded_label(&mut seen, "l0".into()), "l0");
    }

    #[test]
    fn jobs_are_counted_by_verdict() {
        let m = Metrics::new();
        m.job_ended(Verdict::Passed);
        m.job_ended(Verdict::Passed);
        m.job_ended(Verdict::Error);
        let text = m.render();
        assert!(
            text.contains("prova_jobs_ended_total{verdict=\"passed\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("prova_jobs_ended_total{verdict=\"error\"} 1"),
            "{text}"
        );
        assert!(text.contains("prova_event_writer_queue "), "{text}");
        assert!(text.contains("prova_events_written_total "), "{text}");
    }
}
