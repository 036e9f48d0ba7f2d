//! Reading a step's `{key: [values]}` parameters once, into typed values.
//!
//! A step's [`super::Step::prepare`] asks [`Params`] for each key it reads,
//! with the type it wants. A value that is not a template is parsed and
//! checked there, while the job is prepared (so `prova validate` reports it
//! with its file, line and field path); a template is parsed there too, and
//! only rendered and converted per target, by [`Param::get`]. Keys the step
//! never asked for are reported afterwards, with the nearest key it reads:
//! `unknown parameter "arg" of step "run" (cmd): did you mean "args"?`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use prova_core::Target;
use prova_core::descriptor::{ParamValues, StepDescriptor};
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::duration::parse_go_duration;
use prova_core::template::Template;

use super::context::StepContext;
use super::prepare_ctx::PrepareCtx;
use super::step::StepError;

/// A type a parameter value converts to. Implemented for the usual types;
/// a plugin implements it for its own types (or passes a parser to
/// [`Params::required_with`]).
pub trait FromParam: Sized + Clone + Send + Sync + 'static {
    /// What a value must look like, for messages: "a duration such as \"5s\"".
    const EXPECTED: &'static str;
    fn from_param(value: &str) -> Result<Self, String>;
}

impl FromParam for String {
    const EXPECTED: &'static str = "text";
    fn from_param(value: &str) -> Result<Self, String> {
        Ok(value.to_string())
    }
}

impl FromParam for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_param(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(format!("expected true or false, found {value:?}")),
        }
    }
}

impl FromParam for Duration {
    const EXPECTED: &'static str = "a duration such as \"500ms\" or \"5s\"";
    fn from_param(value: &str) -> Result<Self, String> {
        parse_go_duration(value).map_err(|e| format!("{e}: expected {}", Self::EXPECTED))
    }
}

impl FromParam for PathBuf {
    const EXPECTED: &'static str = "a path";
    fn from_param(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err("expected a path, found an empty string".into());
        }
        Ok(PathBuf::from(value))
    }
}

impl FromParam for regex::Regex {
    const EXPECTED: &'static str = "a regular expression";
    fn from_param(value: &str) -> Result<Self, String> {
        regex::RegexBuilder::new(value)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("invalid regular expression: {e}"))
    }
}

macro_rules! from_param_number {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl FromParam for $t {
            const EXPECTED: &'static str = $what;
            fn from_param(value: &str) -> Result<Self, String> {
                value
                    .trim()
                    .parse()
                    .map_err(|_| format!("expected {}, found {value:?}", $what))
            }
        }
    )*};
}

from_param_number! {
    u16 => "a whole number from 0 to 65535",
    u32 => "a whole number from 0 to 4294967295",
    u64 => "a whole number from 0",
    usize => "a whole number from 0",
    i64 => "a whole number",
    f64 => "a number",
}

type Parser<T> = Arc<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

/// What renders a parameter's template for a target: the [`StepContext`]
/// while the step runs (target fields and step variables), or
/// [`NoTemplates`] where only fixed values are expected (unit tests of a
/// plugin's parameters).
pub trait Render {
    fn render(&self, template: &Template, target: &Target) -> Result<String, String>;
}

impl Render for StepContext {
    fn render(&self, template: &Template, target: &Target) -> Result<String, String> {
        StepContext::render(self, template, target).map_err(|e| e.to_string())
    }
}

/// Renders no template: a templated parameter is an error.
pub struct NoTemplates;

impl Render for NoTemplates {
    fn render(&self, _: &Template, _: &Target) -> Result<String, String> {
        Err("a template cannot be rendered here".into())
    }
}

/// One parameter value: known while preparing, or a template rendered per
/// target.
#[derive(Clone)]
pub struct Param<T> {
    value: Value<T>,
    /// Where it was written, for messages: `tests[0].steps[1].parameters.args[2]`.
    path: FieldPath,
}

#[derive(Clone)]
enum Value<T> {
    Fixed(T),
    Template {
        template: Arc<Template>,
        parse: Parser<T>,
    },
}

impl<T: Clone + Send + Sync + 'static> Param<T> {
    /// A value that does not come from the descriptor (a default).
    pub fn fixed(value: T) -> Param<T> {
        Param {
            value: Value::Fixed(value),
            path: FieldPath::root(),
        }
    }

    /// The value for `target`: the fixed value, or the template rendered
    /// with the target and the step variables, then converted.
    pub fn get(&self, ctx: &(impl Render + ?Sized), target: &Target) -> Result<T, StepError> {
        match &self.value {
            Value::Fixed(v) => Ok(v.clone()),
            Value::Template { template, parse } => {
                let text = ctx.render(template, target).map_err(|e| self.error(e))?;
                parse(&text).map_err(|e| self.error(format!("{e} (from the template)")))
            }
        }
    }

    /// The value when it is not a template.
    pub fn as_fixed(&self) -> Option<&T> {
        match &self.value {
            Value::Fixed(v) => Some(v),
            Value::Template { .. } => None,
        }
    }

    pub fn path(&self) -> &FieldPath {
        &self.path
    }

    fn error(&self, message: impl ToString) -> StepError {
        StepError::Params {
            param: self.path.to_string(),
            message: message.to_string(),
        }
    }
}

impl<T> std::fmt::Debug for Param<T>
where
    T: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.value {
            Value::Fixed(v) => write!(f, "{v:?}"),
            Value::Template { .. } => f.write_str("<template>"),
        }
    }
}

/// The values of a list parameter (`args`, `env`), each possibly a template.
#[derive(Clone, Debug, Default)]
pub struct ParamList<T>(Vec<Param<T>>);

impl<T: Clone + Send + Sync + 'static> ParamList<T> {
    /// Every value for `target`, in order.
    pub fn get(&self, ctx: &(impl Render + ?Sized), target: &Target) -> Result<Vec<T>, StepError> {
        self.0.iter().map(|p| p.get(ctx, target)).collect()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Param<T>> {
        self.0.iter()
    }
}

/// A step's parameters while it prepares: typed reads that record what is
/// wrong, with the field path and position, in the job's diagnostics.
pub struct Params<'a> {
    step: &'a StepDescriptor,
    ctx: &'a PrepareCtx<'a>,
    diags: &'a mut Diagnostics,
    asked: BTreeSet<String>,
    /// Set by [`Params::any_key`]: every key is the step's (e.g. `variables`).
    any_key: bool,
    errors_before: usize,
    /// A template did not parse (reported by the engine's template check).
    bad_template: bool,
}

impl<'a> Params<'a> {
    pub fn new(
        step: &'a StepDescriptor,
        ctx: &'a PrepareCtx<'a>,
        diags: &'a mut Diagnostics,
    ) -> Params<'a> {
        let errors_before = diags.errors().len();
        Params {
            step,
            ctx,
            diags,
            asked: BTreeSet::new(),
            any_key: false,
            errors_before,
            bad_template: false,
        }
    }

    /// The step as written: its label, plugin name, timeout, ...
    pub fn step(&self) -> &StepDescriptor {
        self.step
    }

    /// Where the descriptor lives (to resolve file names).
    pub fn prepare_ctx(&self) -> &PrepareCtx<'a> {
        self.ctx
    }

    /// A required single value.
    pub fn required<T: FromParam>(&mut self, key: &str) -> Option<Param<T>> {
        self.required_with(key, T::from_param)
    }

    /// An optional single value.
    pub fn optional<T: FromParam>(&mut self, key: &str) -> Option<Param<T>> {
        self.optional_with(key, T::from_param)
    }

    /// An optional single value, `default` when absent (or wrong: the error
    /// is recorded and the job will not run).
    pub fn or<T: FromParam>(&mut self, key: &str, default: T) -> Param<T> {
        self.optional(key).unwrap_or_else(|| Param::fixed(default))
    }

    /// A list of values (absent: empty).
    pub fn list<T: FromParam>(&mut self, key: &str) -> ParamList<T> {
        self.list_with(key, T::from_param)
    }

    /// A list of values, `None` when the key is absent (not the same as
    /// written empty: `command: []` clears an image's entrypoint).
    pub fn optional_list<T: FromParam>(&mut self, key: &str) -> Option<ParamList<T>> {
        self.step.parameters.get(key)?;
        Some(self.list(key))
    }

    /// A required single value converted by `parse`.
    pub fn required_with<T: Clone + Send + Sync + 'static>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    ) -> Option<Param<T>> {
        if self.lookup(key).is_none() {
            let path = self.step.path.key("parameters").key(key);
            let mut msg = format!(
                "missing: step {:?} ({}) needs parameter {key:?}",
                self.step.label, self.step.name
            );
            // A misspelling of it among the keys written says what to fix.
            let mut written = self.step.parameters.iter().map(|p| p.key.as_str());
            if let Some(typo) = written.find(|w| nearest(key, std::iter::once(*w)).is_some()) {
                msg.push_str(&format!("; found {typo:?}: did you mean {key:?}?"));
            }
            self.diags.error(&path, self.step.pos, msg);
            return None;
        }
        self.optional_with(key, parse)
    }

    /// An optional single value converted by `parse`.
    pub fn optional_with<T: Clone + Send + Sync + 'static>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    ) -> Option<Param<T>> {
        let p = self.lookup(key)?;
        if p.values.len() != 1 {
            let msg = format!("expected exactly one value, found {}", p.values.len());
            self.diags.error(&p.path, p.pos, msg);
            return None;
        }
        let parse: Parser<T> = Arc::new(parse);
        self.value(p, 0, &parse)
    }

    /// A list of values converted by `parse`.
    pub fn list_with<T: Clone + Send + Sync + 'static>(
        &mut self,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String> + Send + Sync + 'static,
    ) -> ParamList<T> {
        let Some(p) = self.lookup(key) else {
            return ParamList(Vec::new());
        };
        let parse: Parser<T> = Arc::new(parse);
        ParamList(
            (0..p.values.len())
                .filter_map(|i| self.value(p, i, &parse))
                .collect(),
        )
    }

    /// Every parameter as written, for steps whose keys are names of their
    /// own (`variables`); no key is then reported as unknown.
    pub fn any_key(&mut self) -> impl Iterator<Item = &'a ParamValues> + use<'a> {
        self.any_key = true;
        self.step.parameters.iter()
    }

    /// Records a problem with `key` (a check across parameters).
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let (path, pos) = match self.step.parameters.get(key) {
            Some(p) => (p.path.clone(), p.pos),
            None => (self.step.path.key("parameters").key(key), self.step.pos),
        };
        self.diags.error(&path, pos, message);
    }

    /// Records a problem with value `index` of `key`.
    pub fn error_at(&mut self, key: &str, index: usize, message: impl Into<String>) {
        let (path, pos) = match self.step.parameters.get(key) {
            Some(p) => (p.path.index(index), p.pos),
            None => (self.step.path.key("parameters").key(key), self.step.pos),
        };
        self.diags.error(&path, pos, message);
    }

    /// Records a problem with the step as a whole.
    pub fn step_error(&mut self, message: impl Into<String>) {
        let path = self.step.path.key("parameters");
        self.diags.error(&path, self.step.pos, message);
    }

    /// Whether every read so far was right.
    pub fn ok(&self) -> bool {
        self.diags.errors().len() == self.errors_before && !self.bad_template
    }

    /// Warns about every key the step did not ask for, suggesting the
    /// nearest one it did. Called by the engine after `prepare`.
    pub fn finish(self) {
        if self.any_key {
            return;
        }
        for p in self.step.parameters.iter() {
            let key = p.key.to_ascii_lowercase();
            if self.asked.contains(&key) {
                continue;
            }
            let hint = nearest(&key, self.asked.iter().map(String::as_str))
                .map(|k| format!(": did you mean {k:?}?"))
                .unwrap_or_else(|| match self.asked.is_empty() {
                    true => ": the step takes no parameters".to_string(),
                    false => format!(
                        "; it reads {}",
                        self.asked.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            self.diags.warn(
                &p.path,
                p.pos,
                format!(
                    "unknown parameter {:?} of step {:?} ({}){hint}",
                    p.key, self.step.label, self.step.name
                ),
            );
        }
    }

    fn lookup(&mut self, key: &str) -> Option<&'a ParamValues> {
        self.asked.insert(key.to_ascii_lowercase());
        self.step.parameters.get(key)
    }

    fn value<T: Clone + Send + Sync + 'static>(
        &mut self,
        p: &ParamValues,
        i: usize,
        parse: &Parser<T>,
    ) -> Option<Param<T>> {
        let raw = &p.values[i];
        // Every value is an item of a list in ConTest's model, so its path
        // has an index even when written as a scalar.
        let path = p.path.index(i);
        if raw.contains("{{") {
            // Unparsable templates are reported once, by the engine's check
            // of every template (with the variable references).
            let Ok(template) = Template::parse(raw) else {
                self.bad_template = true;
                return None;
            };
            return Some(Param {
                value: Value::Template {
                    template: Arc::new(template),
                    parse: parse.clone(),
                },
                path,
            });
        }
        match parse(raw) {
            Ok(v) => Some(Param {
                value: Value::Fixed(v),
                path,
            }),
            Err(e) => {
                self.diags.error(&path, p.pos, e);
                None
            }
        }
    }
}

/// The key among `known` nearest to `key`, if near enough to be a typo.
pub fn nearest<'k>(key: &str, known: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    known
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}
