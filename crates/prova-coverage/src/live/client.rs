//! `prova coverage live` and `prova coverage report --server`: reading a
//! `prova serve` audit sink over HTTP (`GET /api/v1/audit/hits` and
//! `/report`), with the server's bearer token.
//!
//! `live` answers the APISnoop tickets' query — which endpoints were hit in
//! the last minute by user agents like `e2e%should%` — as distinct
//! (endpoint, user agent) rows with their hit counts.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::report::Report;

/// Each request times out after this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Hits per page asked for.
const PAGE: u32 = 10_000;
/// Hits `live` reads at most: beyond this the window or the filters are
/// too wide for a look at a live run.
const MAX_LIVE_HITS: usize = 1_000_000;
/// Largest answer read.
const MAX_BODY: usize = 256 << 20;

/// Where the sink is and which hits to read.
#[derive(clap::Args, Debug, Clone)]
pub struct SinkArgs {
    /// The `prova serve` whose audit sink to read, e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for the server.
    #[arg(long, env = "PROVA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Only hits from this long ago until now (Go duration: 60s, 5m, 2h).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub since: Option<Duration>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    prova_core::duration::parse_go_duration(s)
}

/// `live` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct LiveArgs {
    #[command(flatten)]
    pub sink: SinkArgs,
    /// Only user agents matching this SQL LIKE pattern (case-sensitive), e.g. `e2e%should%`.
    #[arg(long = "user-agent", value_name = "PATTERN")]
    pub user_agent: Option<String>,
    /// Only endpoints (operation ids) matching this SQL LIKE pattern, e.g. `%JobStatus`.
    #[arg(long, value_name = "PATTERN")]
    pub endpoint: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A hit as the sink answers it.
#[derive(Debug, Deserialize)]
struct Hit {
    #[serde(rename = "Endpoint")]
    endpoint: Option<String>,
    #[serde(rename = "UserAgent")]
    user_agent: Option<String>,
    #[serde(rename = "TestName")]
    test_name: Option<String>,
    #[serde(rename = "Time")]
    time: String,
}

#[derive(Debug, Deserialize)]
struct Page {
    hits: Vec<Hit>,
    next: Option<String>,
    /// `"off"` when the server takes no audit events (no `--coverage-spec`).
    #[serde(default)]
    sink: Option<String>,
}

/// One row of `live`: an endpoint and a user agent that hit it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct LiveRow {
    /// The operation id (`null`: the request maps to no endpoint).
    pub endpoint: Option<String>,
    /// The user agent.
    pub user_agent: Option<String>,
    /// The test it names.
    pub test: Option<String>,
    /// Hits in the window.
    pub hits: u64,
    /// The newest hit's time.
    pub last: String,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(sink: &SinkArgs) -> anyhow::Result<Client> {
        let Some(server) = sink.server.as_deref().filter(|s| !s.is_empty()) else {
            bail!("--server URL is required to read an audit sink");
        };
        // `--server 127.0.0.1:8080` means plain HTTP, as prova serve speaks
        // unless a proxy in front of it terminates TLS.
        let base = if server.contains("://") {
            server.to_string()
        } else {
            format!("http://{server}")
        };
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .context("cannot make an HTTP client")?,
            base: base.trim_end_matches('/').to_string(),
            token: sink.token.clone().filter(|t| !t.is_empty()),
        })
    }

    /// GETs `path` with `query`; a non-2xx answer is an error with the
    /// server's message.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.get(&url).query(query);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.context("reading the answer")? {
            if body.len() + chunk.len() > MAX_BODY {
                bail!("{url}: the answer is larger than {MAX_BODY} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let msg = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["Error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
            bail!("{url}: server answered {status}: {msg}");
        }
        serde_json::from_slice(&body).with_context(|| format!("{url}: unexpected answer"))
    }
}

/// `since`/`until` for a window ending now.
fn window(since: Option<Duration>) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut q = Vec::new();
    if let Some(d) = since {
        let now = jiff::Timestamp::now();
        let from = now
            .checked_sub(jiff::SignedDuration::try_from(d)?)
            .context("--since is too long ago")?;
        q.push(("since", from.to_string()));
        q.push(("until", now.to_string()));
    }
    Ok(q)
}

fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start an async runtime")?
        .block_on(f)
}

/// The distinct (endpoint, user agent) pairs of the hits, most hit first.
fn rows(hits: Vec<Hit>) -> Vec<LiveRow> {
    let mut by: BTreeMap<(Option<String>, Option<String>), LiveRow> = BTreeMap::new();
    for h in hits {
        let key = (h.endpoint.clone(), h.user_agent.clone());
        let row = by.entry(key).or_insert_with(|| LiveRow {
            endpoint: h.endpoint,
            user_agent: h.user_agent,
            test: h.test_name,
            hits: 0,
            last: String::new(),
        });
        row.hits += 1;
        // RFC 3339 UTC times from one server sort as text.
        if h.time > row.last {
            row.last = h.time;
        }
    }
    let mut rows: Vec<LiveRow> = by.into_values().collect();
    rows.sort_by(|a, b| (&a.endpoint, b.hits).cmp(&(&b.endpoint, a.hits)));
    rows
}

/// `prova coverage live`.
pub fn live(a: &LiveArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let client = Client::new(&a.sink)?;
    let mut query = window(a.sink.since)?;
    if let Some(p) = &a.user_agent {
        query.push(("user_agent", p.clone()));
    }
    if let Some(p) = &a.endpoint {
        query.push(("endpoint", p.clone()));
    }
    query.push(("limit", PAGE.to_string()));
    let (hits, sink_off) = block_on(async {
        let mut hits = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut q = query.clone();
            if let Some(n) = &next {
                q.push(("next", n.clone()));
            }
            let page: Page = client.get("/api/v1/audit/hits", &q).await?;
            hits.extend(page.hits);
            if hits.len() > MAX_LIVE_HITS {
                bail!(
                    "more than {MAX_LIVE_HITS} hits: narrow the window (--since) or filter (--user-agent, --endpoint)"
                );
            }
            match page.next {
                Some(n) => next = Some(n),
                None => return Ok((hits, page.sink.as_deref() == Some("off"))),
            }
        }
    })?;
    if hits.is_empty() && sink_off {
        bail!(
            "no hits, and {}'s audit sink is off, so none will come: start prova serve with --coverage-spec SWAGGER and point the API server's audit webhook at it (docs/apisnoop.md)",
            client.base
        );
    }
    let rows = rows(hits);
    if a.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(());
    }
    if rows.is_empty() {
        writeln!(out, "no hits")?;
        return Ok(());
    }
    let width = rows
        .iter()
        .map(|r| r.endpoint.as_deref().map_or(10, str::len))
        .max()
        .unwrap_or(8)
        .max(8);
    writeln!(out, "{:<width$}  {:>6}  USER AGENT", "ENDPOINT", "HITS")?;
    for r in &rows {
        writeln!(
            out,
            "{:<width$}  {:>6}  {}",
            r.endpoint.as_deref().unwrap_or("(unmapped)"),
            r.hits,
            r.user_agent.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}

/// `prova coverage report --server`: the sink's report over its hits.
pub fn report(sink: &SinkArgs) -> anyhow::Result<Report> {
    let client = Client::new(sink)?;
    let query = window(sink.since)?;
    block_on(async { client.get("/api/v1/audit/report", &query).await })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(ep: Option<&str>, ua: &str, t: &str) -> Hit {
        Hit {
            endpoint: ep.map(str::to_string),
            user_agent: Some(ua.into()),
            test_name: None,
            time: t.into(),
        }
    }

    #[test]
    fn rows_are_distinct_endpoint_and_agent_pairs() {
        let rows = rows(vec![
            hit(Some("b"), "x", "2026-01-01T00:00:02Z"),
            hit(Some("a"), "x", "2026-01-01T00:00:01Z"),
            hit(Some("b"), "x", "2026-01-01T00:00:03Z"),
            hit(Some("b"), "y", "2026-01-01T00:00:00Z"),
            hit(None, "x", "2026-01-01T00:00:00Z"),
        ]);
        let got: Vec<(Option<&str>, &str, u64, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.endpoint.as_deref(),
                    r.user_agent.as_deref().unwrap(),
                    r.hits,
                    r.last.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (None, "x", 1, "2026-01-01T00:00:00Z"),
                (Some("a"), "x", 1, "2026-01-01T00:00:01Z"),
                (Some("b"), "x", 2, "2026-01-01T00:00:03Z"),
                (Some("b"), "y", 1, "2026-01-01T00:00:00Z"),
            ]
        );
    }
}
