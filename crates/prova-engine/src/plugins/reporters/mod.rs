//! Reporters: judge each run and the whole job.

pub mod junit;
pub mod noop;
pub mod target_success;
mod xml_text;
