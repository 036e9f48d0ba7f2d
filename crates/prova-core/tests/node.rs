//! The document reader: every corpus descriptor parses, positions are
//! exact, scalars resolve with the YAML core schema, errors have positions.

use std::path::PathBuf;

use prova_core::node::{Format, Node, Pos, Value, parse_document};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/contest/descriptors")
}

fn read(name: &str) -> Node {
    let path = corpus().join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    parse_document(&text, Format::from_path(&path)).unwrap()
}

fn yaml(text: &str) -> Node {
    parse_document(text, Format::Yaml).unwrap()
}

fn pos(line: u32, col: u32) -> Option<Pos> {
    Some(Pos { line, col })
}

#[test]
fn every_corpus_descriptor_parses_to_a_map() {
    let mut seen = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let path = entry.unwrap().path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "json" | "yaml" | "yml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = parse_document(&text, Format::from_path(&path))
            .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        // Most are job descriptors; terminalexpect.json is a test-step list.
        assert!(doc.as_map().is_some(), "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} descriptors found");
}

#[test]
fn json_positions_are_exact() {
    let doc = read("start-literal.json");
    assert_eq!(doc.pos, pos(1, 1));
    let (key, value) = doc.entry_ci("JobName").unwrap();
    assert_eq!(key.pos, pos(2, 5));
    assert_eq!(value.pos, pos(2, 16));
    assert_eq!(value.as_str(), Some("test job"));
    assert_eq!(doc.get_ci("runs").unwrap().value, Value::Int(3));
}

#[test]
fn yaml_positions_are_exact() {
    let doc = read("test-variables.yaml");
    let (key, value) = doc.entry_ci("JobName").unwrap();
    assert_eq!((key.pos, value.pos), (pos(1, 1), pos(1, 10)));

    let fetch = &doc.get_ci("TestDescriptors").unwrap().as_seq().unwrap()[0]
        .get_ci("TestFetcherFetchParameters")
        .unwrap();
    let (key, steps) = fetch.entry_ci("steps").unwrap();
    assert_eq!(key.pos, pos(16, 7));
    assert_eq!(steps.pos, pos(17, 9));
    let params = steps.as_seq().unwrap()[0].get_ci("parameters").unwrap();
    let (key, message) = params.entry_ci("message").unwrap();
    assert_eq!((key.pos, message.pos), (pos(20, 13), pos(20, 22)));
    let hello = &message.as_seq().unwrap()[0];
    assert_eq!((hello.as_str(), hello.pos), (Some("Hello"), pos(20, 23)));
}

#[test]
fn scalars_resolve_with_the_core_schema() {
    let cases: &[(&str, Value)] = &[
        ("[2]", Value::Int(2)),
        ("[-7]", Value::Int(-7)),
        ("[0x10]", Value::Int(16)),
        ("[true]", Value::Bool(true)),
        ("[False]", Value::Bool(false)),
        ("[1.5]", Value::Float(1.5)),
        ("[null]", Value::Null),
        ("[~]", Value::Null),
        ("- \n", Value::Null),
        ("[\"2\"]", Value::Str("2".into())),
        ("['true']", Value::Str("true".into())),
        ("[\"null\"]", Value::Str("null".into())),
        ("[yes]", Value::Str("yes".into())),
        ("[1s]", Value::Str("1s".into())),
        ("[!!str 3]", Value::Str("3".into())),
        ("[\"a\\tb\"]", Value::Str("a\tb".into())),
    ];
    for (text, want) in cases {
        let doc = yaml(text);
        let got = &doc.as_seq().unwrap_or_else(|| panic!("{text}"))[0].value;
        assert_eq!(got, want, "{text}");
    }
}

#[test]
fn empty_documents_are_null() {
    for text in ["", "\n\n", "# only a comment\n", "---\n"] {
        assert!(yaml(text).is_null(), "{text:?}");
    }
}

#[test]
fn several_documents_are_an_error() {
    let e = parse_document("a: 1\n---\nb: 2\n", Format::Yaml).unwrap_err();
    assert!(e.message.contains("expected one document"), "{}", e.message);
    assert_eq!(e.pos, pos(3, 1));
}

#[test]
fn non_string_keys_are_named_by_their_text() {
    let doc = yaml("1: a\n0x10: b\n1.50: c\ntrue: d\nnull: e\n[1, 2]: f\n");
    let names: Vec<&str> = doc
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.name.as_str())
        .collect();
    assert_eq!(names, ["1", "0x10", "1.50", "true", "null", "[1,2]"]);
    assert_eq!(doc.as_map().unwrap()[1].0.pos, pos(2, 1));
}

#[test]
fn duplicate_keys_are_reported_at_the_second_one() {
    // saphyr's loader cannot keep both (see node/imp.rs).
    let e = parse_document("a: 1\nb: 2\na: 3\n", Format::Yaml).unwrap_err();
    assert!(e.message.contains("duplicate key"), "{}", e.message);
    assert_eq!(e.pos, pos(3, 1));
}

#[test]
fn aliases_resolve_to_a_copy() {
    let doc = yaml("a: &x [1, 2]\nb: *x\n");
    assert_eq!(
        doc.get_ci("b").unwrap().to_json(),
        serde_json::json!([1, 2])
    );
    assert_eq!(doc.get_ci("b").unwrap().pos, pos(2, 4));
}

#[test]
fn syntax_errors_name_the_format_and_the_position() {
    let cases: &[(&str, Format, &str, Option<Pos>)] = &[
        ("{\"a\": 1,,}", Format::Json, "invalid JSON", pos(1, 9)),
        (
            "{\n  \"a\": [1,\n  \"b\": 2\n}",
            Format::Json,
            "invalid JSON",
            None,
        ),
        (
            "{\n  \"a\": 1\n  \"b\": 2\n}",
            Format::Json,
            "invalid JSON",
            pos(3, 6),
        ),
        ("a: b: c\n", Format::Yaml, "invalid YAML", pos(1, 5)),
        ("a: [1\nb: 2\n", Format::Yaml, "invalid YAML", pos(2, 2)),
        ("a: *nope\n", Format::Yaml, "invalid YAML", pos(1, 4)),
        ("a: !!int abc\n", Format::Yaml, "invalid YAML", pos(1, 4)),
        ("a: \"open\n", Format::Yaml, "invalid YAML", None),
    ];
    for (text, format, prefix, want) in cases {
        let e = parse_document(text, *format).unwrap_err();
        assert!(e.message.starts_with(prefix), "{text:?}: {}", e.message);
        assert!(
            e.message.len() > prefix.len() + 2,
            "{text:?}: {}",
            e.message
        );
        assert!(e.pos.is_some(), "{text:?}");
        if want.is_some() {
            assert_eq!(e.pos, *want, "{text:?}: {}", e.message);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = "[".repeat(10_000) + &"]".repeat(10_000);
    assert!(parse_document(&text, Format::Json).is_err());
}

#[test]
fn get_ci_prefers_an_exact_match() {
    let doc = yaml("jobname: lower\nJobName: exact\nRuns: 2\n");
    assert_eq!(doc.get_ci("JobName").and_then(Node::as_str), Some("exact"));
    assert_eq!(doc.get_ci("JOBNAME").and_then(Node::as_str), Some("lower"));
    assert_eq!(doc.get_ci("runs").unwrap().value, Value::Int(2));
    assert!(doc.get_ci("missing").is_none());
}

#[test]
fn json_with_tabs_and_unicode_reads() {
    let doc = parse_document("{\n\t\"é\": \"ü\",\n\t\"n\": 1e3}", Format::Json).unwrap();
    assert_eq!(doc.get_ci("é").and_then(Node::as_str), Some("ü"));
    assert_eq!(doc.get_ci("n").unwrap().value, Value::Float(1000.0));
    assert_eq!(doc.entry_ci("n").unwrap().0.pos, pos(3, 2));
}
