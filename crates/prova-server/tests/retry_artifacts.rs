//! "Retry only what failed" (API and the job page's button, with CSRF) and
//! artifact downloads (API and the page session), over HTTP.

mod web_support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use web_support::{Server, TOKEN, client, csrf_in, login, record_suite_job};

/// One test per name; a test named `bad*` runs `false`, the others `true`.
fn job(name: &str, tests: &[&str]) -> String {
    let mut s = format!("JobName: {name}\nTestDescriptors:\n");
    for t in tests {
        let exe = if t.starts_with("bad") {
            "false"
        } else {
            "true"
        };
        s.push_str(&format!(
            "  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: {t}\n      Steps: [{{name: cmd, label: run, parameters: {{executable: [{exe}]}}}}]\n"
        ));
    }
    s.push_str("Reporting:\n  RunReporters: [{name: TargetSuccess, parameters: {SuccessExpression: \"=100%\"}}]\n");
    s
}

async fn status(server: &Server, id: i64) -> Value {
    server.get_json(&format!("/api/v1/jobs/{id}")).await
}

/// The test names a job ran, in order.
async fn tests_of(server: &Server, id: i64) -> Vec<String> {
    let st = status(server, id).await;
    st["RunStatuses"][0]["TestStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["TestName"].as_str().unwrap().to_string())
        .collect()
}

async fn retry_failed_api(server: &Server, id: i64) -> (StatusCode, Value) {
    let r = client()
        .post(format!(
            "{}/api/v1/jobs/{id}/retry?failed=true&requestor=ci",
            server.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_reruns_only_the_failed_tests_from_the_api_and_the_page() {
    let server = Server::start(Some(TOKEN)).await;
    let wait = Duration::from_secs(30);
    let id = server
        .submit(&job(
            "mixed",
            &["good one", "bad one", "good two", "bad two"],
        ))
        .await;
    server.wait_state(id, "Completed", wait).await;

    // API: a new job with the two failed tests, in the descriptor's order.
    let (code, v) = retry_failed_api(&server, id).await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    assert_eq!(v["RetryOf"], id);
    assert_eq!(v["Tests"], serde_json::json!(["bad one", "bad two"]));
    let new = v["JobID"].as_i64().unwrap();
    server.wait_state(new, "Completed", wait).await;
    assert_eq!(tests_of(&server, new).await, ["bad one", "bad two"]);

    // The page: a "Retry failed" button, which needs the CSRF token.
    let cookie = login(&server).await;
    let page = client()
        .get(format!("{}/jobs/{id}", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"action-retry-failed\""), "{page}");
    assert!(page.contains("Retry failed (2)"));
    let r = client()
        .post(format!("{}/jobs/{id}/retry-failed", server.url))
        .header("cookie", &cookie)
        .form(&[("csrf", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client()
        .post(format!("{}/jobs/{id}/retry-failed", server.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_in(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let from_page: i64 = to
        .strip_prefix("/jobs/")
        .and_then(|s| s.split('?').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("redirect {to}"));
    assert!(
        to.ends_with(&format!("done=retry-failed&from={id}")),
        "{to}"
    );
    assert!(from_page > new);
    server.wait_state(from_page, "Completed", wait).await;
    assert_eq!(tests_of(&server, from_page).await, ["bad one", "bad two"]);
    let notice = client()
        .get(format!("{}{to}", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notice.contains("reruns the tests that failed in job"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_of_a_job_where_nothing_failed_is_a_conflict_with_the_reason() {
    let server = Server::start(Some(TOKEN)).await;
    let id = server.submit(&job("green", &["good"])).await;
    server
        .wait_state(id, "Completed", Duration::from_secs(30))
        .await;
    let (code, v) = retry_failed_api(&server, id).await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    let msg = v["Error"].as_str().unwrap();
    assert!(
        msg.contains("no test failed") && msg.contains(&format!("job {id}")),
        "{msg}"
    );
    // The page offers no such button, and the action answers the same.
    let cookie = login(&server).await;
    let page = client()
        .get(format!("{}/jobs/{id}", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("action-retry-failed"));
    assert!(page.contains("action-retry"));
    let r = client()
        .post(format!("{}/jobs/{id}/retry-failed", server.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf_in(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("no test failed"));
    // An unknown job is a 404.
    let (code, _) = retry_failed_api(&server, 999).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_of_a_running_job_is_refused() {
    let server = Server::start(Some(TOKEN)).await;
    let id = server.submit(&web_support::sleep_job("slow", "30s")).await;
    server
        .wait_state(id, "Started", Duration::from_secs(10))
        .await;
    let (code, v) = retry_failed_api(&server, id).await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    assert!(
        v["Error"].as_str().unwrap().contains("only an ended job"),
        "{v}"
    );
    server.stop().await;
}

/// Files as a results directory leaves them under the artifacts root, and
/// a secret beside the root that no path may reach.
fn lay_out_artifacts(server: &Server, id: i64) -> std::path::PathBuf {
    let root = server.state.config.artifacts_root.clone();
    let dir = root
        .join(format!("job-{id}"))
        .join("run-1/e2e_suite/attempt-0/e2e/node-1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("junit_01.xml"), "<testsuite/>").unwrap();
    std::fs::write(dir.join("odd name #1%.txt"), "odd").unwrap();
    std::fs::write(root.parent().unwrap().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(root.parent().unwrap().join("secret.txt"), dir.join("leak"))
        .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_listed_and_downloaded_only_beneath_the_job_directory() {
    let server = Server::start(Some(TOKEN)).await;
    let id = record_suite_job(&server.state, "suite").await;
    lay_out_artifacts(&server, id);
    let api = |path: &str| {
        client()
            .get(format!("{}/api/v1/jobs/{id}/artifacts{path}", server.url))
            .bearer_auth(TOKEN)
    };

    let v: Value = api("").send().await.unwrap().json().await.unwrap();
    assert_eq!(v["JobID"], id);
    assert_eq!(v["Truncated"], false);
    let paths: Vec<&str> = v["Files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["Path"].as_str().unwrap())
        .collect();
    // The link leading out is not listed.
    assert_eq!(
        paths,
        [
            "run-1/e2e_suite/attempt-0/e2e/node-1/junit_01.xml",
            "run-1/e2e_suite/attempt-0/e2e/node-1/odd name #1%.txt",
        ]
    );
    assert_eq!(v["Files"][0]["Bytes"], 12);

    let r = api("/run-1/e2e_suite/attempt-0/e2e/node-1/junit_01.xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"junit_01.xml\""
    );
    assert_eq!(r.text().await.unwrap(), "<testsuite/>");

    // `..` (sent encoded, so no client normalises it away) and absolute
    // paths are refused; a link out of the directory and a directory are
    // not files of the job.
    for (path, want) in [
        ("/run-1%2F..%2F..%2Fsecret.txt", StatusCode::BAD_REQUEST),
        ("/%2Fetc%2Fpasswd", StatusCode::BAD_REQUEST),
        (
            "/run-1/e2e_suite/attempt-0/e2e/node-1/leak",
            StatusCode::NOT_FOUND,
        ),
        ("/run-1", StatusCode::NOT_FOUND),
        ("/run-1/nope.txt", StatusCode::NOT_FOUND),
    ] {
        let r = api(path).send().await.unwrap();
        let code = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(code, want, "{path}: {body}");
        assert!(body["Error"].is_string(), "{path}: {body}");
        assert!(!body.to_string().contains("secret\""), "{body}");
    }
    // Another job's id cannot reach this job's files.
    let other = client()
        .get(format!(
            "{}/api/v1/jobs/{}/artifacts/run-1/e2e_suite/attempt-0/e2e/node-1/junit_01.xml",
            server.url,
            id + 1000
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    // The token guards them as the rest of the API.
    let r = client()
        .get(format!("{}/api/v1/jobs/{id}/artifacts", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

/// Files in the store (as the engine keeps them) are served without being
/// on this server's disk, piece after piece; a file the store only
/// records (over its limits) and this disk lacks is a 404 saying where it
/// is; a file on disk only is listed `Stored: false` beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_artifacts_are_served_without_the_disk() {
    use prova_store::ARTIFACT_CHUNK;
    let server = Server::start(Some(TOKEN)).await;
    let id = record_suite_job(&server.state, "suite").await;
    let dir = "run-1/e2e_suite/attempt-0/e2e/node-1";
    let big: Vec<u8> = (0..2 * ARTIFACT_CHUNK as u32 + 3)
        .map(|i| (i % 253) as u8)
        .collect();
    let store = &server.state.store;
    assert!(
        store
            .put_artifact(id, &format!("{dir}/big.bin"), &big, u64::MAX)
            .await
            .unwrap()
    );
    store
        .put_unstored_artifact(id, &format!("{dir}/huge.bin"), 1 << 30)
        .await
        .unwrap();
    let on_disk = lay_out_artifacts(&server, id);
    // The store's copy wins over the disk's.
    std::fs::write(on_disk.join("big.bin"), b"stale").unwrap();
    let api = |path: &str| {
        client()
            .get(format!("{}/api/v1/jobs/{id}/artifacts{path}", server.url))
            .bearer_auth(TOKEN)
    };

    let v: Value = api("").send().await.unwrap().json().await.unwrap();
    let files: Vec<(&str, u64, bool)> = v["Files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["Path"].as_str().unwrap(),
                f["Bytes"].as_u64().unwrap(),
                f["Stored"].as_bool().unwrap(),
            )
        })
        .collect();
    let p = |name: &str| format!("{dir}/{name}");
    assert_eq!(
        files,
        [
            (p("big.bin").as_str(), big.len() as u64, true),
            (p("huge.bin").as_str(), 1 << 30, false),
            (p("junit_01.xml").as_str(), 12, false),
            (p("odd name #1%.txt").as_str(), 3, false),
        ]
    );

    let r = api(&format!("/{dir}/big.bin")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-length"],
        big.len().to_string().as_str()
    );
    let got = r.bytes().await.unwrap();
    assert!(got[..] == big[..], "{} bytes differ", got.len());

    let r = api(&format!("/{dir}/huge.bin")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["Error"]
            .as_str()
            .unwrap()
            .contains("only the instance that ran the step has it"),
        "{body}"
    );
    // Disk-only files still download from the instance that has them.
    let r = api(&format!("/{dir}/junit_01.xml")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "<testsuite/>");
    // The path rules hold before the store is asked.
    let r = api("/run-1%2F..%2Fbig.bin").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_page_links_every_artifact_to_a_session_download() {
    let server = Server::start(Some(TOKEN)).await;
    let id = record_suite_job(&server.state, "suite").await;
    lay_out_artifacts(&server, id);
    let cookie = login(&server).await;
    let page = client()
        .get(format!("{}/jobs/{id}", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let href = format!(
        "/jobs/{id}/artifacts/run-1/e2e_suite/attempt-0/e2e/node-1/odd%20name%20%231%25.txt"
    );
    assert!(page.contains(&format!("href=\"{href}\"")), "{page}");
    let r = client()
        .get(format!("{}{href}", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "odd");
    // Without the session the download sends to the login form.
    let r = client()
        .get(format!("{}{href}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = client()
        .get(format!(
            "{}/jobs/{id}/artifacts/run-1%2F..%2F..%2Fsecret.txt",
            server.url
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test]
async fn the_new_bodies_have_schemas_in_the_openapi_document() {
    let doc = serde_json::to_value(prova_server::openapi::document()).unwrap();
    let paths = &doc["paths"];
    let list = &paths["/api/v1/jobs/{id}/artifacts"]["get"]["responses"]["200"]["content"]["application/json"]
        ["schema"];
    assert_eq!(list["$ref"], "#/components/schemas/ArtifactList", "{list}");
    let retry = &paths["/api/v1/jobs/{id}/retry"]["post"]["responses"]["201"]["content"]["application/json"]
        ["schema"];
    assert_eq!(retry["$ref"], "#/components/schemas/RetryAnswer", "{retry}");
    let conflict = &paths["/api/v1/jobs/{id}/retry"]["post"]["responses"]["409"]["content"]["application/json"]
        ["schema"];
    assert_eq!(conflict["$ref"], "#/components/schemas/ErrorBody");
    let schemas = &doc["components"]["schemas"];
    for name in ["ArtifactList", "ArtifactFile", "RetryAnswer", "ErrorBody"] {
        assert!(schemas[name].is_object(), "no schema {name}");
    }
    assert!(schemas["ArtifactFile"]["properties"]["Path"].is_object());
    assert!(
        paths["/api/v1/jobs/{id}/artifacts/{path}"]["get"]["responses"]["200"]["content"]
            ["application/octet-stream"]
            .is_object()
    );
}
