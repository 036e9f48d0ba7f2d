//! The `coverage` final reporter: what a job's tests newly cover, from the
//! cluster's audit events, against a baseline — the APISnoop ticket's
//! "+3" as a job's verdict.
//!
//! When the job ends it reads the names of the job's test cases
//! (`TestCaseResult` events: the e2e suite's JUnit, brought back by the
//! k8sjob step's `results_dir`) and the job's start, asks the live audit
//! sink of `prova serve` (`Server`) for the hits in the job's window whose
//! user agent names one of those tests (or reads `AuditLog`), maps them to
//! endpoints of `Spec`, and compares with `Baseline`:
//!
//! ```text
//! +3: patchBatchV1NamespacedJobStatus, readBatchV1NamespacedJobStatus, replaceBatchV1NamespacedJobStatus
//! ```
//!
//! It succeeds when every `Expect` endpoint is newly covered; without
//! `Expect`, when at least one endpoint is. Its `Data` holds the numbers
//! (`NewlyCovered`, `Missing`, `Before`, `After`, `Endpoints`, …).
//! docs/apisnoop.md walks through it; [`params`] lists the parameters.
//!
//! ```
//! let mut registry = prova_engine::plugins::registry();
//! prova_coverage::reporter::register(&mut registry);
//! assert!(registry.find_reporter("coverage").is_some());
//! ```

pub mod hits;
pub mod job;
pub mod newly;
pub mod params;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::node::Node;
use prova_core::status::Report;
use prova_engine::Registry;
use prova_engine::plugin::{
    FinalReportInput, PrepareCtx, PreparedReporter, Reporter, ReporterRole,
};
use serde_json::json;

use hits::Window;
use job::JobTests;
use newly::{JobCoverage, JobHits, job_coverage};
use params::{Config, HitSource};

/// The reporter's name in descriptors.
pub const NAME: &str = "coverage";

/// Slack on each side of the job's window: the API server's clock and
/// prova's may differ a little.
pub const WINDOW_MARGIN: Duration = Duration::from_secs(5);

/// How often the reporter asks again while it waits for late batches.
pub const POLL_EVERY: Duration = Duration::from_secs(2);

/// Registers the `coverage` reporter.
pub fn register(r: &mut Registry) {
    r.reporter(NAME, Coverage);
}

/// The plugin.
pub struct Coverage;

impl Reporter for Coverage {
    fn prepare(
        &self,
        role: ReporterRole,
        params: &Node,
        path: &FieldPath,
        ctx: &PrepareCtx<'_>,
        diags: &mut Diagnostics,
    ) -> Option<Arc<dyn PreparedReporter>> {
        if role == ReporterRole::Run {
            diags.error(
                path,
                params.pos,
                "coverage is a final reporter: list it under Reporting.FinalReporters",
            );
            return None;
        }
        let config = params::prepare(params, path, ctx, diags)?;
        Some(Arc::new(Prepared {
            config: Arc::new(config),
        }))
    }
}

struct Prepared {
    config: Arc<Config>,
}

#[async_trait]
impl PreparedReporter for Prepared {
    fn needs_events(&self) -> bool {
        true
    }

    async fn final_report(&self, input: &FinalReportInput<'_>) -> Option<Report> {
        let tests = job::job_tests(input.events);
        Some(judge(&self.config, tests).await)
    }
}

/// Asks for the hits until the expected endpoints are covered or `Wait`
/// is over (the audit webhook sends batches late), then judges.
async fn judge(config: &Arc<Config>, tests: JobTests) -> Report {
    if tests.names.is_empty() {
        return failure(
            config,
            "the job reported no test cases: the coverage reporter credits the tests a step brings back (e.g. k8sjob's results_dir with the suite's JUnit)",
        );
    }
    let now = jiff::Timestamp::now();
    let margin = jiff::SignedDuration::try_from(WINDOW_MARGIN).unwrap_or_default();
    let window = Window {
        since: tests
            .started
            .unwrap_or(now)
            .saturating_sub(margin)
            .unwrap_or(now),
        until: now.saturating_add(margin).unwrap_or(now),
    };
    let deadline = tokio::time::Instant::now() + config.wait;
    loop {
        let result = read_hits(config, &window, &tests).await;
        let expired = tokio::time::Instant::now() >= deadline;
        match result {
            Ok(hits) => {
                let cov = job_coverage(
                    &config.spec,
                    &config.baseline,
                    &config.conformance,
                    &hits,
                    &config.expect,
                );
                let met = !config.expect.is_empty() && cov.missing.is_empty();
                if met || expired {
                    return verdict(config, &tests, &window, &hits, &cov);
                }
            }
            Err(e) if expired => return failure(config, &e),
            Err(_) => {}
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(left.min(POLL_EVERY)).await;
    }
}

async fn read_hits(
    config: &Arc<Config>,
    window: &Window,
    tests: &JobTests,
) -> Result<JobHits, String> {
    match &config.source {
        HitSource::Sink {
            server,
            token,
            user_agent,
        } => {
            let token = token.value()?;
            hits::from_sink(
                server,
                token.as_deref(),
                user_agent.as_deref(),
                window,
                &config.spec,
                &tests.names,
            )
            .await
        }
        HitSource::AuditLog(path) => {
            let (config, path, names) = (config.clone(), path.clone(), tests.names.clone());
            tokio::task::spawn_blocking(move || hits::from_audit_log(&path, &config.spec, &names))
                .await
                .map_err(|e| format!("reading the audit log failed: {e}"))?
        }
    }
}

fn source_name(config: &Config) -> String {
    match &config.source {
        HitSource::Sink { server, .. } => server.clone(),
        HitSource::AuditLog(p) => p.display().to_string(),
    }
}

fn verdict(
    config: &Config,
    tests: &JobTests,
    window: &Window,
    hits: &JobHits,
    cov: &JobCoverage,
) -> Report {
    let success = if config.expect.is_empty() {
        !cov.newly_covered.is_empty()
    } else {
        cov.missing.is_empty()
    };
    let mut message = format!(
        "{} (eligible endpoints tested: {} → {} of {})",
        cov.change_line(),
        cov.before.tested_eligible,
        cov.after.tested_eligible,
        cov.after.total_eligible
    );
    if !cov.missing.is_empty() {
        message.push_str(&format!(
            "; expected but not newly covered: {}",
            cov.missing.join(", ")
        ));
    } else if !success {
        message.push_str("; the job's tests newly covered no endpoint");
    }
    let mut data = json!({
        "Message": message,
        "Change": cov.newly_covered.len(),
        "Expect": config.expect,
        "Tests": tests.names,
        "FailedTests": tests.failed,
        "Hits": hits.hits,
        "UnknownEndpointHits": hits.unknown,
        "Source": source_name(config),
        "Window": {"Since": window.since.to_string(), "Until": window.until.to_string()},
        "Baseline": config.baseline_name,
        "BaselineWithoutTests": config.baseline_without,
        "EligibilityKnown": config.baseline.eligibility_known,
    });
    if let (Some(obj), Ok(serde_json::Value::Object(c))) =
        (data.as_object_mut(), serde_json::to_value(cov))
    {
        obj.extend(c);
    }
    Report {
        success,
        data,
        ..Default::default()
    }
}

fn failure(config: &Config, error: &str) -> Report {
    Report {
        success: false,
        data: json!({
            "Message": format!("coverage unknown: {error}"),
            "Error": error,
            "Expect": config.expect,
            "Source": source_name(config),
            "Baseline": config.baseline_name,
        }),
        ..Default::default()
    }
}
