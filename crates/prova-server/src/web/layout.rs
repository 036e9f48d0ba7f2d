//! The page shell and the small pieces every page uses: times, durations,
//! state and verdict badges (a glyph and a word, never colour alone).

use std::time::Duration;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use prova_core::JobState;
use prova_core::status::Verdict;

/// The stylesheet, served at `/static/prova.css`.
pub const CSS: &str = include_str!("static/prova.css");
/// The live-update script, served at `/static/live.js`.
pub const LIVE_JS: &str = include_str!("static/live.js");

/// What the header shows and the forms carry.
pub struct Chrome<'a> {
    pub title: &'a str,
    /// The viewer's CSRF token (`None` for bearer clients).
    pub csrf: Option<&'a str>,
    /// Whether the server has a token (else there is nothing to log out of).
    pub login: bool,
}

/// A whole page.
pub fn page(chrome: &Chrome<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (chrome.title) " · prova" }
                link rel="stylesheet" href="/static/prova.css";
                script src="/static/live.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "prova" }
                    nav {
                        a href="/" { "Jobs" }
                        a href="/history" { "History" }
                        a href="/compare" { "Compare" }
                        a href="/coverage" { "Coverage" }
                        a href="/api/docs/" { "API" }
                    }
                    @if chrome.login {
                        @if let Some(csrf) = chrome.csrf {
                            form.logout method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page that only says what went wrong.
pub fn error_page(chrome: &Chrome<'_>, message: &str) -> Markup {
    page(
        chrome,
        html! {
            h1 { (chrome.title) }
            p.error role="alert" { (message) }
            p { a href="/" { "Back to the jobs" } }
        },
    )
}

/// A timestamp, to the second in UTC, machine-readable in `datetime`.
pub fn time(t: Option<jiff::Timestamp>) -> Markup {
    match t {
        Some(t) => {
            let shown = t.strftime("%Y-%m-%d %H:%M:%SZ").to_string();
            html! { time datetime=(t.to_string()) title=(t.to_string()) { (shown) } }
        }
        None => html! { span.none { "—" } },
    }
}

/// `1h 02m`, `3m 07s`, `4.2s`, `120ms`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if s >= 10 {
        format!("{s}s")
    } else if d.as_millis() >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The time between two instants (zero if they are out of order).
pub fn between(a: jiff::Timestamp, b: jiff::Timestamp) -> Duration {
    let us = b.as_microsecond().saturating_sub(a.as_microsecond()).max(0);
    Duration::from_micros(us as u64)
}

/// A job state as a badge.
pub fn state_badge(state: Option<JobState>) -> Markup {
    let (class, glyph, word) = match state {
        None => ("pending", "○", "Created"),
        Some(s) => {
            let (class, glyph) = match s {
                JobState::Started => ("running", "▶"),
                JobState::Completed => ("done", "■"),
                JobState::Paused => ("paused", "⏸"),
                JobState::Cancelling => ("running", "…"),
                JobState::Cancelled => ("cancelled", "⊘"),
                JobState::Failed | JobState::PauseFailed | JobState::CancellationFailed => {
                    ("error", "⚠")
                }
            };
            (class, glyph, s.as_str())
        }
    };
    html! { span class={"badge state " (class)} { span aria-hidden="true" { (glyph) } " " (word) } }
}

/// A verdict as a badge: failed (the tests said so) apart from error (the
/// job could not run), as Allure keeps failed apart from broken.
pub fn verdict_badge(v: Verdict) -> Markup {
    let glyph = match v {
        Verdict::Pending => "…",
        Verdict::Passed => "✔",
        Verdict::Failed => "✘",
        Verdict::Error => "⚠",
        Verdict::Cancelled => "⊘",
    };
    html! { span class={"badge verdict " (v.as_str())} { span aria-hidden="true" { (glyph) } " " (v.as_str()) } }
}

/// A hidden CSRF field, when the viewer needs one.
pub fn csrf_field(csrf: Option<&str>) -> Markup {
    html! {
        @if let Some(c) = csrf { input type="hidden" name="csrf" value=(c); }
    }
}

/// A query string from pairs, leaving out empty values.
pub fn query(pairs: &[(&str, Option<String>)]) -> String {
    let kept: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| (*k, v)))
        .collect();
    if kept.is_empty() {
        return String::new();
    }
    format!("?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
}

/// Text cut to `max` bytes (on a character boundary) with a marker.
pub fn cut(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes more)", &s[..end], s.len() - end).into()
}

/// Marks up nothing; for `@if` arms that must produce something.
pub fn nothing() -> Markup {
    PreEscaped(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration(Duration::from_millis(120)), "120ms");
        assert_eq!(duration(Duration::from_millis(4200)), "4.2s");
        assert_eq!(duration(Duration::from_secs(42)), "42s");
        assert_eq!(duration(Duration::from_secs(187)), "3m 07s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h 02m");
    }

    #[test]
    fn cutting_keeps_characters_whole() {
        assert_eq!(cut("héllo", 2), "h… (5 bytes more)");
        assert_eq!(cut("abc", 3), "abc");
    }

    #[test]
    fn text_is_escaped() {
        let chrome = Chrome {
            title: "<script>",
            csrf: None,
            login: false,
        };
        let html = error_page(&chrome, "<b>x</b>").into_string();
        assert!(!html.contains("<script>") && html.contains("&lt;b&gt;x&lt;/b&gt;"));
    }

    #[test]
    fn queries_leave_out_empty_filters() {
        assert_eq!(query(&[("state", None), ("name", Some(String::new()))]), "");
        assert_eq!(
            query(&[("name", Some("a b".into())), ("tag", Some("x&y".into()))]),
            "?name=a+b&tag=x%26y"
        );
    }
}
