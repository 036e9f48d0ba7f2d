//! The live audit sink: kube-apiserver's audit webhook posts batches of
//! events (`EventList`s) to `POST /api/v1/audit/events` ([`crate::audit_api`]);
//! each event becomes a hit in the store ([`prova_store::AuditHitStore`]),
//! mapped to its endpoint by the coverage crate's rules.
//!
//! Memory stays bounded under a burst:
//! - a body is read only up to [`AuditConfig::max_body`] (413 beyond);
//! - at most [`AuditSink::parsers`] bodies are read and parsed at once
//!   (parsing runs on the blocking pool, off the request threads);
//! - parsed batches wait for the one writer in a queue of
//!   [`AuditConfig::queue`] batches; when it is full the request is refused
//!   with 429 and `Retry-After`, and the API server sends the batch again.
//!
//! A request is answered once its batch is committed, so a batch that
//! could not be stored is a 5xx that the API server retries, never a
//! silent drop. Retried batches and second stages of a request are
//! dropped by the store's unique `audit_id`.

use std::sync::Arc;
use std::time::Duration;

use prova_coverage::live::batch::{BatchError, map_batch};
use prova_coverage::report::MapContext;
use prova_coverage::spec::Spec;
use prova_store::{NewAuditHit, Store};

use crate::audit_metrics::AuditMetrics;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// How the sink runs (`prova serve --coverage-spec ... --audit-...`).
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The cluster's OpenAPI v2 document, which maps events to endpoints;
    /// without it the sink answers 503.
    pub spec: Option<Arc<Spec>>,
    /// Also store each event's JSON (`--audit-keep-raw`).
    pub keep_raw: bool,
    /// Parsed batches that may wait for the writer; one more is refused
    /// with 429.
    pub queue: usize,
    /// Largest batch body, in bytes.
    pub max_body: usize,
    /// What a 429 asks the sender to wait.
    pub retry_after: Duration,
}

/// Default [`AuditConfig::max_body`]: 400 events (the API server's default
/// batch) of up to ~80 KB each, enough for `RequestResponse` level.
pub const DEFAULT_MAX_BODY: usize = 32 << 20;
/// Default [`AuditConfig::queue`].
pub const DEFAULT_QUEUE: usize = 64;

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            spec: None,
            keep_raw: false,
            queue: DEFAULT_QUEUE,
            max_body: DEFAULT_MAX_BODY,
            retry_after: Duration::from_secs(1),
        }
    }
}

/// Why a batch was not stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    #[error(
        "the audit sink is off: start prova serve with --coverage-spec SWAGGER (the cluster's OpenAPI v2 document, e.g. from `kubectl get --raw /openapi/v2`)"
    )]
    NoSpec,
    #[error("{0}")]
    Batch(#[from] BatchError),
    #[error("event {audit_id}: stageTimestamp {time:?} is not an RFC 3339 time")]
    BadTime { audit_id: String, time: String },
    #[error("the audit queue is full ({0} batches wait for the store)")]
    QueueFull(usize),
    #[error("the audit writer has stopped")]
    WriterGone,
    /// The store's error with its causes (one error serves every batch of
    /// a group commit, so it travels as text).
    #[error("cannot store audit hits: {0}")]
    Store(String),
    #[error("parsing the batch failed: {0}")]
    Parse(String),
}

/// What became of a stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Ingested {
    /// Events in the batch, `RequestReceived` ones included.
    pub received: u64,
    /// Hits stored.
    pub stored: u64,
    /// Events whose `auditID` was already stored (a retried batch, a second stage).
    pub duplicates: u64,
    /// `RequestReceived` events left out.
    pub skipped: u64,
}

/// A parsed batch on its way to the writer.
struct Job {
    hits: Vec<NewAuditHit>,
    done: oneshot::Sender<Result<u64, String>>,
}

/// The sink: the config, the parse permits and the writer's queue.
pub struct AuditSink {
    config: AuditConfig,
    parsers: Semaphore,
    queue: Option<mpsc::Sender<Job>>,
    metrics: AuditMetrics,
}

impl std::fmt::Debug for AuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSink")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AuditSink {
    /// The sink over `store`. With a spec, starts the writer task (so this
    /// must run inside a Tokio runtime then).
    pub fn start(
        config: AuditConfig,
        store: Arc<dyn Store>,
        metrics: AuditMetrics,
    ) -> Arc<AuditSink> {
        let queue = config.spec.as_ref().map(|_| {
            let (tx, rx) = mpsc::channel(config.queue.max(1));
            tokio::spawn(write_loop(rx, store, metrics.clone()));
            tx
        });
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(AuditSink {
            parsers: Semaphore::new((2 * cores).max(4)),
            config,
            queue,
            metrics,
        })
    }

    /// The sink's counters.
    pub fn metrics(&self) -> &AuditMetrics {
        &self.metrics
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// The spec, or why the sink is off.
    pub fn spec(&self) -> Result<&Arc<Spec>, IngestError> {
        self.config.spec.as_ref().ok_or(IngestError::NoSpec)
    }

    /// Refuses early, before a body is read, when the queue is full.
    pub fn check_room(&self) -> Result<(), IngestError> {
        let queue = self.queue.as_ref().ok_or(IngestError::NoSpec)?;
        if queue.capacity() == 0 {
            return Err(IngestError::QueueFull(self.config.queue));
        }
        Ok(())
    }

    /// Waits for a parse permit: bounds the bodies held at once.
    pub async fn parse_permit(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.parsers
            .acquire()
            .await
            .expect("the parse semaphore is never closed")
    }

    /// Parses, maps and stores one batch; answers once it is committed.
    pub async fn ingest(&self, body: axum::body::Bytes) -> Result<Ingested, IngestError> {
        let spec = self.spec()?.clone();
        let queue = self.queue.as_ref().ok_or(IngestError::NoSpec)?;
        let keep_raw = self.config.keep_raw;
        let (hits, received, skipped) =
            tokio::task::spawn_blocking(move || parse(&spec, &body, keep_raw))
                .await
                .map_err(|e| IngestError::Parse(e.to_string()))??;
        let (done, stored) = oneshot::channel();
        queue.try_send(Job { hits, done }).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => IngestError::QueueFull(self.config.queue),
            mpsc::error::TrySendError::Closed(_) => IngestError::WriterGone,
        })?;
        self.metrics.queue_depth.inc();
        let stored = stored
            .await
            .map_err(|_| IngestError::WriterGone)?
            .map_err(IngestError::Store)?;
        let done = Ingested {
            received,
            stored,
            duplicates: received - skipped - stored,
            skipped,
        };
        self.metrics.stored(&done);
        Ok(done)
    }
}

/// A batch → owned hits, the events counted and the ones skipped.
fn parse(
    spec: &Spec,
    body: &[u8],
    keep_raw: bool,
) -> Result<(Vec<NewAuditHit>, u64, u64), IngestError> {
    let ctx = MapContext::new(spec, &[]);
    let batch = map_batch(&ctx, body, keep_raw)?;
    let now = jiff::Timestamp::now();
    let mut hits = Vec::with_capacity(batch.events.len());
    for e in batch.events {
        let time = match &e.time {
            Some(t) => t
                .parse::<jiff::Timestamp>()
                .map_err(|_| IngestError::BadTime {
                    audit_id: e.audit_id.clone(),
                    time: t.clone(),
                })?,
            None => now,
        };
        hits.push(NewAuditHit {
            audit_id: e.audit_id,
            endpoint: e.endpoint.map(str::to_string),
            verb: e.verb,
            request_uri: e.request_uri,
            user_agent: e.user_agent,
            test_name: e.test_name,
            stage: e.stage,
            time,
            raw: e.raw,
        });
    }
    let skipped = u64::from(batch.skipped);
    let received = hits.len() as u64 + skipped;
    Ok((hits, received, skipped))
}

/// Batches the writer commits together at most: ~6,400 hits, a few MB.
const GROUP_COMMIT_BATCHES: usize = 16;

/// The one writer: stores batches in the order they were queued and tells
/// each request how it went. The batches that queued while one was being
/// written go in one transaction together (group commit): under load the
/// commits, and the index pages each one writes again to the WAL, are
/// shared, and a quiet sink still writes each batch as soon as it comes.
async fn write_loop(mut rx: mpsc::Receiver<Job>, store: Arc<dyn Store>, metrics: AuditMetrics) {
    let mut jobs: Vec<Job> = Vec::with_capacity(GROUP_COMMIT_BATCHES);
    while rx.recv_many(&mut jobs, GROUP_COMMIT_BATCHES).await > 0 {
        metrics.queue_depth.dec_by(jobs.len() as i64);
        let batches: Vec<&[NewAuditHit]> = jobs.iter().map(|j| j.hits.as_slice()).collect();
        let result = store.insert_audit_hit_batches(&batches).await;
        drop(batches);
        match result {
            Ok(counts) => {
                for (job, stored) in jobs.drain(..).zip(counts) {
                    // The request may have gone (client timeout): the hits are stored anyway.
                    let _ = job.done.send(Ok(stored));
                }
            }
            Err(e) => {
                let hits: usize = jobs.iter().map(|j| j.hits.len()).sum();
                tracing::error!("audit sink: storing {hits} hits failed: {e:?}");
                let message = prova_engine::plugin::error_chain(&e);
                for job in jobs.drain(..) {
                    let _ = job.done.send(Err(message.clone()));
                }
            }
        }
    }
}
