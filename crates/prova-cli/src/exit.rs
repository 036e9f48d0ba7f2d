//! Exit codes, documented in `prova --help` and docs/cli.md, and asserted by
//! the integration tests.

/// The job completed and every reporter said success; or the command did
/// what it was asked.
pub const SUCCESS: u8 = 0;
/// The job completed but a reporter said failure (tests failed).
pub const TESTS_FAILED: u8 = 1;
/// Bad usage or an invalid descriptor: nothing ran.
pub const INVALID: u8 = 2;
/// The job failed: the engine could not run it (targets could not be
/// acquired, ...).
pub const JOB_FAILED: u8 = 3;
/// prova itself failed (store unavailable, I/O error, ...).
pub const ERROR: u8 = 4;
/// The job was cancelled (Ctrl-C).
pub const CANCELLED: u8 = 130;

/// `prova run`'s exit code for a job in `state` whose reporters all said
/// success (`reports_ok`) or not.
pub fn for_job(state: Option<prova_core::JobState>, reports_ok: bool) -> u8 {
    use prova_core::JobState;
    match state {
        Some(JobState::Completed) if reports_ok => SUCCESS,
        Some(JobState::Completed) => TESTS_FAILED,
        Some(JobState::Cancelled | JobState::Cancelling) => CANCELLED,
        _ => JOB_FAILED,
    }
}
