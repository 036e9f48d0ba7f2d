//! The dashboard in a real browser: headless chromium driven over
//! WebDriver (chromedriver, started here on a free loopback port).
//!
//! `scripts/test.sh` installs Debian's `chromium` and `chromium-driver`
//! and sets `PROVA_REQUIRE_BROWSER=1`, so a missing browser fails these
//! tests there; elsewhere they say so and pass without running. Every page
//! visited is saved as a PNG under `target/screenshots/`.

mod web_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use web_support::{
    FAILURE, Server, TOKEN, apisnoop_release, record_check_job, record_suite_job, sleep_job,
};

/// One browser at a time: the machines running the suite are small.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHROMIUM: &str = "/usr/bin/chromium";

struct Browser {
    client: Client,
    driver: Child,
    /// chromedriver's port and the session: on drop (a test that panicked
    /// never closed its client) the session is deleted first, or chromium
    /// would outlive the killed chromedriver.
    port: u16,
    session: Option<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(session) = &self.session {
            delete_session(self.port, session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/ID` to chromedriver, blocking (Drop cannot await):
/// chromedriver then quits that chromium. Best effort, bounded to 5 s.
fn delete_session(port: u16, session: &str) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_ok() {
        let _ = s.read_to_end(&mut Vec::new());
    }
}

fn find_driver() -> Option<PathBuf> {
    ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Starts chromedriver and a headless chromium session, or `None` (after
/// saying why) when they are not installed and not required.
async fn browser() -> Option<Browser> {
    let required = std::env::var("PROVA_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let driver = match find_driver() {
        Some(d) if std::path::Path::new(CHROMIUM).exists() => d,
        _ => {
            assert!(
                !required,
                "PROVA_REQUIRE_BROWSER=1 but chromium or chromedriver is missing: apt-get install chromium chromium-driver (scripts/test.sh does)"
            );
            eprintln!(
                "skipping: chromium/chromedriver not installed (set PROVA_REQUIRE_BROWSER=1 to fail instead)"
            );
            return None;
        }
    };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver.display()));
    let url = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if reqwest::get(format!("{url}/status"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "chromedriver did not answer on {url} within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = tokio::time::timeout(
        Duration::from_secs(30),
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url),
    )
    .await
    .expect("a chromium session within 30 s")
    .expect("a chromium session");
    let session = client.session_id().await.ok().flatten();
    Some(Browser {
        client,
        driver: child,
        port,
        session,
    })
}

/// Saves what the browser shows as `target/screenshots/NAME.png`.
async fn screenshot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn login(c: &Client, server: &Server) {
    c.goto(&format!("{}/login", server.url)).await.unwrap();
    let form = c.form(Locator::Css("form.login")).await.unwrap();
    form.set_by_name("token", TOKEN).await.unwrap();
    form.submit().await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("table.jobs"))
        .await
        .unwrap();
}

/// Waits until `cond` holds, checking every 100 ms; panics with `what`.
async fn until<F, Fut>(what: &str, within: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_is_required() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let server = Server::start(Some(TOKEN)).await;
    c.goto(&format!("{}/", server.url)).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(
        url.path(),
        "/login",
        "an unauthenticated / goes to the login form"
    );
    assert_eq!(url.query(), Some("next=%2F"));
    screenshot(c, "login").await;
    let form = c.form(Locator::Css("form.login")).await.unwrap();
    form.set_by_name("token", "wrong").await.unwrap();
    form.submit().await.unwrap();
    let err = c
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Id("login-error"))
        .await
        .unwrap();
    assert_eq!(err.text().await.unwrap(), "Wrong token.");
    let form = c.form(Locator::Css("form.login")).await.unwrap();
    form.set_by_name("token", TOKEN).await.unwrap();
    form.submit().await.unwrap();
    c.wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("table.jobs"))
        .await
        .unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/");
    // The cookie is HttpOnly: scripts on the page cannot read it.
    let visible = c.execute("return document.cookie", vec![]).await.unwrap();
    assert_eq!(visible, serde_json::json!(""));
    // Logging out ends the session.
    c.find(Locator::Css("form.logout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("form.login"))
        .await
        .unwrap();
    c.goto(&format!("{}/", server.url)).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    b.client.clone().close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_list_updates_live_when_a_job_ends() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let server = Server::start(Some(TOKEN)).await;
    login(c, &server).await;
    let id = server.submit(&sleep_job("short nap", "3s")).await;
    server
        .wait_state(id, "Started", Duration::from_secs(10))
        .await;
    c.goto(&format!("{}/", server.url)).await.unwrap();
    // Read in one script: the live stream may replace the row at any time
    // (an element found first would go stale).
    let state_js = format!(
        "var r = document.getElementById('job-{id}'); return r ? r.getAttribute('data-state') : null"
    );
    let state = c.execute(&state_js, vec![]).await.unwrap();
    assert_eq!(state, serde_json::json!("Started"), "the page as served");
    screenshot(c, "jobs-running").await;
    // A mark on the window: it survives only if the page is not reloaded.
    c.execute("window.provaMark = 42", vec![]).await.unwrap();
    until(
        "the row shows the job completed",
        Duration::from_secs(15),
        || async { c.execute(&state_js, vec![]).await.unwrap() == serde_json::json!("Completed") },
    )
    .await;
    let mark = c.execute("return window.provaMark", vec![]).await.unwrap();
    assert_eq!(
        mark,
        serde_json::json!(42),
        "the row changed without a reload"
    );
    let text = c
        .execute(
            &format!("return document.getElementById('job-{id}').textContent"),
            vec![],
        )
        .await
        .unwrap();
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("Completed") && text.contains("passed"),
        "{text}"
    );
    screenshot(c, "jobs").await;
    b.client.clone().close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_page_follows_its_job_until_it_ends() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let server = Server::start(Some(TOKEN)).await;
    login(c, &server).await;
    let id = server.submit(&sleep_job("watched nap", "3s")).await;
    server
        .wait_state(id, "Started", Duration::from_secs(10))
        .await;
    c.goto(&format!("{}/jobs/{id}", server.url)).await.unwrap();
    let h1 = c
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(h1.contains("Started") && h1.contains("pending"), "{h1}");
    c.execute("window.provaMark = 7", vec![]).await.unwrap();
    until(
        "the page shows the job completed and passed",
        Duration::from_secs(15),
        || async {
            let h1 = c
                .execute("return document.querySelector('h1').textContent", vec![])
                .await
                .unwrap();
            let h1 = h1.as_str().unwrap_or("").to_string();
            h1.contains("Completed") && h1.contains("passed")
        },
    )
    .await;
    until(
        "the live indicator says the job ended",
        Duration::from_secs(5),
        || async {
            let t = c
                .execute(
                    "return document.getElementById('live-indicator').textContent",
                    vec![],
                )
                .await
                .unwrap();
            t.as_str().is_some_and(|t| t.starts_with("job ended"))
        },
    )
    .await;
    let mark = c.execute("return window.provaMark", vec![]).await.unwrap();
    assert_eq!(mark, serde_json::json!(7), "updated in place, not reloaded");
    let tree = c
        .find(Locator::Css("details.test summary"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        tree.contains("passed") && tree.contains("2 of 2 target-steps"),
        "{tree}"
    );
    screenshot(c, "job-ended-live").await;
    b.client.clone().close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_case_message_shows_on_the_job_page() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let server = Server::start(Some(TOKEN)).await;
    let id = record_suite_job(&server.state, "conformance").await;
    login(c, &server).await;
    c.goto(&format!("{}/jobs/{id}", server.url)).await.unwrap();
    let first = c.find(Locator::Css("table.cases tbody tr")).await.unwrap();
    assert_eq!(
        first.attr("data-status").await.unwrap().as_deref(),
        Some("failed"),
        "failures come first"
    );
    let msg = first.find(Locator::Css(".case-message")).await.unwrap();
    assert_eq!(msg.text().await.unwrap(), FAILURE);
    assert!(
        first
            .text()
            .await
            .unwrap()
            .contains("Deployment should scale up")
    );
    screenshot(c, "job-failed-case").await;
    b.client.clone().close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_retry_work_from_the_page_and_fail_without_the_csrf_token() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let server = Server::start(Some(TOKEN)).await;
    login(c, &server).await;
    let id = server.submit(&sleep_job("long nap", "60s")).await;
    server
        .wait_state(id, "Started", Duration::from_secs(10))
        .await;
    c.goto(&format!("{}/jobs/{id}", server.url)).await.unwrap();
    screenshot(c, "job-running").await;
    // The stop form without its CSRF field: refused, and the job runs on.
    c.execute(
        "var f = document.querySelector('#action-cancel').form; f.querySelector('input[name=csrf]').remove(); f.submit();",
        vec![],
    )
    .await
    .unwrap();
    let err = c
        .wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("p.error"))
        .await
        .unwrap();
    assert!(err.text().await.unwrap().contains("CSRF"));
    screenshot(c, "csrf-refused").await;
    assert_eq!(server.state_of(id).await, "Started");
    // With it: stopped.
    c.goto(&format!("{}/jobs/{id}", server.url)).await.unwrap();
    // Clicked from a script: the live refresh may swap the button at any
    // time, and a found element would go stale.
    c.execute("document.getElementById('action-cancel').click()", vec![])
        .await
        .unwrap();
    assert!(notice_text(c).await.contains("cancel"));
    server
        .wait_state(id, "Cancelled", Duration::from_secs(10))
        .await;
    // Retry from the page opens the new job.
    c.goto(&format!("{}/jobs/{id}", server.url)).await.unwrap();
    c.find(Locator::Id("action-retry"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(notice_text(c).await.contains(&format!("reruns job {id}")));
    let new = job_on_page(c).await;
    assert!(new > id);
    server
        .wait_state(new, "Started", Duration::from_secs(10))
        .await;
    screenshot(c, "job-retried").await;
    b.client.clone().close().await.unwrap();
    server.stop().await;
}

/// A job of two tests on one target: `alpha-ok` passes, `omega-broken`
/// fails (its command exits 1).
fn one_failing_one_passing() -> String {
    let test = |name: &str, exe: &str| {
        format!(
            "  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: {name}\n      Steps: [{{name: cmd, label: run, parameters: {{executable: [{exe}]}}}}]\n"
        )
    };
    format!(
        "JobName: half green\nTestDescriptors:\n{}{}Reporting:\n  RunReporters: [{{name: TargetSuccess, parameters: {{SuccessExpression: \"=100%\"}}}}]\n",
        test("alpha-ok", "true"),
        test("omega-broken", "false")
    )
}

/// The text of the page's notice (what an action answered), once it shows.
async fn notice_text(c: &Client) -> String {
    c.wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Id("notice"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The id of the job whose page the browser is on (`/jobs/{id}`).
async fn job_on_page(c: &Client) -> i64 {
    let url = c.current_url().await.unwrap();
    url.path().trim_start_matches("/jobs/").parse().unwrap()
}

/// The names of the tests the job page's status tree shows.
async fn tests_on_page(c: &Client) -> Vec<String> {
    let mut names = Vec::new();
    for el in c
        .find_all(Locator::Css("details.test > summary > strong"))
        .await
        .unwrap()
    {
        names.push(el.text().await.unwrap());
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_failed_from_the_page_reruns_only_the_failed_test() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let server = Server::start(Some(TOKEN)).await;
    login(c, &server).await;
    let id = server.submit(&one_failing_one_passing()).await;
    server
        .wait_state(id, "Completed", Duration::from_secs(20))
        .await;
    c.goto(&format!("{}/jobs/{id}", server.url)).await.unwrap();
    assert_eq!(tests_on_page(c).await, ["alpha-ok", "omega-broken"]);
    let button = c.find(Locator::Id("action-retry-failed")).await.unwrap();
    assert_eq!(button.text().await.unwrap(), "Retry failed (1)");
    // Clicked from a script: the live refresh may swap the button.
    c.execute(
        "document.getElementById('action-retry-failed').click()",
        vec![],
    )
    .await
    .unwrap();
    let notice = notice_text(c).await;
    assert!(
        notice.contains(&format!("reruns the tests that failed in job {id}")),
        "{notice}"
    );
    let new = job_on_page(c).await;
    assert!(new > id);
    server
        .wait_state(new, "Completed", Duration::from_secs(20))
        .await;
    // What ran: the failed test alone, as the store has it ...
    let status = server.state.store.job_status(new).await.unwrap().unwrap();
    let ran: Vec<&str> = status
        .run_statuses
        .iter()
        .flat_map(|r| &r.test_statuses)
        .map(|t| t.test_name.as_str())
        .collect();
    assert_eq!(ran, ["omega-broken"]);
    // ... and as the page shows it, once the live page has caught up.
    until(
        "the new job's page shows its test",
        Duration::from_secs(10),
        || async { tests_on_page(c).await == ["omega-broken"] },
    )
    .await;
    screenshot(c, "job-retry-failed").await;
    b.client.clone().close().await.unwrap();
    server.stop().await;
}

/// Clicks `css` where the browser says it is on top (an SVG arc's
/// bounding box centre may lie on another arc): a real pointer click, as
/// a reader's, at a point found by `elementFromPoint`.
async fn click_on_top(c: &Client, css: &str) {
    let at = c
        .execute(
            "const el = document.querySelector(arguments[0]);
             el.scrollIntoView({block: 'center'});
             const r = el.getBoundingClientRect();
             for (let i = 1; i < 24; i++) for (let j = 1; j < 24; j++) {
               const x = r.left + r.width * i / 24, y = r.top + r.height * j / 24;
               if (document.elementFromPoint(x, y) === el) return [x, y];
             }
             return null;",
            vec![serde_json::json!(css)],
        )
        .await
        .unwrap();
    let (x, y) = (
        at[0]
            .as_f64()
            .unwrap_or_else(|| panic!("{css} is nowhere on top")),
        at[1].as_f64().unwrap(),
    );
    use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
    let click = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x,
            y,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    c.perform_actions(click).await.unwrap();
}

/// The sunburst's centre label (the focus's name).
async fn centre_label(c: &Client) -> String {
    c.find(Locator::Css("#sb-centre + text"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Waits for the page at `/coverage` with this focus (`None`: none).
async fn wait_focus(c: &Client, want: Option<&str>) {
    until(
        &format!("the URL's focus to be {want:?}"),
        Duration::from_secs(5),
        || async {
            let url = c.current_url().await.unwrap();
            let focus = url
                .query_pairs()
                .find(|(k, _)| k == "focus")
                .map(|(_, v)| v.to_string());
            url.path() == "/coverage" && focus.as_deref() == want
        },
    )
    .await;
    c.wait()
        .at_most(Duration::from_secs(5))
        .for_element(Locator::Css("svg.sunburst"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sunburst_zooms_on_click_and_history_and_compare_render() {
    let _one = ONE_BROWSER.lock().await;
    let Some(b) = browser().await else { return };
    let c = &b.client;
    let report = std::sync::Arc::new(apisnoop_release());
    let server = Server::start_with(Some(TOKEN), |cfg| {
        cfg.coverage_report = Some(report.clone())
    })
    .await;
    let j1 = record_check_job(&*server.state.store, "nightly", true).await;
    let j2 = record_check_job(&*server.state.store, "nightly", false).await;
    record_check_job(&*server.state.store, "nightly", true).await;
    login(c, &server).await;

    c.goto(&format!("{}/coverage", server.url)).await.unwrap();
    wait_focus(c, None).await;
    let arcs = c
        .find_all(Locator::Css("svg.sunburst path.arc"))
        .await
        .unwrap();
    assert!(arcs.len() > report.endpoints.len(), "{} arcs", arcs.len());
    let everything = centre_label(c).await;
    screenshot(c, "coverage").await;
    // Click the stable ring: the URL names the zoom and the centre says stable.
    click_on_top(c, "path.arc[data-path='stable']").await;
    wait_focus(c, Some("stable")).await;
    assert_eq!(centre_label(c).await, "stable");
    assert_ne!(everything, "stable");
    // Further in, to a category.
    click_on_top(c, "path.arc[data-path='stable/apps']").await;
    wait_focus(c, Some("stable/apps")).await;
    assert_eq!(centre_label(c).await, "apps");
    let endpoint_arcs = c
        .find_all(Locator::Css("svg.sunburst path.arc.endpoint"))
        .await
        .unwrap();
    assert!(!endpoint_arcs.is_empty());
    screenshot(c, "coverage-zoomed").await;
    // The centre zooms out one level.
    click_on_top(c, "#sb-centre").await;
    wait_focus(c, Some("stable")).await;
    assert_eq!(centre_label(c).await, "stable");

    c.goto(&format!(
        "{}/history?test=check&job_name=nightly",
        server.url
    ))
    .await
    .unwrap();
    let flaky = c.find(Locator::Css(".badge.flaky")).await.unwrap();
    assert!(flaky.is_displayed().await.unwrap());
    assert_eq!(
        c.find_all(Locator::Css(".strip a.cell"))
            .await
            .unwrap()
            .len(),
        3
    );
    c.find(Locator::Css("svg.trend polyline")).await.unwrap();
    screenshot(c, "history").await;

    c.goto(&format!("{}/compare/{j1}/{j2}", server.url))
        .await
        .unwrap();
    let row = c
        .find(Locator::Css("#newly-failing tbody tr"))
        .await
        .unwrap();
    assert!(row.text().await.unwrap().contains("check"));
    screenshot(c, "compare").await;
    b.client.clone().close().await.unwrap();
    server.stop().await;
}
