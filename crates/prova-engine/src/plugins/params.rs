//! Helpers steps use to read their `{key: [values]}` parameters, both at
//! validation time (where a templated value is only checked after
//! expansion) and at run time.

use std::time::Duration;

use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;
use prova_core::duration::parse_go_duration;

use crate::plugin::StepError;

/// A value that is a template can only be checked once expanded.
pub fn is_template(v: &str) -> bool {
    v.contains("{{")
}

/// Checks that `key` is present with exactly one value.
pub fn require_one(step: &StepDescriptor, key: &str, diags: &mut Diagnostics) {
    match step.parameters.get(key) {
        None => {
            let path = step.path.key("parameters").key(key);
            diags.error(
                &path,
                step.pos,
                format!(
                    "missing: step {:?} ({}) needs parameter {key:?}",
                    step.label, step.name
                ),
            );
        }
        Some(p) if p.values.len() != 1 => {
            diags.error(
                &p.path,
                p.pos,
                format!("expected exactly one value, found {}", p.values.len()),
            );
        }
        Some(_) => {}
    }
}

/// Checks an optional single value with `check` (skipped for templates).
pub fn check_one(
    params: &StepParams,
    key: &str,
    diags: &mut Diagnostics,
    check: impl Fn(&str) -> Result<(), String>,
) {
    let Some(p) = params.get(key) else { return };
    if p.values.len() > 1 {
        diags.error(
            &p.path,
            p.pos,
            format!("expected one value, found {}", p.values.len()),
        );
        return;
    }
    if let Some(v) = p.values.first()
        && !is_template(v)
        && let Err(e) = check(v)
    {
        diags.error(&p.path.index(0), p.pos, e);
    }
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("expected true or false, found {v:?}")),
    }
}

pub fn parse_duration(v: &str) -> Result<Duration, String> {
    parse_go_duration(v)
        .map_err(|e| format!("{e}: expected a duration such as \"500ms\" or \"5s\""))
}

/// A required single value at run time.
pub fn one<'a>(params: &'a StepParams, key: &str) -> Result<&'a str, StepError> {
    params
        .one(key)
        .ok_or_else(|| StepError::Params(format!("parameter {key:?} is required")))
}

/// An optional boolean at run time.
pub fn bool_or(params: &StepParams, key: &str, default: bool) -> Result<bool, StepError> {
    match params.one(key) {
        None => Ok(default),
        Some(v) => parse_bool(v).map_err(|e| StepError::Params(format!("{key}: {e}"))),
    }
}

/// An optional duration at run time.
pub fn duration_or(
    params: &StepParams,
    key: &str,
    default: Duration,
) -> Result<Duration, StepError> {
    match params.one(key) {
        None => Ok(default),
        Some(v) => parse_duration(v).map_err(|e| StepError::Params(format!("{key}: {e}"))),
    }
}
