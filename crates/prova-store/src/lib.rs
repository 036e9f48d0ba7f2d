//! prova's event store.
//!
//! Events are the source of truth: job state, status trees and reports are
//! rebuilt from them. The store has five parts, one trait each: jobs
//! ([`JobStore`]), their events ([`EventStore`]), which process runs a job
//! ([`LeaseStore`]), which job holds a target ([`TargetLockStore`]) and the
//! live audit sink's hits ([`AuditHitStore`]). [`Store`] is all five, for code that needs the whole store (`Arc<dyn
//! Store>`). [`SqlStore`] implements them with sqlx's `Any` driver so SQLite
//! (the embedded default, WAL mode) and PostgreSQL share one code path
//! (event appends use each backend's own driver; a job's status is kept
//! as its events arrive, [`EventStore::job_status`]). The
//! schema is in `migrations/sqlite` and `migrations/postgres` (the same
//! tables; only auto-numbered ids are spelled differently). See
//! `docs/store.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), prova_store::StoreError> {
//! use prova_store::{JobStore, NewJob, SqlStore};
//! let store = SqlStore::open("sqlite:///tmp/prova.db").await?;
//! let id = store.create_job(NewJob { name: "hello".into(), ..Default::default() }).await?;
//! let job = store.get_job(id).await?.expect("just created");
//! assert_eq!(job.name, "hello");
//! # Ok(()) }
//! ```

use async_trait::async_trait;
use prova_core::{Event, EventQuery, JobId, JobState, NewEvent};
use serde::{Deserialize, Serialize};

pub mod history;
mod sql;
pub use history::{HistoryEventFilter, HistoryJob, HistoryStore};
pub use sql::{Backend, SqlStore, default_sqlite_path};

/// Errors from the store. The message names what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open the store at {url}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate the store schema")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("store query failed: {what}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("job {0} not found")]
    JobNotFound(JobId),
    #[error("corrupt row in the store: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A job to record before it runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    pub name: String,
    pub tags: Vec<String>,
    pub requestor: String,
    /// The descriptor as submitted (JSON text).
    pub descriptor: String,
    /// The descriptor with fetched steps resolved (JSON text), so a retry or
    /// resume does not depend on files that may have changed.
    pub extended_descriptor: String,
    /// Where the descriptor came from, if a file.
    pub source_path: Option<String>,
}

/// A job as stored. `state` is its newest job-state event; `None` before
/// the first one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    pub name: String,
    pub tags: Vec<String>,
    pub requestor: String,
    pub descriptor: String,
    pub extended_descriptor: String,
    pub source_path: Option<String>,
    pub created_at: jiff::Timestamp,
    pub state: Option<JobState>,
    /// Time of the newest job-state event.
    pub state_time: Option<jiff::Timestamp>,
    /// The verdict `prova status` gives (infrastructure rule included),
    /// stored when the job reached a final state (migration 0006). `None`
    /// before that, and for jobs that ended before the store kept it:
    /// `prova_engine::status::list_verdict` computes those.
    #[serde(default)]
    pub verdict: Option<prova_core::status::Verdict>,
}

/// Which jobs to list. Empty fields mean any; `tags` must all be present.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobFilter {
    pub states: Vec<JobState>,
    pub tags: Vec<String>,
    pub requestor: Option<String>,
    /// Only jobs whose name contains this, in any case (both lower-cased
    /// with Rust's `to_lowercase`; `%` and `_` are plain characters).
    pub name_contains: Option<String>,
    /// Newest first; at most this many.
    pub limit: Option<u32>,
    /// Only jobs with id < this (pagination, newest first).
    pub before_id: Option<JobId>,
}

/// Jobs: what was submitted, and each one's newest state.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Records a job and returns its new id.
    async fn create_job(&self, job: NewJob) -> Result<JobId>;
    async fn get_job(&self, id: JobId) -> Result<Option<JobRecord>>;
    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>>;
}

/// The event log: every job's events, numbered in the order stored.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends events in one transaction, in order. Job events whose name is
    /// a job state (`JobStateCompleted`, ...) also move the job's state.
    async fn append_events(&self, events: &[NewEvent]) -> Result<()>;
    /// Events matching the query, ordered by sequence number.
    async fn query_events(&self, query: &EventQuery) -> Result<Vec<Event>>;
    /// The job's status, as [`prova_core::status::rebuild`] gives it from
    /// all its events (read from a status kept as events arrive, and the
    /// events since); `None` when the job is not in the store.
    async fn job_status(&self, job_id: JobId) -> Result<Option<prova_core::status::JobStatus>>;
}

/// Job leases: which process (a `prova serve` instance, a `prova run`)
/// runs a job. A lease expires unless its owner renews it, so another
/// instance can take over the jobs of one that died.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the job's lease for `owner` until `ttl` from now, if it is
    /// free, expired or already `owner`'s. Returns whether `owner` holds it.
    async fn try_lease(&self, job_id: JobId, owner: &str, ttl: std::time::Duration)
    -> Result<bool>;
    /// Extends every lease `owner` holds (the heartbeat).
    async fn renew_leases(&self, owner: &str, ttl: std::time::Duration) -> Result<u64>;
    /// Gives a lease up (the job ended or paused).
    async fn release_lease(&self, job_id: JobId, owner: &str) -> Result<()>;
    /// Leases that have expired: (job, last owner).
    async fn expired_leases(&self) -> Result<Vec<(JobId, String)>>;
    /// Lets another instance take the job over at once (a graceful
    /// shutdown paused it): the lease expires now but still names `owner`.
    async fn hand_over_lease(&self, job_id: JobId, owner: &str) -> Result<()>;
    /// Moves the job's lease from `from` to `to` (whose owner is known to
    /// be gone), if `from` still holds it: only one instance wins.
    async fn take_lease_from(
        &self,
        job_id: JobId,
        from: &str,
        to: &str,
        ttl: std::time::Duration,
    ) -> Result<bool>;
    /// The job's lease: its owner and whether it has expired.
    async fn lease_owner(&self, job_id: JobId) -> Result<Option<(String, bool)>>;
    /// Every lease: (job, owner, expired).
    async fn leases(&self) -> Result<Vec<(JobId, String, bool)>>;
}

/// Target locks: which job holds a target. A lock expires unless the job
/// refreshes it, so the targets of a job whose process died come free.
#[async_trait]
pub trait TargetLockStore: Send + Sync {
    /// Locks targets for a job until `ttl` from now: each one that is free,
    /// expired or already the job's. With `all`, either every target is
    /// locked or none is. Returns the IDs locked.
    async fn lock_targets(
        &self,
        job_id: JobId,
        target_ids: &[String],
        ttl: std::time::Duration,
        all: bool,
    ) -> Result<Vec<String>>;
    /// Extends the job's target locks.
    async fn refresh_target_locks(&self, job_id: JobId, ttl: std::time::Duration) -> Result<()>;
    /// Unlocks targets the job holds.
    async fn unlock_targets(&self, job_id: JobId, target_ids: &[String]) -> Result<()>;
    /// Unlocks every target the job holds (the job ended without releasing
    /// them: its process died). Returns how many were held.
    async fn unlock_job_targets(&self, job_id: JobId) -> Result<u64>;
    /// Who holds these targets now (locks not expired): `(target, job)`, so
    /// a job that waits can say for whom. A store that cannot tell says
    /// nobody.
    async fn lock_holders(&self, _target_ids: &[String]) -> Result<Vec<(String, JobId)>> {
        Ok(Vec::new())
    }
}

/// One API request seen by the live audit sink (`POST /api/v1/audit/events`),
/// mapped to its endpoint: a "hit".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAuditHit {
    /// The event's `auditID`: unique; a second event with the same one is dropped.
    pub audit_id: String,
    /// The operation id; `None` when the request maps to no endpoint.
    pub endpoint: Option<String>,
    pub verb: String,
    /// `requestURI`: path and query, as audited.
    pub request_uri: String,
    pub user_agent: Option<String>,
    /// The test named by the user agent's ` -- ` suffix (e2e.test's convention).
    pub test_name: Option<String>,
    /// `stage` (`ResponseComplete`, ...).
    pub stage: Option<String>,
    /// `stageTimestamp` (microsecond precision is kept).
    pub time: jiff::Timestamp,
    /// The event's JSON, kept only when asked (`--audit-keep-raw`).
    pub raw: Option<String>,
}

/// A stored hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHit {
    /// Storage order.
    pub seq: i64,
    pub audit_id: String,
    pub endpoint: Option<String>,
    pub verb: String,
    pub request_uri: String,
    pub user_agent: Option<String>,
    pub test_name: Option<String>,
    pub stage: Option<String>,
    pub time: jiff::Timestamp,
}

/// Where a page of hits ends: the next page starts after it. Hits are
/// ordered by (time, seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHitCursor {
    pub time: jiff::Timestamp,
    pub seq: i64,
}

/// Which hits to read. Patterns are SQL `LIKE` (`%` any run, `_` one
/// character, `\` escapes; case-sensitive on both backends).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditHitQuery {
    /// Hits at or after this time.
    pub since: Option<jiff::Timestamp>,
    /// Hits before this time.
    pub until: Option<jiff::Timestamp>,
    pub user_agent: Option<String>,
    /// Matches operation ids; unmapped hits never match.
    pub endpoint: Option<String>,
    /// Only hits after this one.
    pub after: Option<AuditHitCursor>,
    /// At most this many (the store caps it at [`MAX_AUDIT_HITS_PER_QUERY`]).
    pub limit: u32,
}

/// The most hits one [`AuditHitStore::query_audit_hits`] returns.
pub const MAX_AUDIT_HITS_PER_QUERY: u32 = 100_000;

/// The live audit sink's hits.
#[async_trait]
pub trait AuditHitStore: Send + Sync {
    /// Stores hits in one transaction, skipping any whose `audit_id` is
    /// already stored (or repeated within `hits`: the first wins). Returns
    /// how many were new.
    async fn insert_audit_hits(&self, hits: &[NewAuditHit]) -> Result<u64> {
        Ok(self.insert_audit_hit_batches(&[hits]).await?[0])
    }
    /// Stores several batches in one transaction (a sink's group commit:
    /// one commit for the batches that queued while the last was written),
    /// with the rules of [`insert_audit_hits`](Self::insert_audit_hits);
    /// returns how many of each batch were new, in order.
    async fn insert_audit_hit_batches(&self, batches: &[&[NewAuditHit]]) -> Result<Vec<u64>>;
    /// Hits matching the query, ordered by (time, seq).
    async fn query_audit_hits(&self, query: &AuditHitQuery) -> Result<Vec<AuditHit>>;
}

/// Which jobs [`PruneStore::prune_jobs`] deletes: jobs in a final state
/// (`Completed`, `Failed`, `Cancelled`, `CancellationFailed`) that reached
/// it before `ended_before`. A job that has not ended (running, paused,
/// not started) is never deleted, nor one whose lease or target locks have
/// not expired (a process still holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneRule {
    pub ended_before: jiff::Timestamp,
    /// Keeps the newest this many jobs of each name (by id, whatever
    /// their state), however old: the history of a job name
    /// (`prova history`, `prova diff`) reads its newest jobs.
    pub keep_last: Option<u32>,
}

/// A job a [`PruneRule`] selects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrunableJob {
    pub id: JobId,
    pub name: String,
    pub state: JobState,
    /// When it reached its final state.
    pub ended_at: jiff::Timestamp,
    /// How many events it has (`jobs.event_count`).
    pub events: u64,
}

/// What [`PruneStore::prune_jobs`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneCount {
    pub jobs: u64,
    pub events: u64,
    /// Transactions it took (see [`PruneStore::prune_jobs`]).
    pub batches: u64,
}

/// How big the store is and how much of it is free, in bytes. `free` is
/// space the database holds but does not use (SQLite's free pages, which
/// a `VACUUM` gives back to the file system); `None` where the backend
/// cannot tell cheaply (PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSize {
    pub bytes: u64,
    pub free: Option<u64>,
}

/// Keeping a long-lived store small: deleting ended jobs with everything
/// that belongs to them, and giving the space back (`prova prune`). Not
/// part of [`Store`]: a maintenance task on a [`SqlStore`], not something
/// a running server needs.
#[async_trait]
pub trait PruneStore: Send + Sync {
    /// The jobs `rule` selects, oldest id first, without deleting anything.
    async fn prunable_jobs(&self, rule: &PruneRule) -> Result<Vec<PrunableJob>>;
    /// Deletes the jobs `rule` selects and every row that belongs to them
    /// (events, saved status, tags, expired leases and target locks,
    /// artifacts), in
    /// batches of at most [`PRUNE_BATCH_JOBS`] jobs and about
    /// [`PRUNE_BATCH_EVENTS`] events per transaction, so writers wait
    /// for one batch, not for the whole prune. Each job goes whole or not
    /// at all.
    async fn prune_jobs(&self, rule: &PruneRule) -> Result<PruneCount>;
    /// The store's size.
    async fn store_size(&self) -> Result<StoreSize>;
    /// Gives the space of deleted rows back: SQLite `VACUUM` (rewrites the
    /// file; needs as much free disk as the file's size, and blocks
    /// writers while it runs), PostgreSQL `VACUUM` of prova's tables (the
    /// space becomes reusable; autovacuum would do the same in time).
    async fn vacuum(&self) -> Result<()>;
}

/// The largest artifact file the store keeps: a bigger one stays on the
/// disk of the instance whose step fetched it ([`ArtifactStore`]).
pub const ARTIFACT_FILE_LIMIT: u64 = 16 << 20;
/// The most artifact bytes the store keeps per job: files past it stay on
/// the disk of the instance whose step fetched them.
pub const ARTIFACT_JOB_LIMIT: u64 = 256 << 20;
/// The size of the pieces an artifact's content is stored and read in: a
/// download holds one piece at a time.
pub const ARTIFACT_CHUNK: usize = 1 << 20;

/// One file of a job's artifacts, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// Relative to the job's artifacts directory, `/`-separated.
    pub path: String,
    pub bytes: u64,
    /// The content is in the store; `false`: it was over a limit and is
    /// only on the disk of the instance that ran the step.
    pub stored: bool,
}

/// The files a job's steps kept (their results directories), so any
/// instance on the store can list and serve them. Content is stored in
/// pieces of [`ARTIFACT_CHUNK`] bytes and read one piece at a time.
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// Stores `content` as the job's file `path` (replacing what was
    /// there), unless the job's stored files and this one would pass
    /// `job_limit` bytes: then the file is recorded as not stored
    /// (`stored: false`, no content). Returns whether it was stored.
    async fn put_artifact(
        &self,
        job_id: JobId,
        path: &str,
        content: &[u8],
        job_limit: u64,
    ) -> Result<bool>;
    /// Records a file kept only on disk (over [`ARTIFACT_FILE_LIMIT`]).
    async fn put_unstored_artifact(&self, job_id: JobId, path: &str, bytes: u64) -> Result<()>;
    /// The job's files in path order, at most `limit`.
    async fn list_artifacts(&self, job_id: JobId, limit: usize) -> Result<Vec<ArtifactMeta>>;
    /// One file of the job, if the store knows it.
    async fn artifact(&self, job_id: JobId, path: &str) -> Result<Option<ArtifactMeta>>;
    /// Piece `seq` (0, 1, ...) of a stored file's content; `None` past
    /// its end or when the file is not stored.
    async fn artifact_chunk(&self, job_id: JobId, path: &str, seq: u64) -> Result<Option<Vec<u8>>>;
}

/// The most jobs one prune transaction deletes.
pub const PRUNE_BATCH_JOBS: usize = 500;
/// The events one prune transaction aims at: a batch takes jobs while
/// their events stay under this (a single bigger job still goes alone).
pub const PRUNE_BATCH_EVENTS: u64 = 50_000;

/// The whole store: jobs, their events, job leases, target locks, the
/// audit sink's hits, the reads of histories and jobs' artifacts. Implemented for anything that implements the parts,
/// so `Arc<dyn Store>` serves every user, while code that needs one part
/// can ask for that part alone (an `Arc<dyn Store>` coerces to `Arc<dyn
/// EventStore>`, ...).
pub trait Store:
    JobStore + EventStore + LeaseStore + TargetLockStore + AuditHitStore + HistoryStore + ArtifactStore
{
}

impl<
    T: JobStore
        + EventStore
        + LeaseStore
        + TargetLockStore
        + AuditHitStore
        + HistoryStore
        + ArtifactStore
        + ?Sized,
> Store for T
{
}
