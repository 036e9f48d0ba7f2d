//! `/login`: a form that takes the server's token and sets the session
//! cookie; `/logout` clears it.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Chrome};
use super::session::{self, Viewer};
use super::{PageError, chrome};
use crate::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// Missing counts as wrong (the form shows again), not as a 422.
    #[serde(default)]
    pub token: String,
    pub next: Option<String>,
}

fn login_page(next: &str, error: Option<&str>) -> Markup {
    let chrome = Chrome {
        title: "Log in",
        csrf: None,
        login: false,
    };
    layout::page(
        &chrome,
        html! {
            form.login method="post" action="/login" {
                h1 { "Log in to prova" }
                p { "Enter the server's token (what " code { "prova serve" } " was given with "
                    code { "--token" } " or " code { "PROVA_TOKEN" } ")." }
                @if let Some(e) = error { p.error role="alert" id="login-error" { (e) } }
                label { "Token" input type="password" name="token" autocomplete="current-password" required autofocus; }
                input type="hidden" name="next" value=(next);
                button type="submit" { "Log in" }
            }
        },
    )
}

/// `GET /login`.
pub async fn form(State(state): State<AppState>, Query(q): Query<NextQuery>) -> Response {
    let next = session::safe_next(q.next.as_deref());
    if state.config.token.is_none() {
        // Nothing to log in to: the pages are open on loopback.
        return Redirect::to(&next).into_response();
    }
    login_page(&next, None).into_response()
}

/// `POST /login`: a right token sets the cookie and goes on to `next`.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = session::safe_next(f.next.as_deref());
    let Some(token) = state.config.token.as_deref() else {
        return Redirect::to(&next).into_response();
    };
    if !constant_time_eq::constant_time_eq(f.token.trim().as_bytes(), token.as_bytes()) {
        tracing::warn!("a login with a wrong token");
        return (
            StatusCode::UNAUTHORIZED,
            login_page(&next, Some("Wrong token.")),
        )
            .into_response();
    }
    let (_, value) = state.web.issue(session::now());
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(&value, session::SESSION_SECS, &headers),
        )],
        Redirect::to(&next),
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

/// The `csrf` field of a form body (`application/x-www-form-urlencoded`).
/// Read from the raw body so a bodiless POST (a bearer client's) is no
/// rejection of its own: it simply carries no token.
pub fn csrf_of(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<CsrfForm>(body)
        .ok()
        .and_then(|f| f.csrf)
}

/// `POST /logout` (with the CSRF token): clears the cookie. The session is
/// stateless, so a copied cookie stays valid until it expires or the
/// token changes.
pub async fn logout(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    if !viewer.may_act(&state.web, csrf_of(&body).as_deref()) {
        return Err(csrf_refused(&state, &viewer));
    }
    Ok((
        [(header::SET_COOKIE, session::set_cookie("", 0, &headers))],
        Redirect::to("/login"),
    )
        .into_response())
}

/// The answer to a POST without the right CSRF token.
pub fn csrf_refused(state: &AppState, viewer: &Viewer) -> PageError {
    let csrf = viewer.csrf(&state.web);
    PageError::new(
        StatusCode::FORBIDDEN,
        "Refused: the form's CSRF token is missing or wrong. Reload the page and try again.",
    )
    .with(&chrome(state, "Forbidden", csrf.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::csrf_of;

    #[test]
    fn the_csrf_field_is_read_from_any_form_body() {
        assert_eq!(csrf_of(b"csrf=abc&x=1").as_deref(), Some("abc"));
        assert_eq!(csrf_of(b"x=1"), None);
        assert_eq!(csrf_of(b""), None);
        assert_eq!(csrf_of(b"\xff\xfe"), None);
    }
}
