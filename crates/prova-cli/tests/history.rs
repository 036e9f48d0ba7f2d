//! `prova history` and `prova diff` on jobs the real binary ran: a check
//! that passes, fails, then passes again on the same descriptor.

mod support;
use support::{Env, job_id};

/// A job whose test "check" passes when `flag` exists; "always" passes.
fn descriptor(env: &Env) -> std::path::PathBuf {
    let flag = env.dir.path().join("flag");
    let text = format!(
        r#"
JobName: history demo
Runs: 1
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters:
      Targets: [{{ID: host1}}]
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: check
      Steps:
        - name: cmd
          label: probe
          parameters:
            executable: [test]
            args: ["-f", "{flag}"]
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters:
      Targets: [{{ID: host1}}]
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: always
      Steps:
        - name: cmd
          label: ok
          parameters:
            executable: ["true"]
Reporting:
  RunReporters:
    - name: TargetSuccess
      parameters:
        SuccessExpression: "=100%"
"#,
        flag = flag.display()
    );
    env.write("job.yaml", &text)
}

/// Runs the job with the flag present or not; returns the job id.
fn run(env: &Env, file: &std::path::Path, pass: bool) -> i64 {
    let flag = env.dir.path().join("flag");
    if pass {
        std::fs::write(&flag, "").unwrap();
    } else {
        let _ = std::fs::remove_file(&flag);
    }
    let (code, out, err) = env.run(&["run", file.to_str().unwrap(), "--no-progress"]);
    assert_eq!(code, if pass { 0 } else { 1 }, "{out}{err}");
    job_id(&err)
}

#[test]
fn diff_and_history_report_regressions_fixes_and_flakiness() {
    let env = Env::new();
    let file = descriptor(&env);
    let j1 = run(&env, &file, true);
    let j2 = run(&env, &file, false);

    let (code, out, err) = env.run(&["diff", &j1.to_string(), &j2.to_string()]);
    assert_eq!(code, 1, "something newly fails: {out}{err}");
    assert!(out.contains("newly failing (1):"), "{out}");
    assert!(
        out.contains("test \"check\": passed -> failed: target host1 failed at step probe"),
        "{out}"
    );
    assert!(out.contains("unchanged: 1"), "{out}");

    let (code, out, _) = env.run(&["diff", &j2.to_string(), &j1.to_string(), "--json"]);
    assert_eq!(code, 0, "a fix is no failure: {out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["NewlyPassing"][0]["Subject"]["Name"], "check");
    assert_eq!(v["NewlyFailing"].as_array().unwrap().len(), 0);

    let (code, _, err) = env.run(&["diff", &j1.to_string(), "999"]);
    assert_eq!(code, 2);
    assert!(err.contains("job 999 not found"), "{err}");

    // After a regression, the history names the first failing job.
    let (code, out, _) = env.run(&["history", "check", "--job-name", "history demo"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("failing since job {j2} (1 job)")),
        "{out}"
    );
    assert!(out.contains("flaky: no"), "{out}");

    // Pass, fail, pass on the same descriptor: flaky.
    let j3 = run(&env, &file, true);
    let (code, out, _) = env.run(&["history", "check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("newest first: PFP"), "{out}");
    assert!(out.contains("pass rate 66.7% (2 passed, 1 failed"), "{out}");
    assert!(
        out.contains("flaky: 2 switches between pass and fail on the same inputs"),
        "{out}"
    );
    assert!(out.contains("not failing"), "{out}");
    let (code, out, _) = env.run(&["history", "check", "--last", "2", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let h = &v["Histories"][0];
    assert_eq!(h["JobName"], "history demo");
    assert_eq!(h["Summary"]["Flaky"], false, "two jobs: one switch");
    let jobs: Vec<i64> = h["Entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["JobID"].as_i64().unwrap())
        .collect();
    assert_eq!(jobs, [j3, j2]);

    // Nothing matches: say so, list what exists, exit 1.
    let (code, out, _) = env.run(&["history", "chek"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("no test or JUnit case named \"chek\""),
        "{out}"
    );
    assert!(
        out.contains("test: always") && out.contains("test: check"),
        "{out}"
    );
    let (code, out, _) = env.run(&["history", "check", "--job-name", "nope"]);
    assert_eq!(code, 1);
    assert!(out.contains("no jobs named \"nope\""), "{out}");

    // Bad usage: exit 2 with the reason.
    let (code, _, err) = env.run(&["history", " "]);
    assert_eq!(code, 2);
    assert!(err.contains("empty"), "{err}");
    let (code, _, err) = env.run(&["history", "check", "--last", "0"]);
    assert_eq!(code, 2);
    assert!(err.contains("last=0"), "{err}");

    for cmd in ["history", "diff"] {
        let (code, out, _) = env.run(&[cmd, "--help"]);
        assert_eq!(code, 0);
        assert!(
            out.contains("Examples") && out.contains("Exit codes"),
            "{out}"
        );
    }
}

#[test]
fn a_test_that_passes_on_its_retry_is_flaky() {
    let env = Env::new();
    let flag = env.dir.path().join("armed");
    // Fails until its first attempt's cleanup has created the flag.
    let text = format!(
        r#"
JobName: retried
TestDescriptors:
  - RetryParameters: {{NumRetries: 1, RetryInterval: 10ms}}
    TargetManagerName: TargetList
    TargetManagerAcquireParameters:
      Targets: [{{ID: t1}}]
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: flaky check
      Steps:
        - {{name: cmd, label: check, parameters: {{executable: [test], args: ["-f", "{flag}"]}}}}
    CleanupFetcherName: literal
    CleanupFetcherFetchParameters:
      Steps:
        - {{name: cmd, label: arm, parameters: {{executable: [touch], args: ["{flag}"]}}}}
Reporting:
  RunReporters:
    - {{name: TargetSuccess, parameters: {{SuccessExpression: "=100%"}}}}
"#,
        flag = flag.display()
    );
    let file = env.write("retry.yaml", &text);
    let (code, out, err) = env.run(&["run", file.to_str().unwrap(), "--no-progress"]);
    assert_eq!(code, 0, "{out}{err}");
    let job = job_id(&err);
    let (code, out, _) = env.run(&["history", "flaky check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("newest first: p "), "{out}");
    assert!(out.contains("pass rate 100.0%"), "{out}");
    assert!(
        out.contains(&format!("flaky: passed on retry in job {job}")),
        "{out}"
    );
}

#[test]
fn history_and_diff_with_a_server_answer_as_the_local_store_does() {
    let env = Env::new();
    let file = descriptor(&env);
    let j1 = run(&env, &file, true);
    let j2 = run(&env, &file, false);
    let _j3 = run(&env, &file, true);
    let db = env.db();
    let (child, url) = support::spawn_server(&["--db", db.to_str().unwrap()]);
    let _served = support::KillOnDrop(child);

    let (j1, j2) = (j1.to_string(), j2.to_string());
    let same: [&[&str]; 7] = [
        &["diff", &j1, &j2],
        &["diff", &j2, &j1, "--json"],
        &["history", "check"],
        &["history", "check", "--job-name", "history demo", "--json"],
        &["history", "check", "--last", "2"],
        &["history", "always", "--json"],
        &["history", "chek"],
    ];
    for args in same {
        let local = env.run(args);
        let mut remote: Vec<&str> = args.to_vec();
        remote.extend(["--server", &url]);
        let served = env.run(&remote);
        assert_eq!(
            (served.0, &served.1),
            (local.0, &local.1),
            "prova {args:?} with --server: {}",
            served.2
        );
        assert!(!local.1.is_empty(), "prova {args:?} printed nothing");
    }

    // PROVA_SERVER names the server as --server does.
    let out = env
        .cmd()
        .args(["diff", &j1, &j2])
        .env("PROVA_SERVER", &url)
        .env("PROVA_DB", env.dir.path().join("absent.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "newly failing, from the server");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        env.run(&["diff", &j1, &j2]).1
    );

    // Refusals: the same exit codes, and the reason.
    let refused: [(&[&str], &str); 3] = [
        (&["diff", &j1, "999"], "job 999 not found"),
        (&["history", " "], "empty"),
        (&["history", "check", "--last", "0"], "last=0"),
    ];
    for (args, why) in refused {
        let local = env.run(args);
        let mut remote: Vec<&str> = args.to_vec();
        remote.extend(["--server", &url]);
        let served = env.run(&remote);
        assert_eq!(
            (local.0, served.0),
            (2, 2),
            "prova {args:?}: {} / {}",
            local.2,
            served.2
        );
        assert!(
            served.2.contains(why),
            "prova {args:?} --server: {}",
            served.2
        );
    }
}
