//! The dashboard's pages over HTTP (no browser): who may see them, the
//! session cookie's flags, CSRF on actions, and what the pages show.
//! `tests/browser.rs` drives the same pages in chromium.

mod web_support;

use std::time::Duration;

use reqwest::StatusCode;
use web_support::{FAILURE, Server, TOKEN, client, csrf_in, login, record_suite_job, sleep_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_the_token_and_the_login_sets_a_strict_http_only_cookie() {
    let server = Server::start(Some(TOKEN)).await;
    let r = client()
        .get(format!("{}/?state=Started", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login?next=%2F%3Fstate%3DStarted");
    // A wrong token is refused with the form again.
    let r = client()
        .post(format!("{}/login", server.url))
        .form(&[("token", "nope"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("Wrong token"));
    // The right one sets the cookie and goes where asked, never off-site.
    let r = client()
        .post(format!("{}/login", server.url))
        .form(&[("token", TOKEN), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap();
    let r = client()
        .get(format!("{}/", server.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.text().await.unwrap().contains("<h1>Jobs</h1>"));
    // A forged cookie is not a session; the bearer header works as for the API.
    let r = client()
        .get(format!("{}/", server.url))
        .header("cookie", "prova_session=1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = client()
        .get(format!("{}/", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client()
        .get(format!("{}/", server.url))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The API still takes only the bearer header, not the page cookie.
    let r = client()
        .get(format!("{}/api/v1/jobs", server.url))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_without_the_csrf_token_are_refused_and_with_it_they_act() {
    let server = Server::start(Some(TOKEN)).await;
    let cookie = login(&server).await;
    let id = server.submit(&sleep_job("long nap", "60s")).await;
    server
        .wait_state(id, "Started", Duration::from_secs(10))
        .await;
    let page = client()
        .get(format!("{}/jobs/{id}", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_in(&page);
    for form in [vec![], vec![("csrf", "0".repeat(64))]] {
        let r = client()
            .post(format!("{}/jobs/{id}/cancel", server.url))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().contains("CSRF"));
    }
    assert_eq!(
        server.state_of(id).await,
        "Started",
        "a refused stop must not stop"
    );
    // Another session's token does not work either.
    let other = login(&server).await;
    let r = client()
        .post(format!("{}/jobs/{id}/cancel", server.url))
        .header("cookie", &other)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client()
        .post(format!("{}/jobs/{id}/cancel", server.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        format!("/jobs/{id}?done=cancel").as_str()
    );
    server
        .wait_state(id, "Cancelled", Duration::from_secs(10))
        .await;
    // Retry makes a new job and goes to it.
    let r = client()
        .post(format!("{}/jobs/{id}/retry", server.url))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let new: i64 = to
        .trim_start_matches("/jobs/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        new > id && to.ends_with(&format!("done=retry&from={id}")),
        "{to}"
    );
    // A bearer client needs no CSRF token (no browser sends that header by itself).
    let r = client()
        .post(format!("{}/jobs/{new}/cancel", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    server
        .wait_state(new, "Cancelled", Duration::from_secs(10))
        .await;
    // Acting on a job that is not running says why.
    let r = client()
        .post(format!("{}/jobs/{new}/pause", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_page_shows_the_failing_case_and_the_api_serves_the_merged_junit() {
    let server = Server::start(Some(TOKEN)).await;
    let id = record_suite_job(&server.state, "conformance <nightly>").await;
    let page = client()
        .get(format!("{}/jobs/{id}", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(FAILURE), "the failure message is on the page");
    assert!(
        page.contains("conformance &lt;nightly&gt;"),
        "names are escaped"
    );
    assert!(page.contains("Deployment should scale up") && page.contains("Pods should start"));
    // Failures first.
    assert!(page.find("Deployment should scale up") < page.find("Pods should start"));
    assert!(
        page.contains("1 failed") && page.contains("1 passed"),
        "case counts"
    );
    assert!(
        page.contains("✘ failed"),
        "the verdict is a word and a glyph"
    );
    // The same JUnit from the API (bearer) and from the page link (session).
    let r = client()
        .get(format!("{}/api/v1/jobs/{id}/junit", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("<testsuites")
            && xml.contains("Deployment should scale up")
            && xml.contains(FAILURE),
        "{xml}"
    );
    let r = client()
        .get(format!("{}/api/v1/jobs/9999/junit", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let cookie = login(&server).await;
    let r = client()
        .get(format!("{}/jobs/{id}/junit.xml", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), xml);
    // The OpenAPI document gives the endpoint a schema.
    let doc = server.get_json("/api/v1/openapi.json").await;
    let ok = &doc["paths"]["/api/v1/jobs/{id}/junit"]["get"]["responses"]["200"]["content"]["application/xml"]
        ["schema"];
    assert_eq!(ok["type"], "string", "{ok}");
    // Unknown jobs and bad ids are pages that say so.
    let r = client()
        .get(format!("{}/jobs/424242", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("job 424242 not found"));
    let r = client()
        .get(format!("{}/jobs/abc", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_list_filters_by_state_name_and_tag_and_pages() {
    let server = Server::start(None).await;
    let a = record_suite_job(&server.state, "alpha suite").await;
    let b = record_suite_job(&server.state, "beta suite").await;
    let c = server.submit(&sleep_job("gamma nap", "30s")).await;
    server
        .wait_state(c, "Started", Duration::from_secs(10))
        .await;
    let get = |q: &str| {
        let url = format!("{}/{q}", server.url);
        async move {
            client()
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let has = |html: &str, id: i64| html.contains(&format!("id=\"job-{id}\""));
    let all = get("").await;
    assert!(has(&all, a) && has(&all, b) && has(&all, c));
    let named = get("?name=ALPHA").await;
    assert!(has(&named, a) && !has(&named, b) && !has(&named, c));
    // The name filter pages in the store: a page of one match, then the next.
    let named = get("?name=Suite&limit=1").await;
    assert!(has(&named, b) && !has(&named, a) && !has(&named, c));
    assert!(
        named.contains(&format!("href=\"/?name=Suite&amp;limit=1&amp;before={b}\"")),
        "a next-page link that keeps the filter: {named}"
    );
    let named = get(&format!("?name=Suite&limit=1&before={b}")).await;
    assert!(has(&named, a) && !has(&named, b) && !has(&named, c));
    // The same filter in the API.
    let api = server.get_json("/api/v1/jobs?name=sUITE").await;
    let ids: Vec<i64> = api["Jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["JobID"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [b, a], "GET /api/v1/jobs?name=");
    let started = get("?state=Started").await;
    assert!(!has(&started, a) && has(&started, c));
    let tagged = get("?tag=nightly,web").await;
    assert!(!has(&tagged, a) && has(&tagged, c));
    let first = get("?limit=2").await;
    assert!(has(&first, c) && has(&first, b) && !has(&first, a));
    assert!(
        first.contains(&format!("href=\"/?limit=2&amp;before={b}\"")),
        "a next-page link"
    );
    let second = get(&format!("?limit=2&before={b}")).await;
    assert!(has(&second, a) && !has(&second, b));
    let r = client()
        .get(format!("{}/?state=Bogus", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("unknown state"));
    // Without a token, a browser still gets a session, so forms carry CSRF tokens.
    let r = client()
        .get(format!("{}/jobs/{c}", server.url))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("set-cookie").is_some());
    let r = client()
        .post(format!("{}/jobs/{c}/cancel", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FORBIDDEN,
        "no token, but still no cross-site posts"
    );
    // The live stream sends the page's rows.
    let mut live = client()
        .get(format!("{}/live/jobs?state=Started", server.url))
        .send()
        .await
        .unwrap();
    let chunk = tokio::time::timeout(Duration::from_secs(5), live.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(
        text.contains("event: row") && text.contains(&format!("job-{c}")),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_page_says_what_a_running_job_waits_for() {
    let server = Server::start(Some(TOKEN)).await;
    let job = "JobName: twice\nRuns: 2\nRunInterval: 30s\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: quick\n      Steps: [{name: sleep, label: nap, parameters: {duration: [50ms]}}]\nReporting:\n  RunReporters: [{name: noop}]\n";
    let id = server.submit(job).await;
    let start = std::time::Instant::now();
    let page = loop {
        let page = client()
            .get(format!("{}/jobs/{id}", server.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("Waiting the run interval") {
            break page;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no wait shown: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        page.contains("Waiting the run interval (30s) before run 2"),
        "{page}"
    );
    let r = client()
        .post(format!("{}/jobs/{id}/cancel", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    server
        .wait_state(id, "Cancelled", Duration::from_secs(10))
        .await;
    server.stop().await;
}
