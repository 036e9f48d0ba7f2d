//! `noop`: always reports success; useful as a placeholder reporter.

use std::sync::Arc;

use async_trait::async_trait;
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::Node;
use prova_core::status::Report;

use crate::plugin::{
    FinalReportInput, PrepareCtx, PreparedReporter, Reporter, ReporterRole, RunReportInput,
};

pub struct Noop;

struct Prepared;

impl Reporter for Noop {
    fn prepare(
        &self,
        _: ReporterRole,
        _: &Node,
        _: &FieldPath,
        _: &PrepareCtx<'_>,
        _: &mut Diagnostics,
    ) -> Option<Arc<dyn PreparedReporter>> {
        Some(Arc::new(Prepared))
    }
}

fn report() -> Report {
    Report {
        success: true,
        data: "I did nothing".into(),
        ..Default::default()
    }
}

#[async_trait]
impl PreparedReporter for Prepared {
    async fn run_report(&self, _: &RunReportInput<'_>) -> Option<Report> {
        Some(report())
    }
    async fn final_report(&self, _: &FinalReportInput<'_>) -> Option<Report> {
        Some(report())
    }
}
