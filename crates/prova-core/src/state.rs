//! Job states, named as ConTest names its job events.

use serde::{Deserialize, Serialize};

/// A job's state is the newest of its job-state events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum JobState {
    Started,
    Completed,
    Failed,
    Paused,
    PauseFailed,
    Cancelling,
    Cancelled,
    CancellationFailed,
}

impl JobState {
    pub const ALL: [JobState; 8] = [
        JobState::Started,
        JobState::Completed,
        JobState::Failed,
        JobState::Paused,
        JobState::PauseFailed,
        JobState::Cancelling,
        JobState::Cancelled,
        JobState::CancellationFailed,
    ];

    /// The job event name ConTest uses, e.g. `JobStateCompleted`.
    pub fn event_name(self) -> &'static str {
        match self {
            JobState::Started => "JobStateStarted",
            JobState::Completed => "JobStateCompleted",
            JobState::Failed => "JobStateFailed",
            JobState::Paused => "JobStatePaused",
            JobState::PauseFailed => "JobStatePauseFailed",
            JobState::Cancelling => "JobStateCancelling",
            JobState::Cancelled => "JobStateCancelled",
            JobState::CancellationFailed => "JobStateCancellationFailed",
        }
    }

    /// Short name, e.g. `Completed`.
    pub fn as_str(self) -> &'static str {
        &self.event_name()["JobState".len()..]
    }

    /// Parses either form (`Completed` or `JobStateCompleted`), any case.
    pub fn parse(s: &str) -> Option<JobState> {
        let s = s.trim();
        // `get`: a name whose 8th byte falls inside a character is not a
        // prefixed one (and must not panic).
        let short = if s.len() > 8
            && s.get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("jobstate"))
        {
            &s[8..]
        } else {
            s
        };
        JobState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(short))
    }

    /// A job in a final state will not change again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Failed
                | JobState::Cancelled
                | JobState::CancellationFailed
        )
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_any_case() {
        assert_eq!(JobState::parse("completed"), Some(JobState::Completed));
        assert_eq!(JobState::parse("JobStatePaused"), Some(JobState::Paused));
        assert_eq!(
            JobState::parse("jobstatecancelled"),
            Some(JobState::Cancelled)
        );
        assert_eq!(JobState::parse("running"), None);
        // Not ASCII around the prefix's end: not a state, and no panic.
        assert_eq!(JobState::parse("PGCOPY\n\u{ff}x"), None);
        assert_eq!(JobState::parse("JobStat\u{e9}Paused"), None);
        for st in JobState::ALL {
            assert_eq!(JobState::parse(st.event_name()), Some(st));
        }
    }
}
