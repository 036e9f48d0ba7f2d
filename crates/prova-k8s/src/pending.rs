//! Why a Job's pod does not run, and when to stop waiting for it.
//!
//! Two states do not resolve by themselves in the usual case and would
//! otherwise show only as `DeadlineExceeded` or prova's timeout:
//!
//! - the Job controller cannot create the pod: Warning Events with reason
//!   `FailedCreate` on the Job (`pods "x" is forbidden: error looking up
//!   service account ns/sa: serviceaccount "sa" not found`, a quota);
//! - the scheduler cannot place the pod: its `PodScheduled` condition is
//!   `False` with reason `Unschedulable`.
//!
//! Each has a grace (a ServiceAccount created a moment later, a cluster
//! autoscaler adding a node); past it the step fails naming the cause.
//! Any other Warning Event on the Job or its pods is kept as the last
//! warning, named when the step times out or the Job's deadline passes.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use tokio::time::Instant;

/// Longest event message kept (an Event message is bounded by the API
/// server, but prova does not rely on it).
const MAX_MESSAGE: usize = 4096;

/// A cause first seen at `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stuck {
    since: Instant,
    reason: String,
    message: String,
    /// What is stuck, for the message: `the Job`, `pod x`.
    subject: String,
}

/// The causes known so far.
#[derive(Debug)]
pub struct Pending {
    failed_create: Option<Stuck>,
    unschedulable: HashMap<String, Stuck>,
    last_warning: Option<String>,
    failed_create_grace: Duration,
    unschedulable_grace: Duration,
}

impl Pending {
    pub fn new(failed_create_grace: Duration, unschedulable_grace: Duration) -> Self {
        Pending {
            failed_create: None,
            unschedulable: HashMap::new(),
            last_warning: None,
            failed_create_grace,
            unschedulable_grace,
        }
    }

    /// A core/v1 Event about the Job or one of its pods. Returns the
    /// warning as `Reason: message` when it is one.
    pub fn on_event(&mut self, ev: &Event, now: Instant) -> Option<String> {
        if ev.type_.as_deref() != Some("Warning") {
            return None;
        }
        let reason = ev.reason.clone().unwrap_or_else(|| "Warning".into());
        let message = bounded(ev.message.as_deref().unwrap_or_default());
        let kind = ev.involved_object.kind.as_deref().unwrap_or_default();
        if kind == "Job" && reason == "FailedCreate" {
            match &mut self.failed_create {
                Some(s) => s.message = message.clone(),
                None => {
                    self.failed_create = Some(Stuck {
                        since: now,
                        reason: reason.clone(),
                        message: message.clone(),
                        subject: "the Job could not create its pod".into(),
                    })
                }
            }
        }
        let warning = if message.is_empty() {
            reason
        } else {
            format!("{reason}: {message}")
        };
        self.last_warning = Some(warning.clone());
        Some(warning)
    }

    /// A pod of the Job exists: the Job could create it.
    pub fn pod_created(&mut self) {
        self.failed_create = None;
    }

    /// The pod's scheduling state: `Some((reason, message))` while it is
    /// unschedulable, `None` otherwise. Returns true the first time the pod
    /// is seen unschedulable.
    pub fn on_pod(
        &mut self,
        pod: &str,
        unschedulable: Option<(String, String)>,
        now: Instant,
    ) -> bool {
        match unschedulable {
            None => {
                self.unschedulable.remove(pod);
                false
            }
            Some((reason, message)) => {
                let message = bounded(&message);
                if let Some(s) = self.unschedulable.get_mut(pod) {
                    s.message = message;
                    return false;
                }
                self.unschedulable.insert(
                    pod.to_string(),
                    Stuck {
                        since: now,
                        reason,
                        message,
                        subject: format!("pod {pod} could not be scheduled"),
                    },
                );
                true
            }
        }
    }

    /// A pod is gone (deleted, replaced).
    pub fn pod_gone(&mut self, pod: &str) {
        self.unschedulable.remove(pod);
    }

    /// When the earliest grace runs out, if anything is stuck.
    pub fn deadline(&self) -> Option<Instant> {
        let fc = self
            .failed_create
            .as_ref()
            .map(|s| s.since + self.failed_create_grace);
        let un = self
            .unschedulable
            .values()
            .map(|s| s.since + self.unschedulable_grace)
            .min();
        fc.into_iter().chain(un).min()
    }

    /// The failure, once a cause has outlasted its grace.
    pub fn expired(&self, now: Instant) -> Option<String> {
        if let Some(s) = &self.failed_create
            && now >= s.since + self.failed_create_grace
        {
            return Some(describe(s, self.failed_create_grace));
        }
        self.unschedulable
            .values()
            .filter(|s| now >= s.since + self.unschedulable_grace)
            .min_by_key(|s| s.since)
            .map(|s| describe(s, self.unschedulable_grace))
    }

    /// What is known to hold the pod back (for timeouts and deadlines).
    pub fn cause(&self) -> Option<String> {
        if let Some(s) = &self.failed_create {
            return Some(format!("{}: {}", s.reason, s.message));
        }
        if let Some(s) = self.unschedulable.values().min_by_key(|s| s.since) {
            return Some(format!("{} ({}): {}", s.reason, s.subject, s.message));
        }
        self.last_warning
            .as_ref()
            .map(|w| format!("last warning: {w}"))
    }
}

fn describe(s: &Stuck, grace: Duration) -> String {
    format!("{}: {} for {:?}: {}", s.reason, s.subject, grace, s.message)
}

fn bounded(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    fn warning(kind: &str, reason: &str, message: &str) -> Event {
        Event {
            type_: Some("Warning".into()),
            reason: Some(reason.into()),
            message: Some(message.into()),
            involved_object: ObjectReference {
                kind: Some(kind.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn failed_create_expires_unless_a_pod_appears() {
        let mut p = Pending::new(Duration::from_secs(10), Duration::from_secs(60));
        let t0 = Instant::now();
        let msg = "Error creating: pods \"j-abcde\" is forbidden: error looking up service account ns/sa: serviceaccount \"sa\" not found";
        assert!(
            p.on_event(&warning("Job", "FailedCreate", msg), t0)
                .is_some()
        );
        assert_eq!(p.deadline(), Some(t0 + Duration::from_secs(10)));
        assert_eq!(p.expired(t0 + Duration::from_secs(9)), None);
        let err = p.expired(t0 + Duration::from_secs(10)).unwrap();
        assert!(
            err.starts_with(
                "FailedCreate: the Job could not create its pod for 10s: Error creating"
            ),
            "{err}"
        );
        p.pod_created();
        assert_eq!(p.deadline(), None);
        assert_eq!(p.expired(t0 + Duration::from_secs(100)), None);
    }

    #[tokio::test]
    async fn unschedulable_expires_unless_scheduled() {
        let mut p = Pending::new(Duration::from_secs(10), Duration::from_secs(60));
        let t0 = Instant::now();
        let why = Some((
            "Unschedulable".to_string(),
            "0/1 nodes are available: 1 Insufficient memory.".to_string(),
        ));
        assert!(p.on_pod("p", why.clone(), t0));
        assert!(!p.on_pod("p", why, t0 + Duration::from_secs(5)));
        assert_eq!(p.deadline(), Some(t0 + Duration::from_secs(60)));
        assert!(p.cause().unwrap().contains("Insufficient memory"));
        assert!(
            p.expired(t0 + Duration::from_secs(60))
                .unwrap()
                .starts_with("Unschedulable: pod p could not be scheduled for 60s")
        );
        p.on_pod("p", None, t0);
        assert_eq!(p.deadline(), None);
        assert_eq!(p.cause(), None);
        assert!(
            p.on_event(
                &warning("Pod", "FailedMount", "configmap \"x\" not found"),
                t0
            )
            .is_some()
        );
        assert_eq!(
            p.cause().unwrap(),
            "last warning: FailedMount: configmap \"x\" not found"
        );
    }
}
