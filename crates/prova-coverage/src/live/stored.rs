//! A coverage report over the hits a live sink stored: each hit's `verb`,
//! `requestURI` and `userAgent` go through the same [`Tally`] as a line of
//! an audit log, so the report has the shape and the numbers of
//! `prova coverage report --json` over the same events.
//!
//! ```
//! use prova_coverage::conformance::ConformanceData;
//! use prova_coverage::live::stored::StoredTally;
//! use prova_coverage::report::MapContext;
//! use prova_coverage::spec::Spec;
//!
//! let spec = Spec::from_slice(br#"{"paths":{"/api/v1/nodes/{name}":{"get":{"operationId":"readCoreV1Node","tags":["core_v1"]}}}}"#, "spec").unwrap();
//! let ctx = MapContext::new(&spec, &[]);
//! let mut tally = StoredTally::new(&ctx);
//! tally.add("get", "/api/v1/nodes/n1", Some("e2e.test/v1.36 -- [sig-node] t"));
//! let report = tally.report(&ConformanceData::default(), "sink");
//! assert!(report.endpoint("readCoreV1Node").unwrap().tested);
//! ```

use std::borrow::Cow;

use crate::audit::event::Str;
use crate::audit::{AuditEvent, EventSink, Loc, ReadSummary};
use crate::conformance::ConformanceData;
use crate::report::{MapContext, Report, Tally, build_report};

/// Counts stored hits into a report.
#[derive(Debug)]
pub struct StoredTally<'a> {
    tally: Tally<'a>,
    hits: u32,
}

impl<'a> StoredTally<'a> {
    /// An empty tally against `ctx`'s spec.
    pub fn new(ctx: &'a MapContext<'a>) -> Self {
        StoredTally {
            tally: Tally::new(ctx),
            hits: 0,
        }
    }

    /// Counts one stored hit.
    pub fn add(&mut self, verb: &str, request_uri: &str, user_agent: Option<&str>) {
        self.hits = self.hits.saturating_add(1);
        let ev = AuditEvent {
            verb: Some(Str(Cow::Borrowed(verb))),
            request_uri: Some(Str(Cow::Borrowed(request_uri))),
            user_agent: user_agent.map(|u| Str(Cow::Borrowed(u))),
        };
        // Unmapped examples are positioned by hit number.
        let loc = Loc {
            chunk: u32::MAX,
            line: self.hits,
            item: 0,
        };
        self.tally.event(&ev, loc);
    }

    /// The report; `source` names where the hits came from (its `sources`).
    pub fn report(&self, conf: &ConformanceData, source: &str) -> Report {
        let mut summary = ReadSummary::default();
        summary.inputs = vec![source.to_string()];
        let spec = self.tally.spec();
        build_report(spec, conf, &self.tally, &summary, None)
    }
}
