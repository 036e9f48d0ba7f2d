//! Exit codes, documented in `prova --help` and docs/cli.md, and asserted by
//! the integration tests.

/// The job completed and every reporter said success; or the command did
/// what it was asked.
pub const SUCCESS: u8 = 0;
/// The job completed but a reporter said failure (tests failed).
pub const TESTS_FAILED: u8 = 1;
/// `prova history`: nothing matched the test asked for.
pub const NO_MATCH: u8 = 1;
/// Bad usage or an invalid descriptor: nothing ran.
pub const INVALID: u8 = 2;
/// The job failed: the engine could not run it (targets could not be
/// acquired, ...).
pub const JOB_FAILED: u8 = 3;
/// prova itself failed (store unavailable, I/O error, ...).
pub const ERROR: u8 = 4;
/// The job was cancelled (Ctrl-C).
pub const CANCELLED: u8 = 130;

/// The exit code for a job's verdict (the same for `prova run`, `prova
/// start --wait` and `prova status`).
pub fn for_verdict(verdict: prova_core::status::Verdict) -> u8 {
    use prova_core::status::Verdict;
    match verdict {
        Verdict::Passed => SUCCESS,
        Verdict::Failed => TESTS_FAILED,
        Verdict::Cancelled => CANCELLED,
        Verdict::Error | Verdict::Pending => JOB_FAILED,
    }
}

/// A flag's value found wrong after parsing (`--server` that is not a
/// URL): `main` prints it and exits [`INVALID`], not [`ERROR`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);
