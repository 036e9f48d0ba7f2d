//! Who may see the pages: the server's token, as for the API.
//!
//! - A script sends `Authorization: Bearer <token>`, as to the API.
//! - A browser posts the token once to `/login` and gets a session cookie
//!   (`HttpOnly`, `SameSite=Strict`, `Secure` behind https). The cookie is
//!   stateless and signed: `expiry.nonce.mac`, the MAC an HMAC-SHA256 under
//!   a key derived from the token, so every replica sharing the token
//!   accepts it and changing the token logs everyone out.
//! - Every form that changes something carries a CSRF token, the HMAC of
//!   the session's nonce; a POST without the right one is refused (403).
//!   Bearer requests need none: a browser never adds that header by itself.
//!
//! Without a token (loopback only) the pages are open, but a browser still
//! gets an anonymous session so its forms still carry CSRF tokens: any web
//! page the user visits could otherwise post to `127.0.0.1`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "prova_session";
/// How long a login lasts.
pub const SESSION_SECS: i64 = 12 * 3600;

type HmacSha256 = hmac::Hmac<Sha256>;

/// The key that signs sessions and CSRF tokens.
pub struct WebKeys {
    key: [u8; 32],
}

impl WebKeys {
    /// With a token, the key is derived from it (replicas agree); without
    /// one, it is random for this process.
    pub fn new(token: Option<&str>) -> WebKeys {
        let key = match token {
            Some(t) => mac_bytes(t.as_bytes(), &[b"prova web session key v1"]),
            None => rand::random(),
        };
        WebKeys { key }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        mac_bytes(&self.key, parts)
    }

    /// A new session valid until `now + SESSION_SECS`: the cookie value.
    pub fn issue(&self, now: i64) -> (Session, String) {
        let nonce = hex(&rand::random::<[u8; 16]>());
        let expires = now.saturating_add(SESSION_SECS);
        let sig = hex(&self.mac(&[b"session", expires.to_string().as_bytes(), nonce.as_bytes()]));
        (
            Session {
                nonce: nonce.clone(),
            },
            format!("{expires}.{nonce}.{sig}"),
        )
    }

    /// The session a cookie value stands for, if it is signed by this key
    /// and not expired.
    pub fn check(&self, value: &str, now: i64) -> Option<Session> {
        let mut parts = value.splitn(3, '.');
        let (expires, nonce, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let want = hex(&self.mac(&[b"session", expires.as_bytes(), nonce.as_bytes()]));
        if !constant_time_eq::constant_time_eq(want.as_bytes(), sig.as_bytes()) {
            return None;
        }
        (expires.parse::<i64>().ok()? > now).then(|| Session {
            nonce: nonce.to_string(),
        })
    }

    /// The CSRF token of a session (the value forms carry).
    pub fn csrf(&self, session: &Session) -> String {
        hex(&self.mac(&[b"csrf", session.nonce.as_bytes()]))
    }

    /// Whether `given` is the session's CSRF token (constant time).
    pub fn csrf_ok(&self, session: &Session, given: &str) -> bool {
        constant_time_eq::constant_time_eq(self.csrf(session).as_bytes(), given.as_bytes())
    }
}

fn mac_bytes(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        m.update(&(p.len() as u64).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A browser's session (from its cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    nonce: String,
}

/// Who is looking at a page: put in the request's extensions by
/// [`require_viewer`].
#[derive(Debug, Clone)]
pub enum Viewer {
    /// A script with the bearer token: no CSRF token needed.
    Bearer,
    /// A browser with a session cookie.
    Session(Session),
}

impl Viewer {
    /// The CSRF token forms on the page carry (none for bearer clients).
    pub fn csrf(&self, keys: &WebKeys) -> Option<String> {
        match self {
            Viewer::Bearer => None,
            Viewer::Session(s) => Some(keys.csrf(s)),
        }
    }

    /// Whether a POST from this viewer with this CSRF field may act.
    pub fn may_act(&self, keys: &WebKeys, given: Option<&str>) -> bool {
        match self {
            Viewer::Bearer => true,
            Viewer::Session(s) => given.is_some_and(|g| keys.csrf_ok(s, g)),
        }
    }

    /// Recorded as the requestor of actions taken from the pages.
    pub fn requestor(&self) -> &'static str {
        match self {
            Viewer::Bearer => "web (bearer)",
            Viewer::Session(_) => "web",
        }
    }
}

/// The session cookie's value in a request, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// Whether the browser reached us over https (through a proxy that says
/// so: the server itself speaks plain HTTP).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a new session (or, with `max_age` 0, of a
/// logout).
pub fn set_cookie(value: &str, max_age_secs: i64, headers: &HeaderMap) -> HeaderValue {
    let c = Cookie::build((COOKIE, value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(over_https(headers))
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .build();
    HeaderValue::from_str(&c.to_string()).expect("cookie values are hex and digits")
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Guards the pages: lets bearer clients and valid sessions through (with
/// a [`Viewer`] in the request's extensions); sends other browsers to
/// `/login` (a GET) or refuses them (401). Without a server token, every
/// browser gets a session, issued here on its first request.
pub async fn require_viewer(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let keys = &state.web;
    let headers = req.headers();
    if let Some(token) = state.config.token.as_deref() {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::auth::bearer_credentials);
        if let Some(given) = bearer {
            if constant_time_eq::constant_time_eq(given.as_bytes(), token.as_bytes()) {
                req.extensions_mut().insert(Viewer::Bearer);
                return next.run(req).await;
            }
            return (StatusCode::UNAUTHORIZED, "wrong bearer token").into_response();
        }
    }
    if let Some(s) = session_cookie(headers).and_then(|v| keys.check(&v, now())) {
        req.extensions_mut().insert(Viewer::Session(s));
        return next.run(req).await;
    }
    if state.config.token.is_none() {
        let (session, value) = keys.issue(now());
        let cookie = set_cookie(&value, SESSION_SECS, req.headers());
        req.extensions_mut().insert(Viewer::Session(session));
        let mut resp = next.run(req).await;
        resp.headers_mut().append(header::SET_COOKIE, cookie);
        return resp;
    }
    if req.method() == Method::GET || req.method() == Method::HEAD {
        let target = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let q = serde_urlencoded::to_string([("next", target)]).unwrap_or_default();
        return Redirect::to(&format!("/login?{q}")).into_response();
    }
    (StatusCode::UNAUTHORIZED, "log in first: /login").into_response()
}

/// Where to go after logging in: only a path on this server (an open
/// redirect would let a link send a fresh login elsewhere).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_checks_only_under_its_key_and_before_expiry() {
        let keys = WebKeys::new(Some("s3cret"));
        let (s, cookie) = keys.issue(1000);
        assert_eq!(keys.check(&cookie, 1001), Some(s.clone()));
        assert_eq!(keys.check(&cookie, 1000 + SESSION_SECS), None, "expired");
        assert_eq!(WebKeys::new(Some("other")).check(&cookie, 1001), None);
        // Another replica with the same token accepts it.
        assert_eq!(WebKeys::new(Some("s3cret")).check(&cookie, 1001), Some(s));
    }

    #[test]
    fn a_tampered_cookie_is_refused() {
        let keys = WebKeys::new(Some("s3cret"));
        let (_, cookie) = keys.issue(1000);
        let (exp, rest) = cookie.split_once('.').unwrap();
        let later = format!("{}.{rest}", exp.parse::<i64>().unwrap() + 1_000_000);
        assert_eq!(keys.check(&later, 1001), None);
        assert_eq!(keys.check("garbage", 1001), None);
        assert_eq!(keys.check("1.2.3", 0), None);
        assert_eq!(keys.check("", 0), None);
    }

    #[test]
    fn csrf_tokens_belong_to_one_session() {
        let keys = WebKeys::new(Some("s3cret"));
        let (a, _) = keys.issue(0);
        let (b, _) = keys.issue(0);
        let ta = keys.csrf(&a);
        assert!(keys.csrf_ok(&a, &ta));
        assert!(!keys.csrf_ok(&b, &ta));
        assert!(!keys.csrf_ok(&a, ""));
        let viewer = Viewer::Session(a);
        assert!(viewer.may_act(&keys, Some(&ta)));
        assert!(!viewer.may_act(&keys, None));
        assert!(Viewer::Bearer.may_act(&keys, None));
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/jobs/3?x=1")), "/jobs/3?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let mut h = HeaderMap::new();
        let v = set_cookie("1.ab.cd", 60, &h);
        let s = v.to_str().unwrap();
        assert!(
            s.contains("HttpOnly") && s.contains("SameSite=Strict"),
            "{s}"
        );
        assert!(!s.contains("Secure"), "{s}");
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(
            set_cookie("1.ab.cd", 60, &h)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }
}
