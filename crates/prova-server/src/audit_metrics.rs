//! The audit sink's Prometheus metrics (on `/metrics` beside the jobs'):
//! what arrived, what was stored, what was refused and why, and how full
//! the writer's queue is — what an operator watches to tune the API
//! server's webhook batching or `--audit-queue`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::audit::{IngestError, Ingested};

/// Why a batch was refused: one label value per kind of answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// `no_spec`, `bad_batch`, `queue_full`, `too_large`, `unreadable`,
    /// `store` or `writer_gone`.
    pub reason: &'static str,
}

/// The sink's counters; cheap to clone (shared handles).
#[derive(Clone, Debug, Default)]
pub struct AuditMetrics {
    /// Batches stored.
    pub batches: Counter,
    /// Events received in stored batches, `RequestReceived` ones included.
    pub events: Counter,
    /// Hits stored.
    pub stored: Counter,
    /// Events dropped as already stored (same `auditID`).
    pub duplicates: Counter,
    /// `RequestReceived` events left out.
    pub skipped: Counter,
    /// Batches refused, by reason.
    pub refused: Family<RefusedLabels, Counter>,
    /// Parsed batches waiting for the writer.
    pub queue_depth: Gauge,
}

impl AuditMetrics {
    /// Adds the sink's metrics to `registry` (names prefixed `audit_`).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("audit");
        r.register("batches", "Audit batches stored", self.batches.clone());
        r.register(
            "events",
            "Audit events received in stored batches",
            self.events.clone(),
        );
        r.register("hits_stored", "Audit hits stored", self.stored.clone());
        r.register(
            "duplicates",
            "Audit events dropped because their auditID was already stored",
            self.duplicates.clone(),
        );
        r.register(
            "skipped",
            "RequestReceived audit events left out",
            self.skipped.clone(),
        );
        r.register(
            "batches_refused",
            "Audit batches refused, by reason",
            self.refused.clone(),
        );
        r.register(
            "queue_depth",
            "Parsed audit batches waiting for the writer",
            self.queue_depth.clone(),
        );
    }

    /// Counts a stored batch.
    pub fn stored(&self, done: &Ingested) {
        self.batches.inc();
        self.events.inc_by(done.received);
        self.stored.inc_by(done.stored);
        self.duplicates.inc_by(done.duplicates);
        self.skipped.inc_by(done.skipped);
    }

    /// Counts a refused batch.
    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&RefusedLabels { reason }).inc();
    }
}

/// The `reason` label of a refusal.
pub fn reason(e: &IngestError) -> &'static str {
    match e {
        IngestError::NoSpec => "no_spec",
        IngestError::Batch(_) | IngestError::BadTime { .. } => "bad_batch",
        IngestError::QueueFull(_) => "queue_full",
        IngestError::WriterGone => "writer_gone",
        IngestError::Store(_) | IngestError::Parse(_) => "store",
    }
}
