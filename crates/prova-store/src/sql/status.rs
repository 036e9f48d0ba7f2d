//! Job statuses kept as events arrive (migration 0005), so reading one is
//! a saved status plus the few events after it, not every event of the job.
//!
//! The writer: for each job it appends to, a store keeps the job's status
//! in memory ([`Tracked`], a [`StatusBuilder`]), applies each batch to it,
//! and saves it in `job_status` in the batch's transaction when the batch
//! moves the job's state (the end of a job, a pause, ...) or
//! [`SAVE_EVERY`] after its last save, as of the job's newest event.
//! It only keeps a status that has seen every event of its job:
//! `jobs.event_count`, counted by every append in the same transaction,
//! must equal the events it applied; after another writer's append (a job
//! resumed by another process, `prova coverage report --job`), it stops.
//!
//! The reader ([`SqlStore::read_job_status`]): the saved status, then the
//! job's status events after its `last_seq`, applied in order; without a
//! saved status (or an unreadable one), all of the job's status events.
//! The result is the same as rebuilding from every event (tested), and
//! stays right after a crash: a status is only saved with the events it
//! covers, in one transaction, and appends to one job take their `seq` in
//! the order they commit (the `jobs` row is locked first), so the events
//! after `last_seq` are exactly the ones it lacks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prova_core::status::{JobStatus, StatusBuilder, status_event_names};
use prova_core::{EventQuery, JobId, NewEvent};
use sqlx::Row;

use super::{SqlStore, corrupt, micros, q};
use crate::{EventStore, JobStore, Result};

/// How often a running job's status is saved at most, unless its state
/// moves. A status read of a running job applies at most this much of its
/// events on top of the saved status.
pub(super) const SAVE_EVERY: Duration = Duration::from_secs(2);

/// The most jobs whose status one store keeps in memory (a `prova serve`
/// running many jobs at once); the statuses of jobs beyond it are rebuilt
/// on read, from their last saved status.
const MAX_TRACKED_JOBS: usize = 256;

/// A job's status as this store's appends built it.
pub(super) struct Tracked {
    builder: StatusBuilder,
    /// How many of the job's events it has seen: all of them, as long as it
    /// is kept (checked against `jobs.event_count` by every append).
    pub(super) events: i64,
    saved_at: Option<Instant>,
    /// Events applied since the last save.
    unsaved: bool,
    /// The job reached a final state: saved, then dropped.
    ended: bool,
}

impl Tracked {
    /// A job with no events yet.
    pub(super) fn new(job: JobId) -> Self {
        Tracked {
            // The name is the job's, filled in on read.
            builder: StatusBuilder::new(job, ""),
            events: 0,
            saved_at: None,
            unsaved: false,
            ended: false,
        }
    }

    /// Applies the job's next event as the store keeps it: its time cut to
    /// the microsecond (a status read back must equal one rebuilt from the
    /// stored events). Step output changes no status and is only counted.
    pub(super) fn apply(&mut self, e: &NewEvent) {
        self.events += 1;
        if !is_status_event(&e.name) {
            return;
        }
        self.unsaved = true;
        let stored = micros(e.emit_time);
        if i128::from(stored) * 1000 == e.emit_time.as_nanosecond() {
            self.builder.apply(e);
        } else {
            let mut e = e.clone();
            e.emit_time = jiff::Timestamp::from_microsecond(stored).unwrap_or(e.emit_time);
            self.builder.apply(&e);
        }
    }

    /// The status as JSON when it is due to be saved: the batch moved the
    /// job's state, or it was last saved [`SAVE_EVERY`] ago.
    pub(super) fn due(&mut self, state_moved: bool) -> Result<Option<String>> {
        let stale = self.saved_at.is_none_or(|t| t.elapsed() >= SAVE_EVERY);
        if !(self.unsaved && (state_moved || stale)) {
            return Ok(None);
        }
        let status = self.builder.status();
        self.ended = status.state.is_some_and(|s| s.is_final());
        let json = serde_json::to_string(&status).map_err(|e| corrupt("job status", e))?;
        self.saved_at = Some(Instant::now());
        self.unsaved = false;
        Ok(Some(json))
    }
}

/// The statuses a store keeps, by job. An append takes its jobs' out for
/// the length of its transaction and gives them back when it commits.
#[derive(Default)]
pub(super) struct TrackedJobs(Mutex<HashMap<JobId, Tracked>>);

/// Whether an event of this name can change a status
/// ([`status_event_names`]).
fn is_status_event(name: &str) -> bool {
    static NAMES: std::sync::OnceLock<std::collections::HashSet<String>> =
        std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| status_event_names().into_iter().collect())
        .contains(name)
}

impl TrackedJobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Tracked>> {
        // A panic while holding the lock leaves statuses that may lack
        // events: start over rather than trust them.
        self.0.lock().unwrap_or_else(|poisoned| {
            let mut g = poisoned.into_inner();
            g.clear();
            g
        })
    }

    pub(super) fn take(&self, jobs: impl Iterator<Item = JobId>) -> BTreeMap<JobId, Tracked> {
        let mut map = self.lock();
        jobs.filter_map(|j| map.remove(&j).map(|t| (j, t)))
            .collect()
    }

    /// Whether a new job may be kept, beside `taking` being appended to.
    pub(super) fn has_room(&self, taking: usize) -> bool {
        self.lock().len() + taking < MAX_TRACKED_JOBS
    }

    pub(super) fn give_back(&self, tracked: BTreeMap<JobId, Tracked>) {
        let mut map = self.lock();
        for (job, t) in tracked {
            if !t.ended {
                map.insert(job, t);
            }
        }
    }
}

impl SqlStore {
    /// [`EventStore::job_status`]: the saved status and the status events
    /// after it.
    pub(super) async fn read_job_status(&self, job_id: JobId) -> Result<Option<JobStatus>> {
        let Some(job) = self.get_job(job_id).await? else {
            return Ok(None);
        };
        let saved = sqlx::query("SELECT last_seq, status FROM job_status WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read a job's status"))?;
        let mut after = None;
        let mut builder = StatusBuilder::new(job_id, &job.name);
        if let Some(row) = saved {
            let seq: i64 = row.try_get(0).map_err(|e| corrupt("job status", e))?;
            let text: &str = row.try_get(1).map_err(|e| corrupt("job status", e))?;
            match serde_json::from_str::<JobStatus>(text) {
                Ok(mut status) => {
                    status.name = job.name.clone();
                    builder = StatusBuilder::resume(status);
                    after = Some(seq);
                }
                // A cache: rebuild from every event rather than fail.
                Err(e) => tracing::warn!(job_id, error = %e, "unreadable saved status; rebuilding"),
            }
        }
        let events = self
            .query_events(&EventQuery {
                job_id: Some(job_id),
                names: status_event_names(),
                after_seq: after,
                ..Default::default()
            })
            .await?;
        for e in &events {
            builder.apply(e);
        }
        Ok(Some(builder.finish()))
    }
}
