//! Step variables: values a step sets for a target (the `variables` step,
//! or any step through [`crate::plugin::StepContext::set_var`]) and
//! later steps read with `{{ StringVar "label.name" }}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prova_core::Target;
use prova_core::template::{Template, TemplateContext, TemplateError};

/// (target ID, step label, variable name)
type VarKey = (String, String, String);

/// Variables of one test attempt, by (target, step label, name).
#[derive(Debug, Clone, Default)]
pub struct StepVars {
    inner: Arc<Mutex<HashMap<VarKey, serde_json::Value>>>,
}

impl StepVars {
    pub fn set(&self, target: &Target, label: &str, name: &str, value: serde_json::Value) {
        self.inner.lock().expect("vars lock").insert(
            (target.id.clone(), label.to_string(), name.to_string()),
            value,
        );
    }

    pub fn get(&self, target: &Target, label: &str, name: &str) -> Option<serde_json::Value> {
        self.inner
            .lock()
            .expect("vars lock")
            .get(&(target.id.clone(), label.to_string(), name.to_string()))
            .cloned()
    }

    /// Every variable, for a paused job's record.
    pub fn snapshot(&self) -> Vec<(String, String, String, serde_json::Value)> {
        let mut v: Vec<_> = self
            .inner
            .lock()
            .expect("vars lock")
            .iter()
            .map(|((t, l, n), v)| (t.clone(), l.clone(), n.clone(), v.clone()))
            .collect();
        v.sort_by(|a, b| (&a.0, &a.1, &a.2).cmp(&(&b.0, &b.1, &b.2)));
        v
    }

    /// Variables from a snapshot (resuming a paused job).
    pub fn restore(snapshot: Vec<(String, String, String, serde_json::Value)>) -> StepVars {
        let vars = StepVars::default();
        {
            let mut inner = vars.inner.lock().expect("vars lock");
            for (t, l, n, v) in snapshot {
                inner.insert((t, l, n), v);
            }
        }
        vars
    }

    /// Renders a template for `target` over these variables.
    pub fn render(&self, template: &Template, target: &Target) -> Result<String, TemplateError> {
        let snapshot: HashMap<(String, String), serde_json::Value> = self
            .inner
            .lock()
            .expect("vars lock")
            .iter()
            .filter(|((t, _, _), _)| *t == target.id)
            .map(|((_, l, n), v)| ((l.clone(), n.clone()), v.clone()))
            .collect();
        template.render(&Ctx {
            target,
            vars: &snapshot,
        })
    }
}

struct Ctx<'a> {
    target: &'a Target,
    vars: &'a HashMap<(String, String), serde_json::Value>,
}

impl TemplateContext for Ctx<'_> {
    fn target(&self) -> &Target {
        self.target
    }
    fn var(&self, step_label: &str, name: &str) -> Option<&serde_json::Value> {
        self.vars.get(&(step_label.to_string(), name.to_string()))
    }
}
