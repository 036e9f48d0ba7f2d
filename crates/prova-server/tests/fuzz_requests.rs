//! Fuzzing the API's edges with proptest: random methods, paths, queries
//! and Authorization headers never get a 5xx, and every error is the JSON
//! `{Error}` body docs/server.md promises.
//!
//! Bounded by default (`PROVA_FUZZ_CASES`, default 3000; `PROVA_FUZZ_SECS`,
//! default 30): `PROVA_FUZZ_CASES=20000 cargo test -p prova-server --test
//! fuzz_requests -- --nocapture` runs longer. The number of cases tried is
//! printed.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use prova_fuzz::{TestCaseError, try_fuzz};
use tower::ServiceExt as _;

/// Path segments an attacker or a typo would send.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("jobs".to_string()),
        Just("events".to_string()),
        Just("report".to_string()),
        Just("cancel".to_string()),
        Just("pause".to_string()),
        Just("resume".to_string()),
        Just("retry".to_string()),
        Just("version".to_string()),
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
        Just("limit"),
        Just("before"),
        Just("state"),
        Just("tag"),
        Just("requestor"),
        Just("after"),
        Just("follow"),
        Just("run"),
        Just("attempt"),
        Just("name"),
    ];
    let value = prop_oneof![
        "[a-zA-Z0-9%,=-]{0,10}",
        Just("99999999999999999999".to_string()),
        Just("-5".to_string()),
        Just("true".to_string()),
        Just("Started,Nope".to_string()),
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
}

fn probe() -> impl Strategy<Value = Probe> {
    let method = prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")];
    let auth = proptest::option::of(prop_oneof![
        Just("Bearer s3cret".to_string()),
        Just("bearer s3cret".to_string()),
        Just("Bearer wrong".to_string()),
        Just("Bearer".to_string()),
        "[ -~]{0,20}",
    ]);
    (
        method,
        proptest::collection::vec(segment(), 0..5),
        query(),
        auth,
    )
        .prop_map(|(method, segments, query, auth)| Probe {
            method,
            path: format!("/api/v1/{}", segments.join("/")),
            query,
            auth,
        })
}

#[test]
fn random_requests_get_json_errors_and_never_a_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = rt.block_on(async {
        let store = Arc::new(
            prova_store::SqlStore::open_path(&dir.path().join("p.db"))
                .await
                .unwrap(),
        );
        let config = prova_server::ServerConfig {
            token: Some("s3cret".into()),
            artifacts_root: dir.path().join("artifacts"),
            files_root: Some(dir.path().to_path_buf()),
            ..Default::default()
        };
        prova_server::router(prova_server::state(
            config,
            store,
            prova_engine::plugins::registry(),
        ))
    });
    try_fuzz("fuzz_requests", 3000, probe(), |p| {
        let uri = if p.query.is_empty() {
            p.path.clone()
        } else {
            format!("{}?{}", p.path, p.query)
        };
        let Ok(mut req) = Request::builder()
            .method(p.method)
            .uri(&uri)
            .body(Body::empty())
        else {
            return Ok(()); // not a request hyper would deliver
        };
        if let Some(auth) = &p.auth
            && let Ok(v) = auth.parse()
        {
            req.headers_mut().insert("authorization", v);
        }
        let (status, body) = rt.block_on(async {
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, body)
        });
        if status.is_server_error() {
            return Err(TestCaseError::fail(format!(
                "{uri}: {status} {}",
                String::from_utf8_lossy(&body)
            )));
        }
        if status.is_client_error() {
            let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
                TestCaseError::fail(format!(
                    "{uri}: {status} body is not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&body)
                ))
            })?;
            if !v["Error"].is_string() {
                return Err(TestCaseError::fail(format!(
                    "{uri}: {status} without Error: {v}"
                )));
            }
        }
        Ok(())
    });
}
