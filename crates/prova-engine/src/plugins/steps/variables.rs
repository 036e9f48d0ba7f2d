//! `variables`: sets each parameter as a step variable of the target, so
//! later steps read it with `{{ StringVar "label.name" }}` or `IntVar`.
//! A value that is valid JSON (`42`, `true`, `{"a":1}`) is stored as that
//! JSON value; anything else as a string.

use std::sync::LazyLock;

use async_trait::async_trait;
use prova_core::Target;
use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;
use regex::Regex;

use crate::plugin::{Step, StepError};
use crate::runner::step_ctx::StepContext;

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-zA-Z]\w*$").unwrap());

pub struct Variables;

#[async_trait]
impl Step for Variables {
    fn validate(&self, step: &StepDescriptor, diags: &mut Diagnostics) {
        if step.parameters.is_empty() {
            diags.error(
                &step.path.key("parameters"),
                step.pos,
                "expected at least one variable",
            );
        }
        for p in step.parameters.iter() {
            if !NAME_RE.is_match(&p.key) {
                diags.error(
                    &p.path,
                    p.pos,
                    format!("invalid variable name {:?}: expected ^[a-zA-Z]\\w*$", p.key),
                );
            }
            if p.values.len() != 1 {
                diags.error(
                    &p.path,
                    p.pos,
                    format!("expected exactly one value, found {}", p.values.len()),
                );
            }
        }
    }

    async fn run(
        &self,
        ctx: &StepContext,
        target: &Target,
        p: &StepParams,
    ) -> Result<(), StepError> {
        for param in p.iter() {
            let Some(raw) = param.values.first() else {
                continue;
            };
            let value = serde_json::from_str(raw)
                .unwrap_or_else(|_| serde_json::Value::String(raw.clone()));
            ctx.set_var(target, &param.key, value);
        }
        Ok(())
    }
}
