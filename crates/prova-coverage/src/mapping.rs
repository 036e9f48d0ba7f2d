//! Audit event → spec operation, exactly as APISnoop maps them
//! (`snoopUtils.find_operation_id` and the SQL of `load_audit_events`).
//!
//! # Rules, in the order they are applied
//!
//! 1. **Verb → method** ([`verb_to_method`]): `get`, `list`, `watch` → GET,
//!    except verb `get` with a `requestURI` ending in `HEAD` (query string
//!    included) → HEAD; `create`, `post` → POST; `update`, `put` → PUT;
//!    `patch` → PATCH; `delete`, `deletecollection`, `delete_collection` →
//!    DELETE; `proxy` → PROXY and `connect` → CONNECT (no spec operation uses
//!    these, so such events end as "no operation for method"); the empty verb
//!    → OPTIONS. Any other verb: unmapped, reason [`Unmapped::BadVerb`].
//! 2. **Path**: the `requestURI` without its query (`?…`) and fragment (`#…`),
//!    and without `;params` in its last segment (Python's `urlparse`), leading
//!    and trailing `/` stripped, split on `/` ([`uri_parts`]).
//!    * if a segment is `proxy`, everything after the first `proxy` is one
//!      segment (`…/proxy/a/b` → `…`, `proxy`, `a/b`);
//!    * otherwise a 5-segment path whose third segment is `namespaces` and
//!      whose last is `status` (`finalize`) reads as
//!      `<1>/<2>/namespaces/{name}/status` (`/finalize`).
//! 3. **Part count**: the spec paths are grouped by their number of segments;
//!    when no spec path has as many segments: [`Unmapped::PartCountTooHigh`].
//! 4. **Known dummy endpoints**: a segment equal to `metrics`, `readyz`,
//!    `livez`, `healthz`, `example.com`, `kope.io`, `snapshot.storage.k8s.io`,
//!    `metrics.k8s.io` or `wardle.k8s.io`, or the path exactly `openapi/v2`:
//!    [`Unmapped::KnownDummyEndpoint`].
//! 5. **Walk** the spec paths with that many segments, segment by segment: a
//!    literal segment equal to the request's segment wins; otherwise the first
//!    parameter segment (`{…}`) at that position, in spec order, is taken (no
//!    backtracking); with neither: [`Unmapped::NotInSpec`].
//! 6. **Method**: the operation of that spec path for the method; none:
//!    [`Unmapped::NoOperationForMethod`].
//!
//! Who gets the credit is decided by [`Attributor`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::like::LikePattern;
use rustc_hash::FxHashMap;

/// HTTP method of an operation (or of an audit event, after [`verb_to_method`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET
    Get,
    /// PUT
    Put,
    /// POST
    Post,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// HEAD
    Head,
    /// PATCH
    Patch,
    /// `proxy` verb (never in a spec)
    Proxy,
    /// `connect` verb (never in a spec)
    Connect,
}

impl Method {
    const COUNT: usize = 9;

    fn index(self) -> usize {
        self as usize
    }

    /// Method for a key of a swagger path item (`get`, `put`, …); `None` for
    /// `parameters` and anything else.
    pub fn from_spec_key(key: &str) -> Option<Method> {
        Some(match key {
            "get" => Method::Get,
            "put" => Method::Put,
            "post" => Method::Post,
            "delete" => Method::Delete,
            "options" => Method::Options,
            "head" => Method::Head,
            "patch" => Method::Patch,
            _ => return None,
        })
    }

    /// Upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Head => "HEAD",
            Method::Patch => "PATCH",
            Method::Proxy => "PROXY",
            Method::Connect => "CONNECT",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event maps to no operation. The messages are APISnoop's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmapped {
    /// The verb has no method (rule 1).
    BadVerb,
    /// No spec path has that many segments (rule 3).
    PartCountTooHigh,
    /// A known dummy/aggregated/health endpoint (rule 4).
    KnownDummyEndpoint,
    /// No spec path matches the segments (rule 5).
    NotInSpec,
    /// The spec path has no operation for the method (rule 6).
    NoOperationForMethod,
    /// Not an audit event: a line that is not JSON, or has no `requestURI`/`verb`.
    Malformed,
}

impl Unmapped {
    /// All reasons, in report order.
    pub const ALL: [Unmapped; 6] = [
        Unmapped::BadVerb,
        Unmapped::PartCountTooHigh,
        Unmapped::KnownDummyEndpoint,
        Unmapped::NotInSpec,
        Unmapped::NoOperationForMethod,
        Unmapped::Malformed,
    ];

    /// Short name: `bad verb`, `part count too high`, ….
    pub fn name(self) -> &'static str {
        match self {
            Unmapped::BadVerb => "bad verb",
            Unmapped::PartCountTooHigh => "part count too high",
            Unmapped::KnownDummyEndpoint => "known dummy endpoint",
            Unmapped::NotInSpec => "not in spec",
            Unmapped::NoOperationForMethod => "no operation for method",
            Unmapped::Malformed => "malformed",
        }
    }

    /// APISnoop's error text for this reason.
    pub fn message(self) -> &'static str {
        match self {
            Unmapped::BadVerb => {
                "Could not assign a method from the event verb. Check the event.verb."
            }
            Unmapped::PartCountTooHigh => {
                "part count too high, and not found in open api spec. Check the event's request URI"
            }
            Unmapped::KnownDummyEndpoint => {
                "This is a known dummy endpoint and can be ignored. See the requestURI for more info."
            }
            Unmapped::NotInSpec => {
                "We have not seen this type of event before, and it is not in spec. Check its request uri"
            }
            Unmapped::NoOperationForMethod => {
                "Could not find operation for given method. Check the requestURI and the method."
            }
            Unmapped::Malformed => "Not a readable audit event (bad JSON, or no verb/requestURI).",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Rule 1: audit verb → method. `None` is a "bad verb".
pub fn verb_to_method(verb: &str, request_uri: &str) -> Option<Method> {
    Some(match verb {
        "get" if request_uri.ends_with("HEAD") => Method::Head,
        "get" | "list" | "watch" => Method::Get,
        "proxy" => Method::Proxy,
        "" => Method::Options,
        "create" | "post" => Method::Post,
        "update" | "put" => Method::Put,
        "patch" => Method::Patch,
        "connect" => Method::Connect,
        "delete" | "delete_collection" | "deletecollection" => Method::Delete,
        _ => return None,
    })
}

/// Segments APISnoop ignores (rule 4).
pub const DUMMY_SEGMENTS: [&str; 9] = [
    "metrics",
    "readyz",
    "livez",
    "healthz",
    "example.com",
    "kope.io",
    "snapshot.storage.k8s.io",
    "metrics.k8s.io",
    "wardle.k8s.io",
];

/// Whether `s` is one of [`DUMMY_SEGMENTS`] (length first: this runs for
/// every segment of every event).
#[inline]
pub fn is_dummy_segment(s: &str) -> bool {
    match s.len() {
        5 => s == "livez",
        6 => s == "readyz",
        7 => s == "metrics" || s == "healthz" || s == "kope.io",
        11 => s == "example.com",
        13 => s == "wardle.k8s.io",
        14 => s == "metrics.k8s.io",
        23 => s == "snapshot.storage.k8s.io",
        _ => false,
    }
}

/// The most segments a request path may have before it is "too high" anyway.
const MAX_PARTS: usize = 64;

/// Rule 2: the segments of a request URI, after the proxy and
/// namespace-status/finalize rewrites. Returns `None` when the path has more
/// than 64 segments (always "part count too high").
pub fn uri_parts(request_uri: &str) -> Option<Vec<&str>> {
    let mut buf = [""; MAX_PARTS];
    let n = uri_parts_into(request_uri, &mut buf)?;
    Some(buf[..n].to_vec())
}

fn url_path(request_uri: &str) -> &str {
    let end = memchr::memchr2(b'?', b'#', request_uri.as_bytes()).unwrap_or(request_uri.len());
    let path = &request_uri[..end];
    // urlparse: `;params` of the last segment are not part of the path.
    let last = memchr::memrchr(b'/', path.as_bytes()).map_or(0, |i| i + 1);
    match memchr::memchr(b';', &path.as_bytes()[last..]) {
        Some(i) => &path[..last + i],
        None => path,
    }
}

fn uri_parts_into<'a>(request_uri: &'a str, buf: &mut [&'a str; MAX_PARTS]) -> Option<usize> {
    let path = url_path(request_uri).trim_matches('/');
    let mut n = 0;
    let mut rest = path;
    loop {
        let (seg, tail) = match memchr::memchr(b'/', rest.as_bytes()) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        if n == MAX_PARTS {
            return None;
        }
        buf[n] = seg;
        n += 1;
        if seg == "proxy" {
            if let Some(t) = tail
                && !t.is_empty()
            {
                if n == MAX_PARTS {
                    return None;
                }
                buf[n] = t;
                n += 1;
            }
            return Some(n);
        }
        match tail {
            Some(t) => rest = t,
            None => break,
        }
    }
    if n == 5 && buf[2] == "namespaces" && (buf[4] == "status" || buf[4] == "finalize") {
        buf[3] = "{name}";
    }
    Some(n)
}

#[derive(Debug, Default)]
struct Node {
    children: FxHashMap<Box<str>, u32>,
    first_param: Option<u32>,
    ops: [Option<u32>; Method::COUNT],
}

/// The spec's paths as one tree per segment count (APISnoop's cache).
#[derive(Debug, Default)]
pub struct Router {
    nodes: Vec<Node>,
    /// Root node per segment count.
    roots: Vec<Option<u32>>,
}

impl Router {
    /// Adds a spec path's operation; call in spec order.
    pub fn insert(&mut self, path: &str, method: Method, op: u32) {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        if self.roots.len() <= parts.len() {
            self.roots.resize(parts.len() + 1, None);
        }
        let mut node = match self.roots[parts.len()] {
            Some(r) => r,
            None => {
                let r = self.new_node();
                self.roots[parts.len()] = Some(r);
                r
            }
        };
        for part in parts {
            node = match self.nodes[node as usize].children.get(part) {
                Some(&c) => c,
                None => {
                    let c = self.new_node();
                    let n = &mut self.nodes[node as usize];
                    n.children.insert(part.into(), c);
                    if part.contains('{') && n.first_param.is_none() {
                        n.first_param = Some(c);
                    }
                    c
                }
            };
        }
        self.nodes[node as usize].ops[method.index()] = Some(op);
    }

    fn new_node(&mut self) -> u32 {
        self.nodes.push(Node::default());
        (self.nodes.len() - 1) as u32
    }

    /// The most segments any spec path has.
    pub fn max_parts(&self) -> usize {
        self.roots.len().saturating_sub(1)
    }

    /// Maps an event (`verb`, `requestURI`) to an operation index of the spec.
    pub fn map(&self, verb: &str, request_uri: &str) -> Result<u32, Unmapped> {
        let method = verb_to_method(verb, request_uri).ok_or(Unmapped::BadVerb)?;
        let mut buf = [""; MAX_PARTS];
        let n = uri_parts_into(request_uri, &mut buf).ok_or(Unmapped::PartCountTooHigh)?;
        let parts = &buf[..n];
        let mut node = self
            .roots
            .get(n)
            .copied()
            .flatten()
            .ok_or(Unmapped::PartCountTooHigh)?;
        if parts.iter().any(|p| is_dummy_segment(p)) || parts == ["openapi", "v2"] {
            return Err(Unmapped::KnownDummyEndpoint);
        }
        for part in parts {
            let n = &self.nodes[node as usize];
            node = match n.children.get(*part) {
                Some(&c) => c,
                None => n.first_param.ok_or(Unmapped::NotInSpec)?,
            };
        }
        self.nodes[node as usize].ops[method.index()].ok_or(Unmapped::NoOperationForMethod)
    }
}

/// Whose test an event counts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit<'a> {
    /// Hit by a test (e2e.test user agent, `--user-agent` match, or the
    /// pod-binding special case).
    pub tested: bool,
    /// Hit by a conformance test (user agent contains `[Conformance]`).
    pub conformance: bool,
    /// The test name, when `tested`.
    pub test: Option<&'a str>,
}

/// The test APISnoop credits with scheduler pod bindings.
pub const POD_BINDING_TEST: &str =
    "[sig-node] Pods should delete a collection of pods [Conformance]";

/// Decides which test (if any) an event counts for.
///
/// * **tested**: the user agent starts with `e2e.test` (SQL `LIKE 'e2e.test%'`),
///   or matches one of the extra `--user-agent` patterns.
/// * **conformance tested**: the user agent contains `[Conformance]`
///   (`LIKE '%[Conformance]%'`), whatever the agent.
/// * **test name**: for e2e agents, the text between the first and the second
///   `--` of the user agent, spaces trimmed (PostgreSQL
///   `trim(split_part(ua, '--', 2))`); an e2e agent without `--` names the
///   test `""`. For `--user-agent` agents the same, but without `--` the whole
///   user agent is the name.
/// * **special case** (APISnoop issue 660): `createCoreV1NamespacedPodBinding`
///   hit by a `kube-scheduler%` agent on
///   `/api/v1/namespaces/pods-%/pods/test-pod-%/binding` counts as a
///   conformance hit of [`POD_BINDING_TEST`].
/// * A missing user agent is never a test.
#[derive(Debug, Clone, Default)]
pub struct Attributor {
    extra: Vec<LikePattern>,
    pod_binding_op: Option<u32>,
}

impl Attributor {
    /// `extra`: `--user-agent` patterns (SQL LIKE; without a wildcard, a prefix).
    /// `pod_binding_op`: index of `createCoreV1NamespacedPodBinding` in the spec.
    pub fn new(extra: &[String], pod_binding_op: Option<u32>) -> Self {
        Attributor {
            extra: extra
                .iter()
                .map(|p| {
                    let pat = LikePattern::new(p);
                    if pat.has_wildcards() {
                        pat
                    } else {
                        LikePattern::new(&format!("{}%", p.replace('\\', "\\\\")))
                    }
                })
                .collect(),
            pod_binding_op,
        }
    }

    /// Credit for an event mapped to `op` (or unmapped: `None`).
    pub fn credit<'a>(
        &self,
        user_agent: Option<&'a str>,
        op: Option<u32>,
        request_uri: &str,
    ) -> Credit<'a> {
        let Some(ua) = user_agent else {
            return Credit {
                tested: false,
                conformance: false,
                test: None,
            };
        };
        if op.is_some()
            && op == self.pod_binding_op
            && ua.starts_with("kube-scheduler")
            && is_pod_binding_uri(request_uri)
        {
            return Credit {
                tested: true,
                conformance: true,
                test: Some(POD_BINDING_TEST),
            };
        }
        let conformance = ua.contains("[Conformance]");
        if ua.starts_with("e2e.test") {
            return Credit {
                tested: true,
                conformance,
                test: Some(test_name(ua).unwrap_or("")),
            };
        }
        if !self.extra.is_empty() && self.extra.iter().any(|p| p.matches(ua)) {
            return Credit {
                tested: true,
                conformance,
                test: Some(test_name(ua).unwrap_or(ua)),
            };
        }
        Credit {
            tested: false,
            conformance,
            test: None,
        }
    }
}

/// `trim(split_part(ua, '--', 2))`: `None` when there is no `--`.
pub fn test_name(user_agent: &str) -> Option<&str> {
    let (_, rest) = user_agent.split_once("--")?;
    let field = rest.split_once("--").map_or(rest, |(f, _)| f);
    Some(field.trim_matches(' '))
}

/// `requestURI LIKE '/api/v1/namespaces/pods-%/pods/test-pod-%/binding'`.
fn is_pod_binding_uri(uri: &str) -> bool {
    thread_local! {
        static PAT: LikePattern = LikePattern::new("/api/v1/namespaces/pods-%/pods/test-pod-%/binding");
    }
    uri.starts_with("/api/v1/namespaces/pods-")
        && uri.ends_with("/binding")
        && PAT.with(|p| p.matches(uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut r = Router::default();
        let paths: &[(&str, Method)] = &[
            ("/api/v1/namespaces/{namespace}/pods", Method::Get), // 0
            ("/api/v1/namespaces/{namespace}/pods/{name}", Method::Get), // 1
            ("/api/v1/namespaces/{name}", Method::Get),           // 2
            ("/api/v1/namespaces/{name}/status", Method::Get),    // 3
            ("/api/v1/namespaces/{name}/finalize", Method::Put),  // 4
            (
                "/api/v1/namespaces/{namespace}/pods/{name}/proxy/{path}",
                Method::Get,
            ), // 5
            (
                "/api/v1/namespaces/{namespace}/pods/{name}/proxy",
                Method::Options,
            ), // 6
            ("/api/v1/nodes/{name}", Method::Get),                // 7
            ("/api/v1/nodes/{name}", Method::Head),               // 8
            ("/openapi/v2", Method::Get),                         // 9
            ("/apis/", Method::Get),                              // 10
            (
                "/api/v1/namespaces/{namespace}/pods/{name}/status",
                Method::Patch,
            ), // 11
            ("/api/v1/nodes/{name}/status", Method::Get),         // 12
            ("/apis/metrics.k8s.io/v1/x", Method::Get),           // 13
            ("/api/v1/namespaces/{namespace}/pods/{name}", Method::Delete), // 14
            ("/api/v1/namespaces/{namespace}/pods", Method::Post), // 15
            ("/api/v1/namespaces/{namespace}/pods", Method::Put), // 16
            ("/api/v1/namespaces/{namespace}/pods", Method::Patch), // 17
        ];
        for (i, (p, m)) in paths.iter().enumerate() {
            r.insert(p, *m, i as u32);
        }
        r
    }

    #[test]
    fn verbs() {
        assert_eq!(verb_to_method("get", "/x"), Some(Method::Get));
        assert_eq!(verb_to_method("list", "/x"), Some(Method::Get));
        assert_eq!(verb_to_method("watch", "/x?watch=1"), Some(Method::Get));
        assert_eq!(verb_to_method("get", "/x?m=HEAD"), Some(Method::Head));
        assert_eq!(verb_to_method("list", "/xHEAD"), Some(Method::Get));
        assert_eq!(verb_to_method("create", "/x"), Some(Method::Post));
        assert_eq!(verb_to_method("post", "/x"), Some(Method::Post));
        assert_eq!(verb_to_method("update", "/x"), Some(Method::Put));
        assert_eq!(verb_to_method("put", "/x"), Some(Method::Put));
        assert_eq!(verb_to_method("patch", "/x"), Some(Method::Patch));
        assert_eq!(verb_to_method("delete", "/x"), Some(Method::Delete));
        assert_eq!(
            verb_to_method("deletecollection", "/x"),
            Some(Method::Delete)
        );
        assert_eq!(
            verb_to_method("delete_collection", "/x"),
            Some(Method::Delete)
        );
        assert_eq!(verb_to_method("proxy", "/x"), Some(Method::Proxy));
        assert_eq!(verb_to_method("connect", "/x"), Some(Method::Connect));
        assert_eq!(verb_to_method("", "/x"), Some(Method::Options));
        assert_eq!(verb_to_method("calebiscool", "/x"), None);
        assert_eq!(verb_to_method("GET", "/x"), None);
    }

    #[test]
    fn dummy_segments() {
        for s in DUMMY_SEGMENTS {
            assert!(is_dummy_segment(s), "{s}");
        }
        assert!(!is_dummy_segment("metricz"));
        assert!(!is_dummy_segment("v1"));
    }

    #[test]
    fn parts() {
        assert_eq!(
            uri_parts("/api/v1/pods?x=/a/b").unwrap(),
            ["api", "v1", "pods"]
        );
        assert_eq!(uri_parts("/api/v1/pods/").unwrap(), ["api", "v1", "pods"]);
        assert_eq!(uri_parts("/").unwrap(), [""]);
        assert_eq!(uri_parts("/a/b;p=1").unwrap(), ["a", "b"]);
        assert_eq!(uri_parts("/a/b#frag").unwrap(), ["a", "b"]);
        assert_eq!(
            uri_parts("/api/v1/namespaces/ns/pods/p/proxy/a/b/c?q").unwrap(),
            [
                "api",
                "v1",
                "namespaces",
                "ns",
                "pods",
                "p",
                "proxy",
                "a/b/c"
            ]
        );
        assert_eq!(
            uri_parts("/api/v1/namespaces/ns/pods/p/proxy/").unwrap(),
            ["api", "v1", "namespaces", "ns", "pods", "p", "proxy"]
        );
        assert_eq!(
            uri_parts("/api/v1/namespaces/kube-system/status").unwrap(),
            ["api", "v1", "namespaces", "{name}", "status"]
        );
        assert_eq!(
            uri_parts("/api/v1/namespaces/x/finalize").unwrap(),
            ["api", "v1", "namespaces", "{name}", "finalize"]
        );
        // not 5 segments: untouched
        assert_eq!(
            uri_parts("/api/v1/namespaces/x/pods/y/status").unwrap()[3],
            "x"
        );
        assert!(uri_parts(&"/a".repeat(100)).is_none());
    }

    #[test]
    fn mapping_rules() {
        let r = router();
        // literal and first-parameter walking
        assert_eq!(r.map("list", "/api/v1/namespaces/default/pods"), Ok(0));
        assert_eq!(r.map("get", "/api/v1/namespaces/default/pods/p1"), Ok(1));
        assert_eq!(
            r.map("delete", "/api/v1/namespaces/default/pods/p1"),
            Ok(14)
        );
        assert_eq!(r.map("create", "/api/v1/namespaces/default/pods"), Ok(15));
        assert_eq!(r.map("update", "/api/v1/namespaces/default/pods"), Ok(16));
        assert_eq!(r.map("patch", "/api/v1/namespaces/default/pods"), Ok(17));
        // 4 parts: {namespace} is not first among params at this length; {name} is
        assert_eq!(r.map("get", "/api/v1/namespaces/default"), Ok(2));
        // namespace status / finalize rewrite
        assert_eq!(r.map("get", "/api/v1/namespaces/default/status"), Ok(3));
        assert_eq!(
            r.map("update", "/api/v1/namespaces/default/finalize"),
            Ok(4)
        );
        // proxy tail is one segment
        assert_eq!(
            r.map("get", "/api/v1/namespaces/d/pods/p/proxy/a/b/c"),
            Ok(5)
        );
        assert_eq!(r.map("", "/api/v1/namespaces/d/pods/p/proxy"), Ok(6));
        assert_eq!(
            r.map("proxy", "/api/v1/namespaces/d/pods/p/proxy/x"),
            Err(Unmapped::NoOperationForMethod)
        );
        // HEAD
        assert_eq!(r.map("get", "/api/v1/nodes/n1?x=HEAD"), Ok(8));
        assert_eq!(r.map("get", "/api/v1/nodes/n1"), Ok(7));
        // trailing slash in spec and request
        assert_eq!(r.map("get", "/apis"), Ok(10));
        // bad verb
        assert_eq!(
            r.map("calebiscool", "/api/v1/nodes/n"),
            Err(Unmapped::BadVerb)
        );
        // part count
        assert_eq!(
            r.map("get", "/api/v1/nodes/n/a/b/c/d/e/f/g/h/i/j"),
            Err(Unmapped::PartCountTooHigh)
        );
        // dummy endpoints (checked after part count)
        assert_eq!(
            r.map("get", "/openapi/v2"),
            Err(Unmapped::KnownDummyEndpoint)
        );
        assert_eq!(
            r.map("get", "/apis/metrics.k8s.io/v1/x"),
            Err(Unmapped::KnownDummyEndpoint)
        );
        assert_eq!(r.map("get", "/healthz"), Err(Unmapped::KnownDummyEndpoint));
        assert_eq!(
            r.map("get", "/example.com/v1/nodes/x"),
            Err(Unmapped::KnownDummyEndpoint)
        );
        // not in spec
        assert_eq!(r.map("get", "/api/v2/nodes/x"), Err(Unmapped::NotInSpec));
        // no operation for method
        assert_eq!(
            r.map("create", "/api/v1/nodes/x"),
            Err(Unmapped::NoOperationForMethod)
        );
        // literal beats parameter: 'status' under nodes/{name}
        assert_eq!(r.map("get", "/api/v1/nodes/x/status"), Ok(12));
    }

    #[test]
    fn credit_rules() {
        let a = Attributor::new(&["live-test-writing".into()], Some(99));
        let c = a.credit(
            Some("e2e.test/v1.36.0 (linux/amd64) kubernetes/abc -- [sig-apps] Job should x [Conformance]"),
            Some(1),
            "/x",
        );
        assert_eq!(
            c,
            Credit {
                tested: true,
                conformance: true,
                test: Some("[sig-apps] Job should x [Conformance]")
            }
        );
        let c = a.credit(Some("e2e.test/v1.36.0"), Some(1), "/x");
        assert_eq!(c.test, Some(""));
        assert!(c.tested && !c.conformance);
        let c = a.credit(Some("e2e.test -- a -- b"), None, "/x");
        assert_eq!(c.test, Some("a"));
        let c = a.credit(Some("kubelet/v1.36 [Conformance]"), Some(1), "/x");
        assert!(!c.tested && c.conformance && c.test.is_none());
        let c = a.credit(Some("live-test-writing"), Some(1), "/x");
        assert_eq!(c.test, Some("live-test-writing"));
        let c = a.credit(None, Some(1), "/x");
        assert!(!c.tested && !c.conformance);
        // pod binding special case
        let uri = "/api/v1/namespaces/pods-1234/pods/test-pod-abc/binding";
        let c = a.credit(Some("kube-scheduler/v1.36.0"), Some(99), uri);
        assert_eq!(c.test, Some(POD_BINDING_TEST));
        assert!(c.tested && c.conformance);
        let c = a.credit(Some("kube-scheduler/v1.36.0"), Some(98), uri);
        assert!(!c.tested);
        let c = a.credit(
            Some("kube-scheduler/v1.36.0"),
            Some(99),
            "/api/v1/namespaces/default/pods/test-pod-abc/binding",
        );
        assert!(!c.tested);
    }
}
