//! Fuzzing templates: random token soups and random text go through parse
//! and render. Nothing may panic; errors point inside the text; text
//! without `{{` renders unchanged.
//!
//! Bounded by default (see `fuzz_support`); `PROVA_FUZZ_CASES=100000` for a
//! longer run.

mod fuzz_support;

use std::collections::HashMap;

use proptest::prelude::*;
use prova_core::target::Target;
use prova_core::template::{Template, TemplateContext};
use serde_json::{Value, json};

const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    "{{/* c */}}",
    "/*",
    "*/",
    " ",
    "\n",
    "\t",
    ".",
    ".ID",
    ".FQDN",
    ".PrimaryIPv4",
    ".PrimaryIPv6",
    ".Nope",
    ".ID.X",
    "|",
    "(",
    ")",
    "ToUpper",
    "ToLower",
    "Title",
    "StringVar",
    "IntVar",
    "if",
    "end",
    "range",
    "$x",
    "\"s.str\"",
    "\"s.n\"",
    "\"s.obj\"",
    "\"missing.v\"",
    "\"bad\"",
    "\"\\x41\\u00e9\"",
    "\"\\q\"",
    "\"open",
    "`raw`",
    "`open",
    "42",
    "-7",
    "+3",
    "0x1F",
    "0o17",
    "017",
    "0b11",
    "1_000",
    "1.5",
    "99999999999999999999",
    "-",
    "é",
    "😀",
    "\\",
    "\"",
    "}",
    "{",
];

struct Ctx {
    target: Target,
    vars: HashMap<(String, String), Value>,
}

impl TemplateContext for Ctx {
    fn target(&self) -> &Target {
        &self.target
    }
    fn var(&self, label: &str, name: &str) -> Option<&Value> {
        self.vars.get(&(label.to_owned(), name.to_owned()))
    }
}

fn ctx() -> Ctx {
    Ctx {
        target: Target {
            id: "T1".into(),
            fqdn: "host-1.example.org".into(),
            primary_ipv4: "10.0.0.1".into(),
            primary_ipv6: "::1".into(),
        },
        vars: [
            ("s", "str", json!("text")),
            ("s", "n", json!(42)),
            ("s", "obj", json!({"a": [1]})),
        ]
        .into_iter()
        .map(|(l, n, v)| ((l.to_owned(), n.to_owned()), v))
        .collect(),
    }
}

fn check(text: &str, ctx: &Ctx) {
    match Template::parse(text) {
        Ok(t) => {
            if let Err(e) = t.render(ctx) {
                assert!(e.offset <= text.len(), "render error past the end: {e:?}");
            }
            let _ = t.var_refs();
            if !text.contains("{{") {
                assert_eq!(t.render(ctx).as_deref(), Ok(text));
            }
        }
        Err(e) => {
            assert!(e.offset <= text.len(), "parse error past the end: {e:?}");
            assert!(
                text.is_char_boundary(e.offset),
                "error offset inside a character: {e:?}"
            );
            assert!(!e.message.is_empty());
        }
    }
}

#[test]
fn random_token_templates_never_panic() {
    let ctx = ctx();
    prova_fuzz::fuzz(
        "fuzz_template (tokens)",
        4_000,
        prop::collection::vec(
            prop_oneof![
                6 => (0..TOKENS.len()).prop_map(|i| TOKENS[i].to_owned()),
                1 => (0..TOKENS.len(), 1..2_000usize).prop_map(|(i, n)| TOKENS[i].repeat(n)),
                1 => any::<String>(),
            ],
            0..60,
        ),
        |tokens| check(&tokens.concat(), &ctx),
    );
}

#[test]
fn random_text_never_panics() {
    let ctx = ctx();
    prova_fuzz::fuzz(
        "fuzz_template (text)",
        3_000,
        prop_oneof![any::<String>(), "[{}|().\"`a-zA-Z0-9 \\-\\\\]{0,80}"],
        |text| check(&text, &ctx),
    );
}
