//! The `coverage` reporter's parameters, read once while the job is
//! prepared (so `prova validate` reports every mistake with its field
//! path), into a typed [`Config`]: the spec and the baseline are loaded and
//! checked here, not when the job ends.

use std::path::PathBuf;
use std::time::Duration;

use prova_core::descriptor::check_keys;
use prova_core::diag::{Diagnostics, FieldPath};
use prova_core::duration::parse_go_duration;
use prova_core::node::Node;
use prova_engine::plugin::PrepareCtx;

use crate::analyze::load_conformance;
use crate::conformance::ConformanceData;
use crate::like::LikePattern;
use crate::report::Report;
use crate::spec::Spec;

/// Every key the reporter reads.
pub const KEYS: &[&str] = &[
    "Spec",
    "Baseline",
    "BaselineWithoutTests",
    "Ineligible",
    "Expect",
    "Server",
    "Token",
    "TokenEnv",
    "UserAgent",
    "AuditLog",
    "Wait",
];

/// How long the reporter keeps asking for hits by default: the API
/// server's webhook batch backend sends a batch at least every 30 s
/// (`--audit-webhook-batch-max-wait`), plus a margin.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(35);

/// The longest `Wait` accepted.
pub const MAX_WAIT: Duration = Duration::from_secs(30 * 60);

/// Most `Expect` entries (a ticket names a handful).
pub const MAX_EXPECT: usize = 1000;

/// Where the hits come from.
#[derive(Debug, Clone)]
pub enum HitSource {
    /// The live audit sink of `prova serve`.
    Sink {
        /// Base URL, without a trailing `/`.
        server: String,
        token: Token,
        /// SQL LIKE pattern on the user agent, passed to the sink to leave
        /// out the cluster's own traffic (`None`: every agent).
        user_agent: Option<String>,
    },
    /// An audit log file (JSON lines, plain, gzip or zstd).
    AuditLog(PathBuf),
}

/// The sink's bearer token.
#[derive(Clone)]
pub enum Token {
    None,
    Literal(String),
    /// Read from this environment variable when the job ends.
    Env(String),
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::None => f.write_str("None"),
            Token::Literal(_) => f.write_str("Literal(<redacted>)"),
            Token::Env(name) => write!(f, "Env({name})"),
        }
    }
}

impl Token {
    /// The token's value now.
    pub fn value(&self) -> Result<Option<String>, String> {
        match self {
            Token::None => Ok(None),
            Token::Literal(t) => Ok(Some(t.clone())),
            Token::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Some(v)),
                _ => Err(format!(
                    "TokenEnv: the environment variable {name} (the sink's token) is not set"
                )),
            },
        }
    }
}

/// The prepared parameters.
#[derive(Debug)]
pub struct Config {
    pub spec: Spec,
    /// The baseline, eligibility applied and `BaselineWithoutTests` removed.
    pub baseline: Report,
    /// Where the baseline came from, for the report.
    pub baseline_name: String,
    /// Tests whose credit was removed from the baseline.
    pub baseline_without: Vec<String>,
    /// `ineligible_endpoints.yaml`, when given.
    pub conformance: ConformanceData,
    pub expect: Vec<String>,
    pub source: HitSource,
    pub wait: Duration,
}

/// Reads and checks every parameter; `None` when one is wrong (each
/// problem is in `diags`).
pub fn prepare(
    params: &Node,
    path: &FieldPath,
    ctx: &PrepareCtx<'_>,
    diags: &mut Diagnostics,
) -> Option<Config> {
    let Some(map) = params.as_map() else {
        diags.error(
            path,
            params.pos,
            format!(
                "coverage needs parameters (a map with Spec, Baseline and Server or AuditLog), found {}",
                params.type_name()
            ),
        );
        return None;
    };
    check_keys(map, path, KEYS, diags);
    let errors_before = diags.errors().len();
    let mut r = Reader {
        params,
        path,
        ctx,
        diags,
    };
    let spec = r.spec();
    let conformance = r.ineligible();
    let without = r.patterns("BaselineWithoutTests");
    let baseline = r.baseline(conformance.as_ref(), &without);
    let expect = r.expect(spec.as_ref());
    let source = r.source();
    let wait = r.wait();
    if r.diags.errors().len() > errors_before {
        return None;
    }
    let (baseline, baseline_name) = baseline?;
    Some(Config {
        spec: spec?,
        baseline,
        baseline_name,
        baseline_without: without,
        conformance: conformance.unwrap_or_default(),
        expect,
        source: source?,
        wait,
    })
}

struct Reader<'a, 'c> {
    params: &'a Node,
    path: &'a FieldPath,
    ctx: &'a PrepareCtx<'c>,
    diags: &'a mut Diagnostics,
}

impl<'a> Reader<'a, '_> {
    fn error(&mut self, key: &str, node: Option<&Node>, message: impl Into<String>) {
        let pos = node.and_then(|n| n.pos).or(self.params.pos);
        self.diags.error(&self.path.key(key), pos, message);
    }

    /// A non-empty string parameter, or `None` when absent.
    fn string(&mut self, key: &str) -> Option<(String, &'a Node)> {
        let params = self.params;
        let n = params.get_ci(key)?;
        if n.as_seq().is_some() || n.as_map().is_some() || n.is_null() {
            self.error(
                key,
                Some(n),
                format!("expected a string, found {}", n.type_name()),
            );
            return None;
        }
        let text = n.scalar_text();
        if text.trim().is_empty() {
            self.error(key, Some(n), "expected a value, found an empty string");
            return None;
        }
        Some((text, n))
    }

    /// A list of strings; a single string counts as a list of one.
    fn strings(&mut self, key: &str) -> Vec<String> {
        let params = self.params;
        let Some(n) = params.get_ci(key) else {
            return Vec::new();
        };
        let items: Vec<&Node> = match n.as_seq() {
            Some(items) => items.iter().collect(),
            None if n.as_map().is_some() || n.is_null() => {
                self.error(
                    key,
                    Some(n),
                    format!("expected a list of strings, found {}", n.type_name()),
                );
                return Vec::new();
            }
            None => vec![n],
        };
        if items.len() > MAX_EXPECT {
            self.error(
                key,
                Some(n),
                format!("at most {MAX_EXPECT} entries, found {}", items.len()),
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let text = item.scalar_text();
            if item.as_seq().is_some() || item.as_map().is_some() || text.trim().is_empty() {
                self.diags.error(
                    &self.path.key(key).index(i),
                    item.pos.or(n.pos),
                    format!("expected a non-empty string, found {}", item.type_name()),
                );
                continue;
            }
            out.push(text.trim().to_string());
        }
        out
    }

    fn patterns(&mut self, key: &str) -> Vec<String> {
        self.strings(key)
    }

    /// Reads a file named by `key`, at most the files root's size limit.
    fn file_bytes(&mut self, key: &str, file: &str, node: &Node) -> Option<(Vec<u8>, String)> {
        let f = match self.ctx.file(file) {
            Ok(f) => f,
            Err(e) => {
                self.error(key, Some(node), e);
                return None;
            }
        };
        match f.read_to_string() {
            Ok(text) => Some((text.into_bytes(), f.display_path().display().to_string())),
            Err(e) => {
                self.error(key, Some(node), e);
                None
            }
        }
    }

    fn spec(&mut self) -> Option<Spec> {
        let Some((file, node)) = self.string("Spec") else {
            if self.params.get_ci("Spec").is_none() {
                self.error(
                    "Spec",
                    None,
                    "missing: expected the cluster's OpenAPI v2 document (swagger.json; `kubectl get --raw /openapi/v2`)",
                );
            }
            return None;
        };
        let (bytes, name) = self.file_bytes("Spec", &file, node)?;
        match Spec::from_slice(&bytes, &name) {
            Ok(spec) => Some(spec),
            Err(e) => {
                self.error("Spec", Some(node), e.to_string());
                None
            }
        }
    }

    fn ineligible(&mut self) -> Option<ConformanceData> {
        let (file, node) = self.string("Ineligible")?;
        let path = match self.ctx.resolve(&file) {
            Ok(p) => p,
            Err(e) => {
                self.error("Ineligible", Some(node), e);
                return None;
            }
        };
        match load_conformance(None, Some(&path), None) {
            Ok(c) => Some(c),
            Err(e) => {
                self.error("Ineligible", Some(node), e.to_string());
                None
            }
        }
    }

    fn baseline(
        &mut self,
        conformance: Option<&ConformanceData>,
        without: &[String],
    ) -> Option<(Report, String)> {
        let Some((file, node)) = self.string("Baseline") else {
            if self.params.get_ci("Baseline").is_none() {
                self.error(
                    "Baseline",
                    None,
                    "missing: expected an APISnoop release file (resources/coverage/<release>.json) or a saved `prova coverage report --json`",
                );
            }
            return None;
        };
        let (bytes, name) = self.file_bytes("Baseline", &file, node)?;
        let mut report = match Report::from_json(&bytes, &name) {
            Ok(r) => r,
            Err(e) => {
                self.error("Baseline", Some(node), e.to_string());
                return None;
            }
        };
        if let Some(conf) = conformance {
            report.apply_eligibility(conf);
        } else if !report.eligibility_known {
            // An APISnoop file says nothing of eligibility: stable counts
            // as eligible, and the report says the ineligible list is missing.
            report.apply_eligibility(&ConformanceData::default());
            report.eligibility_known = false;
        }
        let patterns: Vec<LikePattern> = without.iter().map(|p| LikePattern::new(p)).collect();
        super::newly::remove_tests(&mut report, &patterns);
        Some((report, name))
    }

    fn expect(&mut self, spec: Option<&Spec>) -> Vec<String> {
        let expect = self.strings("Expect");
        if let Some(spec) = spec {
            let params = self.params;
            let node = params.get_ci("Expect");
            for (i, id) in expect.iter().enumerate() {
                let known = spec
                    .operations
                    .iter()
                    .any(|o| o.endpoint == *id && o.is_endpoint());
                if !known {
                    let pos = node
                        .and_then(|n| n.as_seq())
                        .and_then(|s| s.get(i))
                        .and_then(|n| n.pos)
                        .or(node.and_then(|n| n.pos));
                    self.diags.error(
                        &self.path.key("Expect").index(i),
                        pos,
                        format!(
                            "{id:?} is not an endpoint of the spec {} (an operationId, not deprecated)",
                            spec.source
                        ),
                    );
                }
            }
        }
        expect
    }

    fn source(&mut self) -> Option<HitSource> {
        let server = self.string("Server");
        let audit_log = self.string("AuditLog");
        match (server, audit_log) {
            (Some(_), Some((_, node))) => {
                self.error(
                    "AuditLog",
                    Some(node),
                    "give Server (the live audit sink) or AuditLog (a file), not both",
                );
                None
            }
            (None, None) => {
                if self.params.get_ci("Server").is_none()
                    && self.params.get_ci("AuditLog").is_none()
                {
                    self.error(
                        "Server",
                        None,
                        "missing: expected Server (the URL of `prova serve` with its audit sink) or AuditLog (an audit log file)",
                    );
                }
                None
            }
            (None, Some((file, node))) => match self.ctx.resolve(&file) {
                Ok(p) => Some(HitSource::AuditLog(p)),
                Err(e) => {
                    self.error("AuditLog", Some(node), e);
                    None
                }
            },
            (Some((url, node)), None) => {
                let url = url.trim().trim_end_matches('/').to_string();
                if !(url.starts_with("http://") || url.starts_with("https://"))
                    || reqwest::Url::parse(&url).is_err()
                {
                    self.error(
                        "Server",
                        Some(node),
                        format!("expected an http:// or https:// URL, found {url:?}"),
                    );
                    return None;
                }
                let token = self.token()?;
                let user_agent = match self.string("UserAgent") {
                    Some((ua, _)) if ua == "%" => None,
                    Some((ua, _)) => Some(ua),
                    None => Some("e2e.test%".to_string()),
                };
                Some(HitSource::Sink {
                    server: url,
                    token,
                    user_agent,
                })
            }
        }
    }

    fn token(&mut self) -> Option<Token> {
        match (self.string("Token"), self.string("TokenEnv")) {
            (Some(_), Some((_, node))) => {
                self.error("TokenEnv", Some(node), "give Token or TokenEnv, not both");
                None
            }
            (Some((t, _)), None) => Some(Token::Literal(t)),
            (None, Some((name, node))) => {
                if std::env::var_os(&name).is_none() {
                    self.diags.warn(
                        &self.path.key("TokenEnv"),
                        node.pos,
                        format!(
                            "the environment variable {name} is not set here; it must be when the job ends"
                        ),
                    );
                }
                Some(Token::Env(name))
            }
            (None, None) => Some(Token::None),
        }
    }

    fn wait(&mut self) -> Duration {
        let Some((text, node)) = self.string("Wait") else {
            return DEFAULT_WAIT;
        };
        match parse_go_duration(&text) {
            Ok(d) if d <= MAX_WAIT => d,
            Ok(_) => {
                self.error(
                    "Wait",
                    Some(node),
                    format!("at most {}s", MAX_WAIT.as_secs()),
                );
                DEFAULT_WAIT
            }
            Err(e) => {
                self.error(
                    "Wait",
                    Some(node),
                    format!("{e}: expected a duration such as \"10s\""),
                );
                DEFAULT_WAIT
            }
        }
    }
}
