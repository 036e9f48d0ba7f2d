//! prova's core types.
//!
//! Everything the engine, the store, the CLI and the server agree on lives
//! here, and nothing here does I/O beyond reading a string:
//!
//! - [`node`]: a JSON/YAML document as a tree that remembers line and column,
//!   with case-insensitive key lookup (ConTest matches keys that way).
//! - [`diag`]: descriptor diagnostics that name the file, field path, line
//!   and column, and what was expected.
//! - [`descriptor`]: the ConTest job descriptor, typed.
//! - [`template`]: the Go-template subset ConTest step parameters use.
//! - [`target`], [`event`], [`state`]: the event contract between the
//!   engine, the store and every reporter.
//! - [`status`]: the job status tree, rebuilt from events.
//! - [`duration`]: Go duration strings (`"1m30s"`), as ConTest writes them.
//!
//! ```
//! let text = "JobName: hello\nRuns: 1\n";
//! let doc = prova_core::node::parse_document(text, prova_core::node::Format::Yaml).unwrap();
//! assert_eq!(doc.get_ci("jobname").and_then(|n| n.as_str()), Some("hello"));
//! ```

pub mod descriptor;
pub mod diag;
pub mod duration;
pub mod event;
pub mod node;
pub mod results;
pub mod state;
pub mod status;
pub mod target;
pub mod template;

pub use event::{Event, EventKind, EventQuery, JobId, NewEvent};
pub use state::JobState;
pub use target::Target;
