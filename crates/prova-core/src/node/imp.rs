//! The reader behind [`super::parse_document`]: saphyr's event parser,
//! folded into [`Node`]s with an explicit stack.
//!
//! Why events rather than saphyr's own loader: the loader builds its whole
//! tree before anything can look at it, and that tree is dropped (and was
//! converted here) recursively, so 10,000 nested block mappings overflowed
//! the stack. Here every limit is enforced as the event arrives, before the
//! node exists: nesting ([`MAX_DEPTH`]), values ([`MAX_NODES`], which also
//! counts copies made for anchors and aliases) and alias expansion
//! ([`MAX_ALIAS_NODES`]). The parser itself keeps its state on the heap.
//! Every tree built here is at most [`MAX_DEPTH`] deep, so the recursive
//! walks over [`Node`] (`to_json`, `Clone`, `Drop`) stay shallow.
//!
//! Scalars resolve with the YAML 1.2 core schema (saphyr's resolver);
//! aliases resolve to a copy of the anchored node; a key seen twice in one
//! map is an error at the second one.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use saphyr::Scalar;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span, Tag};

use super::{
    Format, Key, MAX_ALIAS_NODES, MAX_COPIED_BYTES, MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_NODES,
};
use super::{Node, Pos, SyntaxError, Value};

/// Reads exactly one document; see [`super::parse_document`].
pub(super) fn parse_document(text: &str, format: Format) -> Result<Node, SyntaxError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(SyntaxError {
            message: format!(
                "{}: document is {} bytes: expected at most {MAX_DOCUMENT_BYTES}",
                invalid(format),
                text.len()
            ),
            pos: Some(Pos { line: 1, col: 1 }),
        });
    }
    let mut builder = Builder::new(format);
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| scan_error(&e, format))?;
        builder.on_event(event, span)?;
    }
    builder.finish()
}

/// "invalid JSON" or "invalid YAML": the prefix of every message, so the
/// user knows which grammar was applied.
fn invalid(format: Format) -> &'static str {
    match format {
        Format::Json => "invalid JSON",
        Format::Yaml => "invalid YAML",
    }
}

/// saphyr's markers have 1-based lines and 0-based columns.
fn pos_of(mark: Marker) -> Pos {
    Pos {
        line: u32::try_from(mark.line()).unwrap_or(u32::MAX),
        col: u32::try_from(mark.col().saturating_add(1)).unwrap_or(u32::MAX),
    }
}

fn scan_error(e: &ScanError, format: Format) -> SyntaxError {
    // The scanner reads flow collections (`[[[`) ahead of the parser and
    // gives up at its own limit (255) before the builder sees level
    // MAX_DEPTH + 1; say which limit applies.
    let message = match e.info() {
        "recursion limit exceeded" => too_deep(),
        info => info.to_owned(),
    };
    SyntaxError {
        message: format!("{}: {message}", invalid(format)),
        pos: Some(pos_of(*e.marker())),
    }
}

fn too_deep() -> String {
    format!("nested too deeply: expected at most {MAX_DEPTH} levels of lists and maps")
}

/// A list or map being read.
struct Frame {
    pos: Pos,
    /// The anchor this collection defines (0: none).
    anchor: usize,
    body: Body,
}

enum Body {
    Seq(Vec<Node>),
    Map {
        entries: Vec<(Key, Node)>,
        /// The key read, waiting for its value.
        key: Option<(Key, KeyKind)>,
        /// What each entry's key is, for duplicates (see [`KeyKind`]).
        kinds: Vec<KeyKind>,
        /// Every key so far, once the map is large enough that scanning
        /// `kinds` for each new key would cost more than hashing.
        index: Option<HashSet<(KeyKind, String)>>,
    },
}

/// Maps with more entries than this look up duplicate keys in a hash set;
/// smaller ones (nearly all) scan, which allocates nothing.
const SCAN_KEYS: usize = 16;

/// What decides whether two keys are the same: `1` and `"1"` differ (an
/// integer and a string), `16` and `0x10` are the same integer. Strings
/// and collections compare by name (a collection's name is its JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum KeyKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str,
    Collection,
}

impl KeyKind {
    fn of(value: &Value) -> KeyKind {
        match value {
            Value::Null => KeyKind::Null,
            Value::Bool(b) => KeyKind::Bool(*b),
            Value::Int(i) => KeyKind::Int(*i),
            Value::Float(f) => KeyKind::Float(f.to_bits()),
            Value::Str(_) => KeyKind::Str,
            Value::Seq(_) | Value::Map(_) => KeyKind::Collection,
        }
    }

    /// The name matters only for strings and collections.
    fn named(self) -> bool {
        matches!(self, KeyKind::Str | KeyKind::Collection)
    }
}

/// Whether `key` is already in the map; records it if not.
fn seen_before(
    entries: &[(Key, Node)],
    kinds: &mut Vec<KeyKind>,
    index: &mut Option<HashSet<(KeyKind, String)>>,
    key: &Key,
    kind: KeyKind,
) -> bool {
    let id = |kind: KeyKind, name: &str| (kind, if kind.named() { name } else { "" }.to_owned());
    if index.is_none() && kinds.len() >= SCAN_KEYS {
        let all = kinds.iter().zip(entries).map(|(k, (e, _))| id(*k, &e.name));
        *index = Some(all.collect());
    }
    let duplicate = match index {
        Some(index) => !index.insert(id(kind, &key.name)),
        None => kinds
            .iter()
            .zip(entries)
            .any(|(k, (e, _))| *k == kind && (!kind.named() || e.name == key.name)),
    };
    if !duplicate {
        kinds.push(kind);
    }
    duplicate
}

/// An anchored node, kept to be copied where it is aliased.
struct Anchored {
    node: Node,
    /// Values in it (what a copy adds to [`MAX_NODES`]).
    nodes: usize,
    /// Its nesting: 0 for a scalar, 1 for a flat list, ...
    height: usize,
    /// The text in it (strings and key names), what a copy costs.
    bytes: usize,
}

/// Folds parser events into one [`Node`], enforcing the limits.
struct Builder {
    format: Format,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, Anchored>,
    /// Values created so far, copies included.
    nodes: usize,
    /// Values created by alias expansion so far.
    alias_nodes: usize,
    /// Text copied for anchors and aliases so far.
    copied_bytes: usize,
    documents: usize,
    /// Where the second document starts, once there is one: its first
    /// value, or its `---` if it has none.
    extra_document: Option<Pos>,
    extra_document_has_value: bool,
}

impl Builder {
    fn new(format: Format) -> Builder {
        Builder {
            format,
            stack: Vec::new(),
            root: None,
            anchors: HashMap::new(),
            nodes: 0,
            alias_nodes: 0,
            copied_bytes: 0,
            documents: 0,
            extra_document: None,
            extra_document_has_value: false,
        }
    }

    fn error(&self, pos: Pos, what: impl std::fmt::Display) -> SyntaxError {
        SyntaxError {
            message: format!("{}: {what}", invalid(self.format)),
            pos: Some(pos),
        }
    }

    fn on_event(&mut self, event: Event<'_>, span: Span) -> Result<(), SyntaxError> {
        let pos = pos_of(span.start);
        if self.documents > 1 {
            // Only counted: nothing of a second document is kept.
            match event {
                Event::DocumentStart(_) => self.documents += 1,
                Event::Scalar(..)
                | Event::Alias(_)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                    if self.documents == 2 && !self.extra_document_has_value =>
                {
                    self.extra_document = Some(pos);
                    self.extra_document_has_value = true;
                }
                _ => {}
            }
            return Ok(());
        }
        match event {
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.extra_document = Some(pos);
                }
            }
            Event::SequenceStart(anchor, _) => self.open(pos, anchor, Body::Seq(Vec::new()))?,
            Event::MappingStart(anchor, _) => self.open(
                pos,
                anchor,
                Body::Map {
                    entries: Vec::new(),
                    key: None,
                    kinds: Vec::new(),
                    index: None,
                },
            )?,
            Event::SequenceEnd | Event::MappingEnd => self.close()?,
            Event::Scalar(text, style, anchor, tag) => {
                self.count(1, pos)?;
                // Kept only for a plain scalar that is a key: it may name a
                // non-string key as written.
                let raw = (style == ScalarStyle::Plain && self.expects_key())
                    .then(|| text.trim().to_owned());
                let value = self.scalar(text, style, tag.as_ref(), pos)?;
                let node = Node {
                    value,
                    pos: Some(pos),
                };
                if anchor > 0 {
                    self.anchor(anchor, &node, pos)?;
                }
                self.insert(node, raw)?;
            }
            Event::Alias(anchor) => {
                let node = self.alias(anchor, pos)?;
                self.insert(node, None)?;
            }
        }
        Ok(())
    }

    /// Starts a list or map, refusing it if it would nest too deeply: the
    /// check comes before anything of it is built.
    fn open(&mut self, pos: Pos, anchor: usize, body: Body) -> Result<(), SyntaxError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.error(pos, too_deep()));
        }
        self.count(1, pos)?;
        self.stack.push(Frame { pos, anchor, body });
        Ok(())
    }

    fn close(&mut self) -> Result<(), SyntaxError> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let value = match frame.body {
            Body::Seq(items) => Value::Seq(items),
            Body::Map { entries, .. } => Value::Map(entries),
        };
        let node = Node {
            value,
            pos: Some(frame.pos),
        };
        if frame.anchor > 0 {
            self.anchor(frame.anchor, &node, frame.pos)?;
        }
        self.insert(node, None)
    }

    /// Counts `n` new values against [`MAX_NODES`].
    fn count(&mut self, n: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(self.error(
                pos,
                format!("too many values: expected at most {MAX_NODES} (copies made by anchors and aliases count too)"),
            ));
        }
        Ok(())
    }

    /// Keeps a copy of an anchored node for later aliases. The copy costs
    /// as much as the node, so it counts against the limits first.
    fn anchor(&mut self, id: usize, node: &Node, pos: Pos) -> Result<(), SyntaxError> {
        let Size {
            height,
            bytes,
            nodes,
        } = measure(node);
        self.count(nodes, pos)?;
        self.copy_bytes(bytes, pos)?;
        self.anchors.insert(
            id,
            Anchored {
                node: node.clone(),
                nodes,
                height,
                bytes,
            },
        );
        Ok(())
    }

    /// Counts text copied for anchors and aliases against
    /// [`MAX_COPIED_BYTES`]: one alias of a long string is cheap to write
    /// and costs the whole string each time.
    fn copy_bytes(&mut self, bytes: usize, pos: Pos) -> Result<(), SyntaxError> {
        self.copied_bytes = self.copied_bytes.saturating_add(bytes);
        if self.copied_bytes > MAX_COPIED_BYTES {
            return Err(self.error(
                pos,
                format!("anchors and aliases copy too much text: expected at most {MAX_COPIED_BYTES} bytes"),
            ));
        }
        Ok(())
    }

    /// A copy of the anchored node, placed at the alias. Refused if it
    /// would nest too deeply where it lands, or expand too much.
    fn alias(&mut self, id: usize, pos: Pos) -> Result<Node, SyntaxError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(self.error(pos, "unknown anchor"));
        };
        let (nodes, height, bytes) = (anchored.nodes, anchored.height, anchored.bytes);
        if self.stack.len() + height > MAX_DEPTH {
            return Err(self.error(
                pos,
                format!("nested too deeply once the alias is expanded: expected at most {MAX_DEPTH} levels of lists and maps"),
            ));
        }
        self.alias_nodes = self.alias_nodes.saturating_add(nodes);
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(self.error(
                pos,
                format!("aliases expand to too many values: expected at most {MAX_ALIAS_NODES}"),
            ));
        }
        self.count(nodes, pos)?;
        self.copy_bytes(bytes, pos)?;
        let mut node = match self.anchors.get(&id) {
            Some(anchored) => anchored.node.clone(),
            None => return Err(self.error(pos, "unknown anchor")),
        };
        node.pos = Some(pos);
        Ok(node)
    }

    /// Places a finished node in the open collection, or as the document.
    /// `raw` is a plain scalar's text, which names a non-string key as
    /// written (`0x10: a` is named `0x10`, not `16`).
    fn insert(&mut self, node: Node, raw: Option<String>) -> Result<(), SyntaxError> {
        let format = self.format;
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut parent.body {
            Body::Seq(items) => items.push(node),
            Body::Map {
                entries,
                key,
                kinds,
                index,
            } => match key.take() {
                None => {
                    let pos = node.pos;
                    match key_of(node, raw) {
                        Some(k) => *key = Some(k),
                        None => {
                            return Err(SyntaxError {
                                message: format!(
                                    "{}: a list or map used as a key is over {MAX_COLLECTION_KEY_BYTES} bytes as JSON: expected a short key (descriptor keys are strings)",
                                    invalid(format)
                                ),
                                pos,
                            });
                        }
                    }
                }
                Some((k, kind)) => {
                    if seen_before(entries, kinds, index, &k, kind) {
                        return Err(SyntaxError {
                            message: format!("{}: duplicate key in map", invalid(format)),
                            pos: k.pos,
                        });
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }

    /// Whether the next value completes a key rather than a value.
    fn expects_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame {
                body: Body::Map { key: None, .. },
                ..
            })
        )
    }

    /// Resolves a scalar with the core schema; a value its tag rejects
    /// (`!!int abc`) is an error.
    fn scalar(
        &self,
        text: Cow<'_, str>,
        style: ScalarStyle,
        tag: Option<&Cow<'_, Tag>>,
        pos: Pos,
    ) -> Result<Value, SyntaxError> {
        match Scalar::parse_from_cow_and_metadata(text, style, tag) {
            Some(Scalar::Null) => Ok(Value::Null),
            Some(Scalar::Boolean(b)) => Ok(Value::Bool(b)),
            Some(Scalar::Integer(i)) => Ok(Value::Int(i)),
            Some(Scalar::FloatingPoint(f)) => Ok(Value::Float(f.0)),
            Some(Scalar::String(s)) => Ok(Value::Str(s.into_owned())),
            None => Err(self.error(pos, "value does not match its tag")),
        }
    }

    fn finish(self) -> Result<Node, SyntaxError> {
        if let Some(pos) = self.extra_document {
            return Err(self.error(
                pos,
                format!("expected one document, found {}", self.documents),
            ));
        }
        // Nothing but whitespace and comments, or `---` alone: null.
        Ok(self.root.unwrap_or(Node {
            value: Value::Null,
            pos: Some(Pos { line: 1, col: 1 }),
        }))
    }
}

/// A list or map used as a key is named by its JSON, at most this long.
/// Without a bound, keys nested in keys grow exponentially: each level
/// escapes the quotes of the names inside it again.
pub(super) const MAX_COLLECTION_KEY_BYTES: usize = 1024;

/// A key's name and kind. Names: strings as they are, other scalars as
/// written, collections as JSON (compact, entries in document order).
/// `None` when a collection's JSON is over [`MAX_COLLECTION_KEY_BYTES`].
fn key_of(node: Node, raw: Option<String>) -> Option<(Key, KeyKind)> {
    let kind = KeyKind::of(&node.value);
    let name = match &node.value {
        Value::Seq(_) | Value::Map(_) => {
            let mut json = String::new();
            write_json(&node, &mut json)?;
            json
        }
        _ => match node.value {
            Value::Str(s) => s,
            _ => raw.unwrap_or_else(|| node.scalar_text()),
        },
    };
    Some((
        Key {
            name,
            pos: node.pos,
        },
        kind,
    ))
}

/// Appends `node` as compact JSON, giving up (`None`) once `out` is over
/// [`MAX_COLLECTION_KEY_BYTES`]: the work is bounded by the limit, not by
/// the node. Recursive over a tree at most [`MAX_DEPTH`] deep.
fn write_json(node: &Node, out: &mut String) -> Option<()> {
    let fits = |out: &String| (out.len() <= MAX_COLLECTION_KEY_BYTES).then_some(());
    match &node.value {
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out)?;
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(&k.name, out)?;
                out.push(':');
                write_json(v, out)?;
            }
            out.push('}');
        }
        Value::Str(s) => write_json_string(s, out)?,
        _ => out.push_str(&node.to_json().to_string()),
    }
    fits(out)
}

fn write_json_string(s: &str, out: &mut String) -> Option<()> {
    if out.len() + s.len() > MAX_COLLECTION_KEY_BYTES {
        return None;
    }
    out.push_str(&serde_json::Value::from(s).to_string());
    (out.len() <= MAX_COLLECTION_KEY_BYTES).then_some(())
}

/// What copying a node costs.
struct Size {
    /// Nesting: 0 for a scalar, 1 for a flat list, ...
    height: usize,
    /// Text: strings and key names.
    bytes: usize,
    /// Values, the node itself included.
    nodes: usize,
}

/// Recursive, but only over trees this module built, which are at most
/// [`MAX_DEPTH`] deep.
fn measure(node: &Node) -> Size {
    let mut size = Size {
        height: 0,
        bytes: 0,
        nodes: 1,
    };
    let mut add = |inner: Size, key_bytes: usize| {
        size.height = size.height.max(inner.height + 1);
        size.bytes = size.bytes.saturating_add(inner.bytes + key_bytes);
        size.nodes = size.nodes.saturating_add(inner.nodes);
    };
    match &node.value {
        Value::Str(s) => size.bytes = s.len(),
        Value::Seq(items) => {
            items.iter().for_each(|i| add(measure(i), 0));
            size.height = size.height.max(1);
        }
        Value::Map(entries) => {
            entries
                .iter()
                .for_each(|(k, v)| add(measure(v), k.name.len()));
            size.height = size.height.max(1);
        }
        _ => {}
    }
    size
}
