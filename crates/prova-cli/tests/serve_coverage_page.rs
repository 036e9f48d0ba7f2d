//! `prova serve --coverage-report FILE`: the dashboard's `/coverage` page
//! drawn from a saved report, both kinds `prova coverage --from-report`
//! reads (an APISnoop release file, and `prova coverage report --json`'s
//! output), and a file that is not a report refused at start naming it.

use std::path::Path;

mod support;

#[path = "../../prova-server/tests/audit_corpus/mod.rs"]
mod audit_corpus;

const TOKEN: &str = "coverage-page-test-token";

/// `GET path` as a bearer client: (status, body).
fn get(url: &str, path: &str) -> (u16, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{url}{path}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

fn serve_with(env: &support::Env, report: &Path) -> (std::process::Child, String) {
    support::spawn_server(&[
        "--db",
        env.db().to_str().unwrap(),
        "--token",
        TOKEN,
        "--coverage-report",
        report.to_str().unwrap(),
    ])
}

#[test]
fn an_apisnoop_release_file_is_drawn() {
    let env = support::Env::new();
    let release = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/k8s/apisnoop-coverage/1.37.0.json");
    let (mut child, url) = serve_with(&env, &release);
    let (code, html) = get(&url, "/coverage?focus=stable");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 200, "{html}");
    assert!(html.contains("release 1.37.0"), "{html}");
    assert!(html.contains("data-focus=\"stable\""));
    assert!(html.contains("class=\"arc category\""));
}

#[test]
fn a_prova_report_is_drawn_with_each_tests_endpoints() {
    let env = support::Env::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let events = audit_corpus::with_e2e_agents(audit_corpus::events());
    std::fs::write(&log, audit_corpus::json_lines(&events)).unwrap();
    let spec = audit_corpus::spec_path();
    let (code, json, err) = env.run(&[
        "coverage",
        "report",
        "--spec",
        spec.to_str().unwrap(),
        "--audit",
        log.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let test = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| !t["endpoints"].as_array().unwrap().is_empty())
        .expect("a test with endpoints");
    let name = test["test"].as_str().unwrap();
    let first = test["endpoints"][0].as_str().unwrap();
    let saved = dir.path().join("report.json");
    std::fs::write(&saved, &json).unwrap();

    let (mut child, url) = serve_with(&env, &saved);
    let mut page = reqwest::Url::parse(&format!("{url}/coverage")).unwrap();
    page.query_pairs_mut().append_pair("test", name);
    let (code, html) = get(&url, &format!("/coverage?{}", page.query().unwrap()));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(code, 200, "{html}");
    assert!(html.contains("<svg"), "{html}");
    let n = test["endpoints"].as_array().unwrap().len();
    assert!(
        html.contains(&format!("Endpoints it hit ({n})")),
        "{n}: {html}"
    );
    assert!(html.contains(&format!("href=\"/coverage?endpoint={first}\"")));
}

#[test]
fn a_file_that_is_not_a_report_stops_the_server_naming_it() {
    let env = support::Env::new();
    let bad = env.db().with_file_name("not-a-report.json");
    std::fs::write(&bad, "{\"endpoints\": 3}").unwrap();
    let (code, _, err) = env.run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--coverage-report",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--coverage-report") && err.contains("not-a-report.json"),
        "{err}"
    );
}
