//! The Go-template subset: a table per feature and per error, the corpus
//! forms, and garbage input that must never panic.

use std::collections::HashMap;

use prova_core::target::Target;
use prova_core::template::{Template, TemplateContext, TemplateError, render};
use serde_json::{Value, json};

struct Ctx {
    target: Target,
    vars: HashMap<(String, String), Value>,
}

impl TemplateContext for Ctx {
    fn target(&self) -> &Target {
        &self.target
    }
    fn var(&self, step_label: &str, name: &str) -> Option<&Value> {
        self.vars.get(&(step_label.to_owned(), name.to_owned()))
    }
}

fn ctx() -> Ctx {
    let vars = [
        ("variablesstep", "message", json!("Hello")),
        ("s", "n", json!(42)),
        ("s", "neg", json!(-3)),
        ("s", "f", json!(1.5)),
        ("s", "obj", json!({"a": [1, "x"]})),
        ("s", "str", json!("text")),
    ];
    Ctx {
        target: Target {
            id: "T1".into(),
            fqdn: "host-1.example.org".into(),
            primary_ipv4: "10.0.0.1".into(),
            primary_ipv6: "::1".into(),
        },
        vars: vars
            .into_iter()
            .map(|(l, n, v)| ((l.to_owned(), n.to_owned()), v))
            .collect(),
    }
}

#[test]
fn renders_every_feature() {
    let cases: &[(&str, &str)] = &[
        // text
        ("", ""),
        ("plain text", "plain text"),
        ("a }} b", "a }} b"),
        ("{ {x} }", "{ {x} }"),
        // fields and dot
        ("{{.ID}}", "T1"),
        ("{{ .FQDN }}", "host-1.example.org"),
        ("{{ .PrimaryIPv4 }}/{{ .PrimaryIPv6 }}", "10.0.0.1/::1"),
        ("id={{ . }}", "id=T1"),
        ("{{\n.ID\n}}", "T1"),
        // literals
        ("{{ \"lit\" }}", "lit"),
        ("{{ `raw \\n {{` }}", "raw \\n {{"),
        ("{{ \"a\\tb\\n\\\"q\\\"\\\\\" }}", "a\tb\n\"q\"\\"),
        ("{{ \"\\x41\\u00e9\\U0001F600\\101\" }}", "Aé😀A"),
        ("{{ \"}}\" }}", "}}"),
        ("{{ 42 }}", "42"),
        ("{{ -7 }}", "-7"),
        ("{{ 0x1F }}", "31"),
        (
            "{{ 0o17 }} {{ 017 }} {{ 0b11 }} {{ 1_000 }}",
            "15 15 3 1000",
        ),
        // functions
        ("{{ ToUpper .FQDN }}", "HOST-1.EXAMPLE.ORG"),
        ("{{ ToLower \"MiXeD\" }}", "mixed"),
        ("{{ Title .FQDN }}", "Host-1.Example.Org"),
        (
            "{{ Title \"hello wORLD foo_bar 1abc é-è\" }}",
            "Hello WORLD Foo_bar 1abc É-È",
        ),
        ("{{ ToUpper (ToLower \"ABC\") }}", "ABC"),
        ("{{ (ToUpper .ID) }}", "T1"),
        (
            "{{ Title (ToLower (ToUpper .FQDN)) }}",
            "Host-1.Example.Org",
        ),
        // pipes
        ("{{ .FQDN | ToUpper }}", "HOST-1.EXAMPLE.ORG"),
        (
            "{{ .FQDN | ToUpper | ToLower | Title }}",
            "Host-1.Example.Org",
        ),
        ("{{ \"x\" | ToUpper }}", "X"),
        ("{{ (.FQDN | Title) }}", "Host-1.Example.Org"),
        // variables
        ("{{ StringVar \"variablesstep.message\" }}", "Hello"),
        ("{{ StringVar \"s.n\" }}", "42"),
        ("{{ StringVar \"s.obj\" }}", "{\"a\":[1,\"x\"]}"),
        ("{{ IntVar \"s.n\" }}", "42"),
        ("{{ IntVar \"s.neg\" }}", "-3"),
        ("{{ \"s.str\" | StringVar | ToUpper }}", "TEXT"),
        // trim markers
        ("a  {{- .ID }}  b", "aT1  b"),
        ("a  {{ .ID -}}  \n\t b", "a  T1b"),
        ("a \n {{- .ID -}} \n b", "aT1b"),
        ("{{ 3 }} {{- 4 }}", "34"),
        ("{{ -3 }}", "-3"),
        // comments
        ("a{{/* comment */}}b", "ab"),
        ("a {{- /* c */ -}} b", "ab"),
        ("a{{/* multi\nline }} */}}b", "ab"),
        // corpus forms
        (
            "Title={{ Title .FQDN }}, ToUpper={{ ToUpper .FQDN }}",
            "Title=Host-1.Example.Org, ToUpper=HOST-1.EXAMPLE.ORG",
        ),
    ];
    let ctx = ctx();
    for (text, want) in cases {
        match render(text, &ctx) {
            Ok(got) => assert_eq!(&got, want, "{text:?}"),
            Err(e) => panic!("{text:?}: {e} at {}", e.offset),
        }
    }
}

fn parse_err(text: &str) -> TemplateError {
    match Template::parse(text) {
        Ok(t) => panic!("{text:?} parsed: {t:?}"),
        Err(e) => e,
    }
}

#[test]
fn parse_errors_say_what_and_where() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "x {{ .Foo }}",
            "unknown field .Foo; the target has .ID, .FQDN, .PrimaryIPv4, .PrimaryIPv6",
            5,
        ),
        ("{{ .id }}", "unknown field .id", 3),
        ("{{ .FQDN.Host }}", "unknown field .FQDN.Host", 3),
        (
            "{{ Foo .ID }}",
            "unknown function Foo; known: ToUpper, ToLower, Title, StringVar, IntVar",
            3,
        ),
        ("{{ printf \"%s\" .ID }}", "unknown function printf", 3),
        ("{{ if .ID }}x{{ end }}", "unknown function if", 3),
        (
            "{{ ToUpper }}",
            "wrong number of args for ToUpper: want 1 got 0",
            3,
        ),
        (
            "{{ ToUpper .ID .FQDN }}",
            "wrong number of args for ToUpper: want 1 got 2",
            3,
        ),
        (
            "{{ .ID | ToUpper .FQDN }}",
            "wrong number of args for ToUpper: want 1 got 2",
            9,
        ),
        (
            "{{ ToUpper ToLower .ID }}",
            "wrong number of args for ToLower: want 1 got 0",
            11,
        ),
        ("ab {{ .ID ", "unclosed action", 3),
        ("{{", "unclosed action", 0),
        ("{{ \"}} ", "unterminated quoted string", 3),
        ("{{ `abc }}", "unterminated raw string", 3),
        ("{{ \"a\nb\" }}", "unterminated quoted string", 3),
        ("{{ \"\\q\" }}", "invalid escape", 4),
        ("{{ \"\\xff\" }}", "invalid escape", 4),
        ("{{/* never closed }}", "unclosed comment", 0),
        (
            "{{/* c */ .ID }}",
            "comment ends before closing delimiter",
            10,
        ),
        ("{{}}", "missing value before }}", 2),
        ("{{ ( ) }}", "missing value before )", 5),
        ("{{ (ToUpper .ID }}", "unclosed (", 16),
        ("{{ .ID) }}", "unexpected ) in action", 6),
        ("{{ .ID .FQDN }}", "is not a function", 7),
        ("{{ \"x\" \"y\" }}", "is not a function", 7),
        ("{{ .ID | .FQDN }}", "only a function can follow |", 9),
        ("{{ | ToUpper }}", "missing value before |", 3),
        (
            "{{ ToUpper 3 }}",
            "ToUpper wants a string, got an integer",
            11,
        ),
        (
            "{{ ToUpper . }}",
            "ToUpper wants a string, got the target",
            11,
        ),
        (
            "{{ IntVar \"s.n\" | ToUpper }}",
            "ToUpper wants a string, got an integer",
            18,
        ),
        (
            "{{ StringVar \"nodot\" }}",
            "should be \"steplabel.name\"",
            13,
        ),
        ("{{ IntVar \".x\" }}", "should be \"steplabel.name\"", 10),
        ("{{ $x := 1 }}", "variables ($x) are not supported", 3),
        ("{{ 1.5 }}", "invalid number 1.5", 3),
        ("{{ 99999999999999999999 }}", "invalid number", 3),
        ("{{ - }}", "unexpected \"-\"", 3),
        ("{{ .ID-}}", "unexpected \"-\"", 6),
        ("{{ .ID # }}", "unexpected '#'", 7),
        ("{{ .ID }} {{ .Nope }}", "unknown field .Nope", 13),
    ];
    for (text, want, offset) in cases {
        let e = parse_err(text);
        assert!(
            e.message.contains(want),
            "{text:?}: {:?} lacks {want:?}",
            e.message
        );
        assert_eq!(e.offset, *offset, "{text:?}: {}", e.message);
        assert_eq!(e.to_string(), e.message);
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!(
        "{{{{ {} .ID {} }}}}",
        "(ToUpper ".repeat(200),
        ")".repeat(200)
    );
    assert!(parse_err(&deep).message.contains("nested too deeply"));
    let ok = format!(
        "{{{{ {} .ID {} }}}}",
        "(ToUpper ".repeat(prova_core::template::MAX_PAREN_DEPTH),
        ")".repeat(prova_core::template::MAX_PAREN_DEPTH)
    );
    assert_eq!(render(&ok, &ctx()).unwrap(), "T1");
}

#[test]
fn render_errors_name_the_variable() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "{{ StringVar \"nope.x\" }}",
            "variable nope.x is not set",
            3,
        ),
        (
            "x {{ IntVar \"s.missing\" }}",
            "variable s.missing is not set",
            5,
        ),
        (
            "{{ IntVar \"s.str\" }}",
            "variable s.str is not an integer: \"text\"",
            3,
        ),
        (
            "{{ IntVar \"s.f\" }}",
            "variable s.f is not an integer: 1.5",
            3,
        ),
        (
            "{{ StringVar (ToLower \"NODOT\") }}",
            "should be \"steplabel.name\"",
            3,
        ),
    ];
    let ctx = ctx();
    for (text, want, offset) in cases {
        let t = Template::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let e = t.render(&ctx).unwrap_err();
        assert!(
            e.message.contains(want),
            "{text:?}: {:?} lacks {want:?}",
            e.message
        );
        assert_eq!(e.offset, *offset, "{text:?}");
    }
}

#[test]
fn literal_templates_are_recognised() {
    let cases: &[(&str, bool)] = &[
        ("", true),
        ("echo hello", true),
        ("a } b }}", true),
        ("{{ .ID }}", false),
        ("a{{/* c */}}b", false),
    ];
    for (text, want) in cases {
        let t = Template::parse(text).unwrap();
        assert_eq!(t.is_literal(), *want, "{text:?}");
        if *want {
            assert_eq!(t.render(&ctx()).unwrap(), *text);
        }
    }
}

#[test]
fn var_refs_lists_literal_references() {
    let t = Template::parse(
        "{{ StringVar \"variablesstep.message\" }} {{ ToUpper (StringVar `a.b.c`) }} {{ \"p.q\" | StringVar }} {{ StringVar (ToLower \"X.Y\") }}",
    )
    .unwrap();
    let want = [("variablesstep", "message"), ("a", "b.c"), ("p", "q")]
        .map(|(l, n)| (l.to_owned(), n.to_owned()));
    assert_eq!(t.var_refs(), want);
    assert!(Template::parse("{{ .ID }}").unwrap().var_refs().is_empty());
}

#[test]
fn corpus_parameters_render() {
    let ctx = ctx();
    assert_eq!(
        render("{{ StringVar \"variablesstep.message\" }}", &ctx).unwrap(),
        "Hello"
    );
    let t = Target {
        id: "1234".into(),
        fqdn: "example.org".into(),
        ..Default::default()
    };
    let ctx = Ctx {
        target: t,
        vars: HashMap::new(),
    };
    assert_eq!(
        render("Title={{ Title .FQDN }}, ToUpper={{ ToUpper .FQDN }}", &ctx).unwrap(),
        "Title=Example.Org, ToUpper=EXAMPLE.ORG"
    );
}

/// A deterministic generator (an LCG), so the garbage is the same each run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }
}

#[test]
fn garbage_never_panics() {
    const PARTS: &[&str] = &[
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        "\n",
        "\t",
        ".",
        ".ID",
        ".FQDN",
        ".Foo",
        "ToUpper",
        "Title",
        "StringVar",
        "IntVar",
        "Foo",
        "\"",
        "\"s.n\"",
        "\"variablesstep.message\"",
        "`",
        "\\",
        "\\x",
        "\\u12",
        "\\U0010FFFF",
        "\\777",
        "(",
        ")",
        "|",
        "/*",
        "*/",
        "0x",
        "0",
        "9",
        "-",
        "+",
        "_",
        "$",
        "é",
        "😀",
        "#",
        "\u{0}",
        "}",
        "{",
        "99999999999999999999",
        "0b",
        "0o8",
        "1.5",
        "x",
    ];
    let ctx = ctx();
    let mut rng = Lcg(7);
    let mut parsed = 0;
    for _ in 0..2000 {
        let n = rng.next() % 12;
        let text: String = (0..n).map(|_| PARTS[rng.next() % PARTS.len()]).collect();
        if let Ok(t) = Template::parse(&text) {
            parsed += 1;
            let _ = t.render(&ctx);
            let _ = t.var_refs();
        } else if let Err(e) = Template::parse(&text) {
            assert!(e.offset <= text.len(), "{text:?}: offset {}", e.offset);
        }
    }
    // Random bytes too, as UTF-8 lossily decoded.
    for _ in 0..500 {
        let n = rng.next() % 40;
        let bytes: Vec<u8> = (0..n).map(|_| (rng.next() % 256) as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let _ = render(&format!("{{{{{text}}}}}"), &ctx);
        let _ = render(&text, &ctx);
    }
    assert!(parsed > 50, "only {parsed} garbage strings parsed");
}
