use std::path::PathBuf;

/// Why a results directory, a results file or an archive could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResultsError {
    /// Reading a file or directory failed.
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The results path is not a directory.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The file is not XML at all (empty, text, truncated before the root).
    #[error("not XML: {0}")]
    NotXml(String),
    /// Well-formed XML whose root is not a JUnit root.
    #[error("not a JUnit file: root element is <{0}>, expected <testsuites> or <testsuite>")]
    NotJUnit(String),
    /// A document type declaration that declares entities (XXE): refused.
    #[error(
        "refused: the document type declaration declares entities (external entities are never read)"
    )]
    EntityDeclaration,
    /// The JUnit file is over the size prova reads.
    #[error("file too large: {size} bytes, the limit is {limit}")]
    TooLarge { size: u64, limit: u64 },
    /// Elements nested deeper than [`crate::junit::MAX_JUNIT_DEPTH`]: not
    /// read (the reader recurses per level).
    #[error(
        "{file}: line {line}, column {column}: elements nested more than {limit} deep (JUnit is read to {limit} levels)"
    )]
    TooDeep {
        file: String,
        line: usize,
        column: usize,
        limit: usize,
    },
    /// The JUnit file is malformed.
    #[error("invalid JUnit XML: {0}")]
    Parse(String),
    /// An archive broke a limit or could not be unpacked.
    #[error("results archive: {0}")]
    Archive(String),
}
