//! `/history`, `/compare/{a}/{b}` and `/coverage` over HTTP (no browser):
//! login required, a flaky test shown flaky with its reason, a comparison
//! listing a newly failing test, and the coverage sunburst with its zoom,
//! endpoint, test and untested views. `tests/browser.rs` clicks the
//! sunburst in chromium.

mod web_support;

use std::sync::Arc;

use reqwest::StatusCode;
use web_support::{Server, TOKEN, apisnoop_release, client, record_check_job};

/// The page's status and body, as a bearer client.
async fn get(server: &Server, path: &str) -> (StatusCode, String) {
    let r = client()
        .get(format!("{}{path}", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// The text of the `<section ... id=ID>` of a page.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!(" id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id}"));
    let end = html[start..].find("</section>").unwrap() + start;
    &html[start..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_need_the_login() {
    let server = Server::start(Some(TOKEN)).await;
    for path in [
        "/history?test=check",
        "/compare/1/2",
        "/coverage",
        "/compare",
    ] {
        let r = client()
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?next="),
            "{path}"
        );
    }
    // The header links to them.
    let (_, html) = get(&server, "/").await;
    for link in [
        "href=\"/history\"",
        "href=\"/compare\"",
        "href=\"/coverage\"",
    ] {
        assert!(html.contains(link), "{link}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_test_shows_flaky_with_its_reason_and_links_its_jobs() {
    let server = Server::start(Some(TOKEN)).await;
    let j1 = record_check_job(&*server.state.store, "nightly", true).await;
    let j2 = record_check_job(&*server.state.store, "nightly", false).await;
    let j3 = record_check_job(&*server.state.store, "nightly", true).await;
    let (code, html) = get(&server, "/history?test=check&job_name=nightly&last=10").await;
    assert_eq!(code, StatusCode::OK, "{html}");
    assert!(html.contains("class=\"badge flaky\""), "{html}");
    assert!(html.contains("mixed outcomes on the same inputs"), "{html}");
    // Pass, fail, pass: 2 of 3, newest passed so not failing.
    assert!(html.contains("<strong>67%</strong>"), "{html}");
    assert!(html.contains("not failing"));
    // One cell per job, oldest first, each a link with its outcome.
    let strip = &html[html.find("class=\"strip\"").unwrap()..];
    let cells: Vec<&str> = strip
        .split("class=\"cell ")
        .skip(1)
        .take(3)
        .map(|c| c.split('"').next().unwrap())
        .collect();
    assert_eq!(cells, ["passed", "failed", "passed"]);
    let (i1, i2, i3) = (
        strip.find(&format!("href=\"/jobs/{j1}\"")).unwrap(),
        strip.find(&format!("href=\"/jobs/{j2}\"")).unwrap(),
        strip.find(&format!("href=\"/jobs/{j3}\"")).unwrap(),
    );
    assert!(i1 < i2 && i2 < i3);
    // The failed job's message is in its cell's tooltip and the table.
    assert!(html.contains("target host1 failed at step probe: exit status 1"));
    // The duration trend: an inline SVG polyline, a point per timed job.
    assert!(html.contains("<svg class=\"trend\""), "{html}");
    let points = html
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(points.split(' ').count(), 3, "{points}");
    // And a link to compare the window's ends.
    assert!(html.contains(&format!("href=\"/compare/{j1}/{j3}\"")));

    // Failing now: the first failing job is named.
    let j4 = record_check_job(&*server.state.store, "nightly", false).await;
    let j5 = record_check_job(&*server.state.store, "nightly", false).await;
    let (_, html) = get(&server, "/history?test=check&job_name=nightly").await;
    assert!(
        html.contains(&format!(
            "<a href=\"/jobs/{j4}\">job {j4}</a> (2 failing in a row)"
        )),
        "{html}"
    );
    let _ = j5;

    // Nothing matching says so and lists what exists; bad input is a 400 page.
    let (code, html) = get(&server, "/history?test=nope").await;
    assert_eq!(code, StatusCode::OK);
    assert!(
        html.contains("Nothing named") && html.contains("test: check"),
        "{html}"
    );
    let (code, html) = get(&server, "/history?test=x&last=0").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(html.contains("last=0"), "{html}");
    // No test: only the forms.
    let (code, html) = get(&server, "/history").await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("action=\"/history\"") && html.contains("action=\"/compare\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_lists_a_newly_failing_test_with_links_to_both_jobs() {
    let server = Server::start(Some(TOKEN)).await;
    let a = record_check_job(&*server.state.store, "nightly", true).await;
    let b = record_check_job(&*server.state.store, "nightly", false).await;
    let (code, html) = get(&server, &format!("/compare/{a}/{b}")).await;
    assert_eq!(code, StatusCode::OK, "{html}");
    let failing = section(&html, "newly-failing");
    assert!(
        failing.contains("href=\"/history?test=check\""),
        "{failing}"
    );
    assert!(
        failing.contains(&format!("href=\"/jobs/{a}\"")),
        "{failing}"
    );
    assert!(
        failing.contains(&format!("href=\"/jobs/{b}\"")),
        "{failing}"
    );
    assert!(failing.contains("exit status 1"), "{failing}");
    assert!(section(&html, "newly-passing").contains("None."));
    // The other way round it is newly passing.
    let (_, html) = get(&server, &format!("/compare/{b}/{a}")).await;
    assert!(section(&html, "newly-passing").contains("href=\"/history?test=check\""));
    assert!(section(&html, "newly-failing").contains("None."));
    // Bad ids and missing jobs.
    let (code, _) = get(&server, &format!("/compare/{a}/424242")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, html) = get(&server, "/compare/1/x").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(html.contains("not a job id"), "{html}");
    // The form redirects to the page.
    let r = client()
        .get(format!("{}/compare?a={a}&b={b}", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("/compare/{a}/{b}"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_without_a_source_says_how_to_get_one() {
    let server = Server::start(Some(TOKEN)).await;
    let (code, html) = get(&server, "/coverage").await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("--coverage-spec") && html.contains("--coverage-report"));
    assert!(!html.contains("<svg"));
    server.stop().await;
}

/// Arcs (`<path ... data-kind=...>`) of each kind in a page's sunburst.
fn arcs(html: &str, kind: &str) -> usize {
    html.matches(&format!("class=\"arc {kind}\"")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_draws_the_saved_report_zooms_and_lists() {
    let report = Arc::new(apisnoop_release());
    let endpoints = report.endpoints.len();
    let server =
        Server::start_with(Some(TOKEN), |c| c.coverage_report = Some(report.clone())).await;
    let (code, html) = get(&server, "/coverage").await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("<svg") && html.contains("class=\"sunburst\""));
    assert_eq!(arcs(&html, "endpoint"), endpoints, "one arc per endpoint");
    assert_eq!(arcs(&html, "level"), 3);
    assert!(html.contains("href=\"/coverage?focus=stable\""));
    // Zoomed to stable/apps: only that category's endpoints, centre is apps.
    let apps = report
        .endpoints
        .iter()
        .filter(|e| e.category == "apps" && e.level == prova_coverage::spec::Level::Stable)
        .count();
    assert!(apps > 10);
    let (code, html) = get(&server, "/coverage?focus=stable/apps").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(arcs(&html, "endpoint"), apps);
    assert_eq!(arcs(&html, "level"), 0);
    assert!(html.contains("data-focus=\"stable/apps\""));
    assert!(
        html.contains("<h2>stable/apps</h2>"),
        "the side panel counts the focus"
    );
    // A focus naming nothing is a 400 saying what a focus is.
    let (code, html) = get(&server, "/coverage?focus=stable/nope").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(html.contains("names nothing"), "{html}");

    // An endpoint: its details and the tests that hit it, each linked.
    let e = report
        .endpoint("connectCoreV1DeleteNamespacedPodProxy")
        .unwrap();
    let test = e.tests[0].clone();
    let (_, html) = get(
        &server,
        "/coverage?endpoint=connectCoreV1DeleteNamespacedPodProxy",
    )
    .await;
    let panel = section(&html, "endpoint");
    assert!(panel.contains("Conformance tested"), "{panel}");
    assert!(panel.contains("/api/v1/namespaces/{namespace}/pods/{name}/proxy"));
    assert!(
        panel.contains(&maud::html! { (test) }.into_string()),
        "{panel}"
    );
    // A test: the endpoints it hit (from each endpoint's tests here).
    let hit_by = report
        .endpoints
        .iter()
        .filter(|x| x.tests.contains(&test))
        .count();
    let (_, html) = get(&server, &format!("/coverage?test={}", urlencode(&test))).await;
    let panel = section(&html, "test");
    assert!(
        panel.contains(&format!("Endpoints it hit ({hit_by})")),
        "{panel}"
    );
    assert!(panel.contains("href=\"/coverage?endpoint=connectCoreV1DeleteNamespacedPodProxy\""));
    // The untested stable list (an APISnoop file does not say which are eligible).
    let untested = section(&html, "untested");
    let stable_untested = report
        .endpoints
        .iter()
        .filter(|x| x.level == prova_coverage::spec::Level::Stable && !x.conf_tested)
        .count();
    assert!(
        untested.contains(&format!("({stable_untested})")),
        "{stable_untested}"
    );
    assert!(untested.contains("connectCoreV1DeleteNodeProxy"));
    // Bounded input.
    let (code, _) = get(&server, &format!("/coverage?test={}", "x".repeat(2000))).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    server.stop().await;
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_string()
}

mod audit_corpus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coverage_from_the_live_sink_is_the_audit_report_and_wins_over_a_saved_one() {
    let spec = Arc::new(prova_coverage::spec::Spec::from_file(&audit_corpus::spec_path()).unwrap());
    let saved = Arc::new(apisnoop_release());
    let server = Server::start_with(Some(TOKEN), |c| {
        c.audit.spec = Some(spec);
        c.coverage_report = Some(saved);
    })
    .await;
    let events = audit_corpus::with_e2e_agents(audit_corpus::events());
    for chunk in events.chunks(50) {
        let r = client()
            .post(format!("{}/api/v1/audit/events", server.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(audit_corpus::event_list(chunk))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let report = server.get_json("/api/v1/audit/report").await;
    let tested = report["tested endpoints"].as_u64().unwrap();
    assert!(tested > 3, "{tested}");
    let (code, html) = get(&server, "/coverage").await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("From the live audit sink"), "{html}");
    let total = report["total endpoints"].as_u64().unwrap();
    assert!(
        html.contains(&format!(
            "<dt>Tested</dt><dd>{tested} ({:.1}%)</dd>",
            tested as f64 * 100.0 / total as f64
        )),
        "{tested} of {total}"
    );
    // A tested endpoint lists the tests the sink credited it to.
    let hit = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["tested"] == true && !e["tests"].as_array().unwrap().is_empty())
        .unwrap();
    let id = hit["endpoint"].as_str().unwrap();
    let (_, html) = get(&server, &format!("/coverage?endpoint={id}")).await;
    let panel = section(&html, "endpoint");
    let first_test = hit["tests"][0].as_str().unwrap();
    assert!(
        panel.contains(&maud::html! { (first_test) }.into_string()),
        "{panel}"
    );
    server.stop().await;
}
