//! What a job's tests newly cover, against a baseline.
//!
//! An endpoint is **newly covered** when the job's tests hit it, it is
//! conformance eligible (APISnoop's rules: stable, not deprecated, not in
//! `ineligible_endpoints.yaml`) and the baseline has it untested (`tested`
//! false, as APISnoop's `projected_change_in_coverage` counts; an endpoint
//! the baseline does not know, new in the cluster's spec, counts as
//! untested). Before/after are the baseline's tested eligible endpoints
//! and the same plus the newly covered ones.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::like::LikePattern;
use crate::report::Report;
use crate::spec::{Level, Spec};

/// The hits of the job's tests, per endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobHits {
    /// Endpoint (operation id) → hits and the tests that made them.
    pub endpoints: BTreeMap<String, EndpointHits>,
    /// Hits read (the job's tests' only).
    pub hits: u64,
    /// Hits of the job's tests on operations the spec does not know.
    pub unknown: u64,
}

/// One endpoint's hits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointHits {
    pub hits: u64,
    pub tests: BTreeSet<String>,
}

impl JobHits {
    /// Counts one hit of `test` on `endpoint`.
    pub fn add(&mut self, endpoint: &str, test: &str) {
        self.hits += 1;
        let e = self.endpoints.entry(endpoint.to_string()).or_default();
        e.hits += 1;
        if !e.tests.contains(test) {
            e.tests.insert(test.to_string());
        }
    }
}

/// Coverage of eligible endpoints at one moment.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Totals {
    #[serde(rename = "TestedEligible")]
    pub tested_eligible: u64,
    #[serde(rename = "TotalEligible")]
    pub total_eligible: u64,
    #[serde(rename = "Percent")]
    pub percent: f64,
}

impl Totals {
    fn new(tested: u64, total: u64) -> Totals {
        let percent = if total == 0 {
            0.0
        } else {
            (tested as f64 * 10000.0 / total as f64).round() / 100.0
        };
        Totals {
            tested_eligible: tested,
            total_eligible: total,
            percent,
        }
    }
}

/// One endpoint the job's tests hit.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HitEndpoint {
    #[serde(rename = "Endpoint")]
    pub endpoint: String,
    #[serde(rename = "Hits")]
    pub hits: u64,
    #[serde(rename = "Tests")]
    pub tests: Vec<String>,
    /// Tested in the baseline.
    #[serde(rename = "BaselineTested")]
    pub baseline_tested: bool,
    /// Conformance eligible.
    #[serde(rename = "Eligible")]
    pub eligible: bool,
}

/// The job's coverage against the baseline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobCoverage {
    /// Eligible, untested before, hit now; sorted.
    #[serde(rename = "NewlyCovered")]
    pub newly_covered: Vec<String>,
    /// Expected (`Expect`) but not newly covered.
    #[serde(rename = "Missing")]
    pub missing: Vec<String>,
    #[serde(rename = "Before")]
    pub before: Totals,
    #[serde(rename = "After")]
    pub after: Totals,
    /// Every endpoint the job's tests hit.
    #[serde(rename = "Endpoints")]
    pub endpoints: Vec<HitEndpoint>,
}

impl JobCoverage {
    /// The headline: `+3: a, b, c`.
    pub fn change_line(&self) -> String {
        let mut s = format!("+{}", self.newly_covered.len());
        if !self.newly_covered.is_empty() {
            s.push_str(": ");
            s.push_str(&self.newly_covered.join(", "));
        }
        s
    }
}

/// Whether `endpoint` is conformance eligible: the baseline's flag when it
/// has the endpoint, else from the spec (stable and not deprecated) and the
/// ineligible list.
fn eligible(
    spec: &Spec,
    baseline: &Report,
    conf: &crate::conformance::ConformanceData,
    endpoint: &str,
) -> bool {
    if let Some(e) = baseline.endpoint(endpoint) {
        return e.eligible;
    }
    spec.operations.iter().any(|o| {
        o.endpoint == endpoint
            && o.is_endpoint()
            && o.level == Level::Stable
            && !conf.ineligible.contains_key(endpoint)
    })
}

/// Compares the job's hits with the baseline.
pub fn job_coverage(
    spec: &Spec,
    baseline: &Report,
    conf: &crate::conformance::ConformanceData,
    hits: &JobHits,
    expect: &[String],
) -> JobCoverage {
    let mut newly = Vec::new();
    let mut endpoints = Vec::new();
    for (name, h) in &hits.endpoints {
        let baseline_tested = baseline.endpoint(name).is_some_and(|e| e.tested);
        let eligible = eligible(spec, baseline, conf, name);
        if eligible && !baseline_tested {
            newly.push(name.clone());
        }
        endpoints.push(HitEndpoint {
            endpoint: name.clone(),
            hits: h.hits,
            tests: h.tests.iter().cloned().collect(),
            baseline_tested,
            eligible,
        });
    }
    let total = baseline.endpoints.iter().filter(|e| e.eligible).count() as u64;
    let tested = baseline
        .endpoints
        .iter()
        .filter(|e| e.eligible && e.tested)
        .count() as u64;
    // Newly covered endpoints the baseline does not have add to the total too.
    let added = newly
        .iter()
        .filter(|n| baseline.endpoint(n).is_none())
        .count() as u64;
    let missing = expect
        .iter()
        .filter(|e| newly.binary_search(e).is_err())
        .cloned()
        .collect();
    JobCoverage {
        before: Totals::new(tested, total),
        after: Totals::new(tested + newly.len() as u64, total + added),
        newly_covered: newly,
        missing,
        endpoints,
    }
}

/// Removes the credit of tests matching `patterns` (SQL LIKE) from the
/// baseline, as if they had never run: the state a ticket was written
/// against, before its test existed. An endpoint left with no test is
/// untested; conformance tested only if a remaining test is a
/// `[Conformance]` one (APISnoop's rule on user agents).
pub fn remove_tests(report: &mut Report, patterns: &[LikePattern]) {
    if patterns.is_empty() {
        return;
    }
    let gone = |t: &str| patterns.iter().any(|p| p.matches(t));
    for e in &mut report.endpoints {
        let before = e.tests.len();
        e.tests.retain(|t| !gone(t));
        if e.tests.len() != before {
            e.tested = !e.tests.is_empty();
            e.conf_tested = e.tests.iter().any(|t| t.contains("[Conformance]"));
        }
    }
    report.tests.retain(|t| !gone(&t.test));
    report.tested_endpoints = report.endpoints.iter().filter(|e| e.tested).count() as u64;
    report.conformance_tested_endpoints =
        report.endpoints.iter().filter(|e| e.conf_tested).count() as u64;
    report.tested_eligible = report
        .endpoints
        .iter()
        .filter(|e| e.eligible && e.conf_tested)
        .count() as u64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::ConformanceData;

    use crate::reporter::tests::SPEC;

    fn baseline(spec: &Spec, tested: &[(&str, &str)]) -> Report {
        let ctx = crate::report::MapContext::new(spec, &[]);
        let tally = crate::report::Tally::new(&ctx);
        let mut r = crate::report::build_report(
            spec,
            &ConformanceData::default(),
            &tally,
            &Default::default(),
            None,
        );
        for (ep, test) in tested {
            let e = r.endpoints.iter_mut().find(|e| e.endpoint == *ep).unwrap();
            e.tested = true;
            e.conf_tested = test.contains("[Conformance]");
            e.tests.push(test.to_string());
        }
        r
    }

    fn hits(list: &[&str]) -> JobHits {
        let mut h = JobHits::default();
        for ep in list {
            h.add(ep, "[sig-apps] Job should apply changes to a job status");
        }
        h
    }

    #[test]
    fn newly_covered_is_eligible_untested_before_and_hit_now() {
        let spec = Spec::from_slice(SPEC.as_bytes(), "spec").unwrap();
        let base = baseline(&spec, &[("createBatchV1NamespacedJob", "other")]);
        let h = hits(&[
            "readBatchV1NamespacedJobStatus",
            "patchBatchV1NamespacedJobStatus",
            "replaceBatchV1NamespacedJobStatus",
            "readBatchV1NamespacedJobStatus",
            "createBatchV1NamespacedJob",
            "createBatchV1beta1NamespacedThing",
        ]);
        let expect = vec!["readBatchV1NamespacedJobStatus".to_string()];
        let c = job_coverage(&spec, &base, &ConformanceData::default(), &h, &expect);
        assert_eq!(
            c.change_line(),
            "+3: patchBatchV1NamespacedJobStatus, readBatchV1NamespacedJobStatus, replaceBatchV1NamespacedJobStatus"
        );
        assert!(c.missing.is_empty());
        // Four stable endpoints, one tested before; the beta one is not eligible.
        assert_eq!((c.before.tested_eligible, c.before.total_eligible), (1, 4));
        assert_eq!((c.after.tested_eligible, c.after.total_eligible), (4, 4));
        assert_eq!(c.before.percent, 25.0);
        let read = c
            .endpoints
            .iter()
            .find(|e| e.endpoint == "readBatchV1NamespacedJobStatus")
            .unwrap();
        assert_eq!(read.hits, 2);
        let beta = c
            .endpoints
            .iter()
            .find(|e| e.endpoint.contains("beta"))
            .unwrap();
        assert!(!beta.eligible && !beta.baseline_tested);
    }

    #[test]
    fn ineligible_and_already_tested_endpoints_are_not_new_and_expect_says_what_is_missing() {
        let spec = Spec::from_slice(SPEC.as_bytes(), "spec").unwrap();
        let mut conf = ConformanceData::default();
        conf.ineligible.insert(
            "patchBatchV1NamespacedJobStatus".into(),
            crate::conformance::Ineligible {
                reason: "r".into(),
                link: String::new(),
            },
        );
        let mut base = baseline(&spec, &[("readBatchV1NamespacedJobStatus", "t")]);
        base.apply_eligibility(&conf);
        let h = hits(&[
            "readBatchV1NamespacedJobStatus",
            "patchBatchV1NamespacedJobStatus",
        ]);
        let expect = vec![
            "readBatchV1NamespacedJobStatus".to_string(),
            "patchBatchV1NamespacedJobStatus".to_string(),
        ];
        let c = job_coverage(&spec, &base, &conf, &h, &expect);
        assert_eq!(c.change_line(), "+0");
        assert_eq!(c.missing, expect);
    }

    #[test]
    fn removing_a_tests_credit_leaves_endpoints_only_it_tested_untested() {
        let spec = Spec::from_slice(SPEC.as_bytes(), "spec").unwrap();
        let mut base = baseline(
            &spec,
            &[
                (
                    "readBatchV1NamespacedJobStatus",
                    "[sig-apps] Job should apply changes to a job status [Conformance]",
                ),
                (
                    "createBatchV1NamespacedJob",
                    "[sig-apps] Job should apply changes to a job status [Conformance]",
                ),
                (
                    "createBatchV1NamespacedJob",
                    "[sig-apps] Job other [Conformance]",
                ),
            ],
        );
        remove_tests(
            &mut base,
            &[LikePattern::new("[sig-apps] Job should apply changes%")],
        );
        let read = base.endpoint("readBatchV1NamespacedJobStatus").unwrap();
        assert!(!read.tested && !read.conf_tested && read.tests.is_empty());
        let create = base.endpoint("createBatchV1NamespacedJob").unwrap();
        assert!(create.tested && create.conf_tested);
        assert_eq!(create.tests, ["[sig-apps] Job other [Conformance]"]);
        assert_eq!(base.tested_endpoints, 1);
    }
}
