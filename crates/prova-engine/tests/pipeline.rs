//! The engine against misbehaving steps, pipelining, retries, cleanup and
//! cancellation, on a real SQLite store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prova_core::node::Format;
use prova_core::{Event, EventQuery, JobState};
use prova_engine::plugin::*;
use prova_engine::prepare::prepare_str;
use prova_engine::runner::{JobOutcome, RunOptions, run_job};
use prova_store::{SqlStore, Store};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Panicky;
#[async_trait]
impl PreparedStep for Panicky {
    async fn run(&self, _: &StepContext, t: &Target) -> Result<(), StepError> {
        if t.id == "boom" {
            panic!("kaboom for {}", t.id);
        }
        Ok(())
    }
}

/// Ignores cancellation and never returns.
struct Hang;
#[async_trait]
impl PreparedStep for Hang {
    async fn run(&self, _: &StepContext, _: &Target) -> Result<(), StepError> {
        std::future::pending().await
    }
}

/// Sleeps 600ms for target "slow", nothing for the others.
struct SlowFor;
#[async_trait]
impl PreparedStep for SlowFor {
    async fn run(&self, _: &StepContext, t: &Target) -> Result<(), StepError> {
        if t.id == "slow" {
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        Ok(())
    }
}

/// Fails its first `n` calls.
struct FailFirst(AtomicUsize);
#[async_trait]
impl PreparedStep for FailFirst {
    async fn run(&self, _: &StepContext, _: &Target) -> Result<(), StepError> {
        if self.0.fetch_sub(1, Ordering::SeqCst) > 0 {
            Err(StepError::failed("not yet"))
        } else {
            self.0.store(0, Ordering::SeqCst);
            Ok(())
        }
    }
}

/// Returns a target it was never given, then the real ones.
struct Rogue;
#[async_trait]
impl PreparedBatchStep for Rogue {
    async fn run_batch(
        &self,
        _: Arc<StepContext>,
        mut input: mpsc::Receiver<Target>,
        output: mpsc::Sender<(Target, Result<(), StepError>)>,
    ) -> Result<(), StepError> {
        let _ = output.send((Target::with_id("stranger"), Ok(()))).await;
        while let Some(t) = input.recv().await {
            let _ = output.send((t, Ok(()))).await;
        }
        Ok(())
    }
}

/// Returns every target twice.
struct Twice;
#[async_trait]
impl PreparedBatchStep for Twice {
    async fn run_batch(
        &self,
        _: Arc<StepContext>,
        mut input: mpsc::Receiver<Target>,
        output: mpsc::Sender<(Target, Result<(), StepError>)>,
    ) -> Result<(), StepError> {
        while let Some(t) = input.recv().await {
            let _ = output.send((t.clone(), Ok(()))).await;
            let _ = output.send((t, Ok(()))).await;
        }
        Ok(())
    }
}

/// Takes one target and ends without returning it.
struct Quitter;
#[async_trait]
impl PreparedBatchStep for Quitter {
    async fn run_batch(
        &self,
        _: Arc<StepContext>,
        mut input: mpsc::Receiver<Target>,
        _output: mpsc::Sender<(Target, Result<(), StepError>)>,
    ) -> Result<(), StepError> {
        let _ = input.recv().await;
        Ok(())
    }
}

/// Reports two cases of "its suite", as a container step does after
/// reading junit.xml.
struct Suite;
#[async_trait]
impl PreparedStep for Suite {
    async fn run(&self, ctx: &StepContext, t: &Target) -> Result<(), StepError> {
        use prova_core::results::{CaseStatus, TEST_CASE, TestCaseResult};
        for (name, status) in [
            ("adds", CaseStatus::Passed),
            ("divides", CaseStatus::Failed),
        ] {
            let case = TestCaseResult {
                suite: "math".into(),
                name: name.into(),
                classname: Some("calc.Math".into()),
                status,
                time_secs: Some(0.25),
                message: (status == CaseStatus::Failed).then(|| "division by zero".into()),
                output: None,
                flaky_failures: 0,
                file: "junit.xml".into(),
            };
            ctx.emit(t, TEST_CASE, Some(serde_json::to_value(case).unwrap()));
        }
        Ok(())
    }
}

const SUITE_EVENTS: &[EventDecl] = &[EventDecl::new(prova_core::results::TEST_CASE, "a case")];

/// A test step that takes no parameters and emits `events`.
struct Fixed(Prepared, &'static [EventDecl]);

impl Step for Fixed {
    fn events(&self) -> Vec<EventDecl> {
        self.1.to_vec()
    }
    fn prepare(&self, _: &mut Params<'_>) -> Option<Prepared> {
        Some(self.0.clone())
    }
}

fn per_target(step: impl PreparedStep) -> Fixed {
    Fixed(Prepared::per_target(step).unwrap(), &[])
}

fn batch(step: impl PreparedBatchStep) -> Fixed {
    Fixed(Prepared::batch(step).unwrap(), &[])
}

fn registry() -> Registry {
    let mut r = prova_engine::plugins::registry();
    r.step("panicky", per_target(Panicky))
        .step("hang", per_target(Hang))
        .step("slowfor", per_target(SlowFor))
        .step("failfirst", per_target(FailFirst(AtomicUsize::new(1))))
        .step("rogue", batch(Rogue))
        .step("twice", batch(Twice))
        .step("quitter", batch(Quitter))
        .step(
            "suite",
            Fixed(Prepared::per_target(Suite).unwrap(), SUITE_EVENTS),
        )
        .step("undeclared", per_target(Undeclared))
        .step("unreachable", per_target(Unreachable))
        .step("keeps", per_target(Keeps));
    r
}

/// A results directory as a container step leaves it: a JUnit file, a
/// binary file one level down, and one over the store's file limit; then
/// target "bad" fails (its files are kept all the same).
struct Keeps;
#[async_trait]
impl PreparedStep for Keeps {
    async fn run(&self, ctx: &StepContext, t: &Target) -> Result<(), StepError> {
        let dir = ctx.artifacts_dir(t);
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::write(dir.join("junit.xml"), junit_of(&t.id)).unwrap();
        std::fs::write(dir.join("logs/bin"), kept_bytes()).unwrap();
        let big = std::fs::File::create(dir.join("big")).unwrap();
        big.set_len(prova_store::ARTIFACT_FILE_LIMIT + 1).unwrap();
        if t.id == "bad" {
            return Err(StepError::failed("bad target"));
        }
        Ok(())
    }
}

fn junit_of(target: &str) -> String {
    format!("<testsuites name=\"{target}\"/>")
}

fn kept_bytes() -> Vec<u8> {
    // A period of 251: no piece of 1 MiB looks like another.
    (0..3u32 << 20).map(|i| (i % 251) as u8).collect()
}

/// Cannot reach what it drives.
struct Unreachable;
#[async_trait]
impl PreparedStep for Unreachable {
    async fn run(&self, _: &StepContext, _: &Target) -> Result<(), StepError> {
        Err(StepError::infra("the engine at unix:///nowhere is down"))
    }
}

/// Emits an event it does not declare.
struct Undeclared;
#[async_trait]
impl PreparedStep for Undeclared {
    async fn run(&self, ctx: &StepContext, t: &Target) -> Result<(), StepError> {
        ctx.emit(t, "Surprise", None);
        Ok(())
    }
}

/// A one-test job over `targets` with `steps` (YAML list items) and
/// optional extra test-descriptor YAML (retry, cleanup).
fn job(targets: &[&str], steps: &str, extra: &str) -> String {
    let targets: String = targets
        .iter()
        .map(|t| format!("        - ID: {t}\n"))
        .collect();
    format!(
        "JobName: t\nRuns: 1\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters:\n      Targets:\n{targets}{extra}    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: T\n      Steps:\n{steps}Reporting:\n  RunReporters:\n    - name: TargetSuccess\n      parameters: {{SuccessExpression: \"=100%\"}}\n"
    )
}

fn step(name: &str, label: &str, params: &str) -> String {
    format!(
        "        - name: {name}\n          label: {label}\n          parameters: {{{params}}}\n"
    )
}

async fn run(yaml: &str, opts: RunOptions) -> (JobOutcome, Vec<Event>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let prepared =
        prepare_str(yaml, Format::Yaml, None, &registry()).unwrap_or_else(|e| panic!("{e}"));
    let outcome = run_job(prepared, store.clone(), opts).await.unwrap();
    let events = store
        .query_events(&EventQuery::for_job(outcome.job_id))
        .await
        .unwrap();
    (outcome, events)
}

fn find<'a>(events: &'a [Event], name: &str, target: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.name == name && e.target.as_ref().is_some_and(|t| t.id == target))
        .collect()
}

fn err_of(e: &Event) -> String {
    e.payload
        .as_ref()
        .and_then(|p| p["Error"].as_str())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn a_panicking_step_fails_only_its_target() {
    let yaml = job(&["ok", "boom"], &step("panicky", "p", ""), "");
    let (outcome, events) = run(&yaml, RunOptions::default()).await;
    assert_eq!(outcome.state, JobState::Completed);
    assert!(!outcome.success());
    let errs = find(&events, "TargetErr", "boom");
    assert_eq!(errs.len(), 1);
    assert!(
        err_of(errs[0]).contains("panicked: kaboom for boom"),
        "{}",
        err_of(errs[0])
    );
    assert_eq!(find(&events, "TargetOut", "ok").len(), 1);
    assert_eq!(find(&events, "TargetReleased", "boom").len(), 1);
}

#[tokio::test]
async fn a_hanging_step_times_out() {
    let steps = "        - name: hang\n          label: h\n          timeout: 300ms\n";
    let start = Instant::now();
    let (outcome, events) = run(&job(&["a"], steps, ""), RunOptions::default()).await;
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.state, JobState::Completed);
    let errs = find(&events, "TargetErr", "a");
    assert!(
        err_of(errs[0]).contains("timed out after 300ms"),
        "{}",
        err_of(errs[0])
    );
}

#[tokio::test]
async fn a_step_returning_a_stranger_fails_the_test() {
    let (outcome, events) = run(
        &job(&["a", "b"], &step("rogue", "r", ""), ""),
        RunOptions::default(),
    )
    .await;
    assert_eq!(outcome.state, JobState::Completed);
    assert!(!outcome.runs[0].tests[0].passed);
    let test_errors: Vec<_> = events.iter().filter(|e| e.name == "TestError").collect();
    assert!(
        test_errors
            .iter()
            .any(|e| err_of(e).contains("returned target stranger that it was never given")),
        "{test_errors:?}"
    );
}

#[tokio::test]
async fn a_step_returning_a_target_twice_fails_the_test() {
    let (outcome, events) = run(
        &job(&["a"], &step("twice", "tw", ""), ""),
        RunOptions::default(),
    )
    .await;
    assert!(!outcome.runs[0].tests[0].passed);
    assert!(
        events
            .iter()
            .any(|e| e.name == "TestError" && err_of(e).contains("returned target a twice"))
    );
}

#[tokio::test]
async fn a_step_that_ends_holding_targets_fails_them() {
    let (outcome, events) = run(
        &job(&["a", "b"], &step("quitter", "q", ""), ""),
        RunOptions::default(),
    )
    .await;
    assert!(!outcome.success());
    for t in ["a", "b"] {
        let errs = find(&events, "TargetErr", t);
        assert_eq!(errs.len(), 1, "target {t}");
        assert!(
            err_of(errs[0]).contains("ended without returning the target"),
            "{}",
            err_of(errs[0])
        );
    }
}

#[tokio::test]
async fn targets_pipeline_through_steps() {
    let steps = format!(
        "{}{}",
        step("slowfor", "first", ""),
        step("echo", "second", "text: [hi]")
    );
    let (outcome, events) = run(&job(&["slow", "fast"], &steps, ""), RunOptions::default()).await;
    assert!(outcome.success());
    let seq = |name: &str, target: &str, label: &str| {
        events
            .iter()
            .find(|e| {
                e.name == name
                    && e.target.as_ref().unwrap().id == target
                    && e.step_label.as_deref() == Some(label)
            })
            .map(|e| e.seq)
            .unwrap()
    };
    // "fast" reaches the second step while "slow" is still in the first.
    assert!(seq("TargetIn", "fast", "second") < seq("TargetOut", "slow", "first"));
}

#[tokio::test]
async fn a_failed_test_is_retried_with_the_attempt_on_every_event() {
    let extra = "    RetryParameters: {NumRetries: 2, RetryInterval: 50ms}\n";
    let (outcome, events) = run(
        &job(&["a"], &step("failfirst", "f", ""), extra),
        RunOptions::default(),
    )
    .await;
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(outcome.runs[0].tests[0].attempts, 2);
    let acquired: Vec<_> = find(&events, "TargetAcquired", "a")
        .iter()
        .map(|e| e.test_attempt)
        .collect();
    assert_eq!(acquired, vec![Some(0), Some(1)]);
    assert!(
        events
            .iter()
            .filter(|e| e.kind == prova_core::EventKind::Test)
            .all(|e| e.test_attempt.is_some())
    );
    assert_eq!(find(&events, "TargetErr", "a")[0].test_attempt, Some(0));
}

#[tokio::test]
async fn cleanup_runs_after_a_failure() {
    let extra = "    CleanupFetcherName: literal\n    CleanupFetcherFetchParameters:\n      Steps:\n        - {name: echo, label: tidy, parameters: {text: [bye]}}\n";
    let steps = step("cmd", "fails", "executable: [\"false\"]");
    let (outcome, events) = run(&job(&["a"], &steps, extra), RunOptions::default()).await;
    assert!(!outcome.success());
    let tidy = events
        .iter()
        .position(|e| e.name == "TargetOut" && e.step_label.as_deref() == Some("tidy"))
        .expect("cleanup ran");
    let released = events
        .iter()
        .position(|e| e.name == "TargetReleased")
        .unwrap();
    assert!(tidy < released, "cleanup runs before targets are released");
    let err = &find(&events, "TargetErr", "a")[0];
    assert!(err_of(err).contains("exit status 1"), "{}", err_of(err));
}

#[tokio::test]
async fn cancellation_kills_processes_runs_cleanup_and_releases() {
    let extra = "    CleanupFetcherName: literal\n    CleanupFetcherFetchParameters:\n      Steps:\n        - {name: echo, label: tidy, parameters: {text: [bye]}}\n";
    let steps = step("cmd", "long", "executable: [sleep], args: [\"30\"]");
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c2.cancel();
    });
    let start = Instant::now();
    let (outcome, events) = run(
        &job(&["a", "b"], &steps, extra),
        RunOptions {
            cancel,
            ..Default::default()
        },
    )
    .await;
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(outcome.state, JobState::Cancelled);
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    let cancelling = names
        .iter()
        .position(|n| *n == "JobStateCancelling")
        .expect("Cancelling");
    assert_eq!(names.last(), Some(&"JobStateCancelled"));
    assert!(cancelling < names.len() - 1);
    for t in ["a", "b"] {
        assert_eq!(find(&events, "TargetReleased", t).len(), 1, "{t} released");
        let pid = find(&events, "CmdStart", t)[0].payload.as_ref().unwrap()["Pid"]
            .as_i64()
            .unwrap();
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
        assert!(!alive, "sleep of {t} (pid {pid}) still runs");
    }
    assert!(
        events
            .iter()
            .any(|e| e.name == "TargetOut" && e.step_label.as_deref() == Some("tidy"))
    );
}

#[tokio::test]
async fn a_cancel_while_waiting_for_targets_cancels_the_job() {
    // Another job holds the target: the test waits to acquire it.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let holder = store
        .create_job(prova_store::NewJob {
            name: "holder".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let locked = store
        .lock_targets(holder, &["a".into()], Duration::from_secs(600), true)
        .await
        .unwrap();
    assert_eq!(locked, ["a"]);
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c2.cancel();
    });
    let steps = step("echo", "hi", "text: [hi]");
    let prepared = prepare_str(&job(&["a"], &steps, ""), Format::Yaml, None, &registry())
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = run_job(
        prepared,
        store.clone(),
        RunOptions {
            cancel,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let events = store
        .query_events(&EventQuery::for_job(outcome.job_id))
        .await
        .unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    // Cancelled, as ConTest ends a cancelled job, not failed by its test.
    assert_eq!(outcome.state, JobState::Cancelled, "{names:?}");
    assert_eq!(names.last(), Some(&"JobStateCancelled"), "{names:?}");
    assert!(!names.contains(&"TestError"), "{names:?}");
    assert!(names.contains(&"TargetAcquireFailed"), "{names:?}");
}

#[tokio::test]
async fn unknown_template_fields_and_variables_are_validation_errors() {
    let steps = format!(
        "{}{}",
        step("echo", "one", "text: [\"{{ .Hostname }}\"]"),
        step("echo", "two", "text: ['{{ StringVar \"later.x\" }}']")
    );
    let err = prepare_str(&job(&["a"], &steps, ""), Format::Yaml, None, &registry())
        .err()
        .expect("invalid");
    let text = err.to_string();
    assert_eq!(err.errors.len(), 2, "{text}");
    assert!(text.contains("Steps[0].parameters.text[0]"), "{text}");
    assert!(text.contains(".Hostname"), "{text}");
    assert!(text.contains("refers to step \"later\""), "{text}");
}

#[tokio::test]
async fn junit_output_carries_the_suites_own_test_cases() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("junit.xml");
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let mut prepared = prepare_str(
        &job(&["a"], &step("suite", "e2e", ""), ""),
        Format::Yaml,
        None,
        &registry(),
    )
    .unwrap();
    prepared.add_final_reporter(
        "junit",
        Arc::new(prova_engine::plugins::reporters::junit::JUnitFile { path: out.clone() }),
    );
    let outcome = run_job(prepared, store, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.state, JobState::Completed);
    let xml = std::fs::read_to_string(&out).unwrap();
    assert!(
        xml.contains("<testcase name=\"adds\" classname=\"e2e [a].calc.Math\""),
        "{xml}"
    );
    assert!(xml.contains("<testcase name=\"divides\""), "{xml}");
    assert!(xml.contains("division by zero"), "{xml}");
    assert!(xml.contains("<testcase name=\"e2e [a]\""), "{xml}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_jobs_never_hold_the_same_target() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let yaml = job(&["shared"], &step("sleep", "hold", "duration: [400ms]"), "");
    let a = prepare_str(&yaml, Format::Yaml, None, &registry()).unwrap();
    let b = prepare_str(&yaml, Format::Yaml, None, &registry()).unwrap();
    let (ra, rb) = tokio::join!(
        run_job(a, store.clone(), RunOptions::default()),
        run_job(b, store.clone(), RunOptions::default())
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.success() && rb.success());
    let mut spans = Vec::new();
    for id in [ra.job_id, rb.job_id] {
        let events = store.query_events(&EventQuery::for_job(id)).await.unwrap();
        let at = |name: &str| events.iter().find(|e| e.name == name).unwrap().emit_time;
        spans.push((at("TargetAcquired"), at("TargetReleased")));
    }
    spans.sort();
    assert!(
        spans[0].1 <= spans[1].0,
        "the second job acquired the target before the first released it: {spans:?}"
    );
}

#[tokio::test]
async fn an_undeclared_event_fails_the_target_that_emitted_it() {
    let yaml = job(&["a"], &step("undeclared", "u", ""), "");
    let (outcome, events) = run(&yaml, RunOptions::default()).await;
    assert!(!outcome.success());
    let errs = find(&events, "TargetErr", "a");
    assert_eq!(errs.len(), 1);
    assert!(
        err_of(errs[0]).contains("emitted event \"Surprise\", which it does not declare"),
        "{}",
        err_of(errs[0])
    );
}

#[test]
fn unknown_parameters_are_warned_about_with_the_nearest_known_key() {
    let yaml = job(
        &["a"],
        &step("cmd", "c", "executable: [echo], arg: [hi], colour: [red]"),
        "",
    );
    let prepared = prepare_str(&yaml, Format::Yaml, None, &registry()).unwrap();
    let warnings: Vec<String> = prepared.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        warnings.iter().any(|w| w.contains("parameters.arg")
            && w.contains("unknown parameter \"arg\" of step \"c\" (cmd): did you mean \"args\"?")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown parameter \"colour\"") && w.contains("it reads")),
        "{warnings:?}"
    );
}

#[test]
fn a_misspelt_required_parameter_is_an_error_with_a_suggestion() {
    let yaml = job(&["a"], &step("cmd", "c", "executabel: [echo]"), "");
    let err = prepare_str(&yaml, Format::Yaml, None, &registry())
        .err()
        .expect("a missing executable is an error")
        .to_string();
    assert!(err.contains("needs parameter \"executable\""), "{err}");
    assert!(err.contains("did you mean \"executable\"?"), "{err}");
}

#[test]
fn wrong_values_are_reported_while_preparing_with_their_field_path() {
    let yaml = job(
        &["a"],
        &step(
            "waitport",
            "w",
            "port: [\"99999\"], timeout: [soon], protocol: [sctp]",
        ),
        "",
    );
    let err = prepare_str(&yaml, Format::Yaml, None, &registry())
        .err()
        .expect("bad values are errors")
        .to_string();
    for want in [
        "parameters.port[0]: expected a port number 1-65535, found \"99999\"",
        "parameters.timeout[0]: ",
        "parameters.protocol[0]: expected \"tcp\" or \"udp\", found \"sctp\"",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
}

#[tokio::test]
async fn a_template_that_renders_to_a_bad_value_fails_its_target_naming_the_parameter() {
    let yaml = job(&["a"], &step("sleep", "s", "duration: [\"{{ .ID }}\"]"), "");
    let (outcome, events) = run(&yaml, RunOptions::default()).await;
    assert!(!outcome.success());
    let errs = find(&events, "TargetErr", "a");
    assert_eq!(errs.len(), 1);
    let e = err_of(errs[0]);
    assert!(e.contains("bad parameter"), "{e}");
    assert!(e.contains("parameters.duration[0]"), "{e}");
    assert!(e.contains("(from the template)"), "{e}");
}

#[tokio::test]
async fn junit_carries_the_run_reports_the_verdict_is_derived_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("junit.xml");
    let store: Arc<dyn Store> =
        Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    // Target "boom" panics: TargetSuccess (=100%) says failure, and the
    // final TargetSuccess (listed before junit) too.
    let yaml = format!(
        "{}  FinalReporters:\n    - name: TargetSuccess\n      parameters: {{AverageSuccessExpression: \">90%\"}}\n",
        job(&["ok", "boom"], &step("panicky", "p", ""), "")
    );
    let mut prepared = prepare_str(&yaml, Format::Yaml, None, &registry()).unwrap();
    prepared.add_final_reporter(
        "junit",
        Arc::new(prova_engine::plugins::reporters::junit::JUnitFile { path: out.clone() }),
    );
    let outcome = run_job(prepared, store, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(outcome.verdict(), prova_core::status::Verdict::Failed);
    let xml = std::fs::read_to_string(&out).unwrap();
    assert!(xml.contains("<testsuite name=\"prova reports\""), "{xml}");
    assert!(
        xml.contains("<testcase name=\"TargetSuccess (run 1)\" classname=\"prova.reports\""),
        "{xml}"
    );
    assert!(xml.contains("TargetSuccess said failure"), "{xml}");
    assert!(
        xml.contains("<testcase name=\"TargetSuccess (final)\" classname=\"prova.reports\""),
        "{xml}"
    );
}

#[tokio::test]
async fn an_infrastructure_error_fails_the_target_marked_as_infra() {
    let yaml = job(&["a"], &step("unreachable", "u", ""), "");
    let (outcome, events) = run(&yaml, RunOptions::default()).await;
    assert!(!outcome.success());
    let errs = find(&events, "TargetErr", "a");
    let payload = errs[0].payload.as_ref().unwrap();
    assert_eq!(payload["Infra"], true, "{payload}");
    assert_eq!(payload["Error"], "the engine at unix:///nowhere is down");
    // A target that failed the step is not marked so.
    let (_, events) = run(
        &job(&["a"], &step("failfirst", "f", ""), ""),
        RunOptions::default(),
    )
    .await;
    let errs = find(&events, "TargetErr", "a");
    assert_eq!(errs[0].payload.as_ref().unwrap().get("Infra"), None);
}

#[tokio::test]
async fn what_steps_keep_is_stored_as_they_finish_with_each_target() {
    use prova_store::ArtifactStore;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::open_path(&dir.path().join("p.db")).await.unwrap());
    let yaml = job(&["good", "bad"], &step("keeps", "keep_it", ""), "");
    let prepared =
        prepare_str(&yaml, Format::Yaml, None, &registry()).unwrap_or_else(|e| panic!("{e}"));
    let root = dir.path().join("artifacts");
    let opts = RunOptions {
        artifacts_root: Some(root.clone()),
        ..Default::default()
    };
    let outcome = run_job(prepared, store.clone(), opts).await.unwrap();
    let id = outcome.job_id;
    assert_eq!(outcome.state, JobState::Completed);

    let listed = store.list_artifacts(id, 100).await.unwrap();
    let mut want = Vec::new();
    for t in ["bad", "good"] {
        let base = format!("run-1/T/attempt-0/keep_it/{t}");
        want.push((
            format!("{base}/big"),
            prova_store::ARTIFACT_FILE_LIMIT + 1,
            false,
        ));
        want.push((format!("{base}/junit.xml"), junit_of(t).len() as u64, true));
        want.push((format!("{base}/logs/bin"), 3 << 20, true));
    }
    let got: Vec<(String, u64, bool)> = listed
        .iter()
        .map(|m| (m.path.clone(), m.bytes, m.stored))
        .collect();
    assert_eq!(got, want);
    // Stored byte for byte; and still on disk for local readers.
    let path = "run-1/T/attempt-0/keep_it/good/logs/bin";
    let mut content = Vec::new();
    for seq in 0.. {
        match store.artifact_chunk(id, path, seq).await.unwrap() {
            Some(piece) => content.extend(piece),
            None => break,
        }
    }
    assert!(content == kept_bytes());
    assert!(root.join(format!("job-{id}")).join(path).is_file());
    assert!(
        store
            .artifact_chunk(id, &want[0].0, 0)
            .await
            .unwrap()
            .is_none()
    );
}
