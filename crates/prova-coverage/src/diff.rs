//! Coverage before/after: which endpoints a new test run newly hits.
//!
//! Compares two [`Report`]s endpoint by endpoint (by operation id). The
//! endpoint set is the AFTER report's; endpoints only in BEFORE (another
//! spec) are ignored. "Coverage" is `tested` (hit by a test), as in
//! APISnoop's `projected_change_in_coverage`; conformance coverage
//! (`conf_tested`) is reported beside it.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::report::Report;
use crate::spec::Level;

/// Old/new coverage of one group of endpoints.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct GroupChange {
    /// Category (or `level:stable`, or `total`).
    pub group: String,
    /// Endpoints in the group (AFTER's spec).
    pub total: u64,
    /// Tested before.
    pub old_tested: u64,
    /// Tested after.
    pub new_tested: u64,
    /// Conformance tested before.
    pub old_conf_tested: u64,
    /// Conformance tested after.
    pub new_conf_tested: u64,
}

impl GroupChange {
    /// `new_tested - old_tested`.
    pub fn change(&self) -> i64 {
        self.new_tested as i64 - self.old_tested as i64
    }

    /// `new_conf_tested - old_conf_tested`.
    pub fn conf_change(&self) -> i64 {
        self.new_conf_tested as i64 - self.old_conf_tested as i64
    }
}

/// The difference between two reports.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Diff {
    /// Endpoints tested after but not before, sorted.
    pub newly_tested: Vec<String>,
    /// Endpoints tested before but not after, sorted.
    pub no_longer_tested: Vec<String>,
    /// Endpoints conformance tested after but not before.
    pub newly_conf_tested: Vec<String>,
    /// Endpoints conformance tested before but not after.
    pub no_longer_conf_tested: Vec<String>,
    /// Per level (`stable`, `beta`, `alpha`).
    pub levels: Vec<GroupChange>,
    /// Per category, sorted by name.
    pub categories: Vec<GroupChange>,
    /// All endpoints.
    pub total: GroupChange,
}

impl Diff {
    /// The headline: `+3: a, b, c` (and `-N: …` when coverage was lost).
    pub fn change_line(&self) -> String {
        let mut s = format!("+{}", self.newly_tested.len());
        if !self.newly_tested.is_empty() {
            s.push_str(": ");
            s.push_str(&self.newly_tested.join(", "));
        }
        if !self.no_longer_tested.is_empty() {
            s.push_str(&format!(
                "\n-{}: {}",
                self.no_longer_tested.len(),
                self.no_longer_tested.join(", ")
            ));
        }
        s
    }

    /// True when some endpoint lost its (test or conformance) coverage.
    pub fn decreased(&self) -> bool {
        !self.no_longer_tested.is_empty() || !self.no_longer_conf_tested.is_empty()
    }
}

/// Compares `before` with `after`.
pub fn diff(before: &Report, after: &Report) -> Diff {
    let old: HashMap<&str, (bool, bool)> = before
        .endpoints
        .iter()
        .map(|e| (e.endpoint.as_str(), (e.tested, e.conf_tested)))
        .collect();
    let mut d = Diff {
        total: GroupChange {
            group: "total".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut cats: BTreeMap<&str, GroupChange> = BTreeMap::new();
    let mut levels: BTreeMap<std::cmp::Reverse<Level>, GroupChange> = BTreeMap::new();
    for e in &after.endpoints {
        let (ot, oc) = old
            .get(e.endpoint.as_str())
            .copied()
            .unwrap_or((false, false));
        if e.tested && !ot {
            d.newly_tested.push(e.endpoint.clone());
        }
        if !e.tested && ot {
            d.no_longer_tested.push(e.endpoint.clone());
        }
        if e.conf_tested && !oc {
            d.newly_conf_tested.push(e.endpoint.clone());
        }
        if !e.conf_tested && oc {
            d.no_longer_conf_tested.push(e.endpoint.clone());
        }
        let cat = cats
            .entry(e.category.as_str())
            .or_insert_with(|| GroupChange {
                group: e.category.clone(),
                ..Default::default()
            });
        let lvl = levels
            .entry(std::cmp::Reverse(e.level))
            .or_insert_with(|| GroupChange {
                group: e.level.to_string(),
                ..Default::default()
            });
        for g in [cat, lvl, &mut d.total] {
            g.total += 1;
            g.old_tested += ot as u64;
            g.new_tested += e.tested as u64;
            g.old_conf_tested += oc as u64;
            g.new_conf_tested += e.conf_tested as u64;
        }
    }
    for v in [
        &mut d.newly_tested,
        &mut d.no_longer_tested,
        &mut d.newly_conf_tested,
        &mut d.no_longer_conf_tested,
    ] {
        v.sort();
    }
    d.categories = cats.into_values().collect();
    d.levels = levels.into_values().collect();
    d
}
