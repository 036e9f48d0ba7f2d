//! Test steps.

pub mod cmd;
pub mod echo;
pub mod randecho;
pub mod sleep;
pub mod variables;
pub mod waitport;
