use std::time::Duration;

use super::*;
use crate::node::{Format, parse_document};

fn decode(text: &str) -> (Option<JobDescriptor>, Diagnostics) {
    let root = parse_document(text, Format::Yaml).unwrap();
    let mut d = Diagnostics::new(Some(Path::new("job.yaml")));
    let job = decode_job(&root, &mut d);
    (job, d)
}

fn errors(text: &str) -> Vec<String> {
    decode(text)
        .1
        .errors()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

const MINIMAL: &str = "JobName: j\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TestFetcherName: literal\nReporting:\n  RunReporters: [{Name: noop}]\n";

#[test]
fn minimal_descriptor_has_contest_defaults() {
    let (job, d) = decode(MINIMAL);
    assert!(!d.has_errors(), "{:?}", d.errors());
    let job = job.unwrap();
    assert_eq!(job.version, CURRENT_VERSION);
    assert_eq!(job.runs, 1);
    assert_eq!(job.run_interval, Duration::ZERO);
    assert_eq!(job.tests[0].acquire_timeout, defaults::ACQUIRE_TIMEOUT);
    assert_eq!(job.reporting.run_reporters[0].name, "noop");
}

#[test]
fn keys_match_case_insensitively() {
    let text = "jobname: j\nruns: 3\nrunInterval: 2s\ntestdescriptors:\n  - targetmanagername: TargetList\n    TESTFETCHERNAME: literal\n    retryparameters: {numretries: 2, retryinterval: 1m30s}\nreporting:\n  runreporters: [{name: noop}]\n";
    let (job, d) = decode(text);
    assert!(!d.has_errors(), "{:?}", d.errors());
    assert!(d.warnings().is_empty(), "{:?}", d.warnings());
    let job = job.unwrap();
    assert_eq!(job.runs, 3);
    assert_eq!(job.run_interval, Duration::from_secs(2));
    assert_eq!(job.tests[0].retry.num_retries, 2);
    assert_eq!(job.tests[0].retry.retry_interval, Duration::from_secs(90));
}

#[test]
fn version_is_checked() {
    let e = errors(&format!("Version: \"2.0\"\n{MINIMAL}"));
    assert_eq!(e.len(), 1);
    assert!(
        e[0].contains("job.yaml:1:10: Version: unsupported descriptor version \"2.0\""),
        "{e:?}"
    );
    assert!(errors(&format!("Version: \"1.0\"\n{MINIMAL}")).is_empty());
}

#[test]
fn job_name_is_limited_to_64_characters() {
    let long = "x".repeat(65);
    let e = errors(&MINIMAL.replace("JobName: j", &format!("JobName: {long}")));
    assert!(
        e[0].contains("JobName: job name is 65 characters long: expected at most 64"),
        "{e:?}"
    );
    assert!(
        errors(&MINIMAL.replace("JobName: j", &format!("JobName: {}", "x".repeat(64)))).is_empty()
    );
}

#[test]
fn tags_follow_contests_rules() {
    let e = errors(&format!(
        "Tags: [good-1, bad tag, _hidden, good-1]\n{MINIMAL}"
    ));
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].contains("Tags[1]: invalid tag \"bad tag\""));
    assert!(e[1].contains("Tags[2]: invalid tag \"_hidden\": tags starting with '_' are reserved"));
    assert!(e[2].contains("Tags[3]: duplicate tag \"good-1\""));
}

#[test]
fn every_error_is_reported_at_once() {
    let text = "Runs: -1\nRunInterval: soon\nTestDescriptors:\n  - Disabled: maybe\n    RetryParameters: {NumRetries: x}\nReporting: {}\n";
    let e = errors(text);
    let joined = e.join("\n");
    for want in [
        "1:7: Runs: expected a non-negative integer, found -1",
        "2:14: RunInterval: invalid duration \"soon\"",
        "JobName: missing",
        "TestDescriptors[0].TargetManagerName: missing",
        "TestDescriptors[0].TestFetcherName: missing",
        "TestDescriptors[0].Disabled: expected true or false",
        "TestDescriptors[0].RetryParameters.NumRetries: expected a non-negative integer",
        "Reporting: expected at least one run or final reporter",
    ] {
        assert!(joined.contains(want), "missing {want:?} in\n{joined}");
    }
}

#[test]
fn unknown_keys_are_warnings() {
    let (_, d) = decode(&format!("Colour: blue\n{MINIMAL}"));
    assert!(!d.has_errors());
    assert_eq!(d.warnings().len(), 1);
    assert!(
        d.warnings()[0]
            .to_string()
            .contains("job.yaml:1:1: Colour: unknown key \"Colour\" ignored")
    );
}

fn steps(text: &str) -> (Vec<StepDescriptor>, Diagnostics) {
    let root = parse_document(text, Format::Yaml).unwrap();
    let mut d = Diagnostics::new(None);
    let s = decode_steps_document(&root, &mut d);
    (s, d)
}

#[test]
fn step_parameters_are_lists_and_a_scalar_is_a_one_element_list() {
    let (s, d) = steps(
        "steps:\n  - name: cmd\n    label: a\n    parameters:\n      executable: /bin/echo\n      args: [1, true, x]\n      Emit_Stdout: [false]\n",
    );
    assert!(!d.has_errors(), "{:?}", d.errors());
    let p = &s[0].parameters;
    assert_eq!(p.get("executable").unwrap().values, vec!["/bin/echo"]);
    assert_eq!(p.get("args").unwrap().values, vec!["1", "true", "x"]);
    assert_eq!(
        p.one("emit_stdout"),
        Some("false"),
        "parameter names match any case"
    );
    assert_eq!(
        p.get("args").unwrap().path.to_string(),
        "steps[0].parameters.args"
    );
}

#[test]
fn labels_are_mandatory_valid_and_unique() {
    let (_, d) = steps(
        "steps:\n  - {name: echo}\n  - {name: echo, label: 9lives}\n  - {name: echo, label: ok_1}\n  - {name: echo, label: ok_1}\n",
    );
    let e: Vec<String> = d.errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].contains("steps[0].label: missing"));
    assert!(e[1].contains("steps[1].label: invalid step label \"9lives\""));
    assert!(
        e[2].contains("steps[3].label: duplicate step label \"ok_1\": already used at steps[2]")
    );
}

#[test]
fn steps_document_is_recognised() {
    let root = parse_document("{\"steps\": []}", Format::Json).unwrap();
    assert!(is_steps_document(&root));
    let root = parse_document(MINIMAL, Format::Yaml).unwrap();
    assert!(!is_steps_document(&root));
}

#[test]
fn json_descriptors_report_lines_too() {
    let text = "{\n  \"JobName\": \"j\",\n  \"Runs\": \"many\",\n  \"TestDescriptors\": [],\n  \"Reporting\": {\"RunReporters\": [{\"Name\": \"noop\"}]}\n}\n";
    let root = parse_document(text, Format::Json).unwrap();
    let mut d = Diagnostics::new(Some(Path::new("job.json")));
    decode_job(&root, &mut d);
    let e: Vec<String> = d.errors().iter().map(|e| e.to_string()).collect();
    assert!(
        e.iter().any(|e| e
            .starts_with("job.json:3:11: Runs: expected a non-negative integer, found \"many\"")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|e| e
                .contains("job.json:4:22: TestDescriptors: expected at least one test descriptor")),
        "{e:?}"
    );
}
