//! The JUnit corpus (`shared/corpus/junit`, real files from real tools and
//! malformed ones): every file parses into cases or yields a reported
//! error, never a panic; counts match the producers' own for several.

use std::collections::BTreeMap;
use std::path::PathBuf;

use prova_results::junit::parse_junit;
use prova_results::{CaseStatus, ResultsError, TestCaseResult, ingest_dir};

fn corpus() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/junit");
    assert!(
        dir.is_dir(),
        "the JUnit corpus is missing: expected {} (shared/ beside the repository)",
        dir.display()
    );
    dir
}

fn parse(name: &str) -> Result<Vec<TestCaseResult>, ResultsError> {
    let bytes = std::fs::read(corpus().join(name)).unwrap();
    parse_junit(&bytes, name)
}

fn counts(cases: &[TestCaseResult]) -> [usize; 4] {
    let n = |s: CaseStatus| cases.iter().filter(|c| c.status == s).count();
    [
        n(CaseStatus::Passed),
        n(CaseStatus::Failed),
        n(CaseStatus::Error),
        n(CaseStatus::Skipped),
    ]
}

#[test]
fn every_file_parses_or_reports_an_error() {
    let mut outcomes = BTreeMap::new();
    for e in std::fs::read_dir(corpus()).unwrap() {
        let path = e.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "README.md" {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| parse_junit(&bytes, &name))
            .unwrap_or_else(|_| panic!("{name}: the reader panicked"));
        outcomes.insert(name, outcome.map(|c| c.len()).map_err(|e| e.to_string()));
    }
    assert_eq!(outcomes.len(), 50, "the corpus has 50 files");
    let errors: BTreeMap<_, _> = outcomes
        .iter()
        .filter_map(|(n, o)| o.as_ref().err().map(|e| (n.as_str(), e.as_str())))
        .collect();
    // The README's list of files that are not well-formed JUnit, and only
    // those (junit-testrun.xml, Eclipse's <testrun>, is read).
    let expected = [
        "complete_single_case_only.xml",
        "corrupt-xml.xml",
        "empty.xml",
        "invalid.xml",
        "non-junit.xml",
        "spaces.xml",
        "testXxe-xxe.xml",
    ];
    assert_eq!(
        errors.keys().copied().collect::<Vec<_>>(),
        expected,
        "{errors:#?}"
    );
    assert!(errors["empty.xml"].contains("no root element"));
    assert!(errors["non-junit.xml"].contains("root element is <suites>"));
    assert!(errors["testXxe-xxe.xml"].contains("declares entities"));
    assert!(errors["corrupt-xml.xml"].contains("invalid JUnit XML"));
    // Every other file has cases.
    for (name, o) in &outcomes {
        if let Ok(n) = o {
            assert!(*n > 0 || name == "junit-testrun.xml", "{name}: no cases");
        }
    }
}

#[test]
fn surefire_counts_skips_and_flaky_reruns() {
    let c = parse("TEST-action.surefire.report.calc.StringUtilsTest.xml").unwrap();
    assert_eq!(counts(&c), [2, 2, 0, 1]);
    assert!(
        c.iter()
            .all(|c| c.suite == "action.surefire.report.calc.StringUtilsTest")
    );
    // tests=3 failures=2 counts reruns: one case, passed after two failures.
    let c = parse("TEST-io.olamy.FlakyTest.xml").unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].status, CaseStatus::Passed);
    assert_eq!(c[0].flaky_failures, 2);
    // Never passed: a failure and three failed reruns.
    let c = parse("TEST-io.olamy.AlwaysFailTest.xml").unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].status, CaseStatus::Failed);
    assert!(
        c[0].output
            .as_deref()
            .unwrap()
            .contains("[3 rerun(s) failed too]")
    );
}

#[test]
fn jest_and_pytest_counts() {
    // <testsuites tests="6" failures="4">, one skipped in the second suite.
    let c = parse("jest-junit.xml").unwrap();
    assert_eq!(c.len(), 6);
    assert_eq!(counts(&c), [1, 4, 0, 1]);
    assert!(c.iter().any(|c| c.suite == "__tests__\\second.test.js"));
    let c = parse("python-xunit-pytest.xml").unwrap();
    assert_eq!(c.len(), 10);
    assert_eq!(counts(&c)[1], 2);
    assert_eq!(counts(&c)[3], 2);
    let c = parse("junit.fail.xml").unwrap();
    assert_eq!(counts(&c), [3, 1, 0, 1]);
    let failed = c.iter().find(|c| c.status == CaseStatus::Failed).unwrap();
    assert!(failed.message.is_some());
}

#[test]
fn ginkgo_kubernetes_e2e_counts() {
    // Root tests="25" failures="4" counts the specs that ran; every
    // skipped spec is listed as a case too.
    let c = parse("junit_01.xml").unwrap();
    assert_eq!(c.len(), 5771);
    let [passed, failed, errors, skipped] = counts(&c);
    assert_eq!((failed, errors, skipped), (4, 0, 5746));
    assert_eq!(passed + failed, 25);
    assert!(c.iter().all(|c| c.suite == "Kubernetes e2e suite"));
    for f in c.iter().filter(|c| c.status == CaseStatus::Failed) {
        assert!(f.output.as_ref().is_some_and(|o| o.len() <= 70 * 1024));
    }
    // No suite name: the file's name stands in.
    let c = parse("junit-sonobouy.xml").unwrap();
    assert_eq!(c.len(), 710);
    assert_eq!(counts(&c), [4, 1, 0, 705]);
    assert_eq!(c[0].suite, "junit-sonobouy.xml");
}

#[test]
fn phpunit_nested_suites() {
    let c = parse("phpunit.xml").unwrap();
    assert_eq!(c.len(), 12);
    assert_eq!(counts(&c), [10, 2, 0, 0]);
    assert!(
        c.iter()
            .any(|c| c.suite == "PHPUnit\\Event\\CollectingDispatcherTest")
    );
    // Three levels, the outer one nameless: the innermost name wins.
    let c = parse("nested-nested.xml").unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].suite,
        "AppTestsFeatureControllerApiChargerCreateChargeControllerTest"
    );
    let c = parse("xunit-plugin_phpunit_testcase4_input.xml").unwrap();
    assert!(c.len() > 10);
}

#[test]
fn go_and_nextest_counts() {
    let c = parse("001-report.xml").unwrap();
    assert_eq!(counts(&c), [2, 1, 0, 2]);
    assert_eq!(c[0].suite, "package/pass");
    // tests=8 skipped=1 failures=3 errors=1, flaky and rerun vocabulary.
    let c = parse("basic_report.xml").unwrap();
    assert_eq!(counts(&c), [3, 3, 1, 1]);
    assert!(c.iter().any(|c| c.flaky_failures > 0));
}

#[test]
fn odd_encodings_are_read() {
    // UTF-16 LE with a BOM and a label expat refuses; UTF-8 BOMs.
    assert!(!parse("utf-16.xml").unwrap().is_empty());
    assert!(!parse("xunit.xml").unwrap().is_empty());
    assert!(!parse("TEST-status-attribute.xml").unwrap().is_empty());
}

#[test]
fn external_entities_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-CONTENT").unwrap();
    let xxe = format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE testsuite [<!ENTITY xxe SYSTEM "file://{}">]>
<testsuite name="s"><testcase name="&xxe;"><failure message="&xxe;"/></testcase></testsuite>"#,
        secret.display()
    );
    let e = parse_junit(xxe.as_bytes(), "xxe.xml").unwrap_err();
    assert!(matches!(e, ResultsError::EntityDeclaration), "{e}");
    assert!(!e.to_string().contains("TOP-SECRET"));
    // Without a declaration, the reference is just an unknown entity.
    let undeclared = r#"<testsuite name="s"><testcase name="&xxe;"/></testsuite>"#;
    match parse_junit(undeclared.as_bytes(), "u.xml") {
        Ok(c) => assert!(!c[0].name.contains("TOP-SECRET")),
        Err(e) => assert!(!e.to_string().contains("TOP-SECRET")),
    }
    // The corpus file is refused the same way.
    assert!(matches!(
        parse("testXxe-xxe.xml"),
        Err(ResultsError::EntityDeclaration)
    ));
}

#[test]
fn ingesting_the_corpus_as_a_results_directory() {
    let dir = tempfile::tempdir().unwrap();
    let mut xml_files = 0;
    for e in std::fs::read_dir(corpus()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_owned();
        std::fs::copy(&p, dir.path().join("nested").join(&name))
            .or_else(|_| {
                std::fs::create_dir_all(dir.path().join("nested"))?;
                std::fs::copy(&p, dir.path().join("nested").join(&name))
            })
            .unwrap();
        if p.extension().is_some_and(|x| x == "xml") {
            xml_files += 1;
        }
    }
    let got = ingest_dir(dir.path()).unwrap();
    assert_eq!(got.files, 51);
    assert!(got.bytes >= 2_352_649);
    // Not JUnit by content (roots <suites> and <testcase>): non-junit.xml
    // and complete_single_case_only.xml are artifacts, not errors; the
    // .golden and .junit-xml files are not *.xml and are not read.
    let bad: Vec<_> = got.errors.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(
        bad,
        [
            "nested/corrupt-xml.xml",
            "nested/empty.xml",
            "nested/invalid.xml",
            "nested/spaces.xml",
            "nested/testXxe-xxe.xml",
        ]
    );
    assert_eq!(got.junit_files.len(), xml_files - 7);
    assert!(got.cases.iter().all(|c| c.file.starts_with("nested/")));
    let s = got.summary();
    assert_eq!(s.total, got.cases.len());
    assert_eq!(s.passed + s.failed + s.errors + s.skipped, s.total);
    assert!(s.flaky >= 2);
}

#[test]
fn a_directory_without_junit_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("log.txt"), "hello").unwrap();
    std::fs::write(dir.path().join("pom.xml"), "<project/>").unwrap();
    let got = ingest_dir(dir.path()).unwrap();
    assert_eq!((got.files, got.bytes), (2, 15));
    assert!(got.cases.is_empty() && got.errors.is_empty() && got.junit_files.is_empty());
    let e = ingest_dir(&dir.path().join("log.txt")).unwrap_err();
    assert!(e.to_string().contains("is not a directory"), "{e}");
}
