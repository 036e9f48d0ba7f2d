//! Reading the hits of the job's tests: from the live audit sink of
//! `prova serve` (its HTTP API, page by page) or from an audit log file
//! (mapped here by the same rules as `prova coverage report`).
//!
//! The sink's contract:
//! `GET {server}/api/v1/audit/hits?since=RFC3339&until=RFC3339[&user_agent=LIKE][&limit=N][&cursor=C]`
//! (the cursor is sent as `next=C` too, the name prova serve reads)
//! with `Authorization: Bearer TOKEN` answers
//! `{"hits":[{"AuditID","Endpoint","Verb","Path","UserAgent","TestName","Time"}…],"next":cursor-or-null}`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::newly::JobHits;
use crate::audit::{AuditEvent, EventError, EventSink, Loc, ReadOptions, read_events};
use crate::report::MapContext;
use crate::spec::Spec;

/// Hits asked for per page.
pub const PAGE: usize = 5000;
/// Hits read from the sink at most, over all pages: a job's tests make
/// thousands; a window this full is a mistake (a user agent filter left out).
pub const MAX_HITS: u64 = 2_000_000;
/// Largest page body accepted.
pub const MAX_PAGE_BYTES: usize = 64 << 20;
/// Each request to the sink times out after this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A time window of the job, in RFC 3339.
#[derive(Debug, Clone)]
pub struct Window {
    pub since: jiff::Timestamp,
    pub until: jiff::Timestamp,
}

#[derive(Deserialize)]
struct Page {
    hits: Vec<SinkHit>,
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize)]
struct SinkHit {
    #[serde(rename = "Endpoint", default)]
    endpoint: Option<String>,
    #[serde(rename = "UserAgent", default)]
    user_agent: Option<String>,
    #[serde(rename = "TestName", default)]
    test_name: Option<String>,
}

/// The hits of `tests` in `window`, from the sink at `server`.
pub async fn from_sink(
    server: &str,
    token: Option<&str>,
    user_agent: Option<&str>,
    window: &Window,
    spec: &Spec,
    tests: &BTreeSet<String>,
) -> Result<JobHits, String> {
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
    let url = format!("{server}/api/v1/audit/hits");
    let endpoints = spec.operation_ids();
    let mut out = JobHits::default();
    let mut read = 0u64;
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("since", window.since.to_string()),
            ("until", window.until.to_string()),
            ("limit", PAGE.to_string()),
        ];
        if let Some(ua) = user_agent {
            query.push(("user_agent", ua.to_string()));
        }
        if let Some(c) = &cursor {
            // The contract names it `cursor`; prova serve's sink reads
            // `next` (the field it answers with). Each ignores the other.
            query.push(("cursor", c.clone()));
            query.push(("next", c.clone()));
        }
        let mut req = client.get(&url).query(&query);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach the audit sink at {url}: {}", chain(&e)))?;
        let status = resp.status();
        let body = read_bounded(resp).await?;
        if !status.is_success() {
            return Err(format!(
                "the audit sink at {url} answered {status}: {}",
                snippet(&body)
            ));
        }
        let page: Page = serde_json::from_slice(&body).map_err(|e| {
            format!("the audit sink at {url} did not answer {{\"hits\":[…],\"next\":…}}: {e}")
        })?;
        read += page.hits.len() as u64;
        if read > MAX_HITS {
            return Err(format!(
                "more than {MAX_HITS} hits in the job's window: narrow it with UserAgent"
            ));
        }
        for h in &page.hits {
            let test = h
                .test_name
                .as_deref()
                .filter(|t| !t.is_empty())
                .or_else(|| h.user_agent.as_deref().and_then(crate::mapping::test_name));
            let Some(test) = test.filter(|t| tests.contains(*t)) else {
                continue;
            };
            match h.endpoint.as_deref() {
                Some(ep) if endpoints.contains(ep) => out.add(ep, test),
                _ => out.unknown += 1,
            }
        }
        match page.next {
            Some(next) if !page.hits.is_empty() && cursor.as_deref() != Some(next.as_str()) => {
                cursor = Some(next)
            }
            _ => return Ok(out),
        }
    }
}

async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the audit sink's answer: {}", chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(format!(
                "the audit sink's answer is larger than {} MiB",
                MAX_PAGE_BYTES >> 20
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.trim().to_string()
}

/// An error with its causes (reqwest hides the useful part in sources).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Collects the hits of the job's tests (one per reader thread).
struct Collect<'a> {
    ctx: &'a MapContext<'a>,
    tests: &'a BTreeSet<String>,
    hits: JobHits,
}

impl EventSink for Collect<'_> {
    fn event(&mut self, ev: &AuditEvent<'_>, _: Loc) {
        // The same mapping and credit as `prova coverage report`.
        if let Ok(hit) = crate::live::map_event(self.ctx, ev)
            && let Some(test) = hit.test.as_deref()
            && self.tests.contains(test)
        {
            self.hits.add(hit.endpoint, test);
        }
    }

    fn malformed(&mut self, _: &EventError, _: &[u8], _: Loc) {}
}

/// The hits of `tests` in an audit log file (every event in it: a file
/// carries no window the fast reader looks at).
pub fn from_audit_log(
    path: &Path,
    spec: &Spec,
    tests: &BTreeSet<String>,
) -> Result<JobHits, String> {
    let ctx = MapContext::new(spec, &[]);
    let opts = ReadOptions {
        threads: 1,
        progress: false,
        ..Default::default()
    };
    let name = path.display().to_string();
    let (sinks, summary) = read_events(std::slice::from_ref(&name), &opts, || Collect {
        ctx: &ctx,
        tests,
        hits: JobHits::default(),
    })
    .map_err(|e| e.to_string())?;
    if let Some(e) = summary.input_errors.first() {
        return Err(e.clone());
    }
    let mut out = JobHits::default();
    for s in sinks {
        out.hits += s.hits.hits;
        for (ep, h) in s.hits.endpoints {
            let e = out.endpoints.entry(ep).or_default();
            e.hits += h.hits;
            e.tests.extend(h.tests);
        }
    }
    Ok(out)
}
