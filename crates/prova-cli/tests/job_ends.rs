//! Every job ends: whatever stops `prova run` (SIGTERM, SIGHUP, a second
//! Ctrl-C during cleanup, kill -9), the job reaches a final state, its
//! targets are freed and none of its processes is left behind.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

mod support;
use support::{Env, gone_within, running, signal};

/// One target `a`; a 60 s command; a cleanup step of `cleanup_secs`.
fn long_job(env: &Env, name: &str, cleanup_secs: u32) -> PathBuf {
    env.write(
        &format!("{name}.yaml"),
        &format!(
            "JobName: {name}\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}]}}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps:\n        - {{name: cmd, label: wait, parameters: {{executable: [sleep], args: [\"60\"]}}}}\n    CleanupFetcherName: literal\n    CleanupFetcherFetchParameters:\n      Steps:\n        - {{name: cmd, label: tidy, parameters: {{executable: [sleep], args: [\"{cleanup_secs}\"]}}}}\nReporting:\n  RunReporters: [{{name: noop}}]\n"
        ),
    )
}

/// A quick job on the same target `a` (TargetList locks it in the store).
fn quick_job(env: &Env) -> PathBuf {
    env.write(
        "quick.yaml",
        "JobName: quick\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps:\n        - {name: echo, label: hi, parameters: {text: [hi]}}\nReporting:\n  RunReporters: [{name: TargetSuccess, parameters: {SuccessExpression: \">=100%\"}}]\n",
    )
}

fn spawn_run(env: &Env, file: &std::path::Path) -> Child {
    env.cmd()
        .args(["run", "--no-progress", file.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn event_names(env: &Env, job: i64) -> Vec<String> {
    env.events(job, &[])
        .iter()
        .map(|e| e["EventName"].as_str().unwrap().to_string())
        .collect()
}

/// The quick job on target `a` runs at once: nothing holds the target.
fn target_is_free(env: &Env) {
    let start = Instant::now();
    let (code, out, err) = env.run(&["run", "--no-progress", quick_job(env).to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "target a was still locked: the next job took {:?}",
        start.elapsed()
    );
}

#[test]
fn sigterm_and_sighup_cancel_like_ctrl_c() {
    for sig in [Signal::SIGTERM, Signal::SIGHUP] {
        let env = Env::new();
        let file = long_job(&env, "long", 0);
        let mut child = spawn_run(&env, &file);
        env.wait_for_step_of(Some(&mut child), 1, "wait");
        let pid = env.command_pid(1, "wait");
        let start = Instant::now();
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(start.elapsed() < Duration::from_secs(10), "{sig}");
        assert_eq!(out.status.code(), Some(130), "{sig}: {err}");
        assert_eq!(env.status(1)["State"], "Cancelled", "{sig}");
        let names = event_names(&env, 1);
        assert!(names.contains(&"JobStateCancelling".into()), "{sig}");
        assert!(names.contains(&"TargetReleased".into()), "{sig}");
        assert_eq!(
            env.events(1, &["--step", "tidy", "--name", "TargetOut"])
                .len(),
            1,
            "{sig}: cleanup ran"
        );
        assert!(
            gone_within(pid, Duration::from_secs(2)),
            "{sig}: step's sleep still runs"
        );
        target_is_free(&env);
    }
}

#[test]
fn a_second_interrupt_during_cleanup_still_ends_the_job_and_frees_its_targets() {
    let env = Env::new();
    let file = long_job(&env, "long", 60);
    let mut child = spawn_run(&env, &file);
    env.wait_for_step_of(Some(&mut child), 1, "wait");
    signal(&child, Signal::SIGINT);
    env.wait_for_step(1, "tidy");
    let tidy = env.command_pid(1, "tidy");
    let start = Instant::now();
    signal(&child, Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(out.status.code(), Some(130));
    let st = env.status(1);
    assert_eq!(st["State"], "Cancelled", "not left Cancelling: {st}");
    assert!(
        gone_within(tidy, Duration::from_secs(2)),
        "cleanup's sleep still runs"
    );
    target_is_free(&env);
}

#[test]
fn a_killed_run_is_ended_by_the_next_run_on_the_store() {
    let env = Env::new();
    let file = long_job(&env, "long", 0);
    let mut child = spawn_run(&env, &file);
    env.wait_for_step_of(Some(&mut child), 1, "wait");
    let pid = env.command_pid(1, "wait");
    signal(&child, Signal::SIGKILL);
    child.wait().unwrap();
    // The command outlived prova (its own process group), and the job
    // still says Started: this is what the next prova must clean up.
    assert!(running(pid), "the step's process died with prova already");
    assert_eq!(env.status(1)["State"], "Started");

    let start = Instant::now();
    let (code, out, err) = env.run(&["run", "--no-progress", quick_job(&env).to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "waited {:?} for the dead job's target",
        start.elapsed()
    );
    assert!(err.contains("job 1 was abandoned"), "{err}");
    assert_eq!(env.status(1)["State"], "Failed");
    let failed: Vec<Value> = env.events(1, &["--name", "JobStateFailed"]);
    let reason = failed[0]["Payload"]["Error"].as_str().unwrap();
    assert!(
        reason.contains("abandoned") && reason.contains("prova run"),
        "{reason}"
    );
    assert!(
        gone_within(pid, Duration::from_secs(2)),
        "the dead job's command (pid {pid}) was left running"
    );
}

#[test]
fn a_closed_stdout_keeps_the_jobs_exit_code_and_does_not_panic() {
    let env = Env::new();
    for (example, want) in [("hello.yaml", 0), ("cleanup.yaml", 1)] {
        let file = support::root().join("examples").join(example);
        let mut child = env
            .cmd()
            .args(["run", "--no-progress"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // `| head -0`
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{example}: {err}");
        assert_eq!(out.status.code(), Some(want), "{example}: {err}");
    }
}
