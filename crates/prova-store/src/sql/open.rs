//! Opening a store: URLs and paths, connection pools, pragmas and
//! migrations.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::{Backend, SqlStore};
use crate::{Result, StoreError};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");
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
                pg: None,
                sqlite_writer: None,
                tracked: Default::default(),
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
        let opts = opts.create_if_missing(true);
        let any_opts =
            AnyConnectOptions::from_url(&opts.to_url_lossy()).map_err(|e| open_err(url, e))?;
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
        // Event appends on sqlx's own driver: the same pragmas (set as
        // options, which it applies on connect), one connection.
        let native = opts
            .busy_timeout(Duration::from_millis(5000))
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .pragma("cache_size", "-16384");
        let sqlite_writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(native);
        tracing::debug!(url, "opened SQLite store");
        Ok(SqlStore {
            pool,
            writer,
            backend: Backend::Sqlite,
            pg: None,
            sqlite_writer: Some(sqlite_writer),
            tracked: Default::default(),
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
        let pg_opts = PgConnectOptions::from_str(url).map_err(|e| open_err(url, e))?;
        let pg = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(pg_opts);
        tracing::debug!(url = redact(url), "opened PostgreSQL store");
        Ok(SqlStore {
            writer: pool.clone(),
            pool,
            backend: Backend::Postgres,
            pg: Some(pg),
            sqlite_writer: None,
            tracked: Default::default(),
            packed_reads: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
