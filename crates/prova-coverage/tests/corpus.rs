//! Tests on the real corpus (`/work/shared/corpus/k8s`, reached relative to
//! this crate) and an end-to-end Job-status workflow.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;
use prova_coverage::analyze::{AnalyzeOptions, analyze};
use prova_coverage::audit::ReadOptions;
use prova_coverage::spec::{Level, Spec};
use prova_coverage::{CoverageCommand, run};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/k8s")
}

fn spec_path() -> PathBuf {
    corpus().join("openapi/v1.36/swagger.json")
}

fn opts(audit: Vec<String>) -> AnalyzeOptions {
    AnalyzeOptions {
        spec: spec_path(),
        audit,
        read: ReadOptions {
            threads: 2,
            progress: false,
            strict: false,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: CoverageCommand,
}

fn cli(args: &[&str]) -> (u8, String, Option<prova_coverage::Attach>) {
    let mut all = vec!["prova"];
    all.extend_from_slice(args);
    let cli = Cli::try_parse_from(all).expect("arguments parse");
    let mut out = Vec::new();
    let outcome = run(cli.cmd, &mut out).expect("command runs");
    (
        outcome.exit_code,
        String::from_utf8(out).unwrap(),
        outcome.attach,
    )
}

#[test]
fn v136_endpoint_counts() {
    let spec = Spec::from_file(&spec_path()).unwrap();
    let eps = spec.endpoints();
    assert_eq!(eps.len(), 908);
    let n = |l: Level| eps.iter().filter(|e| e.level == l).count();
    assert_eq!(
        (n(Level::Stable), n(Level::Beta), n(Level::Alpha)),
        (664, 160, 84)
    );
    assert_eq!(spec.operations.len(), 1123);
    assert_eq!(spec.operations.iter().filter(|o| o.deprecated).count(), 215);
    assert!(
        spec.operations
            .iter()
            .filter(|o| o.deprecated)
            .all(|o| o.endpoint.starts_with("watch"))
    );
}

#[test]
fn v136_endpoints_match_apisnoop_release_file() {
    let spec = Spec::from_file(&spec_path()).unwrap();
    let text = std::fs::read(corpus().join("apisnoop-coverage/1.36.0.json")).unwrap();
    let apisnoop: serde_json::Value = serde_json::from_slice(&text).unwrap();
    let theirs: HashMap<String, &serde_json::Value> = apisnoop["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["endpoint"].as_str().unwrap().to_string(), e))
        .collect();
    let ours = spec.endpoints();
    let ours_names: BTreeSet<&str> = ours.iter().map(|o| o.endpoint.as_str()).collect();
    let theirs_names: BTreeSet<&str> = theirs.keys().map(String::as_str).collect();
    assert_eq!(ours_names, theirs_names);
    for o in ours {
        let t = theirs[&o.endpoint];
        let s = |k: &str| t[k].as_str().map(str::to_string);
        assert_eq!(
            s("level").as_deref(),
            Some(o.level.as_str()),
            "{}",
            o.endpoint
        );
        assert_eq!(s("category"), o.category, "{}", o.endpoint);
        assert_eq!(s("kind"), o.kind, "{}", o.endpoint);
        assert_eq!(s("group"), o.group, "{}", o.endpoint);
        assert_eq!(s("version"), o.version, "{}", o.endpoint);
        assert_eq!(s("action"), o.action, "{}", o.endpoint);
        assert_eq!(
            s("path").as_deref(),
            Some(o.path.as_str()),
            "{}",
            o.endpoint
        );
    }
}

#[test]
fn apisnoop_testdata_maps_as_apisnoop_expects() {
    let dir = corpus().join("audit/apisnoop-testdata");
    let one = |f: &str| {
        let (r, _) = analyze(&opts(vec![dir.join(f).display().to_string()])).unwrap();
        r
    };
    let r = one("audit_event.json");
    let hit: Vec<_> = r
        .endpoints
        .iter()
        .filter(|e| e.hits > 0)
        .map(|e| e.endpoint.as_str())
        .collect();
    assert_eq!(hit, ["readCoreV1Node"]);
    assert_eq!(r.events.unmapped, 0);
    for (file, reason) in [
        ("audit_event_bad_verb.json", "bad verb"),
        ("bad_audit_event.json", "bad verb"),
        ("audit_event_dummy_request.json", "known dummy endpoint"),
        (
            "audit_event_part_count_too_high.json",
            "part count too high",
        ),
    ] {
        let r = one(file);
        assert_eq!(r.unmapped.total, 1, "{file}");
        assert_eq!(r.unmapped.reasons[0].reason, reason, "{file}");
        let ex = &r.unmapped.reasons[0].examples[0];
        assert!(ex.file.ends_with(file));
        assert_eq!(ex.line, 1);
    }
}

#[test]
fn every_corpus_event_parses_or_is_reported() {
    let mut files: Vec<String> = Vec::new();
    for sub in [
        "audit/apisnoop-testdata",
        "audit/falco-k8s_audit",
        "audit/audit2rbac",
    ] {
        for e in std::fs::read_dir(corpus().join(sub)).unwrap() {
            files.push(e.unwrap().path().display().to_string());
        }
    }
    files.sort();
    let (r, summary) = analyze(&opts(files.clone())).unwrap();
    assert!(summary.input_errors.is_empty());
    // 5 APISnoop + 52 Falco + 37 audit2rbac events.
    assert_eq!(r.events.total, 5 + 52 + 37);
    assert_eq!(r.events.mapped + r.events.unmapped, r.events.total);
    assert_eq!(r.events.malformed, 1); // fal_01_003.json: {"kind": 0}
    let malformed = r
        .unmapped
        .reasons
        .iter()
        .find(|x| x.reason == "malformed")
        .unwrap();
    assert!(malformed.examples[0].file.ends_with("fal_01_003.json"));
    // The strict parser agrees.
    let mut o = opts(files);
    o.read.strict = true;
    let (strict, _) = analyze(&o).unwrap();
    assert_eq!(strict.events, r.events);
    assert_eq!(strict.endpoints, r.endpoints);
}

#[test]
fn ineligible_and_pending() {
    let k = corpus();
    let mut o = opts(vec![
        k.join("audit/apisnoop-testdata/audit_event.json")
            .display()
            .to_string(),
    ]);
    o.ineligible = Some(k.join("kubernetes-testdata/ineligible_endpoints.yaml"));
    o.pending = Some(k.join("kubernetes-testdata/pending_eligible_endpoints.yaml"));
    o.conformance = Some(k.join("kubernetes-testdata/conformance.yaml"));
    let (r, _) = analyze(&o).unwrap();
    // 664 stable minus the 99 ineligible endpoints of this (older) yaml.
    assert_eq!(r.total_eligible, 565);
    assert_eq!(r.pending_eligible, 13);
    let e = r.endpoint("connectCoreV1GetNodeProxy").unwrap();
    assert!(!e.eligible && e.ineligible_reason.is_some());
}

fn event(verb: &str, uri: &str, ua: &str) -> String {
    serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "x", "stage": "ResponseComplete", "requestURI": uri, "verb": verb,
        "user": {"username": "e2e"}, "sourceIPs": ["10.0.0.1"], "userAgent": ua,
        "responseStatus": {"code": 200}
    })
    .to_string()
}

const JOB_TEST: &str = "[sig-apps] Job should apply changes to a job status [Conformance]";

fn write_log(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
}

#[test]
fn job_status_workflow_diff_reports_plus_three() {
    let dir = tempfile::tempdir().unwrap();
    let ua = format!("e2e.test/v1.36.0 (linux/amd64) kubernetes/5f8c2a1 -- {JOB_TEST}");
    let base = vec![
        event("create", "/apis/batch/v1/namespaces/job-1234/jobs", &ua),
        event(
            "get",
            "/apis/batch/v1/namespaces/job-1234/jobs/suspended-job",
            &ua,
        ),
        event(
            "list",
            "/apis/batch/v1/namespaces/job-1234/jobs?labelSelector=a%3Db&limit=500",
            &ua,
        ),
        event(
            "get",
            "/api/v1/nodes/node-1",
            "kubelet/v1.36.0 (linux/amd64) kubernetes/5f8c2a1",
        ),
        "this line is not JSON".to_string(),
    ];
    let mut after = base.clone();
    after.push(event(
        "get",
        "/apis/batch/v1/namespaces/job-1234/jobs/suspended-job/status",
        &ua,
    ));
    after.push(event(
        "update",
        "/apis/batch/v1/namespaces/job-1234/jobs/suspended-job/status",
        &ua,
    ));
    after.push(event(
        "patch",
        "/apis/batch/v1/namespaces/job-1234/jobs/suspended-job/status",
        &ua,
    ));
    let before_log = dir.path().join("before.log");
    let after_log = dir.path().join("after.log.gz");
    write_log(&before_log, &base);
    {
        let f = std::fs::File::create(&after_log).unwrap();
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        for l in &after {
            writeln!(gz, "{l}").unwrap();
        }
        gz.finish().unwrap();
    }
    let spec = spec_path().display().to_string();
    let (b, a) = (
        before_log.display().to_string(),
        after_log.display().to_string(),
    );

    // 1. find the untested Job status endpoints
    let (code, out, _) = cli(&[
        "untested",
        "--spec",
        &spec,
        "--audit",
        &b,
        "--endpoint",
        "%JobStatus",
        "--kind",
        "Job",
    ]);
    assert_eq!(code, 0);
    for e in [
        "readBatchV1NamespacedJobStatus",
        "replaceBatchV1NamespacedJobStatus",
        "patchBatchV1NamespacedJobStatus",
    ] {
        assert!(out.contains(e), "{out}");
    }
    assert!(!out.contains("CronJob"), "{out}");

    // 2. diff: +3
    let (code, out, _) = cli(&["diff", "--spec", &spec, &b, &a]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("+3: patchBatchV1NamespacedJobStatus, readBatchV1NamespacedJobStatus, replaceBatchV1NamespacedJobStatus"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("batch ") && l.contains("+3")),
        "{out}"
    );

    // 3. the same from saved JSON reports, and --fail-on-decrease the other way round
    let bj = dir.path().join("before.json");
    let aj = dir.path().join("after.json");
    let (_, out, _) = cli(&["report", "--spec", &spec, "--audit", &b, "--json"]);
    std::fs::write(&bj, out).unwrap();
    let (_, out, attach) = cli(&[
        "report", "--spec", &spec, "--audit", &a, "--json", "--job", "42", "--run", "3",
    ]);
    std::fs::write(&aj, &out).unwrap();
    let attach = attach.expect("attach");
    assert_eq!((attach.job_id, attach.run_id), (42, Some(3)));
    assert_eq!(attach.report_json.trim(), out.trim());
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in [
        "total endpoints",
        "tested endpoints",
        "total conformance eligible endpoints",
        "tested conformance eligible endpoints",
        "endpoints",
        "unmapped",
    ] {
        assert!(report.get(key).is_some(), "{key}");
    }
    assert_eq!(report["tested endpoints"], 6);
    let js = report["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["endpoint"] == "patchBatchV1NamespacedJobStatus")
        .unwrap();
    assert_eq!(js["tested"], true);
    assert_eq!(js["conf_tested"], true);
    assert_eq!(js["tests"], serde_json::json!([JOB_TEST]));
    assert_eq!(js["hits"], 1);
    assert_eq!(report["unmapped"]["reasons"][0]["reason"], "malformed");
    assert_eq!(report["unmapped"]["reasons"][0]["examples"][0]["line"], 5);

    let (code, out, _) = cli(&["diff", bj.to_str().unwrap(), aj.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    let d: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(d["newly_tested"].as_array().unwrap().len(), 3);
    let (code, out, _) = cli(&[
        "diff",
        aj.to_str().unwrap(),
        bj.to_str().unwrap(),
        "--fail-on-decrease",
    ]);
    assert_eq!(code, 1);
    assert!(out.starts_with("+0\n-3: "), "{out}");

    // 4. which tests hit the endpoint
    let (_, out, _) = cli(&[
        "tests",
        "--from-report",
        aj.to_str().unwrap(),
        "--endpoint",
        "readBatchV1NamespacedJobStatus",
    ]);
    assert!(out.contains(JOB_TEST), "{out}");

    // 5. other formats render
    let (_, html, _) = cli(&["report", "--spec", &spec, "--audit", &a, "--html"]);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("class=\"bar\""));
    let (_, csv, _) = cli(&["report", "--from-report", aj.to_str().unwrap(), "--csv"]);
    assert_eq!(csv.lines().count(), 909);
    let (_, table, _) = cli(&["report", "--from-report", aj.to_str().unwrap()]);
    assert!(table.contains("tested endpoints"));
}

#[test]
fn pod_binding_special_case_and_user_agent_option() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    write_log(
        &log,
        &[
            event(
                "create",
                "/api/v1/namespaces/pods-5678/pods/test-pod-1/binding",
                "kube-scheduler/v1.36.0 (linux/amd64) kubernetes/5f8c2a1/scheduler",
            ),
            event(
                "get",
                "/api/v1/namespaces/default/configmaps/x",
                "live-test-writing",
            ),
        ],
    );
    let mut o = opts(vec![log.display().to_string(), "-".into()]);
    o.audit.pop();
    o.user_agents = vec!["live-test-writing".into()];
    let (r, _) = analyze(&o).unwrap();
    let b = r.endpoint("createCoreV1NamespacedPodBinding").unwrap();
    assert!(b.tested && b.conf_tested);
    assert_eq!(
        b.tests,
        ["[sig-node] Pods should delete a collection of pods [Conformance]"]
    );
    let c = r.endpoint("readCoreV1NamespacedConfigMap").unwrap();
    assert!(c.tested && !c.conf_tested);
    assert_eq!(c.tests, ["live-test-writing"]);
}

#[test]
fn endpoints_command() {
    let spec = spec_path().display().to_string();
    let (_, out, _) = cli(&["endpoints", "--spec", &spec]);
    assert!(
        out.contains("908 endpoints: 664 stable, 160 beta, 84 alpha"),
        "{}",
        out.lines().last().unwrap()
    );
    let (_, out, _) = cli(&[
        "endpoints",
        "--spec",
        &spec,
        "--endpoint",
        "%JobStatus",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 6);
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let cli = Cli::try_parse_from([
        "prova",
        "report",
        "--spec",
        spec_path().to_str().unwrap(),
        "--audit",
        "/nonexistent/audit.log",
    ])
    .unwrap();
    let err = run(cli.cmd, &mut Vec::new()).unwrap_err();
    assert!(format!("{err:#}").contains("/nonexistent/audit.log"));
}
