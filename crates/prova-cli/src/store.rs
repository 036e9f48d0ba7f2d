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
