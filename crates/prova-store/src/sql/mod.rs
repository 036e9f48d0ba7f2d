//! [`SqlStore`]: the store on sqlx's `Any` driver, SQLite or PostgreSQL.
//!
//! One code path serves both backends: queries use `$n` placeholders and
//! only the types `Any` carries (integers, text, bool). Times are stored as
//! `BIGINT` microseconds since the Unix epoch, JSON as `TEXT`. The schema
//! lives in `migrations/sqlite` and `migrations/postgres` (the same tables;
//! the folders differ only in how ids are auto-numbered) and is migrated on
//! open.
//!
//! One module per concern: [`open`] (URLs, pools, migrations), [`jobs`]
//! ([`crate::JobStore`]), [`events`] ([`crate::EventStore`]) with
//! [`event_rows`] (decoding event rows, plain and packed) and
//! [`pg_copy_out`] (PostgreSQL's reads by `COPY`), [`leases`]
//! ([`crate::LeaseStore`]), [`locks`] ([`crate::TargetLockStore`]),
//! [`hits`] ([`crate::AuditHitStore`]), [`statement`] (statements built
//! at run time), [`append`] (writing events) with [`pg_copy`] (its
//! PostgreSQL `COPY`), [`status`] (job statuses kept as events arrive),
//! [`verdict`] (each ended job's verdict on its row), [`prune`]
//! ([`crate::PruneStore`]: deleting ended jobs) and [`artifacts`]
//! ([`crate::ArtifactStore`]: jobs' kept files).

mod append;
mod artifacts;
mod event_rows;
mod events;
mod history;
mod hits;
mod jobs;
mod leases;
mod locks;
mod open;
mod pg_copy;
mod pg_copy_out;
mod prune;
mod statement;
mod status;
mod verdict;

pub use open::default_sqlite_path;

use sqlx::{Any, AnyPool, Transaction};

use crate::{Result, StoreError};

/// Which database a [`SqlStore`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The SQL store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct SqlStore {
    /// Reads.
    pool: AnyPool,
    /// Writes. On SQLite a pool of one connection: SQLite has one writer at
    /// a time anyway, waiting for the pool is cheaper than SQLITE_BUSY, and
    /// a connection that alone writes keeps its page cache across
    /// transactions (any other writer invalidates it). On PostgreSQL the
    /// same pool as `pool`.
    writer: AnyPool,
    backend: Backend,
    /// PostgreSQL only: the same database through sqlx's own PostgreSQL
    /// driver, for what `Any` cannot carry: `COPY`, the bulk event insert
    /// and read (see [`pg_copy`], [`pg_copy_out`]), and rows without
    /// `Any`'s extra copy of every value. Connects on first use, so
    /// opening a store costs no more.
    pg: Option<sqlx::PgPool>,
    /// SQLite files: the writer of event appends, on sqlx's own SQLite
    /// driver (see [`append`]). One connection, as `writer`; the two take
    /// SQLite's write lock in turn (`BEGIN IMMEDIATE`, `busy_timeout`).
    /// `None` in memory, where one `Any` connection holds the database.
    sqlite_writer: Option<sqlx::SqlitePool>,
    /// The running statuses of the jobs this store appends to (see
    /// [`status`]).
    tracked: status::TrackedJobs,
    /// Read events packed many to a row (SQLite; see
    /// [`event_rows::packed_events_sql`]).
    packed_reads: bool,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl SqlStore {
    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a write transaction. On SQLite it takes the write lock at
    /// once (`BEGIN IMMEDIATE`), so a busy database is waited for
    /// (`busy_timeout`) instead of failing when a read would be upgraded.
    async fn begin_write(&self, what: &'static str) -> Result<Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
        .map_err(q(what))
    }
}

/// Maps a query's error to one that says what was being done.
fn q(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn micros(t: jiff::Timestamp) -> i64 {
    t.as_microsecond()
}

fn from_micros(what: &str, us: i64) -> Result<jiff::Timestamp> {
    jiff::Timestamp::from_microsecond(us).map_err(|e| corrupt(what, e))
}

fn to_u32(what: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| corrupt(what, format!("{v} is not a u32")))
}
