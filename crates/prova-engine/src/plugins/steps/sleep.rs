//! `sleep`: waits `duration` (a Go duration), then passes the target.
//! Cancellation ends the wait at once.

use async_trait::async_trait;
use prova_core::Target;
use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;

use crate::plugin::{Step, StepError};
use crate::plugins::params;
use crate::runner::step_ctx::StepContext;

pub struct Sleep;

#[async_trait]
impl Step for Sleep {
    fn validate(&self, step: &StepDescriptor, diags: &mut Diagnostics) {
        params::require_one(step, "duration", diags);
        params::check_one(&step.parameters, "duration", diags, |v| {
            params::parse_duration(v).map(|_| ())
        });
    }

    async fn run(
        &self,
        ctx: &StepContext,
        _target: &Target,
        p: &StepParams,
    ) -> Result<(), StepError> {
        let d = params::parse_duration(params::one(p, "duration")?).map_err(StepError::Params)?;
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = ctx.cancel.cancelled() => Err(StepError::Cancelled),
        }
    }

    fn resumable(&self) -> bool {
        true
    }
}
