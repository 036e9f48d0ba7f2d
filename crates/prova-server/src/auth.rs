//! Bearer-token auth for the API (not for `/healthz` and `/metrics`).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Rejects requests without `Authorization: Bearer <token>` when the server
/// has a token. The comparison takes the same time whatever the input.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = state.config.token.as_deref() else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials)
        .unwrap_or("");
    if constant_time_eq::constant_time_eq(given.as_bytes(), token.as_bytes()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({ "Error": "missing or wrong bearer token" })),
        )
            .into_response()
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 7235 section 2.1: `bearer`, `BEARER`); one or more
/// spaces separate it from the token.
pub fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start_matches(' '))
}

/// Why a configured token is refused at startup.
pub fn check_token(token: &str) -> Result<(), &'static str> {
    if token.trim().is_empty() {
        return Err(
            "the token is empty or only whitespace: set a real secret, or none (loopback only)",
        );
    }
    if token.chars().any(|c| c.is_control() || c == ' ') || !token.is_ascii() {
        return Err(
            "the token must be printable ASCII without spaces (it travels in an HTTP header)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive() {
        assert_eq!(bearer_credentials("Bearer abc"), Some("abc"));
        assert_eq!(bearer_credentials("bearer abc"), Some("abc"));
        assert_eq!(bearer_credentials("BEARER  abc"), Some("abc"));
        assert_eq!(bearer_credentials("Basic abc"), None);
        assert_eq!(bearer_credentials("Bearerabc"), None);
        assert_eq!(bearer_credentials("Bearer"), None);
    }

    #[test]
    fn blank_tokens_are_refused() {
        assert!(check_token(" ").is_err());
        assert!(check_token("\t\n").is_err());
        assert!(check_token("").is_err());
        assert!(check_token("a b").is_err());
        assert!(check_token("s3cret").is_ok());
    }
}
