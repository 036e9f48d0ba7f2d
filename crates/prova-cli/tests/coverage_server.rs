//! `prova coverage live --server` and `prova coverage report --server`
//! against a real `prova serve --coverage-spec` whose audit sink got the
//! corpus's real audit events over HTTP: the tickets' query, the full
//! report (the same numbers as `report` over the same events from a file),
//! and the errors a user meets (sink off, wrong token, no scheme).

use std::path::Path;
use std::process::Child;

use serde_json::{Value, json};

mod support;

#[path = "../../prova-server/tests/audit_corpus/mod.rs"]
mod audit_corpus;

const TOKEN: &str = "coverage-cli-test-token";

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(db: &Path, with_spec: bool) -> Server {
    let spec = audit_corpus::spec_path();
    let mut args = vec!["--db", db.to_str().unwrap(), "--token", TOKEN];
    if with_spec {
        args.extend(["--coverage-spec", spec.to_str().unwrap()]);
    }
    let (child, url) = support::spawn_server(&args);
    Server { child, url }
}

/// The corpus's events, every third from an e2e.test agent, stamped now
/// (so `--since 60s` sees them).
fn events() -> Vec<Value> {
    let now = jiff::Timestamp::now();
    let mut events = audit_corpus::with_e2e_agents(audit_corpus::events());
    for (i, e) in events.iter_mut().enumerate() {
        e["stageTimestamp"] =
            json!((now - jiff::SignedDuration::from_millis(i as i64)).to_string());
    }
    events
}

fn post_all(url: &str, events: &[Value]) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        for chunk in events.chunks(10) {
            let resp = http
                .post(format!("{url}/api/v1/audit/events"))
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(audit_corpus::event_list(chunk))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
        }
    });
}

/// Per endpoint, its hits and test hits: what two reports must agree on.
fn hits_by_endpoint(report: &Value) -> Vec<(String, u64, u64)> {
    let mut out: Vec<_> = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["hits"].as_u64() > Some(0))
        .map(|e| {
            (
                e["endpoint"].as_str().unwrap().to_string(),
                e["hits"].as_u64().unwrap(),
                e["test_hits"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn live_and_report_read_the_sink() {
    let env = support::Env::new();
    let server = serve(&env.db(), true);
    let events = events();
    post_all(&server.url, &events);

    // The tickets' query: endpoints hit in the last minute by e2e agents.
    let (code, out, err) = env.run(&[
        "coverage",
        "live",
        "--server",
        &server.url,
        "--token",
        TOKEN,
        "--since",
        "60s",
        "--user-agent",
        "e2e%",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert!(!rows.is_empty(), "{out}");
    for r in &rows {
        assert!(
            r["user_agent"].as_str().unwrap().starts_with("e2e.test/"),
            "{r}"
        );
        assert!(
            r["test"]
                .as_str()
                .unwrap()
                .starts_with("[sig-test] corpus test"),
            "{r}"
        );
    }
    let e2e_hits: u64 = rows.iter().map(|r| r["hits"].as_u64().unwrap()).sum();
    let e2e_mapped = events
        .iter()
        .filter(|e| {
            e["userAgent"]
                .as_str()
                .unwrap_or("")
                .starts_with("e2e.test/")
        })
        .count() as u64;
    assert!(
        e2e_hits > 0 && e2e_hits <= e2e_mapped,
        "{e2e_hits} hits of {e2e_mapped} e2e events"
    );

    // The table names its columns; an endpoint filter narrows it.
    let (code, out, err) = env.run(&[
        "coverage",
        "live",
        "--server",
        &server.url,
        "--token",
        TOKEN,
        "--since",
        "60s",
        "--endpoint",
        "readCoreV1Node",
    ]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("ENDPOINT"), "{out}");
    assert!(
        lines.all(|l| l.starts_with("readCoreV1Node ")),
        "only the filtered endpoint: {out}"
    );

    // The full report over the stored hits equals the report over the
    // same events from a file.
    let (code, out, err) = env.run(&[
        "coverage",
        "report",
        "--server",
        &server.url,
        "--token",
        TOKEN,
        "--since",
        "10m",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let from_sink: Value = serde_json::from_str(&out).unwrap();
    let log = env.dir.path().join("audit.log");
    let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let (code, out, err) = env.run(&[
        "coverage",
        "report",
        "--spec",
        audit_corpus::spec_path().to_str().unwrap(),
        "--audit",
        log.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let from_file: Value = serde_json::from_str(&out).unwrap();
    let sink_hits = hits_by_endpoint(&from_sink);
    assert!(sink_hits.len() > 5, "{sink_hits:?}");
    assert_eq!(sink_hits, hits_by_endpoint(&from_file));
}

#[test]
fn errors_say_what_to_do() {
    let env = support::Env::new();
    let off = serve(&env.db(), false);

    // The sink is off: the server's reason, and a failing exit code
    // (a server given without a scheme is plain HTTP).
    let bare = off.url.trim_start_matches("http://");
    let (code, _, err) = env.run(&[
        "coverage", "live", "--server", bare, "--token", TOKEN, "--since", "60s",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--coverage-spec"), "{err}");
    let (code, _, err) = env.run(&[
        "coverage", "report", "--server", &off.url, "--token", TOKEN, "--json",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--coverage-spec"), "{err}");

    // A wrong token is refused, and said so.
    let env2 = support::Env::new();
    let on = serve(&env2.db(), true);
    let (code, _, err) = env2.run(&[
        "coverage", "live", "--server", &on.url, "--token", "wrong", "--since", "60s",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("401") || err.to_lowercase().contains("token"),
        "{err}"
    );

    // A bad duration names the flag and what was expected.
    let (code, _, err) = env2.run(&[
        "coverage", "live", "--server", &on.url, "--token", TOKEN, "--since", "a minute",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("--since") || err.contains("duration"), "{err}");
}
