//! Accepting connections with timeouts that `axum::serve` does not have.
//!
//! Every connection is HTTP/1.1 served by hyper with a timer, so that:
//! - a client has [`ConnLimits::header_timeout`] to send a request's whole
//!   header block: a slowloris sending a byte a second is cut off, and so is
//!   a connection that opens and says nothing, or that stays idle between
//!   keep-alive requests (hyper starts the same clock while it waits for the
//!   next request's head);
//! - a long response (a Server-Sent Events stream) is not idle and is not
//!   cut: the clock runs only while a request head is awaited.
//!
//! Stopping: no new connections; connections between requests close at
//! once, requests in flight finish.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time allowed to send a request's headers, counted from the moment
    /// the server waits for them (which includes idle keep-alive time).
    pub header_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(15),
        }
    }
}

/// Serves `app` on `listener` until `stop` resolves, then waits for the
/// requests in flight (the caller bounds that wait).
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    stop: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: do not spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Events stream out one by one: do not hold them back (Nagle).
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(|req: axum::http::Request<Incoming>| req.map(Body::new));
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "connection closed: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
