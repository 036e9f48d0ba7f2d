//! Hostile sizes and depths: documents and templates that used to overflow
//! the stack (and kill `prova serve`) must be clear errors with a position
//! and the limit. Each case runs on a thread with a 256 KiB stack, an eighth
//! of a tokio worker's, to prove the headroom.

use prova_core::node::{
    Format, MAX_ALIAS_NODES, MAX_DEPTH, MAX_DOCUMENT_BYTES, Pos, SyntaxError, parse_document,
};
use prova_core::target::Target;
use prova_core::template::{
    MAX_CALLS_PER_ACTION, MAX_PAREN_DEPTH, Template, TemplateContext, TemplateError,
};

const SMALL_STACK: usize = 256 * 1024;

/// Runs `f` on a thread with a small stack; a stack overflow aborts the
/// whole test binary, which fails the test run.
fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no panic")
}

fn parse_err(text: String, format: Format) -> SyntaxError {
    small_stack(move || match parse_document(&text, format) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    })
}

fn assert_too_deep(e: &SyntaxError) {
    assert!(
        e.message.contains("nested too deeply") && e.message.contains(&MAX_DEPTH.to_string()),
        "{}",
        e.message
    );
    assert!(e.pos.is_some(), "{e:?}");
}

#[test]
fn block_yaml_nested_10000_levels_is_an_error() {
    // Compact nested block sequences: `- - - ... x`, all on one line.
    let text = "- ".repeat(10_000) + "x\n";
    let e = parse_err(text, Format::Yaml);
    assert_too_deep(&e);
    // The 129th `-` is the first too deep: column 2 * 128 + 1.
    assert_eq!(
        e.pos,
        Some(Pos {
            line: 1,
            col: 2 * MAX_DEPTH as u32 + 1
        })
    );
}

#[test]
fn block_mappings_nested_3000_levels_are_an_error() {
    let text: String = (0..3_000).map(|i| " ".repeat(i) + "a:\n").collect();
    let e = parse_err(text, Format::Yaml);
    assert_too_deep(&e);
    assert_eq!(e.pos.map(|p| p.line), Some(MAX_DEPTH as u32 + 1));
}

#[test]
fn flow_yaml_and_json_nested_100000_deep_are_errors() {
    for (text, format) in [
        ("[".repeat(100_000) + &"]".repeat(100_000), Format::Yaml),
        ("[".repeat(100_000) + &"]".repeat(100_000), Format::Json),
        (
            "{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000),
            Format::Json,
        ),
    ] {
        let e = parse_err(text, format);
        assert_too_deep(&e);
        assert_eq!(e.pos.map(|p| p.line), Some(1));
    }
}

#[test]
fn exactly_the_depth_limit_is_accepted() {
    let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
    small_stack(move || parse_document(&ok, Format::Json).expect("at the limit"));
    let over = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
    assert_too_deep(&parse_err(over, Format::Json));
}

#[test]
fn aliases_cannot_nest_past_the_depth_limit() {
    // Each anchor wraps the previous one 100 levels deeper: the text nests
    // at most 101 levels, the expanded tree thousands.
    let mut text = String::from("a0: &a0 1\n");
    for i in 1..40 {
        let open = "[".repeat(100);
        let close = "]".repeat(100);
        text.push_str(&format!("a{i}: &a{i} {open}*a{}{close}\n", i - 1));
    }
    let e = parse_err(text, Format::Yaml);
    assert_too_deep(&e);
    assert_eq!(e.pos.map(|p| p.line), Some(3), "{e:?}");
}

#[test]
fn alias_expansion_is_bounded() {
    // "Billion laughs": every level doubles ten times.
    let mut text = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
    }
    let e = parse_err(text, Format::Yaml);
    assert!(
        e.message.contains(&MAX_ALIAS_NODES.to_string()) || e.message.contains("too many values"),
        "{}",
        e.message
    );
    assert!(e.pos.is_some());
}

#[test]
fn documents_over_the_size_limit_are_refused_before_parsing() {
    let text = " ".repeat(MAX_DOCUMENT_BYTES + 1);
    let e = parse_err(text, Format::Yaml);
    assert!(
        e.message.contains(&MAX_DOCUMENT_BYTES.to_string()),
        "{}",
        e.message
    );
    assert_eq!(e.pos, Some(Pos { line: 1, col: 1 }));
}

struct Ctx(Target);

impl TemplateContext for Ctx {
    fn target(&self) -> &Target {
        &self.0
    }
    fn var(&self, _: &str, _: &str) -> Option<&serde_json::Value> {
        None
    }
}

fn pipes(n: usize) -> String {
    format!("x {{{{ .ID{} }}}}", " | ToUpper".repeat(n))
}

fn template_err(text: String) -> TemplateError {
    small_stack(move || match Template::parse(&text) {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    })
}

#[test]
fn fifteen_thousand_pipes_are_an_error_at_the_first_call_too_many() {
    for n in [15_000, 1_000_000] {
        let text = pipes(n);
        let e = template_err(text.clone());
        assert!(
            e.message.contains(&MAX_CALLS_PER_ACTION.to_string()),
            "{}",
            e.message
        );
        // The offset names the first function past the limit.
        let want = "x {{ .ID".len() + MAX_CALLS_PER_ACTION * " | ToUpper".len() + " | ".len();
        assert_eq!(e.offset, want);
        assert!(text[e.offset..].starts_with("ToUpper"));
    }
}

#[test]
fn the_longest_pipeline_allowed_renders_on_a_small_stack() {
    let text = pipes(MAX_CALLS_PER_ACTION);
    let out = small_stack(move || {
        let t = Template::parse(&text).expect("at the limit");
        let copy = t.clone();
        assert_eq!(copy, t);
        drop(copy);
        t.render(&Ctx(Target::with_id("t1"))).expect("renders")
    });
    assert_eq!(out, "x T1");
}

#[test]
fn calls_inside_parentheses_count_too() {
    let half = MAX_CALLS_PER_ACTION / 2;
    let inner = "(.ID".to_string() + &" | ToUpper".repeat(half) + ")";
    let text = "{{ ToLower ".to_string() + &inner + &" | ToUpper".repeat(half) + " }}";
    let e = template_err(text.clone());
    assert!(
        e.message.contains(&MAX_CALLS_PER_ACTION.to_string()),
        "{}",
        e.message
    );
    // ToLower and the first half count, so the last function is the first
    // one too many.
    assert_eq!(e.offset, text.rfind("ToUpper").unwrap());
}

#[test]
fn nested_parentheses_are_bounded() {
    let deep = |n: usize| "{{ ".to_string() + &"(".repeat(n) + ".ID" + &")".repeat(n) + " }}";
    let ok = deep(MAX_PAREN_DEPTH);
    let rendered = small_stack(move || {
        Template::parse(&ok)
            .expect("at the limit")
            .render(&Ctx(Target::with_id("t1")))
            .expect("renders")
    });
    assert_eq!(rendered, "t1");
    for n in [MAX_PAREN_DEPTH + 1, 100_000] {
        let e = template_err(deep(n));
        assert!(e.message.contains("nested too deeply"), "{}", e.message);
        assert_eq!(e.offset, 3 + MAX_PAREN_DEPTH);
    }
}

#[test]
fn nested_if_is_an_unknown_function_not_a_crash() {
    let text = "{{ if .ID }}".repeat(15_000) + &"{{ end }}".repeat(15_000);
    let e = template_err(text);
    assert!(e.message.contains("unknown function if"), "{}", e.message);
    assert_eq!(e.offset, 3);
}

#[test]
fn many_actions_render() {
    let text = "{{ .ID | ToLower }}-".repeat(100_000);
    let out = small_stack(move || {
        Template::parse(&text)
            .expect("parses")
            .render(&Ctx(Target::with_id("T")))
            .expect("renders")
    });
    assert_eq!(out.len(), 200_000);
}

#[test]
fn maps_as_keys_of_maps_as_keys_do_not_grow_exponentially() {
    // Each level's name is the JSON of the level inside, whose name is
    // escaped again: 2^100 bytes without a bound on such names.
    let mut text = String::from("{\"a\": 1}");
    for _ in 0..100 {
        text = format!("{{{text}: 1}}");
    }
    let e = parse_err(text, Format::Yaml);
    assert!(
        e.message.contains("used as a key is over 1024 bytes"),
        "{}",
        e.message
    );
    assert_eq!(e.pos.map(|p| p.line), Some(1));
    // Short ones are still named by their JSON.
    let doc = parse_document("{[1, {a: b}]: x}", Format::Yaml).unwrap();
    assert_eq!(doc.as_map().unwrap()[0].0.name, "[1,{\"a\":\"b\"}]");
}

#[test]
fn aliases_of_a_long_string_cannot_copy_it_without_bound() {
    // 1 MiB written once, aliased 100,000 times: 100 GiB if copied freely.
    let long = "x".repeat(1 << 20);
    let text = format!("a: &s {long}\nb: [{}]\n", vec!["*s"; 100_000].join(", "));
    let e = parse_err(text, Format::Yaml);
    assert!(
        e.message.contains("copy too much text")
            && e.message
                .contains(&prova_core::node::MAX_COPIED_BYTES.to_string()),
        "{}",
        e.message
    );
    assert_eq!(e.pos.map(|p| p.line), Some(2));
    // Anchors nested around it copy it at every level too.
    let nested = "&a [".repeat(100) + &"y".repeat(1 << 20) + &"]".repeat(100);
    let e = parse_err(nested, Format::Yaml);
    assert!(e.message.contains("copy too much text"), "{}", e.message);
}
