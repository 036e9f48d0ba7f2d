//! The `sshcmd` and `sshfetch` steps run as jobs through prova's engine, on
//! a real SQLite store, against scripts/sshd.sh's real sshd (the same
//! server as the library's tests: `tests/ssh/support.rs`).

#[path = "../ssh/support.rs"]
#[allow(dead_code)]
mod support;

mod corpus;
mod host_keys;
mod job;
mod params;
mod results;
mod reuse;
mod stop;
mod verdicts;
