//! `prova coverage …`: arguments (clap) and the [`run`] entry point.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::analyze::{AnalyzeOptions, analyze, load_conformance};
use crate::audit::{ReadOptions, ReadSummary};
use crate::bench::{BenchArgs, run_bench};
use crate::diff::diff;
use crate::like::LikePattern;
use crate::live::client::{LiveArgs, SinkArgs};
use crate::render::{self, EndpointRow, Format, TestHit};
use crate::report::{EndpointCoverage, Report};
use crate::spec::{Level, Spec};

/// `prova coverage <subcommand>`.
#[derive(clap::Subcommand, Debug)]
pub enum CoverageCommand {
    /// List the API endpoints of an OpenAPI spec (one row per tagged operation).
    #[command(
        after_help = "Example:\n  prova coverage endpoints --spec swagger.json --ineligible ineligible_endpoints.yaml --csv"
    )]
    Endpoints(EndpointsArgs),
    /// Compute endpoint coverage from audit logs (APISnoop's numbers).
    #[command(
        after_help = "Examples:\n  prova coverage report --spec swagger.json --audit audit.log.gz --conformance conformance.yaml --ineligible ineligible_endpoints.yaml --json > coverage.json\n  prova coverage report --server http://127.0.0.1:8080 --since 10m --json    # over a prova serve audit sink's hits"
    )]
    Report(ReportArgs),
    /// List stable, conformance-eligible endpoints that no test hits.
    #[command(
        after_help = "Example:\n  prova coverage untested --spec swagger.json --audit audit.log --endpoint '%JobStatus'"
    )]
    Untested(UntestedArgs),
    /// Show which tests hit an endpoint.
    #[command(
        after_help = "Example:\n  prova coverage tests --spec swagger.json --audit audit.log --endpoint 'readBatchV1NamespacedJobStatus'"
    )]
    Tests(TestsArgs),
    /// Compare coverage of two audit logs (or two saved JSON reports).
    #[command(
        after_help = "Example:\n  prova coverage diff --spec swagger.json before.log after.log\n  prova coverage diff before.json after.json"
    )]
    Diff(DiffArgs),
    /// Endpoints hit recently, from a `prova serve` audit sink (the tickets' query).
    #[command(
        after_help = "Examples:\n  prova coverage live --server http://127.0.0.1:8080 --since 60s --user-agent 'e2e%should%' --endpoint '%JobStatus'\n  prova coverage live --server $PROVA_SERVER --since 5m --json\n\nThe token comes from --token or PROVA_TOKEN. Patterns are SQL LIKE (case-sensitive)."
    )]
    Live(LiveArgs),
    /// Generate a large synthetic audit log and measure how fast it is read.
    #[command(
        after_help = "Example:\n  prova coverage bench --spec swagger.json --size 1GB --gz --python"
    )]
    Bench(BenchArgs),
}

/// Output format flags (default: a table).
#[derive(clap::Args, Debug, Clone, Default)]
#[group(multiple = false)]
pub struct FormatArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print CSV.
    #[arg(long)]
    pub csv: bool,
    /// Print one self-contained HTML page (coverage charts per category and level).
    #[arg(long)]
    pub html: bool,
}

impl FormatArgs {
    fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else if self.csv {
            Format::Csv
        } else if self.html {
            Format::Html
        } else {
            Format::Table
        }
    }
}

/// Conformance metadata files.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MetaArgs {
    /// conformance.yaml (test/conformance/testdata): names, files and promotion releases of conformance tests.
    #[arg(long, value_name = "YAML")]
    pub conformance: Option<PathBuf>,
    /// ineligible_endpoints.yaml: stable endpoints that are not eligible for conformance.
    #[arg(long, value_name = "YAML")]
    pub ineligible: Option<PathBuf>,
    /// pending_eligible_endpoints.yaml: eligible endpoints reported separately as pending.
    #[arg(long, value_name = "YAML")]
    pub pending: Option<PathBuf>,
}

/// Where coverage comes from: a spec plus audit logs, or a saved report.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SourceArgs {
    /// OpenAPI v2 spec of the cluster's release (api/openapi-spec/swagger.json).
    #[arg(long, value_name = "SWAGGER")]
    pub spec: Option<PathBuf>,
    /// Audit log(s): JSON lines (plain, .gz or .zst), or one JSON event / array / EventList; `-` reads stdin. Repeat or list several.
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub audit: Vec<String>,
    /// Use a saved JSON report (from `report --json`, or an APISnoop release file) instead of --spec/--audit.
    #[arg(long = "from-report", value_name = "JSON", conflicts_with_all = ["spec", "audit"])]
    pub from_report: Option<PathBuf>,
    #[command(flatten)]
    pub meta: MetaArgs,
    /// Also count user agents matching this SQL LIKE pattern as tests (no wildcard = prefix), e.g. `live-test-writing`. Repeatable.
    #[arg(long = "user-agent", value_name = "PATTERN")]
    pub user_agent: Vec<String>,
    /// Release name to report (default: the spec's info.version).
    #[arg(long)]
    pub release: Option<String>,
    /// Worker threads for parsing (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Validate every audit line completely (bodies included) instead of stopping after verb, requestURI and userAgent; slower.
    #[arg(long = "strict-json")]
    pub strict_json: bool,
    #[command(flatten)]
    pub limits: InputLimitArgs,
}

/// How damaged audit input is handled.
#[derive(clap::Args, Debug, Clone)]
pub struct InputLimitArgs {
    /// Longest audit line read (e.g. `16MiB`, `1MB`, `4096`); a longer line is reported as malformed and skipped without being held in memory.
    #[arg(long = "max-line", value_name = "SIZE", default_value = "16MiB", value_parser = parse_max_line)]
    pub max_line: usize,
    /// Report coverage even when an audit log ends early (truncated .gz/.zst): print a warning instead of failing with exit status 2.
    #[arg(long = "allow-truncated")]
    pub allow_truncated: bool,
}

impl Default for InputLimitArgs {
    fn default() -> Self {
        InputLimitArgs {
            max_line: crate::audit::DEFAULT_MAX_LINE,
            allow_truncated: false,
        }
    }
}

fn parse_max_line(s: &str) -> Result<usize, String> {
    match crate::bench::parse_size(s) {
        Ok(0) => Err("the line cap must be at least 1 byte".into()),
        Ok(n) => usize::try_from(n).map_err(|_| format!("{s:?} is too large")),
        Err(e) => Err(e.to_string()),
    }
}

/// `endpoints` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct EndpointsArgs {
    /// OpenAPI v2 spec (swagger.json).
    #[arg(long, value_name = "SWAGGER")]
    pub spec: PathBuf,
    #[command(flatten)]
    pub meta: MetaArgs,
    /// Only endpoints whose operationId matches this SQL LIKE pattern (`%` = any text).
    #[arg(long, value_name = "PATTERN")]
    pub endpoint: Option<String>,
    /// Only endpoints of this level (stable, beta, alpha).
    #[arg(long)]
    pub level: Option<String>,
    /// Only conformance-eligible endpoints (stable, not deprecated, not ineligible).
    #[arg(long)]
    pub eligible: bool,
    /// Also list deprecated (watch) and untagged operations, which coverage ignores.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// `report` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Read the hits of a `prova serve` audit sink (--server URL [--since DUR]) instead of --spec/--audit.
    #[command(flatten)]
    pub sink: SinkArgs,
    #[command(flatten)]
    pub format: FormatArgs,
    /// Attach the JSON report to this prova job (the CLI stores it).
    #[arg(long, value_name = "ID")]
    pub job: Option<i64>,
    /// With --job: the run of the job to attach to.
    #[arg(long, value_name = "RUN", requires = "job")]
    pub run: Option<u32>,
}

/// `untested` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct UntestedArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Only endpoints whose operationId matches this SQL LIKE pattern, e.g. `%JobStatus`.
    #[arg(long, value_name = "PATTERN")]
    pub endpoint: Option<String>,
    /// Only endpoints of this kind (e.g. `Job`; case-insensitive).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only endpoints of this category (e.g. `batch`).
    #[arg(long)]
    pub category: Option<String>,
    /// Untested means "not conformance tested" instead of "not hit by any test".
    #[arg(long = "conf")]
    pub conf: bool,
    /// Include ineligible stable endpoints too.
    #[arg(long = "include-ineligible")]
    pub include_ineligible: bool,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// `tests` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct TestsArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// The endpoint(s): an operationId or SQL LIKE pattern, e.g. `%JobStatus`.
    #[arg(long, value_name = "PATTERN")]
    pub endpoint: String,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// `diff` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct DiffArgs {
    /// Coverage before: an audit log (needs --spec) or a saved JSON report.
    pub before: String,
    /// Coverage after: an audit log (needs --spec) or a saved JSON report.
    pub after: String,
    /// OpenAPI spec, needed when BEFORE or AFTER is an audit log.
    #[arg(long, value_name = "SWAGGER")]
    pub spec: Option<PathBuf>,
    #[command(flatten)]
    pub meta: MetaArgs,
    /// Also count user agents matching this SQL LIKE pattern as tests. Repeatable.
    #[arg(long = "user-agent", value_name = "PATTERN")]
    pub user_agent: Vec<String>,
    /// Exit with status 1 when an endpoint tested before is not tested after (removed endpoints included).
    #[arg(long = "fail-on-decrease")]
    pub fail_on_decrease: bool,
    #[command(flatten)]
    pub limits: InputLimitArgs,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// Result of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageOutcome {
    /// 0 = ok; 1 = `diff --fail-on-decrease` found lost coverage; 2 = usage or input error
    /// (errors are returned as `Err`, the CLI maps them to 2).
    pub exit_code: u8,
    /// Set when `report --job ID` was given: the CLI stores the report with the job.
    pub attach: Option<Attach>,
}

/// A report to attach to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attach {
    /// `--job`.
    pub job_id: i64,
    /// `--run`.
    pub run_id: Option<u32>,
    /// The report, as `report --json` prints it.
    pub report_json: String,
}

fn ok() -> CoverageOutcome {
    CoverageOutcome {
        exit_code: 0,
        attach: None,
    }
}

/// Runs a coverage command, printing to `out`. Progress for long inputs goes
/// to stderr only when stderr is a terminal.
pub fn run(cmd: CoverageCommand, out: &mut dyn Write) -> anyhow::Result<CoverageOutcome> {
    match cmd {
        CoverageCommand::Endpoints(a) => cmd_endpoints(a, out),
        CoverageCommand::Report(a) => cmd_report(a, out),
        CoverageCommand::Untested(a) => cmd_untested(a, out),
        CoverageCommand::Tests(a) => cmd_tests(a, out),
        CoverageCommand::Diff(a) => cmd_diff(a, out),
        CoverageCommand::Live(a) => {
            crate::live::client::live(&a, out)?;
            Ok(ok())
        }
        CoverageCommand::Bench(a) => {
            run_bench(&a, out)?;
            Ok(ok())
        }
    }
}

fn parse_level(s: &str) -> anyhow::Result<Level> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "stable" | "ga" => Level::Stable,
        "beta" => Level::Beta,
        "alpha" => Level::Alpha,
        other => bail!("unknown level {other:?} (stable, beta or alpha)"),
    })
}

fn cmd_endpoints(a: EndpointsArgs, out: &mut dyn Write) -> anyhow::Result<CoverageOutcome> {
    let spec = Spec::from_file(&a.spec)?;
    let conf = load_conformance(
        a.meta.conformance.as_deref(),
        a.meta.ineligible.as_deref(),
        a.meta.pending.as_deref(),
    )?;
    let pat = a.endpoint.as_deref().map(LikePattern::new);
    let level = a.level.as_deref().map(parse_level).transpose()?;
    let rows: Vec<EndpointRow<'_>> = spec
        .operations
        .iter()
        .filter(|o| a.all || o.is_endpoint())
        .map(|o| EndpointRow {
            op: o,
            eligible: o.is_endpoint()
                && o.level == Level::Stable
                && !conf.ineligible.contains_key(&o.endpoint),
            pending: conf.pending.contains(&o.endpoint),
        })
        .filter(|r| pat.as_ref().is_none_or(|p| p.matches(&r.op.endpoint)))
        .filter(|r| level.is_none_or(|l| r.op.level == l))
        .filter(|r| !a.eligible || r.eligible)
        .collect();
    render::endpoints(out, &rows, a.format.format())?;
    Ok(ok())
}

#[allow(clippy::too_many_arguments)]
fn analyze_opts(
    spec: &Path,
    audit: Vec<String>,
    meta: &MetaArgs,
    ua: &[String],
    release: Option<String>,
    threads: usize,
    strict: bool,
    limits: &InputLimitArgs,
) -> AnalyzeOptions {
    AnalyzeOptions {
        spec: spec.to_path_buf(),
        audit,
        conformance: meta.conformance.clone(),
        ineligible: meta.ineligible.clone(),
        pending: meta.pending.clone(),
        user_agents: ua.to_vec(),
        release,
        read: ReadOptions {
            threads,
            progress: true,
            strict,
            max_line: limits.max_line,
        },
    }
}

/// A truncated or unreadable input makes the coverage incomplete: an error
/// (exit status 2) naming each input and the lines read before the cut,
/// unless `--allow-truncated`.
fn check_inputs(summary: &ReadSummary, limits: &InputLimitArgs) -> anyhow::Result<()> {
    if summary.input_errors.is_empty() {
        return Ok(());
    }
    if limits.allow_truncated {
        for e in &summary.input_errors {
            eprintln!("warning: {e}");
        }
        return Ok(());
    }
    bail!(
        "{}\n(coverage from an incomplete log would be wrong; pass --allow-truncated to report it anyway)",
        summary.input_errors.join("\n")
    )
}

fn load(source: &SourceArgs) -> anyhow::Result<Report> {
    if let Some(path) = &source.from_report {
        let mut report = Report::from_file(path)?;
        if !report.eligibility_known && source.meta.ineligible.is_some() {
            let conf = load_conformance(
                None,
                source.meta.ineligible.as_deref(),
                source.meta.pending.as_deref(),
            )?;
            report.apply_eligibility(&conf);
        }
        return Ok(report);
    }
    let Some(spec) = &source.spec else {
        bail!("--spec SWAGGER is required (or --from-report JSON)");
    };
    if source.audit.is_empty() {
        bail!("--audit FILE is required (use `-` for stdin)");
    }
    let opts = analyze_opts(
        spec,
        source.audit.clone(),
        &source.meta,
        &source.user_agent,
        source.release.clone(),
        source.threads,
        source.strict_json,
        &source.limits,
    );
    let (report, summary) = analyze(&opts)?;
    check_inputs(&summary, &source.limits)?;
    Ok(report)
}

fn cmd_report(a: ReportArgs, out: &mut dyn Write) -> anyhow::Result<CoverageOutcome> {
    let report = if a.sink.server.is_some() {
        sink_report(&a)?
    } else if a.sink.since.is_some() {
        bail!("--since needs --server URL (it selects the hits of a prova serve audit sink)");
    } else {
        load(&a.source)?
    };
    render::report(out, &report, a.format.format())?;
    Ok(CoverageOutcome {
        exit_code: 0,
        attach: a.job.map(|job_id| Attach {
            job_id,
            run_id: a.run,
            report_json: report.to_json(),
        }),
    })
}

/// `report --server`: the sink computes the report with its spec; the
/// conformance files given here refine eligibility.
fn sink_report(a: &ReportArgs) -> anyhow::Result<Report> {
    let s = &a.source;
    if s.spec.is_some() || !s.audit.is_empty() || s.from_report.is_some() {
        bail!(
            "--server reads the sink's hits with the server's spec: leave out --spec, --audit and --from-report"
        );
    }
    if !s.user_agent.is_empty() {
        bail!("--user-agent is not available with --server: the sink credits e2e.test agents");
    }
    let mut report = crate::live::client::report(&a.sink)?;
    if s.meta.ineligible.is_some() || s.meta.pending.is_some() {
        let conf = load_conformance(
            None,
            s.meta.ineligible.as_deref(),
            s.meta.pending.as_deref(),
        )?;
        report.apply_eligibility(&conf);
    }
    Ok(report)
}

fn cmd_untested(a: UntestedArgs, out: &mut dyn Write) -> anyhow::Result<CoverageOutcome> {
    let report = load(&a.source)?;
    let pat = a.endpoint.as_deref().map(LikePattern::new);
    // A saved APISnoop file has no eligibility flags (unless --ineligible
    // supplied them): every stable endpoint is listed, and the user is told.
    let has_eligibility = report.eligibility_known;
    if !has_eligibility && !a.include_ineligible {
        eprintln!(
            "note: this report does not say which endpoints are eligible (an APISnoop release file): \
             all stable endpoints are listed; pass --ineligible ineligible_endpoints.yaml to leave out ineligible ones"
        );
    }
    let rows: Vec<&EndpointCoverage> = report
        .endpoints
        .iter()
        .filter(|e| e.level == Level::Stable)
        .filter(|e| a.include_ineligible || !has_eligibility || e.eligible)
        .filter(|e| if a.conf { !e.conf_tested } else { !e.tested })
        .filter(|e| pat.as_ref().is_none_or(|p| p.matches(&e.endpoint)))
        .filter(|e| {
            a.kind.as_deref().is_none_or(|k| {
                e.kind
                    .as_deref()
                    .is_some_and(|ek| ek.eq_ignore_ascii_case(k))
            })
        })
        .filter(|e| {
            a.category
                .as_deref()
                .is_none_or(|c| e.category.eq_ignore_ascii_case(c))
        })
        .collect();
    render::untested(out, &rows, a.format.format())?;
    Ok(ok())
}

fn cmd_tests(a: TestsArgs, out: &mut dyn Write) -> anyhow::Result<CoverageOutcome> {
    let report = load(&a.source)?;
    let pat = LikePattern::new(&a.endpoint);
    let matched: Vec<&EndpointCoverage> = report
        .endpoints
        .iter()
        .filter(|e| pat.matches(&e.endpoint))
        .collect();
    if matched.is_empty() {
        bail!("no endpoint matches {:?}", a.endpoint);
    }
    let by_name: std::collections::HashMap<&str, &crate::report::TestCoverage> =
        report.tests.iter().map(|t| (t.test.as_str(), t)).collect();
    let hits: Vec<TestHit> = matched
        .iter()
        .flat_map(|e| {
            e.tests.iter().map(|t| {
                let meta = by_name.get(t.as_str());
                TestHit {
                    endpoint: e.endpoint.clone(),
                    test: t.clone(),
                    conformance_test: meta.is_some_and(|m| m.conformance_test),
                    conformance_agent: meta.is_some_and(|m| m.conformance_agent)
                        || t.contains("[Conformance]"),
                }
            })
        })
        .collect();
    render::tests(out, &matched, &hits, a.format.format())?;
    Ok(ok())
}

/// A saved report, if `path` is one (a JSON object with the report's keys).
fn try_report(path: &str) -> Option<Report> {
    if path == "-" {
        return None;
    }
    let mut f = std::fs::File::open(path).ok()?;
    let mut magic = [0u8; 1];
    // Audit logs that are compressed or JSON lines fail fast here.
    loop {
        std::io::Read::read_exact(&mut f, &mut magic).ok()?;
        if !magic[0].is_ascii_whitespace() {
            break;
        }
    }
    if magic[0] != b'{' {
        return None;
    }
    let f = std::fs::File::open(path).ok()?;
    serde_json::from_reader(std::io::BufReader::new(f)).ok()
}

fn cmd_diff(a: DiffArgs, out: &mut dyn Write) -> anyhow::Result<CoverageOutcome> {
    let load_side = |input: &str| -> anyhow::Result<Report> {
        if let Some(r) = try_report(input) {
            return Ok(r);
        }
        let Some(spec) = &a.spec else {
            bail!("{input} is not a saved JSON report; reading an audit log needs --spec SWAGGER");
        };
        let opts = analyze_opts(
            spec,
            vec![input.to_string()],
            &a.meta,
            &a.user_agent,
            None,
            0,
            false,
            &a.limits,
        );
        let (r, summary) = analyze(&opts).with_context(|| format!("reading {input}"))?;
        check_inputs(&summary, &a.limits)?;
        Ok(r)
    };
    let before = load_side(&a.before)?;
    let after = load_side(&a.after)?;
    let d = diff(&before, &after);
    render::diff(out, &d, a.format.format())?;
    Ok(CoverageOutcome {
        exit_code: if a.fail_on_decrease && d.decreased() {
            1
        } else {
            0
        },
        attach: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: CoverageCommand,
    }

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_job_and_run() {
        let cli = Cli::try_parse_from([
            "prova", "report", "--spec", "s.json", "--audit", "a.log", "b.log.gz", "--job", "7",
            "--run", "2", "--json",
        ])
        .unwrap();
        let CoverageCommand::Report(r) = cli.cmd else {
            panic!("not report")
        };
        assert_eq!(r.job, Some(7));
        assert_eq!(r.run, Some(2));
        assert_eq!(r.source.audit, ["a.log", "b.log.gz"]);
        assert!(r.format.json);
        assert!(Cli::try_parse_from(["prova", "report", "--run", "2"]).is_err());
        assert!(Cli::try_parse_from(["prova", "report", "--json", "--csv"]).is_err());
    }
}
