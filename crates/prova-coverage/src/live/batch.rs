//! One audit webhook batch (an `audit.k8s.io/v1` `EventList`) → the hits a
//! live sink stores.
//!
//! The list is walked by [`for_each_event`] and every event is mapped by
//! [`map_event`](super::map_event), as the file reader does, so the sink and
//! `prova coverage report` agree on the same events. On top of that a sink
//! needs what identifies an event and when it happened: `auditID` (the
//! API server retries a failed batch whole, so the sink drops an ID it
//! already has), `stage` and `stageTimestamp`. Those are read by the same
//! top-level scanner as the three coverage fields (the full parser,
//! [`parse_full`], when it declines).
//!
//! A batch is all or nothing: one item that is not an audit event, or has
//! no `auditID`, refuses the batch with an error naming the item, so the
//! sender learns what was wrong instead of losing events silently.
//! `RequestReceived` events are skipped: every request the API server
//! finishes is audited again at `ResponseStarted`, `ResponseComplete` or
//! `Panic`, and counting one stage per `auditID` is what makes a request a
//! single hit.

use serde::Deserialize;

use crate::audit::event::{Str, check_event, parse_full};
use crate::audit::scan::scan_strings;
use crate::audit::{AuditEvent, EventError, for_each_item, parse_event_strict};
use crate::report::MapContext;

/// The stage skipped by a sink (see the module docs).
pub const SKIPPED_STAGE: &str = "RequestReceived";

/// One event of a batch, mapped: what a sink stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchEvent<'s> {
    /// `auditID`.
    pub audit_id: String,
    /// The operation id, or `None` when the event maps to no endpoint.
    pub endpoint: Option<&'s str>,
    /// `verb`.
    pub verb: String,
    /// `requestURI` (path and query).
    pub request_uri: String,
    /// `userAgent`.
    pub user_agent: Option<String>,
    /// The test credited by the coverage rules (e2e.test's ` -- ` suffix,
    /// or the scheduler's pod binding); `None` for other agents and for an
    /// e2e agent that names no test.
    pub test_name: Option<String>,
    /// `stage`.
    pub stage: Option<String>,
    /// `stageTimestamp`, else `requestReceivedTimestamp`, else `timestamp`
    /// (older API versions), as written (RFC 3339).
    pub time: Option<String>,
    /// The event's own JSON text, when asked for.
    pub raw: Option<String>,
}

/// The events of a batch, and how many were skipped as `RequestReceived`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch<'s> {
    /// The events to store, in the batch's order.
    pub events: Vec<BatchEvent<'s>>,
    /// `RequestReceived` events left out.
    pub skipped: u32,
}

/// Why a batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The body is not an audit event, `EventList` or array of them.
    #[error("not an audit EventList: {0}")]
    Body(EventError),
    /// An item (1-based) is not an audit event.
    #[error("item {item}: {error}")]
    Item {
        /// Which item.
        item: u32,
        /// What is wrong with it.
        error: EventError,
    },
    /// An item has no `auditID`, so it could not be deduplicated.
    #[error("item {item}: no auditID (every audit.k8s.io event has one)")]
    NoAuditId {
        /// Which item.
        item: u32,
    },
}

/// The fields a sink needs beyond [`AuditEvent`](crate::audit::AuditEvent)'s.
#[derive(Debug, PartialEq, Deserialize)]
struct Identity<'a> {
    #[serde(borrow, default, rename = "auditID")]
    audit_id: Option<Str<'a>>,
    #[serde(borrow, default)]
    stage: Option<Str<'a>>,
    #[serde(borrow, default, rename = "stageTimestamp")]
    stage_timestamp: Option<Str<'a>>,
    #[serde(borrow, default, rename = "requestReceivedTimestamp")]
    received_timestamp: Option<Str<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Str<'a>>,
}

/// One event as a sink reads it: the coverage fields and the identity.
struct SinkEvent<'a> {
    ev: AuditEvent<'a>,
    id: Identity<'a>,
}

/// Reads one event in one pass of the top-level scanner (all eight fields:
/// about twice the batch rate of a full parse, and the identity fields come
/// after the bodies, so the pass has to reach the end anyway); the full
/// parser when the scanner declines, which also says what is wrong.
fn sink_event(text: &[u8]) -> Result<SinkEvent<'_>, EventError> {
    const KEYS: [&[u8]; 8] = [
        b"verb",
        b"requestURI",
        b"userAgent",
        b"auditID",
        b"stage",
        b"stageTimestamp",
        b"requestReceivedTimestamp",
        b"timestamp",
    ];
    match scan_strings(text, KEYS) {
        Some(
            [
                verb,
                request_uri,
                user_agent,
                audit_id,
                stage,
                stage_timestamp,
                received_timestamp,
                timestamp,
            ],
        ) => Ok(SinkEvent {
            ev: check_event(AuditEvent {
                verb,
                request_uri,
                user_agent,
            })?,
            id: Identity {
                audit_id,
                stage,
                stage_timestamp,
                received_timestamp,
                timestamp,
            },
        }),
        None => Ok(SinkEvent {
            ev: parse_event_strict(text)?,
            id: parse_full(text)?,
        }),
    }
}

/// Maps every event of `body` (an `EventList`; a plain event or an array
/// is read too), or says which item makes the batch unusable.
pub fn map_batch<'s>(
    ctx: &MapContext<'s>,
    body: &[u8],
    keep_raw: bool,
) -> Result<Batch<'s>, BatchError> {
    let mut batch = Batch::default();
    let mut failed: Option<BatchError> = None;
    for_each_item(body, &sink_event, &mut |item, text, parsed| {
        if failed.is_some() {
            return;
        }
        let SinkEvent { ev, id } = match parsed {
            Ok(e) => e,
            Err(error) => {
                return failed = Some(match item {
                    0 => BatchError::Body(error),
                    item => BatchError::Item { item, error },
                });
            }
        };
        let Some(audit_id) = id.audit_id.filter(|a| !a.is_empty()) else {
            return failed = Some(BatchError::NoAuditId { item });
        };
        if id.stage.as_deref() == Some(SKIPPED_STAGE) {
            batch.skipped += 1;
            return;
        }
        let uri = ev.request_uri.as_deref().unwrap_or("");
        let ua = ev.user_agent.as_deref();
        let (endpoint, test) = match super::map_event(ctx, &ev) {
            Ok(hit) => (Some(hit.endpoint), hit.test),
            Err(_) => (
                None,
                ctx.attributor.credit(ua, None, uri).test.map(Into::into),
            ),
        };
        batch.events.push(BatchEvent {
            audit_id: audit_id.to_string(),
            endpoint,
            verb: ev.verb.as_deref().unwrap_or("").to_string(),
            request_uri: uri.to_string(),
            user_agent: ua.map(str::to_string),
            test_name: test.filter(|t| !t.is_empty()).map(|t| t.into_owned()),
            stage: id.stage.map(|s| s.to_string()),
            time: id
                .stage_timestamp
                .or(id.received_timestamp)
                .or(id.timestamp)
                .map(|t| t.to_string()),
            raw: keep_raw.then(|| String::from_utf8_lossy(text).into_owned()),
        });
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(batch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Spec;

    fn spec() -> Spec {
        Spec::from_slice(
            br#"{"paths":{"/apis/batch/v1/namespaces/{namespace}/jobs/{name}/status":{"get":{"operationId":"readBatchV1NamespacedJobStatus","tags":["batch_v1"]}}}}"#,
            "spec",
        )
        .unwrap()
    }

    const UA: &str = "e2e.test/v1.36.0 (linux/amd64) prova -- [sig-apps] Job should apply changes to a job status";

    fn event(id: &str, stage: &str, uri: &str) -> String {
        format!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{id}","stage":"{stage}","requestURI":"{uri}","verb":"get","userAgent":"{UA}","requestReceivedTimestamp":"2026-04-20T06:47:56.000001Z","stageTimestamp":"2026-04-20T06:47:56.123456Z"}}"#
        )
    }

    fn list(items: &[String]) -> Vec<u8> {
        format!(
            r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
            items.join(",")
        )
        .into_bytes()
    }

    #[test]
    fn maps_events_and_skips_request_received() {
        let spec = spec();
        let ctx = MapContext::new(&spec, &[]);
        let body = list(&[
            event(
                "a",
                "RequestReceived",
                "/apis/batch/v1/namespaces/n/jobs/j/status",
            ),
            event(
                "a",
                "ResponseComplete",
                "/apis/batch/v1/namespaces/n/jobs/j/status",
            ),
            event(
                "b",
                "ResponseComplete",
                "/apis/batch/v1/namespaces/n/jobs/j/scale",
            ),
        ]);
        let batch = map_batch(&ctx, &body, true).unwrap();
        assert_eq!(batch.skipped, 1);
        assert_eq!(batch.events.len(), 2);
        let a = &batch.events[0];
        assert_eq!(a.audit_id, "a");
        assert_eq!(a.endpoint, Some("readBatchV1NamespacedJobStatus"));
        assert_eq!(
            a.test_name.as_deref(),
            Some("[sig-apps] Job should apply changes to a job status")
        );
        assert_eq!(a.time.as_deref(), Some("2026-04-20T06:47:56.123456Z"));
        assert_eq!(a.stage.as_deref(), Some("ResponseComplete"));
        assert!(a.raw.as_deref().unwrap().starts_with(r#"{"kind":"Event""#));
        // Unmapped, but the test is still named.
        assert_eq!(batch.events[1].endpoint, None);
        assert!(batch.events[1].test_name.is_some());
    }

    #[test]
    fn the_scanner_agrees_with_the_full_parser() {
        let lines = [
            event("a", "ResponseComplete", "/x"),
            r#"{"verb":"get","requestURI":"/x?a=1\u0026b=2","auditID":"a\u0026b","requestObject":{"stage":"nested","x":[1,{"y":"}"}]},"stage":null,"timestamp":"2017-09-11T19:55:05Z"}"#.to_string(),
            r#"{"auditID":"z","verb":"get","requestURI":"/y"}"#.to_string(),
        ];
        for line in &lines {
            let full: Identity<'_> = parse_full(line.as_bytes()).unwrap();
            assert!(
                scan_strings(line.as_bytes(), [b"auditID"]).is_some(),
                "{line}"
            );
            let scanned = sink_event(line.as_bytes()).unwrap();
            assert_eq!(scanned.id, full, "{line}");
            assert_eq!(
                scanned.ev,
                parse_event_strict(line.as_bytes()).unwrap(),
                "{line}"
            );
        }
        let escaped = sink_event(lines[1].as_bytes()).unwrap();
        assert_eq!(escaped.id.audit_id.as_deref(), Some("a&b"));
        assert_eq!(escaped.ev.request_uri.as_deref(), Some("/x?a=1&b=2"));
        assert_eq!(escaped.id.stage, None);
        // An event that is not one fails as the coverage reader says.
        assert_eq!(
            sink_event(br#"{"auditID":"a","verb":"get"}"#).err(),
            Some(EventError::NoRequestUri)
        );
    }

    #[test]
    fn an_event_list_in_another_key_order_is_still_a_list() {
        let spec = spec();
        let ctx = MapContext::new(&spec, &[]);
        let ok = event("a", "ResponseComplete", "/x");
        let body = format!(r#"{{"items":[{ok}],"kind":"EventList"}}"#);
        let batch = map_batch(&ctx, body.as_bytes(), false).unwrap();
        assert_eq!(batch.events.len(), 1);
        // And a plain event that says it is a list is read as an event.
        let plain = ok.replace(r#""kind":"Event""#, r#""kind":"EventList""#);
        let batch = map_batch(&ctx, plain.as_bytes(), false).unwrap();
        assert_eq!(batch.events[0].audit_id, "a");
    }

    #[test]
    fn a_bad_item_refuses_the_batch_naming_it() {
        let spec = spec();
        let ctx = MapContext::new(&spec, &[]);
        let ok = event("a", "ResponseComplete", "/x");
        let no_id = r#"{"verb":"get","requestURI":"/x"}"#.to_string();
        assert_eq!(
            map_batch(&ctx, &list(&[ok.clone(), no_id]), false),
            Err(BatchError::NoAuditId { item: 2 })
        );
        let not_event = r#"{"kind":"Event","auditID":"z"}"#.to_string();
        let e = map_batch(&ctx, &list(&[ok.clone(), ok.clone(), not_event]), false).unwrap_err();
        assert_eq!(e.to_string(), "item 3: not an audit event: no requestURI");
        // Fields after verb/requestURI/userAgent are validated too.
        let broken = ok.replace(
            r#""stageTimestamp":"2026-04-20T06:47:56.123456Z""#,
            r#""stageTimestamp":nope"#,
        );
        let e = map_batch(&ctx, &list(&[ok.clone(), broken]), false).unwrap_err();
        assert!(
            matches!(
                e,
                BatchError::Item {
                    item: 2,
                    error: EventError::Json(_)
                }
            ),
            "{e}"
        );
        // A list that does not hold together is refused as a whole.
        let cut = list(std::slice::from_ref(&ok));
        let e = map_batch(&ctx, &cut[..cut.len() - 3], false).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("not an audit EventList: invalid JSON"),
            "{e}"
        );
        let e = map_batch(&ctx, b"not json", false).unwrap_err();
        assert!(matches!(e, BatchError::Body(_)), "{e}");
        assert_eq!(
            map_batch(&ctx, br#"{"kind":"EventList","items":[]}"#, false),
            Ok(Batch::default())
        );
    }
}
