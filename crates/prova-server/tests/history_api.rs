//! `GET /api/v1/history` and `GET /api/v1/compare/{a}/{b}` through the
//! router (no socket), on a store holding a test that passes, fails and
//! passes again; and their schemas in the OpenAPI document.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use prova_core::JobId;
use prova_store::SqlStore;
use serde_json::{Value, json};
use tower::ServiceExt as _;

mod web_support;

const TOKEN: &str = "s3cret-token-for-tests";

/// A finished "nightly" job whose test `check` passed or failed.
async fn job(store: &SqlStore, pass: bool) -> JobId {
    web_support::record_check_job(store, "nightly", pass).await
}

async fn get(app: &axum::Router, uri: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = Request::get(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 24)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn history_and_compare_answer_as_the_cli_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let j1 = job(&store, true).await;
    let j2 = job(&store, false).await;
    let j3 = job(&store, true).await;
    let config = prova_server::ServerConfig {
        token: Some(TOKEN.into()),
        artifacts_root: dir.path().join("artifacts"),
        ..Default::default()
    };
    let app = prova_server::router(prova_server::state(
        config,
        store.clone(),
        prova_engine::plugins::registry(),
    ));
    let t = Some(TOKEN);

    let (code, v) = get(
        &app,
        "/api/v1/history?test=check&job_name=nightly&last=10",
        t,
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let h = &v["Histories"][0];
    assert_eq!(h["Subject"], json!({"Kind": "test", "Name": "check"}));
    assert_eq!(h["Summary"]["Flaky"], true, "pass, fail, pass: {v:#}");
    assert_eq!(
        h["Summary"]["FlakyReasons"][0]["Rule"],
        "mixed-on-same-inputs"
    );
    let outcomes: Vec<&str> = h["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["passed", "failed", "passed"]);
    assert_eq!(
        h["Entries"][1]["Message"],
        "target host1 failed at step probe: exit status 1"
    );

    // Nothing matching: 200, no histories, what exists.
    let (code, v) = get(&app, "/api/v1/history?test=nope", t).await;
    assert_eq!(code, 200);
    assert_eq!(v["Histories"], json!([]));
    assert_eq!(v["Known"], json!(["test: check"]));

    for bad in [
        "/api/v1/history?test=",
        "/api/v1/history?test=x&last=0",
        "/api/v1/history",
        "/api/v1/history?test=x&last=-1",
    ] {
        let (code, v) = get(&app, bad, t).await;
        assert_eq!(code, 400, "{bad}: {v}");
        assert!(v["Error"].is_string(), "{bad}: {v}");
    }
    let (code, _) = get(&app, "/api/v1/history?test=check", None).await;
    assert_eq!(code, 401);

    let (code, v) = get(&app, &format!("/api/v1/compare/{j1}/{j2}"), t).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["NewlyFailing"][0]["Subject"]["Name"], "check");
    assert_eq!(v["Base"]["JobID"], j1);
    let (_, v) = get(&app, &format!("/api/v1/compare/{j2}/{j3}"), t).await;
    assert_eq!(v["NewlyPassing"][0]["Subject"]["Name"], "check");
    let (code, v) = get(&app, &format!("/api/v1/compare/{j1}/424242"), t).await;
    assert_eq!(code, 404);
    assert_eq!(v["Error"], "job 424242 not found");
    let (code, v) = get(&app, "/api/v1/compare/1/x", t).await;
    assert_eq!(code, 400, "{v}");

    // The OpenAPI document describes both bodies.
    let (_, doc) = get(&app, "/api/v1/openapi.json", t).await;
    let ok = |path: &str| {
        doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].clone()
    };
    assert_eq!(ok("/api/v1/history"), "#/components/schemas/HistoryAnswer");
    assert_eq!(
        ok("/api/v1/compare/{a}/{b}"),
        "#/components/schemas/Comparison"
    );
    let schemas = &doc["components"]["schemas"];
    for s in [
        "HistoryAnswer",
        "History",
        "HistoryEntry",
        "Subject",
        "Outcome",
        "FlakyReason",
        "Comparison",
        "Change",
        "Execution",
    ] {
        assert!(schemas[s].is_object(), "no schema {s}");
    }
}
