//! `echo`: emits `text` as an `Echo` event for the target and passes it.

use crate::plugin::*;

pub struct Echo;

/// The event both `echo` and `randecho` emit.
pub const ECHO: EventDecl = EventDecl::new("Echo", "{Text}: the step's text, for the target");

impl Step for Echo {
    fn events(&self) -> Vec<EventDecl> {
        vec![ECHO]
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        let text = p.required("text")?;
        Prepared::per_target(EchoText { text })
    }
}

/// `echo` and `randecho`, prepared.
pub(crate) struct EchoText {
    pub(crate) text: Param<String>,
}

impl EchoText {
    pub(crate) fn emit(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        let text = self.text.get(ctx, target)?;
        ctx.emit(target, ECHO.name, Some(serde_json::json!({ "Text": text })));
        Ok(())
    }
}

#[async_trait]
impl PreparedStep for EchoText {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        self.emit(ctx, target)
    }
}
