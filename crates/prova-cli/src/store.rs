//! Opening the store named by `--db` / `PROVA_DB`, or the default.

use std::sync::Arc;

use anyhow::Context;
use prova_store::{SqlStore, Store};

use crate::cli::StoreArgs;

/// A store URL from `--db`: a URL as it is, a plain path as SQLite.
pub fn url(args: &StoreArgs) -> String {
    match &args.db {
        Some(db) if db.contains("://") || db.starts_with("sqlite:") => db.clone(),
        Some(path) => format!("sqlite://{path}"),
        None => format!("sqlite://{}", prova_store::default_sqlite_path().display()),
    }
}

pub async fn open(args: &StoreArgs) -> anyhow::Result<Arc<dyn Store>> {
    let url = url(args);
    let store = SqlStore::open(&url)
        .await
        .with_context(|| format!("opening the store {url}"))?;
    Ok(Arc::new(store))
}

/// The SQLite file a store URL names (`None` for PostgreSQL and memory).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    url.strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.starts_with(":memory:") && !p.contains("mode=memory"))
        .map(|p| std::path::PathBuf::from(p.split('?').next().unwrap_or(p)))
}

/// Opens the store for a read-only command (`jobs`, `status`, `events`,
/// `list`): `None` when it is a SQLite file that does not exist, which is
/// then left uncreated (and so are its directories).
pub async fn open_existing(args: &StoreArgs) -> anyhow::Result<Option<Arc<dyn Store>>> {
    if let Some(file) = sqlite_file(&url(args))
        && !file.exists()
    {
        return Ok(None);
    }
    open(args).await.map(Some)
}

/// What a read-only command says when the store does not exist.
pub fn missing(args: &StoreArgs) -> String {
    format!(
        "no store at {}: nothing recorded yet (`prova run` creates it; --db or PROVA_DB name another)",
        url(args)
    )
}

/// Where jobs keep artifacts: `artifacts/` beside a SQLite file, else beside
/// the default store.
pub fn artifacts_root(args: &StoreArgs) -> std::path::PathBuf {
    let db = sqlite_file(&url(args)).unwrap_or_else(prova_store::default_sqlite_path);
    db.parent()
        .map(|d| d.join("artifacts"))
        .unwrap_or_else(|| "artifacts".into())
}
