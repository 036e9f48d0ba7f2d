//! The saphyr-backed reader behind [`super::parse_document`].
//!
//! saphyr's [`MarkedYaml`] already resolves scalars with the YAML 1.2 core
//! schema, resolves aliases by copying the anchored node, and records a span
//! for every node, so this module only converts its tree into [`Node`]s and
//! its errors into [`SyntaxError`]s.
//!
//! One limitation comes with it: saphyr's loader stores mappings in a hash
//! map, so a duplicated key cannot be kept; it is reported here as a
//! [`SyntaxError`] at the second occurrence instead. Keeping both would need
//! saphyr's event parser (`saphyr-parser`), which `saphyr` does not
//! re-export.

use saphyr::{LoadableYamlNode, MarkedYaml, Marker, Scalar, ScanError, YamlData};

use super::{Format, Key, Node, Pos, SyntaxError, Value};

/// Reads exactly one document; see [`super::parse_document`].
pub(super) fn parse_document(text: &str, format: Format) -> Result<Node, SyntaxError> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| scan_error(&e, format))?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        // Nothing but whitespace and comments: an empty document.
        return Ok(Node {
            value: Value::Null,
            pos: Some(Pos { line: 1, col: 1 }),
        });
    };
    if let Some(extra) = docs.next() {
        return Err(SyntaxError {
            message: format!(
                "{}: expected one document, found {}",
                invalid(format),
                2 + docs.count()
            ),
            pos: Some(pos_of(extra.span.start)),
        });
    }
    let conv = Converter { text, format };
    if matches!(doc.data, YamlData::BadValue) && doc.span.start == doc.span.end {
        // saphyr's loader represents an empty document (`---` alone) so.
        return Ok(Node {
            value: Value::Null,
            pos: Some(pos_of(doc.span.start)),
        });
    }
    conv.node(&doc)
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
        col: u32::try_from(mark.col() + 1).unwrap_or(u32::MAX),
    }
}

fn scan_error(e: &ScanError, format: Format) -> SyntaxError {
    let info = e.info();
    let message = if info == "duplicated key in mapping" {
        format!("{}: duplicate key in map", invalid(format))
    } else {
        format!("{}: {info}", invalid(format))
    };
    SyntaxError {
        message,
        pos: Some(pos_of(*e.marker())),
    }
}

/// Converts saphyr's tree, with the source text at hand for key names.
struct Converter<'t> {
    text: &'t str,
    format: Format,
}

impl Converter<'_> {
    fn node(&self, y: &MarkedYaml<'_>) -> Result<Node, SyntaxError> {
        let pos = Some(pos_of(y.span.start));
        let value = match &y.data {
            YamlData::Value(s) => scalar(s),
            YamlData::Representation(text, style, tag) => {
                match Scalar::parse_from_cow_and_metadata(text.clone(), *style, tag.as_ref()) {
                    Some(s) => scalar(&s),
                    None => return Err(self.error(y, "value does not match its tag")),
                }
            }
            YamlData::Sequence(items) => Value::Seq(
                items
                    .iter()
                    .map(|i| self.node(i))
                    .collect::<Result<_, _>>()?,
            ),
            YamlData::Mapping(map) => {
                let mut entries = Vec::with_capacity(map.len());
                for (k, v) in map.iter() {
                    entries.push((self.key(k)?, self.node(v)?));
                }
                Value::Map(entries)
            }
            // Tags carry no meaning for descriptors: read what they tag.
            YamlData::Tagged(_, inner) => return self.node(inner).map(|n| Node { pos, ..n }),
            YamlData::Alias(_) => return Err(self.error(y, "unresolved alias")),
            YamlData::BadValue => return Err(self.error(y, "value does not match its tag")),
        };
        Ok(Node { value, pos })
    }

    /// A key's name: strings as they are, other scalars as written (so
    /// `0x10: a` is named `0x10`, not `16`), collections as JSON.
    fn key(&self, y: &MarkedYaml<'_>) -> Result<Key, SyntaxError> {
        let node = self.node(y)?;
        let name = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Seq(_) | Value::Map(_) => node.to_json().to_string(),
            _ => self
                .source(y)
                .map(str::to_owned)
                .unwrap_or_else(|| node.scalar_text()),
        };
        Ok(Key {
            name,
            pos: node.pos,
        })
    }

    /// The text a node was read from, if its span lies in the source.
    /// saphyr's indices count characters, not bytes.
    fn source(&self, y: &MarkedYaml<'_>) -> Option<&str> {
        let (start, end) = (y.span.start.index(), y.span.end.index());
        if end <= start {
            return None;
        }
        let mut bytes = self.text.char_indices().map(|(b, _)| b).skip(start);
        let from = bytes.next()?;
        let to = bytes.nth(end - start - 1).unwrap_or(self.text.len());
        self.text.get(from..to).map(str::trim)
    }

    fn error(&self, y: &MarkedYaml<'_>, what: &str) -> SyntaxError {
        SyntaxError {
            message: format!("{}: {what}", invalid(self.format)),
            pos: Some(pos_of(y.span.start)),
        }
    }
}

fn scalar(s: &Scalar<'_>) -> Value {
    match s {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::Int(*i),
        Scalar::FloatingPoint(f) => Value::Float(f.0),
        Scalar::String(s) => Value::Str(s.to_string()),
    }
}
