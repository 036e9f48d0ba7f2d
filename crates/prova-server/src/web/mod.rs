//! The dashboard: HTML pages rendered on the server (maud), readable with
//! scripts off; one small script ([`layout::LIVE_JS`]) adds live updates
//! over Server-Sent Events.
//!
//! - `/login`, `/logout`: [`login`]; the session and CSRF rules are in
//!   [`session`].
//! - `/`: the jobs ([`jobs`]); `/live/jobs`: its rows as they change.
//! - `/jobs/{id}`: a job ([`job`]): status tree, waits, JUnit cases,
//!   artifacts, events, and the stop/pause/resume/retry forms;
//!   `/live/jobs/{id}`: its events as they happen.
//! - `/history`: a test's or JUnit case's history ([`history`], with the
//!   duration chart of [`trend`]); `/compare/{a}/{b}`: two jobs compared
//!   ([`compare`]).
//! - `/coverage`: the API coverage sunburst and lists ([`coverage`]).
//!
//! Every page is behind [`session::require_viewer`]: the server's token,
//! as a bearer header or through the login form's cookie.

pub mod compare;
pub mod coverage;
pub mod history;
pub mod job;
pub mod jobs;
pub mod layout;
pub mod login;
pub mod session;
pub mod trend;
pub mod waits;

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};

use tower_http::timeout::TimeoutLayer;

use crate::AppState;
use crate::error::ApiError;
use layout::Chrome;

/// The pages' routes; `/login` and the static files are open, the rest
/// behind [`session::require_viewer`].
pub fn routes(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(jobs::page))
        .route("/jobs/{id}", get(job::page))
        .route("/jobs/{id}/junit.xml", get(job::junit))
        .route("/jobs/{id}/artifacts/{*path}", get(job::artifact))
        .route("/jobs/{id}/{action}", post(job::act))
        .route("/history", get(history::page))
        .route("/compare", get(compare::form))
        .route("/compare/{a}/{b}", get(compare::page))
        .route("/coverage", get(coverage::page))
        .route("/logout", post(login::logout))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ));
    // Live streams last as long as the page is open: no request timeout.
    let streams = Router::new()
        .route("/live/jobs", get(jobs::live))
        .route("/live/jobs/{id}", get(job::live));
    let guarded = pages.merge(streams).layer(middleware::from_fn_with_state(
        state,
        session::require_viewer,
    ));
    Router::new()
        .route("/login", get(login::form).post(login::submit))
        .route(
            "/static/prova.css",
            get(|| async { asset("text/css", layout::CSS) }),
        )
        .route(
            "/static/live.js",
            get(|| async { asset("text/javascript", layout::LIVE_JS) }),
        )
        .merge(guarded)
        .layer(middleware::map_response(security_headers))
}

/// Headers every page carries: scripts, styles, fetches and form posts
/// only to this server; no framing (a framed page's buttons could be
/// clicked by a page on top, which the CSRF token does not stop).
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    resp
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// The header of a page for this server.
pub fn chrome<'a>(state: &AppState, title: &'a str, csrf: Option<&'a str>) -> Chrome<'a> {
    Chrome {
        title,
        csrf,
        login: state.config.token.is_some(),
    }
}

/// A page that could not be shown: an HTML page with the status and a
/// message (internal faults are opaque, as in the API).
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    title: String,
    csrf: Option<String>,
    login: bool,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            csrf: None,
            login: false,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, message)
    }

    /// The page's header (log-out form) on the error page too.
    pub fn with(mut self, chrome: &Chrome<'_>) -> PageError {
        self.csrf = chrome.csrf.map(str::to_string);
        self.login = chrome.login;
        self
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        let (status, message) = e.public();
        PageError::new(status, message)
    }
}

impl From<prova_store::StoreError> for PageError {
    fn from(e: prova_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<crate::manager::ManagerError> for PageError {
    fn from(e: crate::manager::ManagerError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let chrome = Chrome {
            title: &self.title,
            csrf: self.csrf.as_deref(),
            login: self.login,
        };
        (self.status, layout::error_page(&chrome, &self.message)).into_response()
    }
}
