//! Coverage before/after: which endpoints a new test run newly hits.
//!
//! Compares two [`Report`]s endpoint by endpoint (by operation id), over the
//! union of both sides' endpoints: the two can come from different releases
//! (APISnoop's 1.36.0 and 1.37.0 files differ by 54 removed and 20 added
//! endpoints). An endpoint removed while it was tested is a loss; one added
//! already tested is a gain. Each side's totals and percentages count its
//! own endpoints. "Coverage" is `tested` (hit by a test), as in APISnoop's
//! `projected_change_in_coverage`; conformance coverage (`conf_tested`) is
//! reported beside it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::Report;
use crate::spec::Level;

/// Old/new coverage of one group of endpoints.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct GroupChange {
    /// Category (or `level:stable`, or `total`).
    pub group: String,
    /// Endpoints in the group after (AFTER's spec).
    pub total: u64,
    /// Endpoints in the group before (BEFORE's spec).
    pub old_total: u64,
    /// Tested before.
    pub old_tested: u64,
    /// Tested after.
    pub new_tested: u64,
    /// Conformance tested before.
    pub old_conf_tested: u64,
    /// Conformance tested after.
    pub new_conf_tested: u64,
    /// Endpoints of the group tested after and not before (added ones included).
    pub gained: u64,
    /// Endpoints of the group tested before and not after (removed ones included).
    pub lost: u64,
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
    /// Endpoints only in AFTER (new in its spec), sorted.
    pub added: Vec<String>,
    /// Endpoints only in BEFORE (gone from AFTER's spec), sorted.
    pub removed: Vec<String>,
    /// Per level (`stable`, `beta`, `alpha`).
    pub levels: Vec<GroupChange>,
    /// Per category, sorted by name.
    pub categories: Vec<GroupChange>,
    /// All endpoints.
    pub total: GroupChange,
}

impl Diff {
    /// The headline: `+3: a, b, c` (and `-N: …` when coverage was lost).
    /// Endpoints added or removed between the two specs are marked so.
    pub fn change_line(&self) -> String {
        let mut s = format!("+{}", self.newly_tested.len());
        if !self.newly_tested.is_empty() {
            s.push_str(": ");
            s.push_str(&self.marked(&self.newly_tested));
        }
        if !self.no_longer_tested.is_empty() {
            s.push_str(&format!(
                "\n-{}: {}",
                self.no_longer_tested.len(),
                self.marked(&self.no_longer_tested)
            ));
        }
        if !self.added.is_empty() || !self.removed.is_empty() {
            s.push_str(&format!(
                "\nendpoints: {} added, {} removed between the two specs",
                self.added.len(),
                self.removed.len()
            ));
        }
        s
    }

    fn marked(&self, names: &[String]) -> String {
        let mark = |n: &String| {
            if self.added.binary_search(n).is_ok() {
                format!("{n} (new endpoint)")
            } else if self.removed.binary_search(n).is_ok() {
                format!("{n} (removed endpoint)")
            } else {
                n.clone()
            }
        };
        names.iter().map(mark).collect::<Vec<_>>().join(", ")
    }

    /// True when some endpoint lost its (test or conformance) coverage.
    pub fn decreased(&self) -> bool {
        !self.no_longer_tested.is_empty() || !self.no_longer_conf_tested.is_empty()
    }
}

/// One endpoint on each side: `(tested, conf_tested)` where present.
struct Sides<'a> {
    category: &'a str,
    level: Level,
    old: Option<(bool, bool)>,
    new: Option<(bool, bool)>,
}

/// Compares `before` with `after`.
pub fn diff(before: &Report, after: &Report) -> Diff {
    let mut union: BTreeMap<&str, Sides<'_>> = BTreeMap::new();
    for e in &before.endpoints {
        union.insert(
            &e.endpoint,
            Sides {
                category: &e.category,
                level: e.level,
                old: Some((e.tested, e.conf_tested)),
                new: None,
            },
        );
    }
    for e in &after.endpoints {
        let s = union.entry(&e.endpoint).or_insert(Sides {
            category: &e.category,
            level: e.level,
            old: None,
            new: None,
        });
        // AFTER's category and level win when an endpoint moved.
        s.category = &e.category;
        s.level = e.level;
        s.new = Some((e.tested, e.conf_tested));
    }
    let mut d = Diff {
        total: GroupChange {
            group: "total".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut cats: BTreeMap<&str, GroupChange> = BTreeMap::new();
    let mut levels: BTreeMap<std::cmp::Reverse<Level>, GroupChange> = BTreeMap::new();
    for (name, s) in &union {
        let (ot, oc) = s.old.unwrap_or((false, false));
        let (nt, nc) = s.new.unwrap_or((false, false));
        let name = name.to_string();
        match (s.old.is_some(), s.new.is_some()) {
            (false, true) => d.added.push(name.clone()),
            (true, false) => d.removed.push(name.clone()),
            _ => {}
        }
        if nt && !ot {
            d.newly_tested.push(name.clone());
        }
        if ot && !nt {
            d.no_longer_tested.push(name.clone());
        }
        if nc && !oc {
            d.newly_conf_tested.push(name.clone());
        }
        if oc && !nc {
            d.no_longer_conf_tested.push(name);
        }
        let cat = cats.entry(s.category).or_insert_with(|| GroupChange {
            group: s.category.to_string(),
            ..Default::default()
        });
        let lvl = levels
            .entry(std::cmp::Reverse(s.level))
            .or_insert_with(|| GroupChange {
                group: s.level.to_string(),
                ..Default::default()
            });
        for g in [cat, lvl, &mut d.total] {
            g.old_total += s.old.is_some() as u64;
            g.total += s.new.is_some() as u64;
            g.old_tested += ot as u64;
            g.new_tested += nt as u64;
            g.old_conf_tested += oc as u64;
            g.new_conf_tested += nc as u64;
            g.gained += (nt && !ot) as u64;
            g.lost += (ot && !nt) as u64;
        }
    }
    d.categories = cats.into_values().collect();
    d.levels = levels.into_values().collect();
    d
}
