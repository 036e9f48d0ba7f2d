//! One audit event (or one body of events) → endpoint hits, by the same
//! rules as `prova coverage report`. This is the entry point for input that
//! does not come from a file, such as the audit webhook's `EventList`
//! batches POSTed to a live sink: the file reader and a sink built on
//! [`map_body`] give the same answer on the same events. [`batch`] turns a
//! webhook batch into the hits a sink stores (with `auditID`, stage and
//! time); [`stored`] turns stored hits back into a report; [`client`] reads
//! a sink over HTTP (`prova coverage live`, `report --server`).
//!
//! ```
//! use prova_coverage::live::{map_body, Mapped};
//! use prova_coverage::report::MapContext;
//! use prova_coverage::spec::Spec;
//!
//! let spec = Spec::from_slice(br#"{"paths":{"/api/v1/nodes/{name}":{"get":{"operationId":"readCoreV1Node","tags":["core_v1"]}}}}"#, "spec").unwrap();
//! let ctx = MapContext::new(&spec, &[]);
//! let body = br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[
//!   {"verb":"get","requestURI":"/api/v1/nodes/n1","userAgent":"e2e.test/v1.36 -- [sig-node] t [Conformance]"}]}"#;
//! let items = map_body(&ctx, body, false);
//! match &items[0].mapped {
//!     Mapped::Hit(hit) => {
//!         assert_eq!(hit.endpoint, "readCoreV1Node");
//!         assert_eq!(hit.test.as_deref(), Some("[sig-node] t [Conformance]"));
//!         assert!(hit.conformance);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

pub mod batch;
pub mod client;
pub mod stored;

use std::borrow::Cow;

use crate::audit::{AuditEvent, EventError, for_each_event};
use crate::mapping::Unmapped;
use crate::report::MapContext;

/// An event mapped to an operation of the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit<'s, 'e> {
    /// Index of the operation in [`Spec::operations`](crate::spec::Spec::operations).
    pub op: u32,
    /// Its operation id.
    pub endpoint: &'s str,
    /// Counted in coverage (tagged and not deprecated).
    pub in_coverage: bool,
    /// Credited to a test.
    pub tested: bool,
    /// Credited to a conformance test.
    pub conformance: bool,
    /// The test's name, when `tested` (may be empty for an unnamed e2e
    /// agent); borrowed from the event's user agent.
    pub test: Option<Cow<'e, str>>,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped<'s> {
    /// It maps to an operation.
    Hit(Hit<'s, 'static>),
    /// It maps to no operation (APISnoop's reasons).
    Unmapped(Unmapped),
    /// It is not an audit event.
    Malformed(EventError),
}

/// One event of a body, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedItem<'s> {
    /// 1-based item number within the body's `EventList`/array (0 for a
    /// body that is one plain event).
    pub item: u32,
    /// `verb` (empty when malformed).
    pub verb: String,
    /// `requestURI` (empty when malformed).
    pub request_uri: String,
    /// `userAgent`.
    pub user_agent: Option<String>,
    /// The outcome.
    pub mapped: Mapped<'s>,
}

/// Maps one parsed event: the operation it hit and who gets the credit.
pub fn map_event<'s, 'e>(
    ctx: &MapContext<'s>,
    ev: &'e AuditEvent<'_>,
) -> Result<Hit<'s, 'e>, Unmapped> {
    let verb = ev.verb.as_deref().unwrap_or("");
    let uri = ev.request_uri.as_deref().unwrap_or("");
    let op = ctx.router.map(verb, uri)?;
    let credit = ctx
        .attributor
        .credit(ev.user_agent.as_deref(), Some(op), uri);
    let operation = &ctx.spec.operations[op as usize];
    Ok(Hit {
        op,
        endpoint: &operation.endpoint,
        in_coverage: operation.is_endpoint(),
        tested: credit.tested,
        conformance: credit.conformance,
        test: credit
            .tested
            .then(|| Cow::Borrowed(credit.test.unwrap_or(""))),
    })
}

/// Maps every event of `body`: a plain event, an `EventList` (the audit
/// webhook's batch) or an array of them, with the file reader's rules and
/// limits (depth, list nesting). `strict` validates each event completely.
pub fn map_body<'s>(ctx: &MapContext<'s>, body: &[u8], strict: bool) -> Vec<MappedItem<'s>> {
    let mut out = Vec::new();
    for_each_event(body, strict, &mut |item, _, r| {
        out.push(match r {
            Ok(ev) => MappedItem {
                item,
                verb: ev.verb.as_deref().unwrap_or("").to_string(),
                request_uri: ev.request_uri.as_deref().unwrap_or("").to_string(),
                user_agent: ev.user_agent.as_deref().map(str::to_string),
                mapped: match map_event(ctx, &ev) {
                    Ok(hit) => Mapped::Hit(Hit {
                        test: hit.test.map(|t| Cow::Owned(t.into_owned())),
                        ..hit
                    }),
                    Err(reason) => Mapped::Unmapped(reason),
                },
            },
            Err(e) => MappedItem {
                item,
                verb: String::new(),
                request_uri: String::new(),
                user_agent: None,
                mapped: Mapped::Malformed(e),
            },
        })
    });
    out
}
