//! The event sink: every event the engine and its plugins emit goes through
//! here, to observers (the live progress display) at once and to the store
//! in batches.
//!
//! Batching is what makes the store keep up: one transaction per batch of
//! whatever has queued up (up to [`MAX_BATCH`]) instead of one per event.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prova_core::NewEvent;
use prova_store::EventStore;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Most events written in one transaction.
pub const MAX_BATCH: usize = 4096;

/// The event writers of this process, summed over jobs (for a server's
/// `/metrics`): events queued and not yet stored, stored, lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterCounters {
    pub queued: u64,
    pub written: u64,
    pub lost: u64,
}

static QUEUED: AtomicU64 = AtomicU64::new(0);
static WRITTEN: AtomicU64 = AtomicU64::new(0);
static LOST: AtomicU64 = AtomicU64::new(0);

/// What every event writer of this process did so far.
pub fn writer_counters() -> WriterCounters {
    WriterCounters {
        queued: QUEUED.load(Ordering::Relaxed),
        written: WRITTEN.load(Ordering::Relaxed),
        lost: LOST.load(Ordering::Relaxed),
    }
}

/// Called for every event as it is emitted (before it is stored).
pub type Observer = Arc<dyn Fn(&NewEvent) + Send + Sync>;

// Events are the hot path; boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Event(NewEvent),
    Flush(oneshot::Sender<()>),
}

/// A cheap, cloneable handle to emit events.
#[derive(Clone)]
pub struct EventSink {
    tx: mpsc::UnboundedSender<Msg>,
    observer: Option<Observer>,
}

/// The background task that writes events to the store.
pub struct EventWriter {
    handle: JoinHandle<WriterStats>,
}

/// What the writer did, for the end of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    pub written: u64,
    /// Events that could not be stored after retries (logged).
    pub lost: u64,
}

impl EventSink {
    /// Starts a writer into `store`; events are written until every sink
    /// clone is dropped and [`EventWriter::finish`] is awaited.
    pub fn spawn(
        store: Arc<dyn EventStore>,
        observer: Option<Observer>,
    ) -> (EventSink, EventWriter) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(write_loop(rx, store));
        (EventSink { tx, observer }, EventWriter { handle })
    }

    /// Emits one event. Never blocks; never fails (a closed writer means the
    /// job is over and the event is logged instead).
    pub fn emit(&self, ev: NewEvent) {
        if let Some(obs) = &self.observer {
            obs(&ev);
        }
        if self.tx.send(Msg::Event(ev)).is_err() {
            tracing::warn!("event emitted after the event writer stopped");
        } else {
            QUEUED.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every event emitted so far is stored.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

impl EventWriter {
    /// Waits for the writer to store everything (all sinks must be dropped).
    pub async fn finish(self) -> WriterStats {
        self.handle.await.unwrap_or_else(|e| {
            tracing::error!("event writer task failed: {e}");
            WriterStats::default()
        })
    }
}

async fn write_loop(
    mut rx: mpsc::UnboundedReceiver<Msg>,
    store: Arc<dyn EventStore>,
) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut msgs = Vec::with_capacity(MAX_BATCH);
    let mut batch: Vec<NewEvent> = Vec::with_capacity(MAX_BATCH);
    let mut flushes = Vec::new();
    while rx.recv_many(&mut msgs, MAX_BATCH).await > 0 {
        for msg in msgs.drain(..) {
            match msg {
                Msg::Event(ev) => batch.push(ev),
                Msg::Flush(tx) => flushes.push(tx),
            }
        }
        write_batch(&*store, &mut batch, &mut stats).await;
        for tx in flushes.drain(..) {
            let _ = tx.send(());
        }
    }
    write_batch(&*store, &mut batch, &mut stats).await;
    stats
}

/// Writes a batch, retrying transient failures (a busy SQLite file) a few
/// times; what still fails is logged and counted, never silently dropped.
async fn write_batch(store: &dyn EventStore, batch: &mut Vec<NewEvent>, stats: &mut WriterStats) {
    if batch.is_empty() {
        return;
    }
    let mut delay = Duration::from_millis(20);
    for attempt in 0..5 {
        match store.append_events(batch).await {
            Ok(()) => {
                stats.written += batch.len() as u64;
                WRITTEN.fetch_add(batch.len() as u64, Ordering::Relaxed);
                dequeue(batch.len());
                batch.clear();
                return;
            }
            Err(e) if attempt < 4 => {
                tracing::warn!("storing {} events failed, retrying: {e}", batch.len());
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::error!("lost {} events: the store failed: {e}", batch.len());
                stats.lost += batch.len() as u64;
                LOST.fetch_add(batch.len() as u64, Ordering::Relaxed);
                dequeue(batch.len());
                batch.clear();
            }
        }
    }
}

/// Events that left the queue (stored or lost); saturating, so the count
/// cannot wrap below zero.
fn dequeue(n: usize) {
    let _ = QUEUED.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |q| {
        Some(q.saturating_sub(n as u64))
    });
}
