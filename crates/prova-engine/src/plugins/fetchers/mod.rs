//! Test fetchers: where a test's steps come from.

pub mod literal;
pub mod uri;
