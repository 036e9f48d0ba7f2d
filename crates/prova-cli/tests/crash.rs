//! The crash test: `prova run` and `prova serve` are killed (SIGKILL) or
//! stopped (SIGTERM) at random moments, many times, on one store. Whatever
//! the moment, every job ends, no event is stored twice, nothing stored is
//! lost (a paused job resumes and completes with each step's output exactly
//! once), and no command is left running.
//!
//! `PROVA_CRASH_KILLS=N` sets the number of kills per test (default 12, a
//! bounded run for CI); `PROVA_CRASH_SEED=S` replays a run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::Value;

mod support;
use support::{Env, gone_within, running, signal, spawn_server};

/// Three targets through echo, a short sleep and echo; a cleanup step.
const JOB: &str = "JobName: crash\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}, {ID: b}, {ID: c}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps:\n        - {name: cmd, label: one, parameters: {executable: [echo], args: [\"one {{ .ID }}\"]}}\n        - {name: cmd, label: nap, parameters: {executable: [sleep], args: [\"0.3\"]}}\n        - {name: cmd, label: two, parameters: {executable: [echo], args: [\"two {{ .ID }}\"]}}\n    CleanupFetcherName: literal\n    CleanupFetcherFetchParameters:\n      Steps:\n        - {name: cmd, label: bye, parameters: {executable: [echo], args: [bye]}}\nReporting:\n  RunReporters: [{name: TargetSuccess, parameters: {SuccessExpression: \">=100%\"}}]\n";

const FINAL: [&str; 3] = ["JobStateCompleted", "JobStateFailed", "JobStateCancelled"];

fn kills() -> usize {
    std::env::var("PROVA_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn rng() -> StdRng {
    let seed = std::env::var("PROVA_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("crash test seed: {seed} (PROVA_CRASH_SEED={seed} replays it)");
    StdRng::seed_from_u64(seed)
}

fn random_signal(rng: &mut StdRng) -> Signal {
    if rng.random_bool(0.6) {
        Signal::SIGKILL
    } else {
        Signal::SIGTERM
    }
}

fn job_ids(env: &Env) -> Vec<i64> {
    let (code, out, err) = env.run(&["jobs", "--json"]);
    assert_eq!(code, 0, "{err}");
    let jobs: Vec<Value> = serde_json::from_str(&out).unwrap();
    jobs.iter().map(|j| j["JobID"].as_i64().unwrap()).collect()
}

/// What every job in the store must satisfy, whatever killed its runner.
/// Returns the jobs' final states, counted.
fn check_every_job_ended_cleanly(env: &Env) -> BTreeMap<String, usize> {
    let mut states = BTreeMap::new();
    for id in job_ids(env) {
        let events = env.events(id, &[]);
        let name = |e: &Value| e["EventName"].as_str().unwrap().to_string();

        // It ended, once.
        let finals: Vec<&Value> = events
            .iter()
            .filter(|e| FINAL.contains(&name(e).as_str()))
            .collect();
        assert_eq!(finals.len(), 1, "job {id}: final state events {finals:?}");
        let state = name(finals[0]);
        assert_eq!(
            name(
                events
                    .iter()
                    .rev()
                    .find(|e| name(e).starts_with("JobState"))
                    .unwrap()
            ),
            state,
            "job {id}: the final state is its newest state event"
        );
        *states.entry(state.clone()).or_insert(0) += 1;

        // No event twice: each step event of a target and attempt is unique.
        let mut seen = HashSet::new();
        for e in &events {
            let n = name(e);
            if !matches!(
                n.as_str(),
                "TargetIn" | "TargetOut" | "TargetErr" | "CmdStart" | "CmdEnd" | "CmdStdout"
            ) {
                continue;
            }
            let key = (
                n,
                e["RunID"].clone(),
                e["TestName"].clone(),
                e["TestAttempt"].clone(),
                e["TestStepLabel"].clone(),
                e["Target"]["ID"].clone(),
            );
            assert!(seen.insert(key.clone()), "job {id}: {key:?} stored twice");
        }
        let seqs: HashSet<i64> = events.iter().map(|e| e["Seq"].as_i64().unwrap()).collect();
        assert_eq!(
            seqs.len(),
            events.len(),
            "job {id}: a sequence number twice"
        );

        // A job that completed has every step's output of every target, once.
        if state == "JobStateCompleted" {
            let out: HashMap<String, usize> = events
                .iter()
                .filter(|e| name(e) == "CmdStdout")
                .fold(HashMap::new(), |mut m, e| {
                    *m.entry(e["Payload"]["Msg"].as_str().unwrap().trim().to_string())
                        .or_insert(0) += 1;
                    m
                });
            for t in ["a", "b", "c"] {
                for step in ["one", "two"] {
                    assert_eq!(
                        out.get(&format!("{step} {t}")),
                        Some(&1),
                        "job {id}: {out:?}"
                    );
                }
            }
        }
        // A cancelled job released what it acquired.
        if state == "JobStateCancelled" {
            let count = |n: &str| events.iter().filter(|e| name(e) == n).count();
            assert_eq!(count("TargetAcquired"), count("TargetReleased"), "job {id}");
        }

        // No command of the job still runs.
        for e in events.iter().filter(|e| name(e) == "CmdStart") {
            let pid = e["Payload"]["Pid"].as_i64().unwrap() as i32;
            assert!(
                gone_within(pid, Duration::from_secs(3)),
                "job {id}: command {pid} ({}) still runs",
                e["TestStepLabel"]
            );
        }
    }
    states
}

#[test]
fn prova_run_killed_at_random_moments_leaves_every_job_ended() {
    let env = Env::new();
    let job = env.write("crash.yaml", JOB);
    let mut rng = rng();
    let mut signals = BTreeMap::new();
    for _ in 0..kills() {
        let mut child = env
            .cmd()
            .args(["run", "--no-progress"])
            .arg(&job)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The job takes about half a second: most kills land inside it.
        std::thread::sleep(Duration::from_millis(rng.random_range(0..700)));
        let sig = random_signal(&mut rng);
        if child.try_wait().unwrap().is_none() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig);
            *signals.entry(sig.as_str()).or_insert(0) += 1;
        }
        let status = child.wait().unwrap();
        if let Some(code) = status.code() {
            assert!(
                [0, 130].contains(&code),
                "prova run exited {code} after {sig}"
            );
        }
    }
    // The next run on the store ends whatever the killed ones left.
    let (code, out, err) = env.run(&["run", "--no-progress", job.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    let states = check_every_job_ended_cleanly(&env);
    eprintln!("prova run: signals {signals:?}; jobs ended {states:?}");
}

#[test]
fn prova_serve_killed_at_random_moments_leaves_every_job_ended() {
    let env = Env::new();
    let job = env.write("crash.yaml", JOB);
    let db = env.db();
    let db = db.to_str().unwrap();
    let mut rng = rng();
    let mut signals = BTreeMap::new();
    let submit = |url: &str| {
        let (code, out, err) = env.run(&["start", job.to_str().unwrap(), "--server", url]);
        assert_eq!(code, 0, "{out}\n{err}");
    };
    for _ in 0..kills() {
        let (child, url) = spawn_server(&["--server-id", "crash-server", "--db", db]);
        submit(&url);
        std::thread::sleep(Duration::from_millis(rng.random_range(0..1200)));
        let sig = random_signal(&mut rng);
        signal(&child, sig);
        *signals.entry(sig.as_str()).or_insert(0) += 1;
        wait_exit(child, Duration::from_secs(20));
    }
    // A last restart resumes what was paused and ends what was killed.
    let (child, _url) = spawn_server(&["--server-id", "crash-server", "--db", db]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !all_final(&env) {
        assert!(
            Instant::now() < deadline,
            "jobs never ended: {:?}",
            states(&env)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(&child, Signal::SIGTERM);
    wait_exit(child, Duration::from_secs(20));
    let states = check_every_job_ended_cleanly(&env);
    eprintln!("prova serve: signals {signals:?}; jobs ended {states:?}");
}

fn wait_exit(mut child: Child, within: Duration) {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "prova did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!running(child.id() as i32));
}

fn states(env: &Env) -> Vec<String> {
    let (_, out, _) = env.run(&["jobs", "--json"]);
    let jobs: Vec<Value> = serde_json::from_str(&out).unwrap_or_default();
    jobs.iter()
        // `jobs --json` says `Completed`, as `status --json` does; the
        // checks here compare with the state events' names.
        .map(|j| format!("JobState{}", j["State"].as_str().unwrap_or("")))
        .collect()
}

fn all_final(env: &Env) -> bool {
    states(env).iter().all(|s| FINAL.contains(&s.as_str()))
}
