//! Prometheus metrics at `/metrics`: running jobs, acquired targets, events
//! emitted, step durations.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use prova_core::NewEvent;
use prova_core::event::names;

type StepKey = (i64, u32, String, u32, String, String);

pub struct Metrics {
    registry: Registry,
    pub running_jobs: Gauge,
    pub acquired_targets: Gauge,
    pub events: Counter,
    pub step_seconds: Histogram,
    in_flight: Mutex<HashMap<StepKey, jiff::Timestamp>>,
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
        let step_seconds = Histogram::new(exponential_buckets(0.001, 4.0, 12));
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
            "step_duration_seconds",
            "Time a target spends in a step",
            step_seconds.clone(),
        );
        Metrics {
            registry,
            running_jobs,
            acquired_targets,
            events,
            step_seconds,
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// Called for every event a job emits.
    pub fn observe(&self, ev: &NewEvent) {
        self.events.inc();
        match ev.name.as_str() {
            names::TARGET_ACQUIRED => {
                self.acquired_targets.inc();
            }
            names::TARGET_RELEASED => {
                self.acquired_targets.dec();
            }
            names::TARGET_IN | names::TARGET_OUT | names::TARGET_ERR => {
                let key = (
                    ev.job_id,
                    ev.run_id,
                    ev.test_name.clone().unwrap_or_default(),
                    ev.test_attempt.unwrap_or(0),
                    ev.step_label.clone().unwrap_or_default(),
                    ev.target.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
                );
                let mut in_flight = self.in_flight.lock().expect("metrics lock");
                if ev.name == names::TARGET_IN {
                    in_flight.insert(key, ev.emit_time);
                } else if let Some(start) = in_flight.remove(&key) {
                    let secs = ev.emit_time.duration_since(start).as_secs_f64();
                    self.step_seconds.observe(secs.max(0.0));
                }
            }
            _ => {}
        }
    }

    /// Where other parts of the server (the audit sink) add their metrics.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode metrics");
        }
        out
    }
}
