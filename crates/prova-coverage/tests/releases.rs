//! `coverage diff` and `--from-report` on APISnoop's 1.36.0 and 1.37.0
//! release files, checked against the numbers in the files themselves.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::Parser;
use prova_coverage::diff::diff;
use prova_coverage::report::Report;
use prova_coverage::{CoverageCommand, run};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/k8s/apisnoop-coverage")
}

fn file(name: &str) -> String {
    dir().join(name).display().to_string()
}

fn raw(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(dir().join(name)).unwrap()).unwrap()
}

/// Endpoint names of a release file, and those with `key` true.
fn names(v: &Value, key: Option<&str>) -> BTreeSet<String> {
    v["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| key.is_none_or(|k| e[k].as_bool() == Some(true)))
        .map(|e| e["endpoint"].as_str().unwrap().to_string())
        .collect()
}

#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: CoverageCommand,
}

fn cli(args: &[&str]) -> (u8, String) {
    let mut all = vec!["prova"];
    all.extend_from_slice(args);
    let cli = Cli::try_parse_from(all).expect("arguments parse");
    let mut out = Vec::new();
    let outcome = run(cli.cmd, &mut out).expect("command runs");
    (outcome.exit_code, String::from_utf8(out).unwrap())
}

fn pct(a: usize, b: usize) -> String {
    format!("{:.1}%", a as f64 * 100.0 / b as f64)
}

#[test]
fn diff_between_releases_accounts_for_added_and_removed_endpoints() {
    let (old, new) = (raw("1.36.0.json"), raw("1.37.0.json"));
    let (old_all, new_all) = (names(&old, None), names(&new, None));
    let (old_tested, new_tested) = (names(&old, Some("tested")), names(&new, Some("tested")));
    let removed: BTreeSet<_> = old_all.difference(&new_all).cloned().collect();
    let added: BTreeSet<_> = new_all.difference(&old_all).cloned().collect();
    assert_eq!((removed.len(), added.len()), (54, 20));
    let lost: Vec<_> = old_tested.difference(&new_tested).cloned().collect();
    let gained: Vec<_> = new_tested.difference(&old_tested).cloned().collect();
    assert!(
        lost.iter().any(|e| removed.contains(e)),
        "a removed endpoint was tested"
    );

    let before = Report::from_file(&dir().join("1.36.0.json")).unwrap();
    let after = Report::from_file(&dir().join("1.37.0.json")).unwrap();
    let d = diff(&before, &after);
    assert_eq!(d.removed.iter().cloned().collect::<BTreeSet<_>>(), removed);
    assert_eq!(d.added.iter().cloned().collect::<BTreeSet<_>>(), added);
    assert_eq!(d.no_longer_tested, lost);
    assert_eq!(d.newly_tested, gained);
    assert!(d.decreased());
    // Each side counts its own endpoints: 591 of 908 before.
    assert_eq!(d.total.old_total as usize, old_all.len());
    assert_eq!(d.total.total as usize, new_all.len());
    assert_eq!(d.total.old_tested as usize, old_tested.len());
    assert_eq!(d.total.new_tested as usize, new_tested.len());
    assert_eq!(
        (d.total.old_tested, d.total.old_total),
        (
            old["tested endpoints"].as_u64().unwrap(),
            old["total endpoints"].as_u64().unwrap()
        )
    );
    assert_eq!((d.total.old_tested, d.total.old_total), (591, 908));

    let (code, out) = cli(&["diff", &file("1.36.0.json"), &file("1.37.0.json")]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("-{}: ", lost.len())), "{out}");
    assert!(
        out.contains(&format!("{} (removed endpoint)", lost[0])),
        "{out}"
    );
    assert!(out.contains("20 added, 54 removed"), "{out}");
    let total = out.lines().find(|l| l.starts_with("total")).unwrap();
    assert!(
        total.contains(&pct(old_tested.len(), old_all.len())),
        "{total}"
    );
    assert!(
        total.contains(&pct(new_tested.len(), new_all.len())),
        "{total}"
    );
    let (code, _) = cli(&[
        "diff",
        &file("1.36.0.json"),
        &file("1.37.0.json"),
        "--fail-on-decrease",
    ]);
    assert_eq!(
        code, 1,
        "--fail-on-decrease sees the removed tested endpoint"
    );
    // Same release on both sides: nothing lost.
    let (code, _) = cli(&[
        "diff",
        &file("1.36.0.json"),
        &file("1.36.0.json"),
        "--fail-on-decrease",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn from_report_agrees_with_the_release_file() {
    for release in ["1.36.0.json", "1.37.0.json"] {
        let v = raw(release);
        let header = |k: &str| v[k].as_u64().unwrap();
        let conf = names(&v, Some("conf_tested")).len();
        let (_, out) = cli(&["report", "--from-report", &file(release), "--json"]);
        let r: Value = serde_json::from_str(&out).unwrap();
        for k in [
            "total endpoints",
            "tested endpoints",
            "total conformance eligible endpoints",
            "tested conformance eligible endpoints",
        ] {
            assert_eq!(r[k].as_u64().unwrap(), header(k), "{release} {k}");
        }
        assert_eq!(
            r["conformance tested endpoints"].as_u64().unwrap() as usize,
            conf
        );

        // With APISnoop's ineligible list, per-endpoint eligibility matches
        // the file's totals exactly.
        let ineligible = file("ineligible_endpoints.json");
        let (_, out) = cli(&[
            "report",
            "--from-report",
            &file(release),
            "--ineligible",
            &ineligible,
            "--json",
        ]);
        let r: Value = serde_json::from_str(&out).unwrap();
        let eligible = r["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["eligible"] == true)
            .count() as u64;
        assert_eq!(eligible, header("total conformance eligible endpoints"));
        for k in [
            "total conformance eligible endpoints",
            "tested conformance eligible endpoints",
        ] {
            assert_eq!(r[k].as_u64().unwrap(), header(k), "{release} {k}");
        }
        // untested agrees: eligible and not conformance tested.
        let untested_conf = r["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["eligible"] == true && e["conf_tested"] == false)
            .count();
        assert_eq!(
            untested_conf as u64,
            header("total conformance eligible endpoints")
                - header("tested conformance eligible endpoints")
        );
        let (_, out) = cli(&[
            "untested",
            "--from-report",
            &file(release),
            "--ineligible",
            &ineligible,
            "--conf",
            "--json",
        ]);
        let rows: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(rows.len(), untested_conf);
        let (_, table) = cli(&[
            "report",
            "--from-report",
            &file(release),
            "--ineligible",
            &ineligible,
        ]);
        let stable = table.lines().find(|l| l.starts_with("stable")).unwrap();
        let eligible_tested = header("tested conformance eligible endpoints");
        assert!(
            stable.ends_with(&format!("{eligible_tested}/{eligible}")),
            "{stable}"
        );
        // Without it, eligibility is said to be unknown, not shown as 0/0.
        let (_, table) = cli(&["report", "--from-report", &file(release)]);
        let stable = table.lines().find(|l| l.starts_with("stable")).unwrap();
        assert!(stable.ends_with("n/a"), "{stable}");
    }
}
