//! Two jobs compared, subject by subject (tests and JUnit cases), as
//! Allure TestOps labels transitions: the base job (older, "before") and
//! the head job ("after").
//!
//! - **newly failing** (regressed): passed in the base, failed or error in
//!   the head.
//! - **newly passing** (fixed): failed or error in the base, passed in the
//!   head.
//! - **still failing**: failed or error in both.
//! - **added** / **removed**: in the head only / in the base only.
//! - **slower** / **faster**: passed in both, and the duration changed by
//!   at least [`DURATION_MIN_SECS`] seconds *and* at least
//!   [`DURATION_MIN_RATIO`] of the base's duration. Short tests jitter by
//!   large ratios and long ones by many seconds; both bounds together keep
//!   noise out.
//!
//! Everything else (passed in both within the thresholds, skipped,
//! incomplete) is counted as unchanged.

use serde::{Deserialize, Serialize};

use super::outcome::{Execution, JobOutcomes, Outcome, Subject};

/// A duration change must be at least this many seconds ...
pub const DURATION_MIN_SECS: f64 = 1.0;
/// ... and at least this fraction of the base's duration.
pub const DURATION_MIN_RATIO: f64 = 0.25;

/// One subject in both jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    #[serde(rename = "Subject")]
    pub subject: Subject,
    #[serde(rename = "Base", default, skip_serializing_if = "Option::is_none")]
    pub base: Option<Execution>,
    #[serde(rename = "Head", default, skip_serializing_if = "Option::is_none")]
    pub head: Option<Execution>,
    /// Head's duration minus base's, when both have one.
    #[serde(
        rename = "DurationDeltaSecs",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_delta_secs: Option<f64>,
}

/// Two jobs compared (see the module docs for each list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comparison {
    #[serde(rename = "Base")]
    pub base: JobRef,
    #[serde(rename = "Head")]
    pub head: JobRef,
    #[serde(rename = "NewlyFailing")]
    pub newly_failing: Vec<Change>,
    #[serde(rename = "NewlyPassing")]
    pub newly_passing: Vec<Change>,
    #[serde(rename = "StillFailing")]
    pub still_failing: Vec<Change>,
    #[serde(rename = "Added")]
    pub added: Vec<Change>,
    #[serde(rename = "Removed")]
    pub removed: Vec<Change>,
    #[serde(rename = "Slower")]
    pub slower: Vec<Change>,
    #[serde(rename = "Faster")]
    pub faster: Vec<Change>,
    #[serde(rename = "Unchanged")]
    pub unchanged: u32,
    /// The duration thresholds used: `{MinSecs, MinRatio}`.
    #[serde(rename = "DurationThreshold")]
    pub duration_threshold: DurationThreshold,
}

/// A job named in a comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobRef {
    #[serde(rename = "JobID")]
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: prova_core::JobId,
    #[serde(rename = "JobName")]
    pub name: String,
}

/// When a duration counts as changed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DurationThreshold {
    #[serde(rename = "MinSecs")]
    pub min_secs: f64,
    #[serde(rename = "MinRatio")]
    pub min_ratio: f64,
}

impl Default for DurationThreshold {
    fn default() -> Self {
        DurationThreshold {
            min_secs: DURATION_MIN_SECS,
            min_ratio: DURATION_MIN_RATIO,
        }
    }
}

impl Comparison {
    /// Something fails in the head that did not in the base: a regression,
    /// or an added subject that fails. `prova diff` exits 1 then.
    pub fn has_new_failures(&self) -> bool {
        !self.newly_failing.is_empty()
            || self
                .added
                .iter()
                .any(|c| c.head.as_ref().is_some_and(|h| h.outcome.is_failure()))
    }
}

/// Compares `head` against `base`.
pub fn compare_jobs(base: (&JobRef, &JobOutcomes), head: (&JobRef, &JobOutcomes)) -> Comparison {
    let t = DurationThreshold::default();
    let mut c = Comparison {
        base: base.0.clone(),
        head: head.0.clone(),
        duration_threshold: t,
        ..Default::default()
    };
    let (b, h) = (&base.1.subjects, &head.1.subjects);
    for (subject, bx) in b {
        let Some(hx) = h.get(subject) else {
            c.removed.push(change(subject, Some(bx), None));
            continue;
        };
        let ch = change(subject, Some(bx), Some(hx));
        let (bo, ho) = (bx.outcome, hx.outcome);
        if bo == Outcome::Passed && ho.is_failure() {
            c.newly_failing.push(ch);
        } else if bo.is_failure() && ho == Outcome::Passed {
            c.newly_passing.push(ch);
        } else if bo.is_failure() && ho.is_failure() {
            c.still_failing.push(ch);
        } else if bo == Outcome::Passed && ho == Outcome::Passed {
            match (ch.duration_delta_secs, bx.duration_secs) {
                (Some(d), Some(base_secs))
                    if d.abs() >= t.min_secs && d.abs() >= t.min_ratio * base_secs =>
                {
                    if d > 0.0 {
                        c.slower.push(ch);
                    } else {
                        c.faster.push(ch);
                    }
                }
                _ => c.unchanged += 1,
            }
        } else {
            c.unchanged += 1;
        }
    }
    for (subject, hx) in h {
        if !b.contains_key(subject) {
            c.added.push(change(subject, None, Some(hx)));
        }
    }
    // The biggest changes first.
    let by_delta = |x: &Change| x.duration_delta_secs.unwrap_or(0.0).abs();
    c.slower.sort_by(|x, y| by_delta(y).total_cmp(&by_delta(x)));
    c.faster.sort_by(|x, y| by_delta(y).total_cmp(&by_delta(x)));
    c
}

fn change(subject: &Subject, base: Option<&Execution>, head: Option<&Execution>) -> Change {
    let delta = match (
        base.and_then(|b| b.duration_secs),
        head.and_then(|h| h.duration_secs),
    ) {
        (Some(b), Some(h)) => Some(h - b),
        _ => None,
    };
    Change {
        subject: subject.clone(),
        base: base.cloned(),
        head: head.cloned(),
        duration_delta_secs: delta,
    }
}
