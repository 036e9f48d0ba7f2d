//! A JSON or YAML document as a tree that remembers where each value was.
//!
//! ConTest descriptors are decoded by Go's `encoding/json`, which matches
//! keys case-insensitively, and prova must report every error with its line
//! and column. serde cannot do either while collecting all errors, so
//! documents are first read into this tree (by saphyr's event parser, which
//! parses YAML 1.2, a superset of JSON, with positions) and then decoded by
//! hand. Trees read from text are at most [`MAX_DEPTH`] deep, so the
//! recursive walks below (and `Clone`, `Drop`) cannot exhaust the stack.

/// Lists and maps nested deeper than this are refused (a syntax error at
/// the first value too deep), before anything that deep is built. ConTest
/// descriptors nest about 8 levels; step parameters that carry JSON a few
/// more.
pub const MAX_DEPTH: usize = 128;

/// Larger documents are refused before parsing. 100,000 targets in a
/// `TargetList` take about 8 MiB.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024 * 1024;

/// Values (scalars, lists and maps) in one document, counting the copies
/// made for anchors and aliases; bounds the memory a document can take.
pub const MAX_NODES: usize = 2_000_000;

/// Values that alias expansion may add to one document (a "billion laughs"
/// document of nested aliases stops here).
pub const MAX_ALIAS_NODES: usize = 100_000;

/// Text (strings and key names) that anchors and aliases may copy in one
/// document: a short alias of a long string copies the whole string.
pub const MAX_COPIED_BYTES: usize = MAX_DOCUMENT_BYTES;

/// 1-based line and column of a value in its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// The format of a descriptor file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

impl Format {
    /// `.json` is JSON; everything else (`.yaml`, `.yml`, none) is YAML,
    /// which also reads JSON.
    pub fn from_path(path: &std::path::Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// A value and where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Option<Pos>,
}

/// The value of a [`Node`]. Map entries keep document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A map key and where it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Option<Pos>,
}

/// A document that could not be read at all (syntax error).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub message: String,
    pub pos: Option<Pos>,
}

/// Reads a whole document. JSON is read with the YAML parser too (YAML 1.2
/// is a superset of JSON); `format` only selects error wording.
///
/// Never recurses on the input: a document over [`MAX_DOCUMENT_BYTES`],
/// nested deeper than [`MAX_DEPTH`] or holding more than [`MAX_NODES`]
/// values is a [`SyntaxError`] with the position where the limit was hit.
pub fn parse_document(text: &str, format: Format) -> Result<Node, SyntaxError> {
    imp::parse_document(text, format)
}

impl Node {
    pub fn new(value: Value) -> Node {
        Node { value, pos: None }
    }

    /// The value under `key`, matching the key case-insensitively (the
    /// first match wins, as Go's decoder prefers an exact match first).
    pub fn get_ci(&self, key: &str) -> Option<&Node> {
        self.entry_ci(key).map(|(_, n)| n)
    }

    /// The key and value under `key`, case-insensitively; an exact match is
    /// preferred.
    pub fn entry_ci(&self, key: &str) -> Option<(&Key, &Node)> {
        let Value::Map(entries) = &self.value else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| k.name == key)
            .or_else(|| {
                entries
                    .iter()
                    .find(|(k, _)| k.name.eq_ignore_ascii_case(key))
            })
            .map(|(k, n)| (k, n))
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// A scalar as text, the way ConTest's `Param.String()` renders it:
    /// strings as they are, numbers and booleans in their literal form.
    /// Maps and sequences are rendered as JSON.
    pub fn scalar_text(&self) -> String {
        match &self.value {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => s.clone(),
            Value::Seq(_) | Value::Map(_) => self.to_json().to_string(),
        }
    }

    /// The value as JSON (positions dropped), for storing descriptors and
    /// payloads.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.name.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// A short description of the value's type, for "expected X, found Y".
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }
}

mod imp;
