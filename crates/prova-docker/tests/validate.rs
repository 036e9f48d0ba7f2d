//! The `docker` step's parameter checks, before anything runs (no Docker
//! needed): every error at once, each naming its parameter path.

use prova_core::node::Format;
use prova_engine::prepare::prepare_str;

fn prepare(params: &str) -> Result<Vec<String>, Vec<String>> {
    let yaml = format!(
        "JobName: v
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}]}}
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: T
      Steps:
        - name: Docker
          label: run
          parameters: {{{params}}}
Reporting:
  RunReporters: [{{name: noop}}]
"
    );
    let mut r = prova_engine::plugins::registry();
    prova_docker::register(&mut r);
    let msgs = |d: &[prova_core::diag::Diagnostic]| d.iter().map(|d| d.to_string()).collect();
    match prepare_str(&yaml, Format::Yaml, None, &r) {
        Ok(p) => Ok(msgs(&p.warnings)),
        Err(e) => Err(msgs(&e.errors)),
    }
}

const STEP: &str = "TestDescriptors[0].TestFetcherFetchParameters.Steps[0].parameters";

#[test]
fn a_good_step_validates() {
    let warnings = prepare(
        r#"image: "alpine:3.20", command: [/bin/suite], args: [--junit, /results/junit.xml],
           env: ["A=1", "B="], workdir: /src, user: "1000:1000", mounts: ["/data:/data:ro"],
           network: none, timeout: 5m, cpus: "1.5", memory: 512m, results_dir: /results,
           pull: missing, emit_output: false, fail_on_test_failures: "false", labels: ["team=qa"]"#,
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn every_bad_parameter_is_reported_with_its_path() {
    let errors = prepare(
        r#"command: [""], env: ["NOVALUE"], workdir: src, mounts: ["data:/data", "/a:/b:rx"],
           timeout: soon, cpus: "0", memory: 4m, results_dir: results, pull: sometimes,
           emit_output: maybe, labels: ["prova.job=1"], network: "two words""#,
    )
    .unwrap_err();
    let expect = [
        format!("{STEP}.image"),
        format!("{STEP}.command[0]: expected a program path"),
        format!("{STEP}.env[0]: expected KEY=VALUE, found \"NOVALUE\""),
        format!("{STEP}.workdir[0]: expected an absolute path"),
        format!("{STEP}.mounts[0]: expected /host/path:/container/path"),
        format!(
            "{STEP}.mounts[1]: expected /host/path:/container/path[:ro|:rw], found \"/a:/b:rx\": unknown option \"rx\""
        ),
        format!("{STEP}.timeout[0]: "),
        format!("{STEP}.cpus[0]: expected a number of CPUs"),
        format!("{STEP}.memory[0]: \"4m\" is below the engine's minimum of 6m"),
        format!("{STEP}.results_dir[0]: expected an absolute path"),
        format!("{STEP}.pull[0]: expected \"never\", \"missing\" or \"always\""),
        format!("{STEP}.emit_output[0]: expected true or false"),
        format!("{STEP}.labels[0]: label \"prova.job\""),
        format!("{STEP}.network[0]: expected a network"),
    ];
    for e in &expect {
        assert!(
            errors.iter().any(|m| m.contains(e.as_str())),
            "no error containing {e:?} in:\n{}",
            errors.join("\n")
        );
    }
    assert_eq!(errors.len(), expect.len(), "{}", errors.join("\n"));
}

#[test]
fn templates_are_checked_when_expanded_and_unknown_keys_warn() {
    let warnings = prepare(r#"image: "reg/{{ .ID }}:1", memory: "{{ .ID }}", imagee: x"#).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("unknown parameter \"imagee\""),
        "{warnings:?}"
    );
}
