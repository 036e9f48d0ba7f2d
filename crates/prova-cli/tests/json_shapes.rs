//! The `--json` shapes docs/cli.md documents as stable: each command's
//! output, reduced to its key paths, must be exactly the documented set.
//! A key added, renamed or removed fails here, and the docs are updated
//! with the test. Keys the docs mark `Key?` are present only sometimes (an
//! error, a target's addresses): the outputs checked include a job that
//! has every one of them, so a change to an optional key fails too; every
//! other key must be in every object of its kind, so a key that starts
//! to go missing from some objects fails as well.

use std::collections::{BTreeMap, BTreeSet};

use prova_core::{EventKind, JobId, NewEvent, Target};
use prova_store::{EventStore, JobStore, NewJob, SqlStore};
use serde_json::{Value, json};

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
                let p = join(at, k);
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

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    }
}

/// The keys of every object in `v`, by the object's path (`RunStatuses[]`;
/// `` for the top), as [`paths`] names them.
fn objects(v: &Value, at: &str, out: &mut BTreeMap<String, Vec<BTreeSet<String>>>) {
    match v {
        Value::Object(map) => {
            out.entry(at.to_string())
                .or_default()
                .push(map.keys().cloned().collect());
            for (k, child) in map {
                if k != "Payload" && k != "Data" {
                    objects(child, &join(at, k), out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                objects(item, &format!("{at}[]"), out);
            }
        }
        _ => {}
    }
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter()
        .map(|s| s.trim_end_matches('?').to_string())
        .collect()
}

/// Checks `outputs` (of one command) against the documented key paths,
/// `Key?` for a key present only sometimes. Fails with the keys added,
/// the documented keys no output has (an optional one included: the
/// outputs must show each), and the always-present keys some objects
/// lack.
fn assert_shape(what: &str, outputs: &[Value], want: &[&str]) {
    let mut got = BTreeSet::new();
    let mut objs = BTreeMap::new();
    for v in outputs {
        got.extend(paths(v));
        objects(v, "", &mut objs);
    }
    let documented = set(want);
    let added: Vec<_> = got.difference(&documented).collect();
    let missing: Vec<_> = documented.difference(&got).collect();
    assert!(
        added.is_empty() && missing.is_empty(),
        "{what}: the --json shape changed (update docs/cli.md and this test)\n  new keys: {added:?}\n  missing keys: {missing:?}"
    );
    let mut sometimes = Vec::new();
    for key in want.iter().filter(|k| !k.ends_with('?')) {
        let (parent, name) = match key.rfind('.') {
            Some(i) => (&key[..i], &key[i + 1..]),
            None => ("", *key),
        };
        let of = objs.get(parent).map(Vec::as_slice).unwrap_or_default();
        let lacking = of.iter().filter(|o| !o.contains(name)).count();
        if lacking > 0 {
            sometimes.push(format!("{key} (missing from {lacking} of {})", of.len()));
        }
    }
    assert!(
        sometimes.is_empty(),
        "{what}: keys documented as always there are missing from some objects (mark them `?` in docs/cli.md and here, or put them back): {sometimes:?}"
    );
}

/// Optional keys: `Key?` for each of `keys` under `prefix`.
fn optional(prefix: &str, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .map(|k| format!("{}?", join(prefix, k)))
        .collect()
}

/// A target's keys under `prefix` (`Target = {ID, FQDN?, PrimaryIPv4?,
/// PrimaryIPv6?}`).
fn target(prefix: &str) -> Vec<String> {
    let mut keys = vec![format!("{prefix}?"), join(prefix, "ID")];
    keys.extend(optional(prefix, &["FQDN", "PrimaryIPv4", "PrimaryIPv6"]));
    keys
}

/// Records a job through the store with what no example job has: a test
/// error, a target failure that was the infrastructure's, a target with
/// both addresses. Between it and the examples, every optional key of
/// `status --json` and `events --json` appears.
fn record_job_with_every_optional_key(env: &Env) -> JobId {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqlStore::open_path(&env.db()).await.unwrap();
        let id = store
            .create_job(NewJob {
                name: "every optional key".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let host: Target = serde_json::from_value(json!({
            "ID": "h1", "FQDN": "h1.example", "PrimaryIPv4": "10.0.0.1", "PrimaryIPv6": "fd00::1"
        }))
        .unwrap();
        let test = |step: Option<&str>, t: Option<&Target>, name: &str, payload| NewEvent {
            kind: EventKind::Test,
            job_id: id,
            run_id: 1,
            test_name: Some("fixture".into()),
            test_attempt: Some(0),
            step_label: step.map(str::to_string),
            target: t.cloned(),
            name: name.into(),
            payload,
            emit_time: jiff::Timestamp::now(),
        };
        let run = |name: &str| {
            let mut e = NewEvent::job(id, name, None);
            e.run_id = 1;
            e
        };
        let events = vec![
            NewEvent::job(id, "JobStateStarted", None),
            run("RunStarted"),
            test(None, None, "TestStarted", None),
            test(None, Some(&host), "TargetAcquired", None),
            test(Some("s"), Some(&host), "TargetIn", None),
            test(
                Some("s"),
                Some(&host),
                "TargetErr",
                Some(json!({"Error": "no route to host", "Infra": true})),
            ),
            test(
                None,
                None,
                "TestError",
                Some(json!({"Error": "the test broke"})),
            ),
            test(None, Some(&host), "TargetReleased", None),
            test(None, None, "TestFinished", Some(json!({"Success": false}))),
            run("RunFinished"),
            NewEvent::job(id, "JobStateFailed", Some(json!({"Error": "it failed"}))),
        ];
        store.append_events(&events).await.unwrap();
        id
    })
}

/// A report's keys under `prefix`: `RunID` in run reports only,
/// `ReportTime` where `with_time` (the stored ones).
fn reports(prefix: &str, run: bool, with_time: bool) -> Vec<String> {
    ["ReporterName", "Success", "Data", "RunID", "ReportTime"]
        .iter()
        .filter(|k| run || **k != "RunID")
        .filter(|k| with_time || **k != "ReportTime")
        .map(|k| join(prefix, k))
        .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn json_outputs_have_their_documented_shapes() {
    let env = Env::new();
    let example = |f: &str| root().join("examples").join(f).display().to_string();
    // A job that passes and one whose cleanup fails a target.
    let (code, passed, err) = env.run(&["run", &example("hello.yaml"), "--json"]);
    assert_eq!(code, 0, "{err}");
    let (code, failed, err) = env.run(&["run", &example("cleanup.yaml"), "--json"]);
    assert_eq!(code, 1, "{err}");
    let failed_id = job_id(&err);

    // prova run --json
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
    want.extend(reports("RunReports[][]", true, false));
    want.extend(reports("FinalReports[]", false, false));
    let outputs = [&passed, &failed].map(|o| serde_json::from_str(o).unwrap());
    assert_shape("run --json", &outputs, &strs(&want));

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
        assert_shape(cmd, std::slice::from_ref(&jobs), &job_keys);
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

    // prova status --json: the two example jobs and one with every
    // optional key.
    let fixture = record_job_with_every_optional_key(&env);
    let outputs: Vec<Value> = [1, failed_id, fixture]
        .iter()
        .map(|id| env.status(*id))
        .collect();
    let run = "RunStatuses[]";
    let test = "RunStatuses[].TestStatuses[]";
    let step = "RunStatuses[].TestStatuses[].TestStepStatuses[]";
    let mut want: Vec<String> = [
        "JobID",
        "Name",
        "State",
        "StateErrMsg",
        "StartTime",
        "EndTime",
        "Verdict",
        "RunStatuses",
        "JobReport",
        "JobReport.RunReports",
        "JobReport.FinalReports",
    ]
    .map(String::from)
    .to_vec();
    for k in ["RunID", "StartTime", "EndTime", "TestStatuses"] {
        want.push(join(run, k));
    }
    for k in [
        "TestName",
        "TestAttempt",
        "Passed",
        "TestStepStatuses",
        "TargetStatuses",
    ] {
        want.push(join(test, k));
    }
    want.extend(optional(test, &["Error"]));
    for k in ["TestStepLabel", "TargetStatuses"] {
        want.push(join(step, k));
    }
    let in_step = join(step, "TargetStatuses[]");
    want.extend(target(&join(&in_step, "Target")));
    for k in ["InTime", "OutTime"] {
        want.push(join(&in_step, k));
    }
    want.extend(optional(&in_step, &["Error"]));
    let in_test = join(test, "TargetStatuses[]");
    want.extend(target(&join(&in_test, "Target")));
    for k in ["AcquiredTime", "ReleasedTime"] {
        want.push(join(&in_test, k));
    }
    want.extend(optional(&in_test, &["FailedStep", "Error", "Infra"]));
    want.extend(reports("JobReport.RunReports[][]", true, true));
    want.extend(reports("JobReport.FinalReports[]", false, true));
    // A target status always has its target: `Target?` is the events'.
    for k in want.iter_mut() {
        if k.ends_with(".Target?") {
            k.pop();
        }
    }
    assert_shape("status --json", &outputs, &strs(&want));

    // prova events --json: one object per line
    let mut outputs = Vec::new();
    for id in [1, fixture] {
        let (code, out, _) = env.run(&["events", &id.to_string(), "--json"]);
        assert_eq!(code, 0);
        outputs.extend(out.lines().map(|l| serde_json::from_str(l).unwrap()));
    }
    let mut want: Vec<String> = ["Seq", "Kind", "JobID", "RunID", "EventName", "EmitTime"]
        .map(String::from)
        .to_vec();
    want.extend(optional(
        "",
        &["TestName", "TestAttempt", "TestStepLabel", "Payload"],
    ));
    want.extend(target("Target"));
    assert_shape("events --json", &outputs, &strs(&want));

    // prova plugins --json
    let (code, out, _) = env.run(&["plugins", "--json"]);
    assert_eq!(code, 0);
    assert_shape(
        "plugins --json",
        &[serde_json::from_str(&out).unwrap()],
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
fn prune_json_has_its_documented_shape() {
    let env = Env::new();
    let example = root().join("examples/hello.yaml").display().to_string();
    let (code, _, err) = env.run(&["run", &example]);
    assert_eq!(code, 0, "{err}");
    let keys = [
        "DryRun",
        "EndedBefore",
        "JobCount",
        "EventCount",
        "Vacuumed",
        "StoreBytes",
        "FreeBytes",
        "Jobs?",
        "Jobs[].JobID",
        "Jobs[].JobName",
        "Jobs[].State",
        "Jobs[].StateTime",
        "Jobs[].Events",
    ];
    let mut outputs = Vec::new();
    for extra in [&["--dry-run"][..], &["--vacuum"][..]] {
        let mut args = vec!["prune", "--older-than", "0", "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = env.run(&args);
        assert_eq!(code, 0, "{err}");
        outputs.push(serde_json::from_str(&out).unwrap());
    }
    assert_shape("prune --json", &outputs, &keys);
}

#[test]
fn the_shape_check_sees_a_renamed_key() {
    let v: Value = json!({"JobID": 1, "Runs": [{"RunID": 1}]});
    assert_eq!(paths(&v), set(&["JobID", "Runs", "Runs[].RunID"]));
    let renamed: Value = json!({"JobId": 1, "Runs": [{"RunID": 1}]});
    let result = std::panic::catch_unwind(|| {
        assert_shape("x", &[renamed], &["JobID", "Runs", "Runs[].RunID"])
    });
    assert!(result.is_err(), "a renamed key must fail the check");
}

#[test]
fn the_shape_check_sees_changes_to_keys_present_only_sometimes() {
    let want = ["Runs", "Runs[].RunID", "Runs[].Error?"];
    let check = |outputs: Vec<Value>| {
        std::panic::catch_unwind(|| assert_shape("x", &outputs, &want)).is_ok()
    };
    let ok = json!({"Runs": [{"RunID": 1}, {"RunID": 2, "Error": "e"}]});
    assert!(check(vec![ok]));
    // An optional key renamed where it appears.
    let renamed = json!({"Runs": [{"RunID": 1}, {"RunID": 2, "Err": "e"}]});
    assert!(!check(vec![renamed]), "a renamed optional key");
    // Never shown: the check cannot vouch for it.
    let unseen = json!({"Runs": [{"RunID": 1}]});
    assert!(!check(vec![unseen]), "an optional key no output has");
    // An always-present key gone from one object (the union still has it).
    let sometimes = json!({"Runs": [{"RunID": 1}, {"Error": "e"}]});
    assert!(!check(vec![sometimes]), "a required key missing once");
    // Across outputs the same holds.
    let a = json!({"Runs": [{"RunID": 1, "Error": "e"}]});
    let b = json!({"Runs": [{"Error": "e"}]});
    assert!(!check(vec![a, b]), "a required key missing in one output");
}
