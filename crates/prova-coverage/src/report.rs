//! Aggregation of mapped events, and the coverage report in APISnoop's
//! release-file shape (`resources/coverage/<release>.json`).
//!
//! Per endpoint (APISnoop's `endpoint_coverage` view): `tested` = hit at least
//! once by a test user agent, `conf_tested` = hit at least once by a
//! `[Conformance]` user agent, `tests` = the distinct test names that hit it.
//! Every event counts: there is no filter on stage, response code or verb.
//! Totals: `total endpoints` (non-deprecated tagged operations), `tested
//! endpoints`, `total conformance eligible endpoints` (stable, not deprecated,
//! not ineligible) and `tested conformance eligible endpoints` (eligible and
//! conformance tested). prova adds hit counts, eligibility flags, per-test
//! endpoint lists and an `unmapped` section.
//!
//! Difference from APISnoop's file: APISnoop's `tests` arrays carry a SQL
//! `null` for events from non-test agents (`[null]` for untested
//! endpoints); prova lists only test names. Reading a release file back
//! ([`Report::from_json`]) drops those `null`s.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Deserializer, Serialize};

use crate::audit::{AuditEvent, EventError, EventSink, Loc, ReadSummary};
use crate::conformance::ConformanceData;
use crate::mapping::{Attributor, Router, Unmapped};
use crate::spec::{Level, Spec};
use rustc_hash::FxHashMap;

/// Examples kept per unmapped reason.
pub const EXAMPLES_PER_REASON: usize = 5;

/// What a worker needs to map and credit events.
#[derive(Debug)]
pub struct MapContext<'a> {
    /// The spec's router.
    pub router: &'a Router,
    /// Who gets credit.
    pub attributor: Attributor,
    /// Number of operations in the spec.
    pub operations: usize,
    /// The spec.
    pub spec: &'a Spec,
}

impl<'a> MapContext<'a> {
    /// Context for `spec`, with extra test user-agent patterns.
    pub fn new(spec: &'a Spec, extra_user_agents: &[String]) -> Self {
        let pod_binding = spec
            .operations
            .iter()
            .position(|o| o.endpoint == "createCoreV1NamespacedPodBinding")
            .map(|i| i as u32);
        MapContext {
            router: &spec.router,
            attributor: Attributor::new(extra_user_agents, pod_binding),
            operations: spec.operations.len(),
            spec,
        }
    }
}

#[derive(Debug, Clone)]
struct Example {
    loc: Loc,
    verb: String,
    request_uri: String,
    user_agent: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct ReasonTally {
    count: u64,
    examples: Vec<Example>,
}

impl ReasonTally {
    fn wants(&self, loc: Loc) -> bool {
        self.examples.len() < EXAMPLES_PER_REASON
            || self.examples.last().is_some_and(|e| loc < e.loc)
    }

    fn keep(&mut self, ex: Example) {
        self.examples.push(ex);
        self.examples.sort_by_key(|e| e.loc);
        self.examples.truncate(EXAMPLES_PER_REASON);
    }
}

/// Per-worker counts; an [`EventSink`]. Merge the workers' tallies with
/// [`Tally::merge`].
#[derive(Debug)]
pub struct Tally<'a> {
    ctx: &'a MapContext<'a>,
    op_hits: Vec<u64>,
    op_test_hits: Vec<u64>,
    op_conf_hits: Vec<u64>,
    test_ids: FxHashMap<Box<str>, u32>,
    test_names: Vec<Box<str>>,
    test_conf: Vec<bool>,
    test_ops: FxHashMap<(u32, u32), u64>,
    reasons: [ReasonTally; 6],
    events: u64,
}

impl<'a> Tally<'a> {
    /// An empty tally.
    pub fn new(ctx: &'a MapContext<'a>) -> Self {
        Tally {
            ctx,
            op_hits: vec![0; ctx.operations],
            op_test_hits: vec![0; ctx.operations],
            op_conf_hits: vec![0; ctx.operations],
            test_ids: FxHashMap::default(),
            test_names: Vec::new(),
            test_conf: Vec::new(),
            test_ops: FxHashMap::default(),
            reasons: Default::default(),
            events: 0,
        }
    }

    fn test_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.test_ids.get(name) {
            return id;
        }
        let id = self.test_names.len() as u32;
        self.test_names.push(name.into());
        self.test_conf.push(false);
        self.test_ids.insert(name.into(), id);
        id
    }

    /// Adds `other`'s counts to this tally.
    pub fn merge(&mut self, other: Tally<'_>) {
        for (a, b) in self.op_hits.iter_mut().zip(&other.op_hits) {
            *a += b;
        }
        for (a, b) in self.op_test_hits.iter_mut().zip(&other.op_test_hits) {
            *a += b;
        }
        for (a, b) in self.op_conf_hits.iter_mut().zip(&other.op_conf_hits) {
            *a += b;
        }
        let remap: Vec<u32> = other
            .test_names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let id = self.test_id(n);
                self.test_conf[id as usize] |= other.test_conf[i];
                id
            })
            .collect();
        for ((t, op), n) in other.test_ops {
            *self.test_ops.entry((remap[t as usize], op)).or_default() += n;
        }
        for (mine, theirs) in self.reasons.iter_mut().zip(other.reasons) {
            mine.count += theirs.count;
            for ex in theirs.examples {
                if mine.wants(ex.loc) {
                    mine.keep(ex);
                }
            }
        }
        self.events += other.events;
    }

    /// The spec events are mapped against.
    pub(crate) fn spec(&self) -> &'a Spec {
        self.ctx.spec
    }

    /// Merges many tallies into one.
    pub fn merge_all(mut tallies: Vec<Tally<'a>>) -> Option<Tally<'a>> {
        let mut first = tallies.pop()?;
        for t in tallies {
            first.merge(t);
        }
        Some(first)
    }
}

impl EventSink for Tally<'_> {
    fn event(&mut self, ev: &AuditEvent<'_>, loc: Loc) {
        self.events += 1;
        // The same function maps live (sink) input: one set of rules.
        match crate::live::map_event(self.ctx, ev) {
            Ok(hit) => {
                let i = hit.op as usize;
                self.op_hits[i] += 1;
                if hit.conformance {
                    self.op_conf_hits[i] += 1;
                }
                if let Some(test) = hit.test.as_deref() {
                    self.op_test_hits[i] += 1;
                    let t = self.test_id(test);
                    if hit.conformance {
                        self.test_conf[t as usize] = true;
                    }
                    *self.test_ops.entry((t, hit.op)).or_default() += 1;
                }
            }
            Err(reason) => {
                let r = &mut self.reasons[reason.index()];
                r.count += 1;
                if r.wants(loc) {
                    r.keep(Example {
                        loc,
                        verb: ev.verb.as_deref().unwrap_or("").to_string(),
                        request_uri: ev.request_uri.as_deref().unwrap_or("").to_string(),
                        user_agent: ev.user_agent.as_deref().map(str::to_string),
                        error: None,
                    });
                }
            }
        }
    }

    fn malformed(&mut self, error: &EventError, line: &[u8], loc: Loc) {
        self.events += 1;
        let r = &mut self.reasons[Unmapped::Malformed.index()];
        r.count += 1;
        if r.wants(loc) {
            let text = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
            r.keep(Example {
                loc,
                verb: String::new(),
                request_uri: String::new(),
                user_agent: None,
                error: Some(format!("{error}; line starts: {text}")),
            });
        }
    }
}

/// One endpoint's coverage (APISnoop's `endpoint_coverage` row plus prova's counts).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointCoverage {
    /// Operation id.
    pub endpoint: String,
    /// alpha / beta / stable.
    pub level: Level,
    /// First tag up to `_`.
    pub category: String,
    /// Spec path.
    pub path: String,
    /// GVK kind.
    pub kind: Option<String>,
    /// GVK group.
    pub group: Option<String>,
    /// GVK version.
    pub version: Option<String>,
    /// `x-kubernetes-action`.
    pub action: Option<String>,
    /// Description from the spec.
    #[serde(default)]
    pub description: Option<String>,
    /// Release of the spec.
    #[serde(default)]
    pub release: Option<String>,
    /// Hit by a test user agent.
    pub tested: bool,
    /// Hit by a `[Conformance]` user agent.
    pub conf_tested: bool,
    /// Distinct names of the tests that hit it, sorted.
    #[serde(deserialize_with = "strings_without_nulls", default)]
    pub tests: Vec<String>,
    /// Events mapped to it (prova).
    #[serde(default)]
    pub hits: u64,
    /// Of which by tests (prova).
    #[serde(default)]
    pub test_hits: u64,
    /// Of which by conformance agents (prova).
    #[serde(default)]
    pub conf_hits: u64,
    /// Conformance eligible: stable, not ineligible (prova).
    #[serde(default)]
    pub eligible: bool,
    /// Listed in pending_eligible_endpoints.yaml (prova).
    #[serde(default)]
    pub pending: bool,
    /// Why ineligible, when it is (prova).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ineligible_reason: Option<String>,
}

fn strings_without_nulls<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v: Option<Vec<Option<String>>> = Option::deserialize(d)?;
    Ok(v.unwrap_or_default().into_iter().flatten().collect())
}

/// A test seen in the logs (APISnoop's `audit_event_test` row plus prova's).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestCoverage {
    /// The test name from the user agent.
    pub test: String,
    /// conformance.yaml `testname`, when it is a conformance test.
    #[serde(default)]
    pub testname: Option<String>,
    /// conformance.yaml `file`.
    #[serde(default)]
    pub file: Option<String>,
    /// Listed in conformance.yaml.
    #[serde(default)]
    pub conformance_test: bool,
    /// conformance.yaml `release`, as `1.29.0`.
    #[serde(default)]
    pub promotion_release: Option<String>,
    /// Release of the spec.
    #[serde(default)]
    pub release: Option<String>,
    /// Its user agent carried `[Conformance]` (prova).
    #[serde(default)]
    pub conformance_agent: bool,
    /// Endpoints (and other operations) it hit, sorted (prova).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// Mapped events it made (prova).
    #[serde(default)]
    pub hits: u64,
}

/// One example of an unmapped event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmappedExample {
    /// Input file.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// 1-based item within the `EventList` or array on that line.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "item_number"
    )]
    pub item: Option<u64>,
    /// The event's verb.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    /// The event's requestURI.
    #[serde(
        rename = "requestURI",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub request_uri: String,
    /// The event's userAgent.
    #[serde(rename = "userAgent", default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// For malformed lines: the parse error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An item number; older reports wrote `"item": true` (line counted items).
fn item_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Number(u64),
        Flag(serde::de::IgnoredAny),
    }
    Ok(match Option::<Item>::deserialize(d)? {
        Some(Item::Number(n)) => Some(n),
        _ => None,
    })
}

/// Unmapped events of one reason.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmappedReason {
    /// Short reason (`bad verb`, …).
    pub reason: String,
    /// APISnoop's message.
    pub message: String,
    /// How many events.
    pub count: u64,
    /// The first few, in input order.
    pub examples: Vec<UnmappedExample>,
}

/// Events that map to no operation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnmappedSection {
    /// All unmapped events (malformed lines included).
    pub total: u64,
    /// Per reason, only reasons that occurred.
    pub reasons: Vec<UnmappedReason>,
    /// Inputs that ended early (e.g. truncated gzip).
    #[serde(default)]
    pub input_errors: Vec<String>,
}

/// Event counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventTotals {
    /// Events and malformed lines read.
    pub total: u64,
    /// Mapped to an operation of the spec.
    pub mapped: u64,
    /// Mapped to an operation outside coverage (deprecated `watch*` or untagged).
    pub outside_coverage: u64,
    /// Not mapped (incl. malformed).
    pub unmapped: u64,
    /// Lines that were not events.
    pub malformed: u64,
    /// Decompressed bytes read.
    pub bytes: u64,
}

/// The coverage report: APISnoop's release-file shape plus prova's sections.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// prova_core has a `Report` too (a reporter's verdict).
#[cfg_attr(feature = "openapi", schema(as = CoverageReport))]
pub struct Report {
    /// Release (spec `info.version` or `--release`).
    #[serde(default)]
    pub release: String,
    /// The spec it was computed against.
    #[serde(default)]
    pub spec: String,
    /// The audit logs read.
    #[serde(default, deserialize_with = "strings_without_nulls")]
    pub sources: Vec<String>,
    /// Non-deprecated endpoints.
    #[serde(rename = "total endpoints")]
    pub total_endpoints: u64,
    /// Endpoints hit by a test.
    #[serde(rename = "tested endpoints")]
    pub tested_endpoints: u64,
    /// Endpoints hit by a conformance agent (prova).
    #[serde(rename = "conformance tested endpoints", default)]
    pub conformance_tested_endpoints: u64,
    /// Stable, not deprecated, not ineligible.
    #[serde(rename = "total conformance eligible endpoints")]
    pub total_eligible: u64,
    /// Eligible and conformance tested.
    #[serde(rename = "tested conformance eligible endpoints")]
    pub tested_eligible: u64,
    /// Eligible endpoints listed as pending (prova).
    #[serde(rename = "pending eligible endpoints", default)]
    pub pending_eligible: u64,
    /// Per endpoint, stable first then by name.
    pub endpoints: Vec<EndpointCoverage>,
    /// Tests seen, by name.
    #[serde(default)]
    pub tests: Vec<TestCoverage>,
    /// Events that map to nothing (prova).
    #[serde(default)]
    pub unmapped: UnmappedSection,
    /// Event counts (prova).
    #[serde(default)]
    pub events: EventTotals,
    /// Whether each endpoint's `eligible` is known: false for an APISnoop
    /// release file read back (it only has the totals) until
    /// [`Report::apply_eligibility`] is given the ineligible list.
    #[serde(skip)]
    pub eligibility_known: bool,
}

/// Which endpoints of a saved report say whether they are eligible.
#[derive(Deserialize)]
struct EligibilityProbe {
    #[serde(default)]
    endpoints: Vec<ProbeEndpoint>,
}

#[derive(Deserialize)]
struct ProbeEndpoint {
    #[serde(default)]
    eligible: Option<serde::de::IgnoredAny>,
}

/// Errors reading a saved report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Not readable.
    #[error("cannot read report {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Not a report.
    #[error("{path}: not a coverage report: {error}")]
    Parse {
        /// The file.
        path: String,
        /// The error.
        error: serde_json::Error,
    },
}

impl Report {
    /// Reads a saved report (prova's or an APISnoop release file).
    pub fn from_json(bytes: &[u8], path: &str) -> Result<Report, ReportError> {
        let parse_error = |error| ReportError::Parse {
            path: path.to_string(),
            error,
        };
        let mut report: Report = serde_json::from_slice(bytes).map_err(parse_error)?;
        // APISnoop's files carry no per-endpoint eligibility; prova's do.
        let probe: EligibilityProbe = serde_json::from_slice(bytes).map_err(parse_error)?;
        report.eligibility_known =
            probe.endpoints.is_empty() || probe.endpoints.iter().any(|e| e.eligible.is_some());
        // Derivable from the endpoints (and absent from APISnoop's files).
        report.conformance_tested_endpoints =
            report.endpoints.iter().filter(|e| e.conf_tested).count() as u64;
        Ok(report)
    }

    /// Marks eligibility from conformance metadata, for a report whose
    /// endpoints do not carry it (an APISnoop release file): eligible =
    /// stable and not ineligible. The eligible totals are recomputed.
    pub fn apply_eligibility(&mut self, conf: &ConformanceData) {
        for e in &mut self.endpoints {
            let inel = conf.ineligible.get(&e.endpoint);
            e.eligible = e.level == Level::Stable && inel.is_none();
            e.ineligible_reason = inel.map(|r| r.reason.clone());
            e.pending = conf.pending.contains(&e.endpoint);
        }
        let count = |f: &dyn Fn(&EndpointCoverage) -> bool| {
            self.endpoints.iter().filter(|e| f(e)).count() as u64
        };
        self.total_eligible = count(&|e| e.eligible);
        self.tested_eligible = count(&|e| e.eligible && e.conf_tested);
        self.pending_eligible = count(&|e| e.eligible && e.pending);
        self.eligibility_known = true;
    }

    /// Reads a saved report file.
    pub fn from_file(path: &std::path::Path) -> Result<Report, ReportError> {
        let bytes = std::fs::read(path).map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Report::from_json(&bytes, &path.display().to_string())
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Endpoint by operation id.
    pub fn endpoint(&self, id: &str) -> Option<&EndpointCoverage> {
        self.endpoints.iter().find(|e| e.endpoint == id)
    }
}

/// Builds the report from the merged tally.
pub fn build_report(
    spec: &Spec,
    conf: &ConformanceData,
    tally: &Tally<'_>,
    summary: &ReadSummary,
    release: Option<&str>,
) -> Report {
    let release = release.unwrap_or(&spec.release).to_string();
    let mut op_tests: HashMap<u32, BTreeSet<&str>> = HashMap::new();
    let mut test_ops: BTreeMap<&str, (BTreeSet<&str>, u64)> = BTreeMap::new();
    for (&(t, op), &n) in &tally.test_ops {
        let name: &str = &tally.test_names[t as usize];
        op_tests.entry(op).or_default().insert(name);
        let e = test_ops.entry(name).or_default();
        e.0.insert(spec.operations[op as usize].endpoint.as_str());
        e.1 += n;
    }
    let mut endpoints: Vec<EndpointCoverage> = spec
        .endpoint_indices()
        .map(|i| {
            let o = &spec.operations[i];
            let inel = conf.ineligible.get(&o.endpoint);
            EndpointCoverage {
                endpoint: o.endpoint.clone(),
                level: o.level,
                category: o.category.clone().unwrap_or_default(),
                path: o.path.clone(),
                kind: o.kind.clone(),
                group: o.group.clone(),
                version: o.version.clone(),
                action: o.action.clone(),
                description: o.description.clone(),
                release: Some(release.clone()),
                tested: tally.op_test_hits[i] > 0,
                conf_tested: tally.op_conf_hits[i] > 0,
                tests: op_tests
                    .get(&(i as u32))
                    .map(|s| s.iter().map(|t| t.to_string()).collect())
                    .unwrap_or_default(),
                hits: tally.op_hits[i],
                test_hits: tally.op_test_hits[i],
                conf_hits: tally.op_conf_hits[i],
                eligible: o.level == Level::Stable && inel.is_none(),
                pending: conf.pending.contains(&o.endpoint),
                ineligible_reason: inel.map(|r| r.reason.clone()),
            }
        })
        .collect();
    endpoints.sort_by(|a, b| {
        (std::cmp::Reverse(a.level), &a.endpoint).cmp(&(std::cmp::Reverse(b.level), &b.endpoint))
    });
    let tests: Vec<TestCoverage> = test_ops
        .into_iter()
        .map(|(name, (eps, hits))| {
            let meta = conf.test(name);
            let id = tally.test_ids.get(name).copied().unwrap_or(0);
            TestCoverage {
                test: name.to_string(),
                testname: meta.map(|m| m.testname.clone()),
                file: meta.and_then(|m| m.file.clone()),
                conformance_test: meta.is_some(),
                promotion_release: meta.and_then(|m| m.promotion_release.clone()),
                release: Some(release.clone()),
                conformance_agent: tally.test_conf.get(id as usize).copied().unwrap_or(false),
                endpoints: eps.into_iter().map(str::to_string).collect(),
                hits,
            }
        })
        .collect();
    let reasons: Vec<UnmappedReason> = Unmapped::ALL
        .iter()
        .filter(|r| tally.reasons[r.index()].count > 0)
        .map(|r| {
            let t = &tally.reasons[r.index()];
            UnmappedReason {
                reason: r.name().to_string(),
                message: r.message().to_string(),
                count: t.count,
                examples: t
                    .examples
                    .iter()
                    .map(|e| {
                        let pos = summary.position(e.loc);
                        UnmappedExample {
                            file: pos.file,
                            line: pos.line,
                            item: pos.item,
                            verb: e.verb.clone(),
                            request_uri: e.request_uri.clone(),
                            user_agent: e.user_agent.clone(),
                            error: e.error.clone(),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let unmapped_total: u64 = tally.reasons.iter().map(|r| r.count).sum();
    let mapped: u64 = tally.op_hits.iter().sum();
    let in_coverage: u64 = spec.endpoint_indices().map(|i| tally.op_hits[i]).sum();
    let count =
        |f: &dyn Fn(&EndpointCoverage) -> bool| endpoints.iter().filter(|e| f(e)).count() as u64;
    Report {
        release,
        spec: spec.source.clone(),
        sources: summary.inputs.clone(),
        total_endpoints: endpoints.len() as u64,
        tested_endpoints: count(&|e| e.tested),
        conformance_tested_endpoints: count(&|e| e.conf_tested),
        total_eligible: count(&|e| e.eligible),
        tested_eligible: count(&|e| e.eligible && e.conf_tested),
        pending_eligible: count(&|e| e.eligible && e.pending),
        tests,
        unmapped: UnmappedSection {
            total: unmapped_total,
            reasons,
            input_errors: summary.input_errors.clone(),
        },
        events: EventTotals {
            total: tally.events,
            mapped,
            outside_coverage: mapped - in_coverage,
            unmapped: unmapped_total,
            malformed: tally.reasons[Unmapped::Malformed.index()].count,
            bytes: summary.bytes,
        },
        endpoints,
        eligibility_known: true,
    }
}
