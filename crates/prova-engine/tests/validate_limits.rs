//! Validation of hostile and huge descriptors through `prepare_str`, the
//! path of `prova validate`, `prova run` and a job POSTed to the server:
//! no crash, clear errors with positions, and time linear in the targets.

use std::time::{Duration, Instant};

use prova_core::node::Format;
use prova_engine::prepare::prepare_str;

/// A YAML job with `n` listed targets and one step whose parameter is
/// `template`.
fn job(n: usize, template: &str) -> String {
    let mut text = String::from(
        "JobName: j\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters:\n      Targets:\n",
    );
    for i in 0..n {
        text.push_str(&format!("        - {{ID: t{i}, FQDN: t{i}.example.org}}\n"));
    }
    text.push_str(&format!(
        "    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps:\n        - name: echo\n          label: say\n          parameters:\n            text: ['{template}']\nReporting:\n  RunReporters: [{{Name: noop}}]\n"
    ));
    text
}

fn validate(text: &str) -> Result<(), String> {
    prepare_str(text, Format::Yaml, None, &prova_engine::plugins::registry())
        .map(drop)
        .map_err(|e| e.to_string())
}

/// On a 256 KiB stack, to show the headroom a tokio worker (2 MiB) has.
fn on_small_stack(text: String) -> Result<(), String> {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || validate(&text))
        .unwrap()
        .join()
        .expect("no panic")
}

#[test]
fn a_template_of_15000_pipes_is_an_error_with_its_position() {
    let template = "{{ .ID".to_string() + &" | ToUpper".repeat(15_000) + " }}";
    let err = on_small_stack(job(1, &template)).unwrap_err();
    let line = err.lines().nth(1).expect("one error line");
    assert!(line.starts_with("  <descriptor>:14:19: "), "{line}");
    assert!(line.contains("Steps[0].parameters.text[0]"), "{line}");
    assert!(line.contains("at most 1000"), "{line}");
    assert!(line.contains("at byte 10009"), "{line}");
    // The template is cut in the message, not copied whole.
    assert!(line.len() < 400, "{} bytes: {line}", line.len());
}

#[test]
fn a_descriptor_nested_10000_deep_is_an_error() {
    let deep = "- ".repeat(10_000) + "x";
    let text = job(1, "{{ .ID }}").replace("Reporting:", &format!("Extra:\n  {deep}\nReporting:"));
    let err = on_small_stack(text).unwrap_err();
    assert!(err.contains("nested too deeply"), "{err}");
    // The root map is the first level, so the 128th `-` is one too many.
    assert!(err.contains("<descriptor>:16:257: "), "{err}");
}

#[test]
fn duplicate_targets_are_still_reported() {
    let text = job(3, "{{ .ID }}").replace("ID: t2,", "ID: t0,");
    let err = validate(&text).unwrap_err();
    assert!(
        err.contains("Targets[2].ID: duplicate target ID \"t0\""),
        "{err}"
    );
}

/// Validation time must grow linearly with the targets: four times the
/// targets may take at most eight times as long (it took sixteen when
/// every target was compared with all before it: 100,000 took 38 s).
#[test]
fn validation_time_is_linear_in_the_targets() {
    let time = |n: usize| {
        let text = job(n, "{{ .FQDN | ToUpper }}");
        (0..2)
            .map(|_| {
                let start = Instant::now();
                validate(&text).expect("valid");
                start.elapsed()
            })
            .min()
            .unwrap()
            .max(Duration::from_millis(1))
    };
    let small = time(10_000);
    let large = time(40_000);
    let ratio = large.as_secs_f64() / small.as_secs_f64();
    println!("10,000 targets: {small:?}; 40,000: {large:?}; ratio {ratio:.1}");
    assert!(ratio < 8.0, "not linear: {small:?} then {large:?}");
}

#[test]
fn a_descriptor_file_over_the_size_limit_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let file = std::fs::File::create(&path).unwrap();
    // Sparse: 4 GiB on disk costs nothing; reading it whole would.
    file.set_len(4 << 30).unwrap();
    let start = Instant::now();
    let err = prova_engine::prepare::prepare_file(&path, &prova_engine::plugins::registry())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("huge.yaml:1:1: file is larger than"), "{err}");
    assert!(
        err.contains(&prova_core::node::MAX_DOCUMENT_BYTES.to_string()),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(30));
}
