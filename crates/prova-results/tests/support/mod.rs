//! Shared by the JUnit output tests: cases as the events a step emits, and
//! a strict XML check of what the `junit` reporter writes from them.

#![allow(dead_code)]

pub mod mutation;

use prova_core::event::{EventKind, NewEvent, names};
use prova_core::results::{TEST_CASE, TestCaseResult};
use prova_core::{JobId, Target};

pub const JOB: JobId = 7;

/// An event of step `label` of test `t` for target `target`.
pub fn step_event(target: &str, name: &str, payload: serde_json::Value) -> NewEvent {
    let mut ev = NewEvent::job(JOB, name, Some(payload));
    ev.kind = EventKind::Test;
    ev.run_id = 1;
    ev.test_name = Some("t".into());
    ev.test_attempt = Some(0);
    ev.step_label = Some("suite".into());
    ev.target = Some(Target::with_id(target));
    ev
}

/// The events of one target running one step that reported `cases`.
pub fn events_for(target: &str, cases: &[TestCaseResult]) -> Vec<NewEvent> {
    let mut events = vec![step_event(target, names::TARGET_IN, serde_json::json!({}))];
    for c in cases {
        events.push(step_event(
            target,
            TEST_CASE,
            serde_json::to_value(c).unwrap(),
        ));
    }
    events.push(step_event(target, names::TARGET_OUT, serde_json::json!({})));
    events
}

/// The `junit` reporter's output for `events`, checked by a strict XML
/// parser (roxmltree: XML 1.0 characters, matched tags, one root).
pub fn render_checked(events: &[NewEvent]) -> String {
    let xml = prova_engine::plugins::reporters::junit::render("job", JOB, events)
        .expect("the report renders");
    if let Err(e) = roxmltree::Document::parse(&xml) {
        let excerpt: String = xml.chars().take(2000).collect();
        panic!("the JUnit output is not well-formed XML: {e}\n{excerpt}");
    }
    xml
}
