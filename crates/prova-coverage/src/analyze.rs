//! One call from inputs to a [`Report`]: load the spec and the conformance
//! yaml files, stream the audit logs through the parallel reader, merge the
//! tallies and build the report.

use std::path::{Path, PathBuf};

use crate::audit::{ReadError, ReadOptions, ReadSummary, read_events};
use crate::conformance::{ConformanceData, ConformanceError};
use crate::report::{MapContext, Report, Tally, build_report};
use crate::spec::{Spec, SpecError};

/// Everything a coverage computation reads.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    /// swagger.json.
    pub spec: PathBuf,
    /// Audit log inputs (`-` = stdin).
    pub audit: Vec<String>,
    /// conformance.yaml.
    pub conformance: Option<PathBuf>,
    /// ineligible_endpoints.yaml.
    pub ineligible: Option<PathBuf>,
    /// pending_eligible_endpoints.yaml.
    pub pending: Option<PathBuf>,
    /// Extra test user-agent patterns.
    pub user_agents: Vec<String>,
    /// Release name to print instead of the spec's `info.version`.
    pub release: Option<String>,
    /// Reader options.
    pub read: ReadOptions,
}

/// Errors of [`analyze`].
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    /// Spec problem.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Conformance yaml problem.
    #[error(transparent)]
    Conformance(#[from] ConformanceError),
    /// Audit input problem.
    #[error(transparent)]
    Read(#[from] ReadError),
}

/// Loads conformance.yaml / ineligible / pending (each optional).
pub fn load_conformance(
    conformance: Option<&Path>,
    ineligible: Option<&Path>,
    pending: Option<&Path>,
) -> Result<ConformanceData, ConformanceError> {
    let mut data = ConformanceData::default();
    if let Some(p) = conformance {
        data.load_tests(p)?;
    }
    if let Some(p) = ineligible {
        data.load_ineligible(p)?;
    }
    if let Some(p) = pending {
        data.load_pending(p)?;
    }
    Ok(data)
}

/// Computes the coverage report.
pub fn analyze(opts: &AnalyzeOptions) -> Result<(Report, ReadSummary), AnalyzeError> {
    let spec = Spec::from_file(&opts.spec)?;
    let conf = load_conformance(
        opts.conformance.as_deref(),
        opts.ineligible.as_deref(),
        opts.pending.as_deref(),
    )?;
    analyze_with(&spec, &conf, opts)
}

/// Computes the coverage report with an already loaded spec and metadata.
pub fn analyze_with(
    spec: &Spec,
    conf: &ConformanceData,
    opts: &AnalyzeOptions,
) -> Result<(Report, ReadSummary), AnalyzeError> {
    let ctx = MapContext::new(spec, &opts.user_agents);
    let (tallies, summary) = read_events(&opts.audit, &opts.read, || Tally::new(&ctx))?;
    let tally = Tally::merge_all(tallies).unwrap_or_else(|| Tally::new(&ctx));
    let report = build_report(spec, conf, &tally, &summary, opts.release.as_deref());
    Ok((report, summary))
}
