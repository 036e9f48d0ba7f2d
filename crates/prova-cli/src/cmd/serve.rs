//! `prova serve`.

use std::process::ExitCode;

use prova_server::ServerConfig;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::ServeArgs;
use crate::{exit, store};

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    // A blank token would let anyone in who sends `Bearer ` (or nothing
    // that a proxy trims): refuse it rather than guess what was meant.
    if let Some(token) = &args.token
        && let Err(why) = prova_server::auth::check_token(token)
    {
        eprintln!("prova: --token / PROVA_TOKEN: {why}");
        return Ok(ExitCode::from(exit::INVALID));
    }
    let audit_spec = match &args.coverage_spec {
        Some(path) => match prova_coverage::spec::Spec::from_file(path) {
            Ok(spec) => Some(std::sync::Arc::new(spec)),
            Err(e) => {
                eprintln!("prova: --coverage-spec: {}", crate::output::error_chain(&e));
                return Ok(ExitCode::from(exit::INVALID));
            }
        },
        None => None,
    };
    let coverage_report = match &args.coverage_report {
        Some(path) => match prova_coverage::report::Report::from_file(path) {
            Ok(report) => Some(std::sync::Arc::new(report)),
            Err(e) => {
                eprintln!(
                    "prova: --coverage-report: {}",
                    crate::output::error_chain(&e)
                );
                return Ok(ExitCode::from(exit::INVALID));
            }
        },
        None => None,
    };
    let store = store::open(&args.store).await?;
    let config = ServerConfig {
        listen: args.listen,
        token: args.token.clone(),
        server_id: args
            .server_id
            .clone()
            .unwrap_or_else(prova_server::default_server_id),
        pause_timeout: args.pause_timeout,
        max_body: args.max_body,
        // Descriptors come from clients: the files they name (CSV
        // inventories, URI steps) stay under a root, the working directory
        // unless --files-root says otherwise.
        files_root: Some(match &args.files_root {
            Some(dir) => dir.clone(),
            None => std::env::current_dir()?,
        }),
        artifacts_root: store::artifacts_root(&args.store),
        header_timeout: args.header_timeout,
        audit: prova_server::audit::AuditConfig {
            spec: audit_spec,
            keep_raw: args.audit_keep_raw,
            queue: args.audit_queue as usize,
            max_body: args.audit_max_body,
            ..Default::default()
        },
        coverage_report,
    };
    if config.token.is_none() && !config.listen.ip().is_loopback() {
        eprintln!(
            "prova: refusing to listen on {} without a token: set --token or PROVA_TOKEN",
            config.listen
        );
        return Ok(ExitCode::from(exit::INVALID));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "prova serve: listening on http://{addr} as {} (store {}){}",
        config.server_id,
        store::url(&args.store),
        if config.token.is_none() {
            "; no token: loopback only"
        } else {
            ""
        }
    );
    let state = prova_server::state(config, store, crate::cmd::registry());
    // First SIGTERM/SIGINT: pause and exit; a second one: cancel at once.
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        let _ = first_tx.send(());
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        let _ = second_tx.send(());
    });
    prova_server::serve_with(
        state,
        listener,
        async {
            let _ = first_rx.await;
        },
        async {
            let _ = second_rx.await;
        },
    )
    .await?;
    eprintln!("prova serve: stopped");
    Ok(ExitCode::SUCCESS)
}
