//! `prova serve`: the job lifecycle over HTTP.
//!
//! - [`router`]: prova's JSON API under `/api/v1`, ConTest's form-encoded
//!   API at the root (`/start`, `/status`, ...), `/healthz` and `/metrics`.
//! - [`web`]: the dashboard's pages (`/`, `/jobs/{id}`, `/history`,
//!   `/compare/{a}/{b}`, `/coverage`, `/login`).
//! - [`manager::Manager`]: runs jobs, cancels, pauses, resumes and retries
//!   them, pauses every job when the server stops and resumes them when it
//!   starts again.
//! - [`audit`] and [`audit_api`]: the live audit sink (kube-apiserver's
//!   audit webhook → endpoint hits in the store) and its queries.
//! - [`artifacts`]: a job's kept files, listed and downloaded.
//! - [`history_api`]: a test's history and two jobs compared.
//! - [`serve`]: binds, serves until told to stop, then pauses its jobs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = std::sync::Arc::new(prova_store::SqlStore::open("sqlite:///tmp/prova.db").await?);
//! let config = prova_server::ServerConfig::default();
//! prova_server::serve(config, store, prova_engine::plugins::registry(), std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod artifacts;
pub mod audit;
pub mod audit_api;
pub mod audit_metrics;
pub mod auth;
pub mod contest;
pub mod error;
pub mod extract;
pub mod history_api;
pub mod listen;
pub mod manager;
pub mod metrics;
pub mod openapi;
pub mod validate;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use prova_engine::Registry;
use prova_store::Store;

pub use api::router;
use manager::Manager;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Bearer token required on the API; `None` is allowed only on loopback.
    pub token: Option<String>,
    /// This instance's name, recorded as the owner of the jobs it runs.
    pub server_id: String,
    /// How long a pause (shutdown) waits for non-resumable steps.
    pub pause_timeout: Duration,
    /// Largest request body accepted.
    pub max_body: usize,
    /// Files named in descriptors (CSV inventories, URI steps) must be here.
    pub files_root: Option<PathBuf>,
    pub artifacts_root: PathBuf,
    /// Time a client has to send a request's headers (also how long an
    /// idle keep-alive connection stays open).
    pub header_timeout: Duration,
    /// The live audit sink (`POST /api/v1/audit/events`).
    pub audit: audit::AuditConfig,
    /// A saved coverage report for the `/coverage` page when there is no
    /// live sink (`prova serve --coverage-report`).
    pub coverage_report: Option<Arc<prova_coverage::report::Report>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            server_id: default_server_id(),
            pause_timeout: Duration::from_secs(30),
            max_body: 1 << 20,
            files_root: None,
            artifacts_root: std::env::temp_dir().join("prova-artifacts"),
            header_timeout: listen::ConnLimits::default().header_timeout,
            audit: audit::AuditConfig::default(),
            coverage_report: None,
        }
    }
}

/// `prova-<hostname>`: stable across restarts of the same machine, so a
/// restarted server recognises the jobs it owned.
pub fn default_server_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("prova-{host}")
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without a token: set --token (or PROVA_TOKEN), or listen on a loopback address"
    )]
    NoTokenOffLoopback(SocketAddr),
    #[error("unusable token: {0}")]
    BadToken(&'static str),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot recover jobs from the store")]
    Recover(#[source] prova_store::StoreError),
    #[error("server failed")]
    Io(#[source] std::io::Error),
}

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    pub manager: Arc<Manager>,
    pub store: Arc<dyn Store>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<metrics::Metrics>,
    pub audit: Arc<audit::AuditSink>,
    /// Signs the pages' session cookies and CSRF tokens.
    pub web: Arc<web::session::WebKeys>,
}

/// Builds the state: the manager, metrics and audit sink over `store`.
/// With an audit spec this starts the sink's writer, so it must run inside
/// a Tokio runtime then.
pub fn state(config: ServerConfig, store: Arc<dyn Store>, registry: Registry) -> AppState {
    let audit_metrics = audit_metrics::AuditMetrics::default();
    let mut metrics = metrics::Metrics::new();
    audit_metrics.register(metrics.registry_mut());
    let metrics = Arc::new(metrics);
    let manager = Manager::new(store.clone(), registry, &config, metrics.clone());
    let audit = audit::AuditSink::start(config.audit.clone(), store.clone(), audit_metrics);
    let web = Arc::new(web::session::WebKeys::new(config.token.as_deref()));
    AppState {
        manager,
        store,
        config: Arc::new(config),
        metrics,
        audit,
        web,
    }
}

/// Serves until `shutdown` resolves; then stops taking requests, pauses the
/// running jobs (cancelling those that cannot pause within the pause
/// timeout) and returns. `hard_shutdown` resolving during that cancels at
/// once.
pub async fn serve_with(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hard_shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = listener.local_addr().map_err(ServeError::Io)?;
    if let Some(token) = &state.config.token {
        auth::check_token(token).map_err(ServeError::BadToken)?;
    }
    if state.config.token.is_none() && !addr.ip().is_loopback() {
        return Err(ServeError::NoTokenOffLoopback(addr));
    }
    if state.config.token.is_none() {
        tracing::warn!("no token: the API is open to anyone who can reach {addr} (loopback only)");
    }
    state.manager.recover().await.map_err(ServeError::Recover)?;
    state.manager.spawn_background();
    let app: Router = router(state.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let limits = listen::ConnLimits {
        header_timeout: state.config.header_timeout,
    };
    let server = tokio::spawn(listen::serve_connections(
        listener,
        app,
        limits,
        async move {
            let _ = stop_rx.await;
        },
    ));
    shutdown.await;
    tracing::info!("stopping: no new requests; pausing running jobs");
    let _ = stop_tx.send(());
    let manager = state.manager.clone();
    let timeout = state.config.pause_timeout;
    tokio::select! {
        _ = manager.shutdown(timeout) => {}
        _ = hard_shutdown => {
            tracing::warn!("second signal: cancelling every job now");
            state.manager.cancel_all().await;
        }
    }
    // Open event streams end with the jobs; give the server a moment.
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    Ok(())
}

/// Binds `config.listen` and serves (see [`serve_with`]).
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    registry: Registry,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let addr = config.listen;
    if let Some(token) = &config.token {
        auth::check_token(token).map_err(ServeError::BadToken)?;
    }
    if config.token.is_none() && !addr.ip().is_loopback() {
        return Err(ServeError::NoTokenOffLoopback(addr));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    serve_with(
        state(config, store, registry),
        listener,
        shutdown,
        std::future::pending(),
    )
    .await
}
