//! Output formats: a table (default), JSON, CSV and a self-contained HTML page.

pub mod html;
pub mod table;

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::diff::{Diff, GroupChange};
use crate::report::{EndpointCoverage, Report};
use crate::spec::{Level, Operation};
use table::{clean, pct, ratio, write_csv, write_table};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned text table.
    #[default]
    Table,
    /// JSON.
    Json,
    /// CSV.
    Csv,
    /// One self-contained HTML file.
    Html,
}

fn json<T: Serialize + ?Sized>(out: &mut dyn Write, v: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// Coverage of a group of endpoints.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct GroupStats {
    /// Group name.
    pub group: String,
    /// Endpoints.
    pub total: u64,
    /// Tested.
    pub tested: u64,
    /// Conformance tested.
    pub conf_tested: u64,
    /// Eligible for conformance.
    pub eligible: u64,
    /// Eligible and conformance tested.
    pub eligible_conf_tested: u64,
}

impl GroupStats {
    fn add(&mut self, e: &EndpointCoverage) {
        self.total += 1;
        self.tested += e.tested as u64;
        self.conf_tested += e.conf_tested as u64;
        self.eligible += e.eligible as u64;
        self.eligible_conf_tested += (e.eligible && e.conf_tested) as u64;
    }
}

/// Coverage per level (stable, beta, alpha) and per category.
pub fn group_stats(report: &Report) -> (Vec<GroupStats>, Vec<GroupStats>) {
    let mut levels: BTreeMap<std::cmp::Reverse<Level>, GroupStats> = BTreeMap::new();
    let mut cats: BTreeMap<&str, GroupStats> = BTreeMap::new();
    for e in &report.endpoints {
        levels
            .entry(std::cmp::Reverse(e.level))
            .or_insert_with(|| GroupStats {
                group: e.level.to_string(),
                ..Default::default()
            })
            .add(e);
        cats.entry(e.category.as_str())
            .or_insert_with(|| GroupStats {
                group: e.category.clone(),
                ..Default::default()
            })
            .add(e);
    }
    (levels.into_values().collect(), cats.into_values().collect())
}

fn endpoint_row(e: &EndpointCoverage) -> Vec<String> {
    vec![
        e.endpoint.clone(),
        e.level.to_string(),
        e.category.clone(),
        opt(&e.group),
        opt(&e.version),
        opt(&e.kind),
        opt(&e.action),
        e.path.clone(),
        e.tested.to_string(),
        e.conf_tested.to_string(),
        e.eligible.to_string(),
        e.pending.to_string(),
        e.hits.to_string(),
        e.tests.len().to_string(),
    ]
}

const ENDPOINT_HEADERS: [&str; 14] = [
    "endpoint",
    "level",
    "category",
    "group",
    "version",
    "kind",
    "action",
    "path",
    "tested",
    "conf_tested",
    "eligible",
    "pending",
    "hits",
    "tests",
];

/// `report`: the full report.
pub fn report(out: &mut dyn Write, r: &Report, format: Format) -> io::Result<()> {
    match format {
        Format::Json => json(out, r),
        Format::Csv => {
            let rows: Vec<_> = r.endpoints.iter().map(endpoint_row).collect();
            write_csv(out, &ENDPOINT_HEADERS, &rows)
        }
        Format::Html => html::report(out, r),
        Format::Table => {
            writeln!(
                out,
                "Kubernetes API coverage, release {}",
                clean(&r.release)
            )?;
            writeln!(out, "spec:  {}", clean(&r.spec))?;
            writeln!(out, "audit: {}", clean(&r.sources.join(", ")))?;
            writeln!(
                out,
                "events: {} read, {} mapped, {} outside coverage (deprecated/untagged), {} unmapped ({} malformed)\n",
                r.events.total,
                r.events.mapped,
                r.events.outside_coverage,
                r.events.unmapped,
                r.events.malformed
            )?;
            let rows = vec![
                vec![
                    "total endpoints".into(),
                    r.total_endpoints.to_string(),
                    String::new(),
                ],
                vec![
                    "tested endpoints".into(),
                    r.tested_endpoints.to_string(),
                    pct(r.tested_endpoints, r.total_endpoints),
                ],
                vec![
                    "conformance tested endpoints".into(),
                    r.conformance_tested_endpoints.to_string(),
                    pct(r.conformance_tested_endpoints, r.total_endpoints),
                ],
                vec![
                    "total conformance eligible endpoints".into(),
                    r.total_eligible.to_string(),
                    String::new(),
                ],
                vec![
                    "tested conformance eligible endpoints".into(),
                    r.tested_eligible.to_string(),
                    pct(r.tested_eligible, r.total_eligible),
                ],
                vec![
                    "pending eligible endpoints".into(),
                    r.pending_eligible.to_string(),
                    String::new(),
                ],
            ];
            write_table(out, &["totals", "count", "%"], &rows)?;
            if !r.eligibility_known {
                writeln!(
                    out,
                    "(eligible totals as the file states them; which endpoints are eligible is not in it: add --ineligible FILE)"
                )?;
            }
            let (levels, cats) = group_stats(r);
            let grow = |g: &GroupStats| {
                vec![
                    g.group.clone(),
                    g.total.to_string(),
                    g.tested.to_string(),
                    pct(g.tested, g.total),
                    g.conf_tested.to_string(),
                    if r.eligibility_known {
                        ratio(g.eligible_conf_tested, g.eligible)
                    } else {
                        "n/a".into()
                    },
                ]
            };
            let heads = [
                "",
                "endpoints",
                "tested",
                "%",
                "conf tested",
                "eligible conf tested",
            ];
            writeln!(out)?;
            let mut h = heads;
            h[0] = "level";
            write_table(out, &h, &levels.iter().map(grow).collect::<Vec<_>>())?;
            writeln!(out)?;
            h[0] = "category";
            write_table(out, &h, &cats.iter().map(grow).collect::<Vec<_>>())?;
            writeln!(out, "\ntests seen: {}", r.tests.len())?;
            unmapped(out, r)
        }
    }
}

fn unmapped(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    if r.unmapped.total == 0 && r.unmapped.input_errors.is_empty() {
        return writeln!(out, "unmapped events: 0");
    }
    writeln!(out, "\nunmapped events: {}", r.unmapped.total)?;
    for reason in &r.unmapped.reasons {
        writeln!(out, "  {}: {}", reason.reason, reason.count)?;
        for ex in &reason.examples {
            let pos = match ex.item {
                Some(item) => format!("{}:{} item {item}", clean(&ex.file), ex.line),
                None => format!("{}:{}", clean(&ex.file), ex.line),
            };
            match &ex.error {
                Some(e) => writeln!(out, "    {pos}: {}", clean(e))?,
                None => writeln!(
                    out,
                    "    {pos}: {} {} ({})",
                    if ex.verb.is_empty() {
                        "\"\"".into()
                    } else {
                        clean(&ex.verb)
                    },
                    clean(&ex.request_uri),
                    clean(ex.user_agent.as_deref().unwrap_or("no user agent"))
                )?,
            }
        }
    }
    for e in &r.unmapped.input_errors {
        writeln!(out, "  input error: {}", clean(e))?;
    }
    Ok(())
}

/// A row of `endpoints`.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointRow<'a> {
    /// The operation.
    #[serde(flatten)]
    pub op: &'a Operation,
    /// Conformance eligible.
    pub eligible: bool,
    /// Pending eligible.
    pub pending: bool,
}

/// `endpoints`: the spec's endpoints.
pub fn endpoints(out: &mut dyn Write, rows: &[EndpointRow<'_>], format: Format) -> io::Result<()> {
    let heads = [
        "operationId",
        "method",
        "path",
        "level",
        "category",
        "group",
        "version",
        "kind",
        "action",
        "deprecated",
        "eligible",
        "pending",
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.op.endpoint.clone(),
                r.op.method.to_string(),
                r.op.path.clone(),
                r.op.level.to_string(),
                opt(&r.op.category),
                opt(&r.op.group),
                opt(&r.op.version),
                opt(&r.op.kind),
                opt(&r.op.action),
                r.op.deprecated.to_string(),
                r.eligible.to_string(),
                r.pending.to_string(),
            ]
        })
        .collect();
    match format {
        Format::Json => json(out, rows),
        Format::Csv => write_csv(out, &heads, &table),
        Format::Html => html::table_page(out, "Kubernetes API endpoints", &heads, &table),
        Format::Table => {
            write_table(out, &heads, &table)?;
            let n = |l: Level| rows.iter().filter(|r| r.op.level == l).count();
            writeln!(
                out,
                "\n{} endpoints: {} stable, {} beta, {} alpha; {} conformance eligible",
                rows.len(),
                n(Level::Stable),
                n(Level::Beta),
                n(Level::Alpha),
                rows.iter().filter(|r| r.eligible).count()
            )
        }
    }
}

/// `untested`: endpoints nobody tests.
pub fn untested(out: &mut dyn Write, rows: &[&EndpointCoverage], format: Format) -> io::Result<()> {
    let heads = [
        "endpoint", "kind", "category", "action", "path", "pending", "eligible",
    ];
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|e| {
            vec![
                e.endpoint.clone(),
                opt(&e.kind),
                e.category.clone(),
                opt(&e.action),
                e.path.clone(),
                e.pending.to_string(),
                e.eligible.to_string(),
            ]
        })
        .collect();
    match format {
        Format::Json => json(out, rows),
        Format::Csv => write_csv(out, &heads, &table),
        Format::Html => html::table_page(out, "Untested endpoints", &heads, &table),
        Format::Table => {
            write_table(out, &heads, &table)?;
            writeln!(out, "\n{} untested endpoints", rows.len())
        }
    }
}

/// A row of `tests`: one test that hit one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct TestHit {
    /// Endpoint.
    pub endpoint: String,
    /// Test name.
    pub test: String,
    /// Listed in conformance.yaml.
    pub conformance_test: bool,
    /// Its user agent carried `[Conformance]`.
    pub conformance_agent: bool,
}

/// `tests`: which tests hit the matched endpoints.
pub fn tests(
    out: &mut dyn Write,
    matched: &[&EndpointCoverage],
    hits: &[TestHit],
    format: Format,
) -> io::Result<()> {
    let heads = ["endpoint", "test", "conformance"];
    let table: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                h.endpoint.clone(),
                if h.test.is_empty() {
                    "(unnamed e2e test)".into()
                } else {
                    h.test.clone()
                },
                (h.conformance_test || h.conformance_agent).to_string(),
            ]
        })
        .collect();
    match format {
        Format::Json => json(out, hits),
        Format::Csv => write_csv(out, &heads, &table),
        Format::Html => html::table_page(out, "Tests per endpoint", &heads, &table),
        Format::Table => {
            write_table(out, &heads, &table)?;
            let untested: Vec<&str> = matched
                .iter()
                .filter(|e| e.tests.is_empty())
                .map(|e| e.endpoint.as_str())
                .collect();
            writeln!(
                out,
                "\n{} endpoints matched, {} test hits{}",
                matched.len(),
                hits.len(),
                if untested.is_empty() {
                    String::new()
                } else {
                    format!("; untested: {}", clean(&untested.join(", ")))
                }
            )
        }
    }
}

fn change(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

/// `diff`: coverage before and after.
pub fn diff(out: &mut dyn Write, d: &Diff, format: Format) -> io::Result<()> {
    let heads = [
        "group",
        "old endpoints",
        "new endpoints",
        "old tested",
        "new tested",
        "change",
        "old %",
        "new %",
        "old conf",
        "new conf",
        "conf change",
    ];
    let row = |g: &GroupChange| {
        vec![
            g.group.clone(),
            g.old_total.to_string(),
            g.total.to_string(),
            g.old_tested.to_string(),
            g.new_tested.to_string(),
            change(g.change()),
            // Each side's share of its own endpoints.
            pct(g.old_tested, g.old_total),
            pct(g.new_tested, g.total),
            g.old_conf_tested.to_string(),
            g.new_conf_tested.to_string(),
            change(g.conf_change()),
        ]
    };
    let changed: Vec<&GroupChange> = d
        .categories
        .iter()
        .filter(|g| {
            g.change() != 0
                || g.conf_change() != 0
                || g.old_total != g.total
                || g.gained + g.lost > 0
        })
        .collect();
    match format {
        Format::Json => json(out, d),
        Format::Csv => {
            let mut rows: Vec<Vec<String>> = d.categories.iter().map(row).collect();
            rows.extend(d.levels.iter().map(|g| {
                let mut r = row(g);
                r[0] = format!("level:{}", r[0]);
                r
            }));
            rows.push(row(&d.total));
            write_csv(out, &heads, &rows)
        }
        Format::Html => html::diff(out, d),
        Format::Table => {
            // Keep the headline's own line breaks; clean each line.
            for line in d.change_line().lines() {
                writeln!(out, "{}", clean(line))?;
            }
            if !d.newly_conf_tested.is_empty() || !d.no_longer_conf_tested.is_empty() {
                writeln!(
                    out,
                    "conformance: +{}{}{}",
                    d.newly_conf_tested.len(),
                    if d.newly_conf_tested.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", clean(&d.newly_conf_tested.join(", ")))
                    },
                    if d.no_longer_conf_tested.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "\nconformance: -{}: {}",
                            d.no_longer_conf_tested.len(),
                            clean(&d.no_longer_conf_tested.join(", "))
                        )
                    }
                )?;
            }
            writeln!(out)?;
            let mut rows: Vec<Vec<String>> = changed.iter().map(|g| row(g)).collect();
            rows.extend(d.levels.iter().map(|g| {
                let mut r = row(g);
                r[0] = format!("level {}", r[0]);
                r
            }));
            rows.push(row(&d.total));
            write_table(out, &heads, &rows)
        }
    }
}
