//! `variables`: sets each parameter as a step variable of the target, so
//! later steps read it with `{{ StringVar "label.name" }}` or `IntVar`.
//! A value that is valid JSON (`42`, `true`, `{"a":1}`) is stored as that
//! JSON value; anything else as a string.

use std::sync::LazyLock;

use regex::Regex;

use crate::plugin::*;

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z]\w*$").unwrap());

pub struct Variables;

impl Step for Variables {
    fn events(&self) -> Vec<EventDecl> {
        Vec::new()
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        let written: Vec<(String, usize)> = p
            .any_key()
            .map(|v| (v.key.clone(), v.values.len()))
            .collect();
        if written.is_empty() {
            p.step_error("expected at least one variable");
        }
        let mut vars = Vec::new();
        for (key, count) in written {
            if !NAME_RE.is_match(&key) {
                p.error(
                    &key,
                    format!("invalid variable name {key:?}: expected ^[a-zA-Z]\\w*$"),
                );
                continue;
            }
            if count != 1 {
                p.error(&key, format!("expected exactly one value, found {count}"));
                continue;
            }
            if let Some(value) = p.required::<String>(&key) {
                vars.push((key, value));
            }
        }
        if !p.ok() {
            return None;
        }
        Prepared::per_target(SetVariables { vars })
    }
}

struct SetVariables {
    vars: Vec<(String, Param<String>)>,
}

#[async_trait]
impl PreparedStep for SetVariables {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        for (name, param) in &self.vars {
            let raw = param.get(ctx, target)?;
            let value = serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw));
            ctx.set_var(target, name, value);
        }
        Ok(())
    }
}
