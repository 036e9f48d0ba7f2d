//! `sleep`: waits `duration` (a Go duration), then passes the target.
//! Cancellation ends the wait at once; a pause records the time left and
//! a resume sleeps only that.

use std::time::Duration;

use crate::plugin::*;

pub struct Sleep;

impl Step for Sleep {
    fn events(&self) -> Vec<EventDecl> {
        Vec::new()
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        let duration = p.required("duration")?;
        Prepared::per_target(SleepFor { duration })
    }
}

struct SleepFor {
    duration: Param<Duration>,
}

#[async_trait]
impl PreparedStep for SleepFor {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        let d = self.duration.get(ctx, target)?;
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
