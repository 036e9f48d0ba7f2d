//! `randecho`: like `echo`, but fails the target at random half of the
//! time, as ConTest's sample plugin does; useful to exercise reporters.

use async_trait::async_trait;
use prova_core::Target;
use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;

use crate::plugin::{Step, StepError};
use crate::plugins::params;
use crate::runner::step_ctx::StepContext;

pub struct RandEcho;

#[async_trait]
impl Step for RandEcho {
    fn validate(&self, step: &StepDescriptor, diags: &mut Diagnostics) {
        params::require_one(step, "text", diags);
    }

    async fn run(
        &self,
        ctx: &StepContext,
        target: &Target,
        p: &StepParams,
    ) -> Result<(), StepError> {
        let text = params::one(p, "text")?;
        if rand::random::<bool>() {
            ctx.emit(target, "Echo", Some(serde_json::json!({ "Text": text })));
            Ok(())
        } else {
            Err(StepError::Failed(format!(
                "randecho chose to fail target {}",
                target.id
            )))
        }
    }
}
