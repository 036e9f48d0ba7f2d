//! `sleep`: waits `duration` (a Go duration), then passes the target.
//! Cancellation ends the wait at once; a pause records the time left and
//! a resume sleeps only that.

use std::time::Duration;

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
        target: &Target,
        p: &StepParams,
    ) -> Result<(), StepError> {
        let d = params::parse_duration(params::one(p, "duration")?).map_err(StepError::Params)?;
        // After a pause, sleep only what was left.
        let left = ctx
            .take_resume_state(target)
            .and_then(|s| s.get("RemainingMs").and_then(|v| v.as_u64()))
            .map(Duration::from_millis)
            .unwrap_or(d);
        let deadline = tokio::time::Instant::now() + left;
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => Ok(()),
            _ = ctx.cancel.cancelled() => Err(StepError::Cancelled),
            _ = ctx.pause.cancelled() => {
                let rest = deadline.saturating_duration_since(tokio::time::Instant::now());
                Err(StepError::Paused(Some(serde_json::json!({ "RemainingMs": rest.as_millis() as u64 }))))
            }
        }
    }

    fn resumable(&self) -> bool {
        true
    }
}
