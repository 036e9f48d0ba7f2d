//! A fresh, empty store for each round of a bench: a SQLite file in a
//! temporary directory, or a new schema on a PostgreSQL server.

use std::path::PathBuf;

use anyhow::Context;
use sqlx::Connection;

/// Where a bench's stores live; [`Fresh::cleanup`] removes them.
pub enum Fresh {
    /// SQLite files in this directory.
    Sqlite(PathBuf),
    /// Schemas on the server at this URL (the ones made so far).
    Postgres { url: String, schemas: Vec<String> },
}

impl Fresh {
    /// SQLite files in a new temporary directory unless `db` is a
    /// PostgreSQL URL.
    pub fn new(db: Option<&str>, what: &str) -> anyhow::Result<Fresh> {
        match db {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(Fresh::Postgres {
                    url: url.to_string(),
                    schemas: Vec::new(),
                })
            }
            Some(other) => anyhow::bail!(
                "--db {other}: want a postgres:// URL (without --db the bench uses fresh SQLite files)"
            ),
            None => {
                let dir =
                    std::env::temp_dir().join(format!("prova-bench-{what}-{}", std::process::id()));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Ok(Fresh::Sqlite(dir))
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Fresh::Sqlite(_) => "SQLite",
            Fresh::Postgres { .. } => "PostgreSQL",
        }
    }

    /// The URL of a new empty store named `name`.
    pub async fn store_url(&mut self, name: &str) -> anyhow::Result<String> {
        match self {
            Fresh::Sqlite(dir) => Ok(format!("sqlite://{}/{name}.db", dir.display())),
            Fresh::Postgres { url, schemas } => {
                let schema = format!("prova_bench_{}_{name}", std::process::id())
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
                let mut conn = sqlx::PgConnection::connect(url)
                    .await
                    .with_context(|| format!("connecting to {url}"))?;
                for sql in [
                    format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
                    format!("CREATE SCHEMA {schema}"),
                ] {
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                        .with_context(|| format!("creating schema {schema}"))?;
                }
                schemas.push(schema.clone());
                let sep = if url.contains('?') { '&' } else { '?' };
                Ok(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
            }
        }
    }

    /// Removes every store made.
    pub async fn cleanup(self) {
        match self {
            Fresh::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Fresh::Postgres { url, schemas } => {
                let Ok(mut conn) = sqlx::PgConnection::connect(&url).await else {
                    return;
                };
                for s in schemas {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA IF EXISTS {s} CASCADE"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            }
        }
    }
}
