//! What the `junit` reporter (and `prova run --junit`, the same code)
//! writes from test cases that came out of results directories: well-formed
//! XML whatever characters they hold, bounded, and never a panic on a time.

mod support;

use prova_core::event::names;
use prova_core::results::{CaseStatus, TestCaseResult};
use prova_results::junit::parse_junit;
use support::{events_for, render_checked, step_event};

fn case(name: &str, status: CaseStatus) -> TestCaseResult {
    TestCaseResult {
        suite: "s".into(),
        name: name.into(),
        classname: None,
        status,
        time_secs: Some(1.0),
        message: None,
        output: None,
        flaky_failures: 0,
        file: "junit.xml".into(),
    }
}

/// The CDATA terminator and markup characters, then every character
/// below U+0020 (forbidden or not), the two non-characters XML forbids, a
/// colour sequence and the last code point. (quick-junit strips ANSI
/// sequences: the lone ESC among the controls starts one that eats what
/// follows it, so the markup comes first.)
fn hostile() -> String {
    let mut s = String::from("]]>&<>\"'");
    s.extend((0u32..0x20).filter_map(char::from_u32));
    s.push_str("\u{fffe}\u{ffff}\u{1b}[31mred\u{1b}[0m\u{10ffff}");
    s
}

#[test]
fn output_is_well_formed_whatever_the_characters() {
    let h = hostile();
    let mut failed = case(&h, CaseStatus::Failed);
    failed.message = Some(h.clone());
    failed.output = Some(h.clone());
    failed.classname = Some(h.clone());
    failed.suite = h.clone();
    let mut passed = case(&format!("ok {h}"), CaseStatus::Passed);
    passed.output = Some(h.clone());
    passed.flaky_failures = 2;
    let mut events = events_for(&h, &[failed, passed]);
    // The step's own output and error, as `cmd` emits them.
    events.insert(
        1,
        step_event(&h, "CmdStdout", serde_json::json!({ "Msg": h })),
    );
    events.insert(
        1,
        step_event(&h, "CmdStderr", serde_json::json!({ "Msg": h })),
    );
    let last = events.len() - 1;
    events[last] = step_event(&h, names::TARGET_ERR, serde_json::json!({ "Error": h }));
    let xml = render_checked(&events);
    // What was forbidden shows as U+FFFD, never vanishes silently.
    assert!(xml.contains('\u{fffd}'));
    assert!(!xml.contains('\u{fffe}') && !xml.contains('\u{ffff}'));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let names: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.iter().any(|n| n.contains("]]>&<>\"'")), "{names:?}");
}

#[test]
fn times_no_duration_holds_are_left_out() {
    // A payload may say anything, whatever prova-results would have kept.
    let mut cases = Vec::new();
    for (i, t) in [1e20, f64::MAX, -1.0, 0.5].into_iter().enumerate() {
        let mut c = case(&format!("c{i}"), CaseStatus::Passed);
        c.time_secs = Some(t);
        cases.push(c);
    }
    let mut events = events_for("a", &cases);
    // NaN and infinity travel as JSON null: a missing time.
    let mut p = serde_json::to_value(case("nan", CaseStatus::Passed)).unwrap();
    p["TimeSecs"] = serde_json::json!(null);
    events.insert(1, step_event("a", prova_core::results::TEST_CASE, p));
    let xml = render_checked(&events);
    assert!(
        xml.contains(r#"name="c3" classname="suite [a].s" time="0.500""#),
        "{xml}"
    );
    assert!(
        !xml.contains("e20") && !xml.contains("100000000000000000000"),
        "{xml}"
    );
}

#[test]
fn a_junit_file_with_huge_times_reaches_the_report() {
    let xml = r#"<testsuite name="s">
        <testcase name="a" time="1e20"/><testcase name="b" time="NaN"/>
        <testcase name="c" time="-1"/><testcase name="d" time="inf"/>
    </testsuite>"#;
    let cases = parse_junit(xml.as_bytes(), "j.xml").unwrap();
    assert!(cases.iter().all(|c| c.time_secs.is_none()));
    let out = render_checked(&events_for("a", &cases));
    assert_eq!(out.matches("<testcase name=\"").count(), 5, "{out}");
}

#[test]
fn names_messages_and_output_are_bounded() {
    let big = "x".repeat(8 << 20);
    let mut c = case(&big, CaseStatus::Failed);
    c.message = Some(big.clone());
    c.output = Some(big.clone());
    c.classname = Some(big.clone());
    let mut flaky = case("flaky", CaseStatus::Passed);
    flaky.flaky_failures = u32::MAX;
    let mut events = events_for(&big, &[c, flaky]);
    for _ in 0..4 {
        events.insert(
            1,
            step_event("t", "CmdStdout", serde_json::json!({ "Msg": big })),
        );
    }
    let xml = render_checked(&events);
    // Per case: name and classname 4 KiB, message 64 KiB, failure text and
    // system-out 1 MiB; 100 reruns at most.
    assert!(xml.len() < 4 << 20, "{} bytes", xml.len());
    assert!(xml.contains("more bytes]"), "no truncation marker");
    assert!(
        xml.contains("bytes before]…"),
        "no truncation marker on output"
    );
    assert!(xml.matches("<flakyFailure").count() <= 100);
}
