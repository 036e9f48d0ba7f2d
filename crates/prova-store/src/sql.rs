//! [`SqlStore`]: the [`Store`] on sqlx's `Any` driver, SQLite or PostgreSQL.
//!
//! One code path serves both backends: queries use `$n` placeholders and
//! only the types `Any` carries (integers, text, bool). Times are stored as
//! `BIGINT` microseconds since the Unix epoch, JSON as `TEXT`. The schema
//! lives in `migrations/sqlite` and `migrations/postgres` (the same tables;
//! the folders differ only in how ids are auto-numbered) and is migrated on
//! open.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use prova_core::{Event, EventKind, EventQuery, JobId, JobState, NewEvent, Target};
use sqlx::any::{AnyArguments, AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::query::Query;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Any, AnyPool, AssertSqlSafe, ConnectOptions, Row, Transaction};

use crate::{
    CoverageRecord, EventStore, JobFilter, JobRecord, JobStore, LeaseStore, NewJob, ReportRecord,
    Result, StoreError, TargetLockStore,
};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// Bound parameters per event row in the multi-row INSERT.
const EVENT_PARAMS: usize = 11;
/// Rows per INSERT statement (11 parameters each: far under SQLite's
/// 32,766 and PostgreSQL's 65,535). 64, 256 and 1,000 rows measured alike
/// within the noise of a shared machine (140k–210k events/s on SQLite).
const EVENT_ROWS_PER_INSERT: usize = 64;
/// Most values in one `IN (...)` list before a query is split.
const MAX_IN_LIST: usize = 1000;

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
    /// Read events packed many to a row (SQLite; see [`packed_events_sql`]).
    packed_reads: bool,
}

impl std::fmt::Debug for SqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The per-user SQLite database: `$XDG_DATA_HOME/prova/prova.db`, else
/// `$HOME/.local/share/prova/prova.db`, else `./prova.db`. Empty or relative
/// values of those variables are ignored, as the XDG spec asks.
pub fn default_sqlite_path() -> PathBuf {
    sqlite_path_from(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

fn sqlite_path_from(xdg_data_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let abs = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(dir) = abs(xdg_data_home) {
        return dir.join("prova").join("prova.db");
    }
    if let Some(home) = abs(home) {
        return home.join(".local/share/prova/prova.db");
    }
    PathBuf::from("prova.db")
}

/// The URL with any password replaced, for error messages and logs.
fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..]),
        None => url.to_string(),
    }
}

fn open_err(url: &str, source: sqlx::Error) -> StoreError {
    StoreError::Open {
        url: redact(url),
        source,
    }
}

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

/// A value to bind to a dynamically built query.
#[derive(Clone)]
enum Arg {
    I64(i64),
    Text(String),
}

/// A dynamically built statement: SQL text plus its `$n` arguments.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }
    /// Appends `$n` for a new argument.
    fn arg(&mut self, a: Arg) -> &mut Self {
        use std::fmt::Write;
        self.args.push(a);
        let _ = write!(self.text, "${}", self.args.len());
        self
    }
    fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    fn query(self) -> Query<'static, Any, AnyArguments> {
        let mut qry = sqlx::query(AssertSqlSafe(self.text));
        for a in self.args {
            qry = match a {
                Arg::I64(v) => qry.bind(v),
                Arg::Text(v) => qry.bind(v),
            };
        }
        qry
    }
}

/// `INSERT INTO events (...) VALUES (...), (...)` for `rows` rows.
///
/// SQLite gets anonymous `?` placeholders: for numbered ones (`$n`) sqlx
/// asks `sqlite3_bind_parameter_name` about each, which scans a list of
/// all names, so binding a statement costs O(n²) in its parameters — 80% of
/// the time of a 2,816-parameter INSERT. PostgreSQL needs `$n`.
fn insert_events_sql(backend: Backend, rows: usize) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(120 + rows * EVENT_PARAMS * 7);
    s.push_str(
        "INSERT INTO events (job_id, kind, run_id, test_name, test_attempt, step_label, \
         target_id, target, name, payload, emit_time) VALUES ",
    );
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..EVENT_PARAMS {
            n += 1;
            if c > 0 {
                s.push(',');
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    let _ = write!(s, "${n}");
                }
            }
        }
        s.push(')');
    }
    s
}

/// The full-size INSERT, built once (the driver caches its prepared form by
/// text, so reusing the same text also reuses the statement).
fn full_insert_sql(backend: Backend) -> Arc<str> {
    static SQLITE: OnceLock<Arc<str>> = OnceLock::new();
    static POSTGRES: OnceLock<Arc<str>> = OnceLock::new();
    let cell = match backend {
        Backend::Sqlite => &SQLITE,
        Backend::Postgres => &POSTGRES,
    };
    cell.get_or_init(|| insert_events_sql(backend, EVENT_ROWS_PER_INSERT).into())
        .clone()
}

const EVENT_COLUMNS: &str = "seq, job_id, kind, run_id, test_name, test_attempt, step_label, \
                             target, name, payload, emit_time";

/// An event's columns, borrowed from a row or a packed chunk.
struct EventParts<'a> {
    seq: i64,
    job_id: i64,
    kind: &'a str,
    run_id: i64,
    test_name: Option<&'a str>,
    test_attempt: Option<i64>,
    step_label: Option<&'a str>,
    target: Option<&'a str>,
    name: &'a str,
    payload: Option<&'a str>,
    emit_time: i64,
}

impl EventParts<'_> {
    fn into_event(self) -> Result<Event> {
        let seq = self.seq;
        let kind = match self.kind {
            "job" => EventKind::Job,
            "test" => EventKind::Test,
            other => return Err(corrupt("event kind", format!("seq {seq}: {other:?}"))),
        };
        let target = match self.target {
            Some(t) => Some(
                serde_json::from_str::<Target>(t)
                    .map_err(|e| corrupt("event target", format!("seq {seq}: {e}")))?,
            ),
            None => None,
        };
        let payload = match self.payload {
            Some(p) => Some(
                serde_json::from_str::<serde_json::Value>(p)
                    .map_err(|e| corrupt("event payload", format!("seq {seq}: {e}")))?,
            ),
            None => None,
        };
        Ok(Event {
            seq,
            event: NewEvent {
                kind,
                job_id: self.job_id,
                run_id: to_u32("event run_id", self.run_id)?,
                test_name: self.test_name.map(str::to_owned),
                test_attempt: match self.test_attempt {
                    Some(a) => Some(to_u32("event test_attempt", a)?),
                    None => None,
                },
                step_label: self.step_label.map(str::to_owned),
                target,
                name: self.name.to_owned(),
                payload,
                emit_time: from_micros("event emit_time", self.emit_time)?,
            },
        })
    }
}

/// An event row, selected as [`EVENT_COLUMNS`].
fn event_from_row(row: &AnyRow) -> Result<Event> {
    let get = |e: sqlx::Error| corrupt("event row", e);
    EventParts {
        seq: row.try_get(0).map_err(get)?,
        job_id: row.try_get(1).map_err(get)?,
        kind: row.try_get(2).map_err(get)?,
        run_id: row.try_get(3).map_err(get)?,
        test_name: row.try_get(4).map_err(get)?,
        test_attempt: row.try_get(5).map_err(get)?,
        step_label: row.try_get(6).map_err(get)?,
        target: row.try_get(7).map_err(get)?,
        name: row.try_get(8).map_err(get)?,
        payload: row.try_get(9).map_err(get)?,
        emit_time: row.try_get(10).map_err(get)?,
    }
    .into_event()
}

/// Events per packed row when reading from SQLite.
const EVENTS_PER_PACK: usize = 1024;

/// Wraps an event SELECT (columns [`EVENT_COLUMNS`], ordered by seq) so
/// SQLite returns its rows packed, up to [`EVENTS_PER_PACK`] per row, as
/// JSON arrays of arrays. sqlx's SQLite driver hands every row from its
/// worker thread to the caller's task and copies every value on the way;
/// `Any` copies each value again: for 100,000 events that was over half of
/// a read. Packing cuts it to ~100 rows. (PostgreSQL's `json_agg` was
/// slower than its plain rows, so PostgreSQL reads rows.)
fn packed_events_sql(inner: &str) -> String {
    format!(
        "SELECT json_group_array(json_array({EVENT_COLUMNS})) FROM ({inner}) \
         GROUP BY seq / {EVENTS_PER_PACK} ORDER BY min(seq)"
    )
}

/// One event of a packed row: `[seq, job_id, kind, ...]`.
#[derive(serde::Deserialize)]
struct PackedEvent<'a>(
    i64,
    i64,
    #[serde(borrow)] Cow<'a, str>,
    i64,
    #[serde(borrow)] Option<Cow<'a, str>>,
    Option<i64>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    #[serde(borrow)] Cow<'a, str>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    i64,
);

/// Decodes a packed row (see [`packed_events_sql`]) onto `out`.
fn events_from_packed(row: &AnyRow, out: &mut Vec<Event>) -> Result<()> {
    let text: &str = row.try_get(0).map_err(|e| corrupt("packed events", e))?;
    let packed: Vec<PackedEvent<'_>> =
        serde_json::from_str(text).map_err(|e| corrupt("packed events", e))?;
    out.reserve(packed.len());
    for p in &packed {
        out.push(
            EventParts {
                seq: p.0,
                job_id: p.1,
                kind: &p.2,
                run_id: p.3,
                test_name: p.4.as_deref(),
                test_attempt: p.5,
                step_label: p.6.as_deref(),
                target: p.7.as_deref(),
                name: &p.8,
                payload: p.9.as_deref(),
                emit_time: p.10,
            }
            .into_event()?,
        );
    }
    Ok(())
}

const JOB_COLUMNS: &str = "id, name, tags, requestor, descriptor, extended_descriptor, \
                           source_path, created_at, state, state_time";

fn job_from_row(row: &AnyRow) -> Result<JobRecord> {
    let get = |e: sqlx::Error| corrupt("job row", e);
    let id: i64 = row.try_get(0).map_err(get)?;
    let tags: &str = row.try_get(2).map_err(get)?;
    let tags: Vec<String> =
        serde_json::from_str(tags).map_err(|e| corrupt("job tags", format!("job {id}: {e}")))?;
    let state = match row.try_get::<Option<&str>, _>(8).map_err(get)? {
        Some(s) => Some(
            JobState::parse(s).ok_or_else(|| corrupt("job state", format!("job {id}: {s:?}")))?,
        ),
        None => None,
    };
    let state_time = match row.try_get::<Option<i64>, _>(9).map_err(get)? {
        Some(t) => Some(from_micros("job state_time", t)?),
        None => None,
    };
    Ok(JobRecord {
        id,
        name: row.try_get(1).map_err(get)?,
        tags,
        requestor: row.try_get(3).map_err(get)?,
        descriptor: row.try_get(4).map_err(get)?,
        extended_descriptor: row.try_get(5).map_err(get)?,
        source_path: row.try_get(6).map_err(get)?,
        created_at: from_micros("job created_at", row.try_get(7).map_err(get)?)?,
        state,
        state_time,
    })
}

impl SqlStore {
    /// Opens (creating if needed) and migrates the store at `url`:
    /// `sqlite://PATH` (the file and its parent directories are created),
    /// `sqlite::memory:` (private to this store; for tests), or
    /// `postgres://USER:PASS@HOST/DB` (`postgresql://` too).
    pub async fn open(url: &str) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url).map_err(|e| open_err(url, e))?;
            Self::open_sqlite(url, opts).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url).await
        } else {
            Err(open_err(
                url,
                sqlx::Error::Configuration(
                    "unsupported store URL: want sqlite://PATH or postgres://...".into(),
                ),
            ))
        }
    }

    /// Opens what a user named with `--db` / `PROVA_DB`: a store URL
    /// (`sqlite:...`, `postgres://...`, `postgresql://...`) or else the path
    /// of a SQLite file.
    pub async fn open_db(db: &str) -> Result<SqlStore> {
        if db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://")
        {
            Self::open(db).await
        } else {
            Self::open_path(Path::new(db)).await
        }
    }

    /// Opens (creating if needed) the SQLite store in the file at `path`.
    pub async fn open_path(path: &Path) -> Result<SqlStore> {
        sqlx::any::install_default_drivers();
        let opts = SqliteConnectOptions::new().filename(path);
        Self::open_sqlite(&path.display().to_string(), opts).await
    }

    /// The backend this store talks to.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn open_sqlite(url: &str, opts: SqliteConnectOptions) -> Result<SqlStore> {
        // `sqlite::memory:` parses to a shared-cache `file:sqlx-in-memory-N`.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_opts = || {
            AnyPoolOptions::new().after_connect(|conn, _meta| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA busy_timeout = 5000",
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA cache_size = -16384",
                    ] {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
        };
        if in_memory {
            // In memory, pass the URL through: `to_url_lossy` cannot render
            // the generated in-memory file name (sqlx 0.9 panics on it).
            let any_opts = AnyConnectOptions::from_str(url).map_err(|e| open_err(url, e))?;
            // One connection that never closes, for reads and writes: the
            // database lives as long as it does.
            let pool = pool_opts()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(any_opts)
                .await
                .map_err(|e| open_err(url, e))?;
            SQLITE_MIGRATOR
                .run(&pool)
                .await
                .map_err(StoreError::Migrate)?;
            return Ok(SqlStore {
                writer: pool.clone(),
                pool,
                backend: Backend::Sqlite,
                packed_reads: true,
            });
        }

        let file = opts.get_filename().to_path_buf();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                open_err(
                    url,
                    sqlx::Error::Configuration(
                        format!("cannot create directory {}: {e}", dir.display()).into(),
                    ),
                )
            })?;
        }
        let any_opts = AnyConnectOptions::from_url(&opts.create_if_missing(true).to_url_lossy())
            .map_err(|e| open_err(url, e))?;
        let writer = pool_opts()
            .max_connections(1)
            .connect_with(any_opts.clone())
            .await
            .map_err(|e| open_err(url, e))?;
        SQLITE_MIGRATOR
            .run(&writer)
            .await
            .map_err(StoreError::Migrate)?;
        let pool = pool_opts()
            .max_connections(8)
            .connect_with(any_opts)
            .await
            .map_err(|e| open_err(url, e))?;
        tracing::debug!(url, "opened SQLite store");
        Ok(SqlStore {
            pool,
            writer,
            backend: Backend::Sqlite,
            packed_reads: true,
        })
    }

    async fn open_postgres(url: &str) -> Result<SqlStore> {
        let pool = AnyPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(|e| open_err(url, e))?;
        POSTGRES_MIGRATOR
            .run(&pool)
            .await
            .map_err(StoreError::Migrate)?;
        tracing::debug!(url = redact(url), "opened PostgreSQL store");
        Ok(SqlStore {
            writer: pool.clone(),
            pool,
            backend: Backend::Postgres,
            packed_reads: false,
        })
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

    async fn query_events_packed(&self, sql: Sql) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        let mut rows = sql.query().fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(q("query events"))? {
            events_from_packed(&row, &mut out)?;
        }
        // The packing keeps the inner order in practice; SQL does not
        // promise it, so make sure (free when already sorted).
        if !out.is_sorted_by_key(|e| e.seq) {
            out.sort_by_key(|e| e.seq);
        }
        Ok(out)
    }

    /// Fails with [`StoreError::JobNotFound`] unless every id is a job.
    async fn check_jobs_exist(&self, ids: &BTreeSet<JobId>) -> Result<()> {
        let ids: Vec<JobId> = ids.iter().copied().collect();
        for chunk in ids.chunks(MAX_IN_LIST) {
            let mut sql = Sql::new("SELECT id FROM jobs WHERE id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(",");
                }
                sql.arg(Arg::I64(*id));
            }
            sql.push(")");
            let found: BTreeSet<i64> = sql
                .query()
                .fetch_all(&self.pool)
                .await
                .map_err(q("check jobs of events"))?
                .iter()
                .map(|r| r.try_get::<i64, _>(0))
                .collect::<Result<_, _>>()
                .map_err(|e| corrupt("job id", e))?;
            if let Some(missing) = chunk.iter().find(|id| !found.contains(id)) {
                return Err(StoreError::JobNotFound(*missing));
            }
        }
        Ok(())
    }
}

/// An event's values, ready to bind.
fn bind_event<'q>(
    qry: Query<'q, Any, AnyArguments>,
    e: &'q NewEvent,
) -> Result<Query<'q, Any, AnyArguments>> {
    let target = match &e.target {
        Some(t) => Some(serde_json::to_string(t).map_err(|err| corrupt("event target", err))?),
        None => None,
    };
    Ok(qry
        .bind(e.job_id)
        .bind(e.kind.as_str())
        .bind(i64::from(e.run_id))
        .bind(e.test_name.as_deref())
        .bind(e.test_attempt.map(i64::from))
        .bind(e.step_label.as_deref())
        .bind(e.target.as_ref().map(|t| t.id.as_str()))
        .bind(target)
        .bind(e.name.as_str())
        .bind(e.payload.as_ref().map(|p| p.to_string()))
        .bind(micros(e.emit_time)))
}

#[async_trait]
impl JobStore for SqlStore {
    async fn create_job(&self, job: NewJob) -> Result<JobId> {
        let tags_json = serde_json::to_string(&job.tags).map_err(|e| corrupt("job tags", e))?;
        let distinct: BTreeSet<&str> = job.tags.iter().map(String::as_str).collect();
        let mut tx = self.begin_write("create job").await?;
        let id: i64 = sqlx::query(
            "INSERT INTO jobs (name, tags, requestor, descriptor, extended_descriptor, \
             source_path, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(job.name.as_str())
        .bind(tags_json)
        .bind(job.requestor.as_str())
        .bind(job.descriptor.as_str())
        .bind(job.extended_descriptor.as_str())
        .bind(job.source_path.as_deref())
        .bind(micros(jiff::Timestamp::now()))
        .fetch_one(&mut *tx)
        .await
        .map_err(q("create job"))?
        .try_get(0)
        .map_err(|e| corrupt("new job id", e))?;
        for tag in distinct {
            sqlx::query("INSERT INTO job_tags (tag, job_id) VALUES ($1, $2)")
                .bind(tag)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(q("create job tags"))?;
        }
        tx.commit().await.map_err(q("create job"))?;
        Ok(id)
    }

    async fn get_job(&self, id: JobId) -> Result<Option<JobRecord>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("get job"))?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>> {
        let mut sql = Sql::new(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE 1 = 1"));
        if !filter.states.is_empty() {
            sql.push(" AND state IN (");
            for (i, st) in filter.states.iter().enumerate() {
                if i > 0 {
                    sql.push(",");
                }
                sql.arg(Arg::Text(st.as_str().to_string()));
            }
            sql.push(")");
        }
        if let Some(r) = &filter.requestor {
            sql.push(" AND requestor = ").arg(Arg::Text(r.clone()));
        }
        if let Some(before) = filter.before_id {
            sql.push(" AND id < ").arg(Arg::I64(before));
        }
        let tags: BTreeSet<&String> = filter.tags.iter().collect();
        for tag in tags {
            sql.push(" AND EXISTS (SELECT 1 FROM job_tags t WHERE t.tag = ")
                .arg(Arg::Text(tag.clone()))
                .push(" AND t.job_id = jobs.id)");
        }
        sql.push(" ORDER BY id DESC");
        if let Some(limit) = filter.limit {
            sql.push(&format!(" LIMIT {limit}"));
        }
        let mut rows = sql.query().fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await.map_err(q("list jobs"))? {
            out.push(job_from_row(&row)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl EventStore for SqlStore {
    async fn append_events(&self, events: &[NewEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // The newest job-state event of each job in this batch.
        let mut states: BTreeMap<JobId, (JobState, jiff::Timestamp)> = BTreeMap::new();
        for e in events {
            if e.kind == EventKind::Job
                && let Some(st) = JobState::parse(&e.name)
            {
                states.insert(e.job_id, (st, e.emit_time));
            }
        }

        let mut tx = self.begin_write("append events").await?;
        for chunk in events.chunks(EVENT_ROWS_PER_INSERT) {
            let mut qry = if chunk.len() == EVENT_ROWS_PER_INSERT {
                sqlx::query(AssertSqlSafe(full_insert_sql(self.backend)))
            } else {
                sqlx::query(AssertSqlSafe(insert_events_sql(self.backend, chunk.len())))
            };
            for e in chunk {
                qry = bind_event(qry, e)?;
            }
            if let Err(e) = qry.execute(&mut *tx).await {
                // Events must belong to jobs (a foreign key): name the
                // missing job. Checked only on failure, to keep small
                // appends at three round trips.
                if e.as_database_error()
                    .is_some_and(|d| d.is_foreign_key_violation())
                {
                    drop(tx);
                    let jobs: BTreeSet<JobId> = events.iter().map(|e| e.job_id).collect();
                    self.check_jobs_exist(&jobs).await?;
                }
                return Err(StoreError::Query {
                    what: "append events",
                    source: e,
                });
            }
        }
        for (job_id, (state, time)) in states {
            sqlx::query("UPDATE jobs SET state = $1, state_time = $2 WHERE id = $3")
                .bind(state.as_str())
                .bind(micros(time))
                .bind(job_id)
                .execute(&mut *tx)
                .await
                .map_err(q("update job state"))?;
        }
        tx.commit().await.map_err(q("append events"))?;
        Ok(())
    }

    async fn query_events(&self, query: &EventQuery) -> Result<Vec<Event>> {
        let mut sql = Sql::new(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE 1 = 1"));
        if let Some(job) = query.job_id {
            sql.push(" AND job_id = ").arg(Arg::I64(job));
        }
        if let Some(kind) = query.kind {
            sql.push(" AND kind = ")
                .arg(Arg::Text(kind.as_str().to_string()));
        }
        if let Some(run) = query.run_id {
            sql.push(" AND run_id = ").arg(Arg::I64(run.into()));
        }
        if let Some(t) = &query.test_name {
            sql.push(" AND test_name = ").arg(Arg::Text(t.clone()));
        }
        if let Some(a) = query.test_attempt {
            sql.push(" AND test_attempt = ").arg(Arg::I64(a.into()));
        }
        if let Some(s) = &query.step_label {
            sql.push(" AND step_label = ").arg(Arg::Text(s.clone()));
        }
        if let Some(t) = &query.target_id {
            sql.push(" AND target_id = ").arg(Arg::Text(t.clone()));
        }
        if !query.names.is_empty() {
            let names: BTreeSet<&String> = query.names.iter().collect();
            sql.push(" AND name IN (");
            for (i, n) in names.into_iter().enumerate() {
                if i > 0 {
                    sql.push(",");
                }
                sql.arg(Arg::Text(n.clone()));
            }
            sql.push(")");
        }
        if let Some(after) = query.after_seq {
            sql.push(" AND seq > ").arg(Arg::I64(after));
        }
        sql.push(" ORDER BY seq");
        if let Some(limit) = query.limit {
            sql.push(&format!(" LIMIT {limit}"));
        }
        if self.packed_reads {
            let packed = Sql {
                text: packed_events_sql(&sql.text),
                args: sql.args.clone(),
            };
            match self.query_events_packed(packed).await {
                Err(StoreError::Query { source, .. }) => {
                    // E.g. a pack past SQLite's 1 GB string limit (huge
                    // payloads): read row by row instead.
                    tracing::debug!(error = %source, "packed event read failed; reading rows");
                }
                other => return other,
            }
        }
        let mut out = Vec::new();
        let mut rows = sql.query().fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(q("query events"))? {
            out.push(event_from_row(&row)?);
        }
        Ok(out)
    }

    async fn save_report(&self, report: &ReportRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO reports (job_id, run_id, reporter, success, data, report_time) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(report.job_id)
        .bind(report.run_id.map(i64::from))
        .bind(report.reporter.as_str())
        .bind(i64::from(report.success))
        .bind(report.data.to_string())
        .bind(micros(report.report_time))
        .execute(&self.writer)
        .await
        .map_err(q("save report"))?;
        Ok(())
    }

    async fn reports(&self, job_id: JobId) -> Result<Vec<ReportRecord>> {
        let rows = sqlx::query(
            "SELECT job_id, run_id, reporter, success, data, report_time FROM reports \
             WHERE job_id = $1 ORDER BY id",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read reports"))?;
        rows.iter()
            .map(|row| {
                let get = |e: sqlx::Error| corrupt("report row", e);
                let data: &str = row.try_get(4).map_err(get)?;
                Ok(ReportRecord {
                    job_id: row.try_get(0).map_err(get)?,
                    run_id: match row.try_get::<Option<i64>, _>(1).map_err(get)? {
                        Some(r) => Some(to_u32("report run_id", r)?),
                        None => None,
                    },
                    reporter: row.try_get(2).map_err(get)?,
                    success: match row.try_get::<i64, _>(3).map_err(get)? {
                        0 => false,
                        1 => true,
                        other => return Err(corrupt("report success", other)),
                    },
                    data: serde_json::from_str(data).map_err(|e| corrupt("report data", e))?,
                    report_time: from_micros("report time", row.try_get(5).map_err(get)?)?,
                })
            })
            .collect()
    }

    async fn save_coverage(&self, record: &CoverageRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO coverage (job_id, run_id, report, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(record.job_id)
        .bind(record.run_id.map(i64::from))
        .bind(record.report.as_str())
        .bind(micros(record.created_at))
        .execute(&self.writer)
        .await
        .map_err(q("save coverage"))?;
        Ok(())
    }

    async fn coverage(&self, job_id: JobId) -> Result<Vec<CoverageRecord>> {
        let rows = sqlx::query(
            "SELECT job_id, run_id, report, created_at FROM coverage \
             WHERE job_id = $1 ORDER BY id",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(q("read coverage"))?;
        rows.iter()
            .map(|row| {
                let get = |e: sqlx::Error| corrupt("coverage row", e);
                Ok(CoverageRecord {
                    job_id: row.try_get(0).map_err(get)?,
                    run_id: match row.try_get::<Option<i64>, _>(1).map_err(get)? {
                        Some(r) => Some(to_u32("coverage run_id", r)?),
                        None => None,
                    },
                    report: row.try_get(2).map_err(get)?,
                    created_at: from_micros("coverage time", row.try_get(3).map_err(get)?)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl LeaseStore for SqlStore {
    async fn try_lease(
        &self,
        job_id: JobId,
        owner: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let now = micros(jiff::Timestamp::now());
        let res = sqlx::query(
            "INSERT INTO job_leases (job_id, owner, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE job_leases.expires_at < $4 OR job_leases.owner = excluded.owner",
        )
        .bind(job_id)
        .bind(owner)
        .bind(now + ttl.as_micros() as i64)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(q("take a job lease"))?;
        Ok(res.rows_affected() == 1)
    }

    async fn renew_leases(&self, owner: &str, ttl: std::time::Duration) -> Result<u64> {
        let until = micros(jiff::Timestamp::now()) + ttl.as_micros() as i64;
        let res = sqlx::query("UPDATE job_leases SET expires_at = $1 WHERE owner = $2")
            .bind(until)
            .bind(owner)
            .execute(&self.writer)
            .await
            .map_err(q("renew job leases"))?;
        Ok(res.rows_affected())
    }

    async fn release_lease(&self, job_id: JobId, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM job_leases WHERE job_id = $1 AND owner = $2")
            .bind(job_id)
            .bind(owner)
            .execute(&self.writer)
            .await
            .map_err(q("release a job lease"))?;
        Ok(())
    }

    async fn hand_over_lease(&self, job_id: JobId, owner: &str) -> Result<()> {
        // Expired, not deleted: the row still names the last owner, so the
        // instance that takes the job over can say whose it was.
        sqlx::query("UPDATE job_leases SET expires_at = 0 WHERE job_id = $1 AND owner = $2")
            .bind(job_id)
            .bind(owner)
            .execute(&self.writer)
            .await
            .map_err(q("hand a job lease over"))?;
        Ok(())
    }

    async fn take_lease_from(
        &self,
        job_id: JobId,
        from: &str,
        to: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let until = micros(jiff::Timestamp::now()) + ttl.as_micros() as i64;
        let res = sqlx::query(
            "UPDATE job_leases SET owner = $1, expires_at = $2 WHERE job_id = $3 AND owner = $4",
        )
        .bind(to)
        .bind(until)
        .bind(job_id)
        .bind(from)
        .execute(&self.writer)
        .await
        .map_err(q("take a job lease over"))?;
        Ok(res.rows_affected() == 1)
    }

    async fn lease_owner(&self, job_id: JobId) -> Result<Option<(String, bool)>> {
        let row = sqlx::query("SELECT owner, expires_at FROM job_leases WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(q("read a job lease"))?;
        let Some(r) = row else { return Ok(None) };
        let owner: String = r.try_get(0).map_err(|e| corrupt("lease row", e))?;
        let expires: i64 = r.try_get(1).map_err(|e| corrupt("lease row", e))?;
        Ok(Some((owner, expires < micros(jiff::Timestamp::now()))))
    }

    async fn leases(&self) -> Result<Vec<(JobId, String, bool)>> {
        let now = micros(jiff::Timestamp::now());
        let rows = sqlx::query("SELECT job_id, owner, expires_at FROM job_leases ORDER BY job_id")
            .fetch_all(&self.pool)
            .await
            .map_err(q("read job leases"))?;
        rows.iter()
            .map(|r| {
                let get = |e| corrupt("lease row", e);
                Ok((
                    r.try_get::<i64, _>(0).map_err(get)?,
                    r.try_get::<String, _>(1).map_err(get)?,
                    r.try_get::<i64, _>(2).map_err(get)? < now,
                ))
            })
            .collect()
    }

    async fn expired_leases(&self) -> Result<Vec<(JobId, String)>> {
        let rows = sqlx::query(
            "SELECT job_id, owner FROM job_leases WHERE expires_at < $1 ORDER BY job_id",
        )
        .bind(micros(jiff::Timestamp::now()))
        .fetch_all(&self.pool)
        .await
        .map_err(q("read expired leases"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<i64, _>(0)
                        .map_err(|e| corrupt("lease row", e))?,
                    r.try_get::<String, _>(1)
                        .map_err(|e| corrupt("lease row", e))?,
                ))
            })
            .collect()
    }
}

#[async_trait]
impl TargetLockStore for SqlStore {
    async fn lock_targets(
        &self,
        job_id: JobId,
        target_ids: &[String],
        ttl: std::time::Duration,
        all: bool,
    ) -> Result<Vec<String>> {
        let now = micros(jiff::Timestamp::now());
        let until = now + ttl.as_micros() as i64;
        let mut tx = self.begin_write("lock targets").await?;
        let mut locked = Vec::new();
        for id in target_ids {
            let res = sqlx::query(
                "INSERT INTO target_locks (target_id, job_id, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (target_id) DO UPDATE SET job_id = excluded.job_id, expires_at = excluded.expires_at \
                 WHERE target_locks.expires_at < $4 OR target_locks.job_id = excluded.job_id",
            )
            .bind(id.as_str())
            .bind(job_id)
            .bind(until)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(q("lock a target"))?;
            if res.rows_affected() == 1 {
                locked.push(id.clone());
            } else if all {
                tx.rollback().await.map_err(q("lock targets"))?;
                return Ok(Vec::new());
            }
        }
        tx.commit().await.map_err(q("lock targets"))?;
        Ok(locked)
    }

    async fn refresh_target_locks(&self, job_id: JobId, ttl: std::time::Duration) -> Result<()> {
        let until = micros(jiff::Timestamp::now()) + ttl.as_micros() as i64;
        sqlx::query("UPDATE target_locks SET expires_at = $1 WHERE job_id = $2")
            .bind(until)
            .bind(job_id)
            .execute(&self.writer)
            .await
            .map_err(q("refresh target locks"))?;
        Ok(())
    }

    async fn unlock_job_targets(&self, job_id: JobId) -> Result<u64> {
        let res = sqlx::query("DELETE FROM target_locks WHERE job_id = $1")
            .bind(job_id)
            .execute(&self.writer)
            .await
            .map_err(q("unlock a job's targets"))?;
        Ok(res.rows_affected())
    }

    async fn unlock_targets(&self, job_id: JobId, target_ids: &[String]) -> Result<()> {
        let mut tx = self.begin_write("unlock targets").await?;
        for id in target_ids {
            sqlx::query("DELETE FROM target_locks WHERE target_id = $1 AND job_id = $2")
                .bind(id.as_str())
                .bind(job_id)
                .execute(&mut *tx)
                .await
                .map_err(q("unlock a target"))?;
        }
        tx.commit().await.map_err(q("unlock targets"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn packed_and_row_reads_agree() {
        use crate::{EventStore, JobStore, NewJob};
        let mut store = SqlStore::open("sqlite::memory:").await.unwrap();
        let job = store
            .create_job(NewJob {
                name: "p".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let t0 = jiff::Timestamp::from_microsecond(1_700_000_000_000_000).unwrap();
        let events: Vec<NewEvent> = (0..(EVENTS_PER_PACK * 2 + 7))
            .map(|i| NewEvent {
                kind: if i % 9 == 0 {
                    EventKind::Job
                } else {
                    EventKind::Test
                },
                job_id: job,
                run_id: (i % 3) as u32,
                test_name: (i % 2 == 0).then(|| format!("t\"{i}\"\n\u{1f}")),
                test_attempt: (i % 4 != 0).then_some((i % 5) as u32),
                step_label: (i % 3 == 0).then(|| "ステップ".to_string()),
                target: (i % 2 == 1).then(|| Target::with_id(format!("h{i}"))),
                name: format!("N{}", i % 6),
                payload: (i % 5 != 0).then(|| serde_json::json!({"i": i, "s": "\\ \" \u{0}"})),
                emit_time: t0 + std::time::Duration::from_micros(i as u64),
            })
            .collect();
        store.append_events(&events).await.unwrap();
        let queries = [
            EventQuery::for_job(job),
            EventQuery {
                run_id: Some(1),
                names: vec!["N1".into(), "N4".into()],
                ..EventQuery::for_job(job)
            },
            EventQuery {
                after_seq: Some(100),
                limit: Some(1500),
                ..Default::default()
            },
            EventQuery::for_job(job + 1),
        ];
        for query in &queries {
            store.packed_reads = true;
            let packed = store.query_events(query).await.unwrap();
            store.packed_reads = false;
            let rows = store.query_events(query).await.unwrap();
            assert_eq!(packed, rows, "{query:?}");
        }
        store.packed_reads = false;
        let all: Vec<NewEvent> = store
            .query_events(&queries[0])
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(all, events);
    }

    #[test]
    fn default_path_follows_xdg_then_home() {
        let p = |x: Option<&str>, h: Option<&str>| {
            sqlite_path_from(x.map(OsString::from), h.map(OsString::from))
        };
        assert_eq!(
            p(Some("/x/data"), Some("/home/u")),
            PathBuf::from("/x/data/prova/prova.db")
        );
        assert_eq!(
            p(Some(""), Some("/home/u")),
            PathBuf::from("/home/u/.local/share/prova/prova.db")
        );
        assert_eq!(
            p(Some("rel"), Some("/home/u")),
            PathBuf::from("/home/u/.local/share/prova/prova.db")
        );
        assert_eq!(p(None, None), PathBuf::from("prova.db"));
        assert_eq!(p(None, Some("")), PathBuf::from("prova.db"));
    }

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:///tmp/a@b.db"), "sqlite:///tmp/a@b.db");
    }

    #[test]
    fn insert_sql_numbers_every_parameter() {
        let s = insert_events_sql(Backend::Postgres, 2);
        assert!(s.ends_with(
            "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11),($12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22)"
        ));
        let s = insert_events_sql(Backend::Sqlite, 2);
        assert!(s.ends_with("VALUES (?,?,?,?,?,?,?,?,?,?,?),(?,?,?,?,?,?,?,?,?,?,?)"));
    }
}
