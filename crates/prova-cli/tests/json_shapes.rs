//! The `--json` shapes docs/cli.md documents as stable: each command's
//! output, reduced to its key paths, must be exactly the documented set.
//! A key added, renamed or removed fails here, and the docs are updated
//! with the test.

use std::collections::BTreeSet;

use serde_json::Value;

mod support;
use support::{Env, job_id, root};

/// Every key path of `v` (`RunStatuses[].RunID`), over all array elements.
/// Plugin-defined values (`Payload`, `Data`) are opaque: their contents
/// are the plugins' to document.
fn paths(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(v, "", &mut out);
    out
}

fn walk(v: &Value, at: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                out.insert(p.clone());
                if k != "Payload" && k != "Data" {
                    walk(child, &p, out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Fails with what was added and what went missing.
fn assert_shape(what: &str, got: BTreeSet<String>, want: &[&str]) {
    let want = set(want);
    let added: Vec<_> = got.difference(&want).collect();
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(
        added.is_empty() && missing.is_empty(),
        "{what}: the --json shape changed (update docs/cli.md and this test)\n  new keys: {added:?}\n  missing keys: {missing:?}"
    );
}

const REPORT: [&str; 5] = ["ReporterName", "Success", "Data", "RunID", "ReportTime"];

fn reports(prefix: &str, with_time: bool) -> Vec<String> {
    REPORT
        .iter()
        .filter(|k| with_time || **k != "ReportTime")
        .map(|k| format!("{prefix}.{k}"))
        .collect()
}

#[test]
fn json_outputs_have_their_documented_shapes() {
    let env = Env::new();
    let example = |f: &str| root().join("examples").join(f).display().to_string();
    // A job that passes and one whose cleanup fails a target: between them
    // every optional key appears.
    let (code, passed, err) = env.run(&["run", &example("hello.yaml"), "--json"]);
    assert_eq!(code, 0, "{err}");
    let (code, failed, err) = env.run(&["run", &example("cleanup.yaml"), "--json"]);
    assert_eq!(code, 1, "{err}");
    let failed_id = job_id(&err);

    // prova run --json
    let mut got = paths(&serde_json::from_str(&passed).unwrap());
    got.extend(paths(&serde_json::from_str(&failed).unwrap()));
    let mut want: Vec<String> = [
        "JobID",
        "State",
        "Error",
        "Success",
        "Verdict",
        "RunReports",
        "FinalReports",
    ]
    .map(String::from)
    .to_vec();
    want.extend(reports("RunReports[][]", false));
    want.extend(
        reports("FinalReports[]", false)
            .into_iter()
            .filter(|k| !k.ends_with("RunID")),
    );
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_shape("run --json", got, &want);

    // prova jobs --json, and list --json (the same without a server)
    let job_keys = [
        "[].JobID",
        "[].JobName",
        "[].Tags",
        "[].Requestor",
        "[].State",
        "[].Verdict",
        "[].CreatedAt",
        "[].StateTime",
    ];
    for cmd in ["jobs", "list"] {
        let (code, out, _) = env.run(&[cmd, "--json"]);
        assert_eq!(code, 0);
        let jobs: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_shape(cmd, paths(&jobs), &job_keys);
        // Newest first: the failing job, then the passing one, each with
        // the verdict `prova run` gave it.
        let verdicts: Vec<&str> = jobs
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["Verdict"].as_str().unwrap())
            .collect();
        assert_eq!(verdicts, ["failed", "passed"], "{cmd}: {out}");
    }
    // The table has the column too.
    let (_, table, _) = env.run(&["jobs"]);
    assert!(table.lines().next().unwrap().contains("VERDICT"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().contains(" failed "),
        "{table}"
    );

    // prova status --json
    let mut got = BTreeSet::new();
    for id in [1, failed_id] {
        got.extend(paths(&env.status(id)));
    }
    let mut want: Vec<String> = [
        "JobID",
        "Name",
        "State",
        "StateErrMsg",
        "StartTime",
        "EndTime",
        "Verdict",
        "RunStatuses",
        "RunStatuses[].RunID",
        "RunStatuses[].StartTime",
        "RunStatuses[].EndTime",
        "RunStatuses[].TestStatuses",
        "RunStatuses[].TestStatuses[].TestName",
        "RunStatuses[].TestStatuses[].TestAttempt",
        "RunStatuses[].TestStatuses[].Passed",
        "RunStatuses[].TestStatuses[].TestStepStatuses",
        "RunStatuses[].TestStatuses[].TestStepStatuses[].TestStepLabel",
        "RunStatuses[].TestStatuses[].TestStepStatuses[].TargetStatuses",
        "RunStatuses[].TestStatuses[].TestStepStatuses[].TargetStatuses[].Target",
        "RunStatuses[].TestStatuses[].TestStepStatuses[].TargetStatuses[].Target.ID",
        "RunStatuses[].TestStatuses[].TestStepStatuses[].TargetStatuses[].Target.FQDN",
        "RunStatuses[].TestStatuses[].TestStepStatuses[].TargetStatuses[].InTime",
        "RunStatuses[].TestStatuses[].TestStepStatuses[].TargetStatuses[].OutTime",
        "RunStatuses[].TestStatuses[].TestStepStatuses[].TargetStatuses[].Error",
        "RunStatuses[].TestStatuses[].TargetStatuses",
        "RunStatuses[].TestStatuses[].TargetStatuses[].Target",
        "RunStatuses[].TestStatuses[].TargetStatuses[].Target.ID",
        "RunStatuses[].TestStatuses[].TargetStatuses[].Target.FQDN",
        "RunStatuses[].TestStatuses[].TargetStatuses[].AcquiredTime",
        "RunStatuses[].TestStatuses[].TargetStatuses[].ReleasedTime",
        "RunStatuses[].TestStatuses[].TargetStatuses[].FailedStep",
        "RunStatuses[].TestStatuses[].TargetStatuses[].Error",
        "JobReport",
        "JobReport.RunReports",
        "JobReport.FinalReports",
    ]
    .map(String::from)
    .to_vec();
    want.extend(reports("JobReport.RunReports[][]", true));
    want.extend(
        reports("JobReport.FinalReports[]", true)
            .into_iter()
            .filter(|k| !k.ends_with("RunID")),
    );
    let want: Vec<&str> = want.iter().map(String::as_str).collect();
    assert_shape("status --json", got, &want);

    // prova events --json: one object per line
    let (code, out, _) = env.run(&["events", "1", "--json"]);
    assert_eq!(code, 0);
    let mut got = BTreeSet::new();
    for line in out.lines() {
        got.extend(paths(&serde_json::from_str(line).unwrap()));
    }
    assert_shape(
        "events --json",
        got,
        &[
            "Seq",
            "Kind",
            "JobID",
            "RunID",
            "TestName",
            "TestAttempt",
            "TestStepLabel",
            "Target",
            "Target.ID",
            "Target.FQDN",
            "EventName",
            "EmitTime",
            "Payload",
        ],
    );

    // prova plugins --json
    let (code, out, _) = env.run(&["plugins", "--json"]);
    assert_eq!(code, 0);
    assert_shape(
        "plugins --json",
        paths(&serde_json::from_str(&out).unwrap()),
        &[
            "steps",
            "steps[].name",
            "steps[].events",
            "steps[].events[].name",
            "steps[].events[].doc",
            "target_managers",
            "test_fetchers",
            "reporters",
        ],
    );
}

#[test]
fn the_shape_check_sees_a_renamed_key() {
    let v: Value = serde_json::json!({"JobID": 1, "Runs": [{"RunID": 1}]});
    assert_eq!(paths(&v), set(&["JobID", "Runs", "Runs[].RunID"]));
    let renamed: Value = serde_json::json!({"JobId": 1, "Runs": [{"RunID": 1}]});
    let result = std::panic::catch_unwind(|| {
        assert_shape("x", paths(&renamed), &["JobID", "Runs", "Runs[].RunID"])
    });
    assert!(result.is_err(), "a renamed key must fail the check");
}
