//! `echo`: emits `text` as an `Echo` event for the target and passes it.

use async_trait::async_trait;
use prova_core::Target;
use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;

use crate::plugin::{Step, StepError};
use crate::plugins::params;
use crate::runner::step_ctx::StepContext;

pub struct Echo;

#[async_trait]
impl Step for Echo {
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
        ctx.emit(target, "Echo", Some(serde_json::json!({ "Text": text })));
        Ok(())
    }
}
