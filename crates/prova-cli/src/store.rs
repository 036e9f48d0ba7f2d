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

/// Where jobs keep artifacts: `artifacts/` beside a SQLite file, else beside
/// the default store.
pub fn artifacts_root(args: &StoreArgs) -> std::path::PathBuf {
    let url = url(args);
    let sqlite_file = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .filter(|p| !p.starts_with(":memory:"))
        .map(|p| std::path::PathBuf::from(p.split('?').next().unwrap_or(p)));
    let db = sqlite_file.unwrap_or_else(prova_store::default_sqlite_path);
    db.parent()
        .map(|d| d.join("artifacts"))
        .unwrap_or_else(|| "artifacts".into())
}
