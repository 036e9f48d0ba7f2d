//! prova-ssh against a real OpenSSH server (scripts/sshd.sh): one test
//! binary, so the server is started once.

mod auth;
mod exec;
mod host_keys;
mod pool;
mod sftp;
mod support;

/// The server, or return from the test when PROVA_SKIP_SSH=1.
#[macro_export]
macro_rules! sshd_or_skip {
    () => {
        match $crate::support::sshd() {
            Some(sshd) => sshd,
            None => return,
        }
    };
}
