//! Fuzzing the dashboard's edges with proptest: random methods, paths,
//! filters, cookies and Authorization headers never get a 5xx, and every
//! page error is an HTML page (not a panic, not an empty body).
//!
//! Bounded as `fuzz_requests` (`PROVA_FUZZ_CASES`, default 2000;
//! `PROVA_FUZZ_SECS`, default 30).

mod web_support;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use prova_fuzz::{TestCaseError, try_fuzz};
use tower::ServiceExt as _;

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("jobs".to_string()),
        Just("live".to_string()),
        Just("junit.xml".to_string()),
        Just("cancel".to_string()),
        Just("pause".to_string()),
        Just("resume".to_string()),
        Just("login".to_string()),
        Just("logout".to_string()),
        Just("static".to_string()),
        Just("history".to_string()),
        Just("compare".to_string()),
        Just("coverage".to_string()),
        Just("1".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("%zz".to_string()),
        Just("%00".to_string()),
        Just("..".to_string()),
        Just(String::new()),
        "[a-zA-Z0-9._~-]{1,12}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("state"),
        Just("name"),
        Just("tag"),
        Just("before"),
        Just("limit"),
        Just("next"),
        Just("ev_name"),
        Just("ev_run"),
        Just("ev_test"),
        Just("ev_after"),
        Just("done"),
        Just("from"),
        Just("test"),
        Just("job_name"),
        Just("last"),
        Just("focus"),
        Just("endpoint"),
        Just("a"),
        Just("b"),
    ];
    let value = prop_oneof![
        "[a-zA-Z0-9%,=<>/-]{0,12}",
        Just("99999999999999999999".to_string()),
        Just("-5".to_string()),
        Just("//evil.example".to_string()),
        Just("Started".to_string()),
    ];
    proptest::collection::vec((key, value), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[derive(Debug)]
struct Probe {
    method: &'static str,
    path: String,
    query: String,
    auth: Option<String>,
    cookie: Option<String>,
    body: String,
}

fn probe() -> impl Strategy<Value = Probe> {
    let method = prop_oneof![Just("GET"), Just("POST"), Just("PUT")];
    let auth = proptest::option::of(prop_oneof![
        Just(format!("Bearer {}", web_support::TOKEN)),
        Just("Bearer wrong".to_string()),
        "[ -~]{0,20}",
    ]);
    let cookie = proptest::option::of(prop_oneof![
        Just("prova_session=1.2.3".to_string()),
        "prova_session=[0-9a-f.]{0,80}",
        "[ -~]{0,30}",
    ]);
    let body = prop_oneof![
        Just(String::new()),
        "csrf=[0-9a-f]{0,64}",
        "token=[ -~]{0,20}&next=[ -~]{0,20}",
        "[ -~]{0,40}",
    ];
    (
        method,
        proptest::collection::vec(segment(), 0..4),
        query(),
        auth,
        cookie,
        body,
    )
        .prop_map(|(method, segments, query, auth, cookie, body)| Probe {
            method,
            path: format!("/{}", segments.join("/")),
            query,
            auth,
            cookie,
            body,
        })
}

#[test]
fn random_page_requests_never_get_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (server, app) = rt.block_on(async {
        // With a saved coverage report, so `/coverage` draws (and zooms).
        let report = std::sync::Arc::new(web_support::apisnoop_release());
        let server = web_support::Server::start_with(Some(web_support::TOKEN), |c| {
            c.coverage_report = Some(report)
        })
        .await;
        web_support::record_suite_job(&server.state, "fuzzed").await;
        web_support::record_check_job(&*server.state.store, "fuzzed", false).await;
        let app = prova_server::router(server.state.clone());
        (server, app)
    });
    try_fuzz("fuzz_pages", 2000, probe(), |p| {
        // Live streams never end: only their status is checked.
        let streams = p.path.starts_with("/live");
        let uri = if p.query.is_empty() {
            p.path.clone()
        } else {
            format!("{}?{}", p.path, p.query)
        };
        let Ok(mut req) = Request::builder()
            .method(p.method)
            .uri(&uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(p.body.clone()))
        else {
            return Ok(());
        };
        for (name, value) in [("authorization", &p.auth), ("cookie", &p.cookie)] {
            if let Some(v) = value
                && let Ok(v) = v.parse()
            {
                req.headers_mut().insert(name, v);
            }
        }
        let (status, body) = rt.block_on(async {
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let body = if streams && status.is_success() {
                Default::default()
            } else {
                axum::body::to_bytes(resp.into_body(), 4 << 20)
                    .await
                    .unwrap()
            };
            (status, body)
        });
        if status.is_server_error() {
            return Err(TestCaseError::fail(format!(
                "{} {uri} ({:?}): {status} {}",
                p.method,
                p.body,
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(())
    });
    rt.block_on(server.stop());
}
