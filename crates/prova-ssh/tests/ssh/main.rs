//! prova-ssh against a real OpenSSH server (scripts/sshd.sh): one test
//! binary, so the server is started once.

mod auth;
mod exec;
mod host_keys;
mod pool;
mod sftp;
mod support;
