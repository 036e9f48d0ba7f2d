//! Descriptor diagnostics: every problem names the file, the field path
//! (`TestDescriptors[0].TestFetcherFetchParameters.Steps[2].parameters.executable`),
//! the line and column where the format has them, and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::node::Pos;

/// One problem found in a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: Option<PathBuf>,
    /// Field path from the document root, e.g. `TestDescriptors[0].Disabled`.
    /// Empty for the document as a whole.
    pub path: String,
    pub pos: Option<Pos>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}", file.display())?,
            None => f.write_str("<descriptor>")?,
        }
        if let Some(pos) = self.pos {
            write!(f, ":{}:{}", pos.line, pos.col)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects every diagnostic of one document, so that all errors are
/// reported at once instead of the first one only.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    file: Option<PathBuf>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: Option<&Path>) -> Self {
        Diagnostics {
            file: file.map(Path::to_path_buf),
            ..Default::default()
        }
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    pub fn error(&mut self, path: &FieldPath, pos: Option<Pos>, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            file: self.file.clone(),
            path: path.to_string(),
            pos,
            message: message.into(),
        });
    }

    pub fn warn(&mut self, path: &FieldPath, pos: Option<Pos>, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            file: self.file.clone(),
            path: path.to_string(),
            pos,
            message: message.into(),
        });
    }

    /// Adds diagnostics found in another document (a fetched steps file).
    pub fn extend(&mut self, other: Diagnostics) {
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }

    pub fn errors(&self) -> &[Diagnostic] {
        &self.errors
    }

    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Ok with the warnings, or every error, in document order.
    pub fn into_result(mut self) -> Result<Vec<Diagnostic>, InvalidDescriptor> {
        let order = |d: &Diagnostic| {
            (
                d.file.clone(),
                d.pos.map(|p| (p.line, p.col)).unwrap_or((u32::MAX, 0)),
            )
        };
        // Cached: the key clones the file name, and 100,000 targets can
        // bring as many diagnostics.
        self.errors.sort_by_cached_key(order);
        self.warnings.sort_by_cached_key(order);
        if self.errors.is_empty() {
            Ok(self.warnings)
        } else {
            Err(InvalidDescriptor {
                errors: self.errors,
                warnings: self.warnings,
            })
        }
    }
}

/// A descriptor with at least one error; carries all of them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(errors))]
pub struct InvalidDescriptor {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

fn render(errors: &[Diagnostic]) -> String {
    let mut out = format!(
        "invalid job descriptor ({} error{})",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        out.push_str("\n  ");
        out.push_str(&e.to_string());
    }
    out
}

/// A field path being walked, e.g. `TestDescriptors[0].Steps[2]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(String::new())
    }

    /// `self.key`
    pub fn key(&self, key: &str) -> FieldPath {
        if self.0.is_empty() {
            FieldPath(key.to_string())
        } else {
            FieldPath(format!("{}.{key}", self.0))
        }
    }

    /// `self[i]`
    pub fn index(&self, i: usize) -> FieldPath {
        FieldPath(format!("{}[{i}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_names_file_line_path_and_message() {
        let mut d = Diagnostics::new(Some(Path::new("job.yaml")));
        let p = FieldPath::root()
            .key("TestDescriptors")
            .index(0)
            .key("Steps")
            .index(2);
        d.error(&p, Some(Pos { line: 7, col: 3 }), "expected a label");
        let err = d.into_result().unwrap_err();
        assert_eq!(
            err.errors[0].to_string(),
            "job.yaml:7:3: TestDescriptors[0].Steps[2]: expected a label"
        );
        assert!(
            err.to_string()
                .starts_with("invalid job descriptor (1 error)")
        );
    }
}
