//! `randecho`: like `echo`, but fails the target at random half of the
//! time, as ConTest's sample plugin does; useful to exercise reporters.

use super::echo::{ECHO, EchoText};
use crate::plugin::*;

pub struct RandEcho;

impl Step for RandEcho {
    fn events(&self) -> Vec<EventDecl> {
        vec![ECHO]
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        let text = p.required("text")?;
        Prepared::per_target(RandEchoText(EchoText { text }))
    }
}

struct RandEchoText(EchoText);

#[async_trait]
impl PreparedStep for RandEchoText {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        if rand::random::<bool>() {
            self.0.emit(ctx, target)
        } else {
            Err(StepError::failed(format!(
                "randecho chose to fail target {}",
                target.id
            )))
        }
    }
}
