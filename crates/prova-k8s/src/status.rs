//! Reading outcomes from object status, never from log text: container
//! states (exit code, OOMKilled, image pull errors), pod disruption
//! (Evicted, `DisruptionTarget`) and Job conditions (Complete, Failed,
//! FailureTarget with their reasons, e.g. DeadlineExceeded).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Waiting reasons after which a container will not start by itself.
pub const FATAL_WAITING_REASONS: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// A terminated container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub container: String,
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled`, `ContainerCannotRun`, ...
    pub reason: Option<String>,
    /// The termination message (or the log tail, on error).
    pub message: Option<String>,
    pub signal: Option<i32>,
}

/// How a Job ended (or is ending: `FailureTarget` comes before `Failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    pub complete: bool,
    /// True once `Complete` or `Failed` is set (not only `FailureTarget`).
    pub finished: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// Why a pod stopped counting: evicted or otherwise disrupted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disruption {
    pub reason: String,
    pub message: Option<String>,
}

fn container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// The node the pod was scheduled to, once `PodScheduled` is True.
pub fn scheduled_node(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let scheduled = status
        .conditions
        .as_ref()?
        .iter()
        .any(|c| c.type_ == "PodScheduled" && c.status == "True");
    scheduled.then(|| {
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    })
}

/// The container's fatal waiting state (`ImagePullBackOff: <message>`).
pub fn fatal_waiting(pod: &Pod, container: &str) -> Option<(String, String)> {
    let w = container_status(pod, container)?
        .state
        .as_ref()?
        .waiting
        .as_ref()?;
    let reason = w.reason.as_deref()?;
    FATAL_WAITING_REASONS
        .contains(&reason)
        .then(|| (reason.to_string(), w.message.clone().unwrap_or_default()))
}

/// Whether the container has started (running or terminated): its log can
/// be read.
pub fn started(pod: &Pod, container: &str) -> bool {
    container_status(pod, container)
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some() || s.terminated.is_some())
}

/// Whether the container is running now.
pub fn running(pod: &Pod, container: &str) -> bool {
    container_status(pod, container)
        .and_then(|c| c.state.as_ref())
        .is_some_and(|s| s.running.is_some())
}

/// `PodScheduled=False` with reason `Unschedulable`: `(reason, message)`.
pub fn unschedulable(pod: &Pod) -> Option<(String, String)> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")?;
    (c.status == "False" && c.reason.as_deref() == Some("Unschedulable")).then(|| {
        (
            "Unschedulable".to_string(),
            c.message.clone().unwrap_or_default(),
        )
    })
}

/// What the pod status says of a container that is not running, for an
/// error: `exit code 1, reason Error, message "…"`, `waiting: reason: …`,
/// or that it has no status.
pub fn not_running(pod: &Pod, container: &str) -> String {
    let Some(state) = container_status(pod, container).and_then(|c| c.state.as_ref()) else {
        return "no status reported for it".into();
    };
    if let Some(t) = &state.terminated {
        let mut parts = vec![format!("exit code {}", t.exit_code)];
        if let Some(sig) = t.signal {
            parts.push(format!("signal {sig}"));
        }
        if let Some(r) = t.reason.as_deref().filter(|r| !r.is_empty()) {
            parts.push(format!("reason {r}"));
        }
        match t
            .message
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(m) => parts.push(format!("termination message {m:?}")),
            None => parts.push("no termination message".into()),
        }
        return parts.join(", ");
    }
    if let Some(w) = &state.waiting {
        return format!(
            "waiting: {}: {}",
            w.reason.as_deref().unwrap_or("no reason"),
            w.message.as_deref().unwrap_or("no message")
        );
    }
    "running".into()
}

/// The container's termination, once it has terminated.
pub fn terminated(pod: &Pod, container: &str) -> Option<Terminated> {
    let t = container_status(pod, container)?
        .state
        .as_ref()?
        .terminated
        .as_ref()?;
    Some(Terminated {
        container: container.to_string(),
        exit_code: t.exit_code,
        reason: t.reason.clone(),
        message: t.message.clone().filter(|m| !m.trim().is_empty()),
        signal: t.signal,
    })
}

/// The pod's disruption: `status.reason` Evicted (or any pod-level
/// reason on a failed pod), or a `DisruptionTarget` condition.
pub fn disruption(pod: &Pod) -> Option<Disruption> {
    let status = pod.status.as_ref()?;
    if let Some(c) = status.conditions.as_ref().and_then(|cs| {
        cs.iter()
            .find(|c| c.type_ == "DisruptionTarget" && c.status == "True")
    }) {
        return Some(Disruption {
            reason: c
                .reason
                .clone()
                .unwrap_or_else(|| "DisruptionTarget".into()),
            message: c.message.clone(),
        });
    }
    match status.reason.as_deref() {
        Some(r @ ("Evicted" | "Preempting" | "Terminated" | "NodeLost" | "Shutdown")) => {
            Some(Disruption {
                reason: r.to_string(),
                message: status.message.clone(),
            })
        }
        _ => None,
    }
}

/// The Job's end, from its conditions.
pub fn job_end(job: &Job) -> Option<JobEnd> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    let find = |t: &str| conds.iter().find(|c| c.type_ == t && c.status == "True");
    if let Some(c) = find("Complete") {
        return Some(JobEnd {
            complete: true,
            finished: true,
            reason: c.reason.clone(),
            message: c.message.clone(),
        });
    }
    if let Some(c) = find("Failed") {
        return Some(JobEnd {
            complete: false,
            finished: true,
            reason: c.reason.clone(),
            message: c.message.clone(),
        });
    }
    find("FailureTarget").map(|c| JobEnd {
        complete: false,
        finished: false,
        reason: c.reason.clone(),
        message: c.message.clone(),
    })
}

/// The step's verdict from what was seen. The Job's deadline wins (the
/// test container was killed because of it); then the test container's
/// state; then a disruption; then the Job's own reason.
pub fn verdict(
    term: Option<&Terminated>,
    job: Option<&JobEnd>,
    disrupted: Option<&Disruption>,
) -> Result<(), String> {
    let with_msg = |head: String, msg: Option<&String>| match msg {
        Some(m) if !m.trim().is_empty() => format!("{head}: {}", m.trim()),
        _ => head,
    };
    if let Some(j) = job
        && !j.complete
        && j.reason.as_deref() == Some("DeadlineExceeded")
    {
        return Err(with_msg("DeadlineExceeded".into(), j.message.as_ref()));
    }
    if let Some(t) = term {
        if t.reason.as_deref() == Some("OOMKilled") {
            return Err(format!(
                "OOMKilled: the test container {:?} ran out of memory (exit code {})",
                t.container, t.exit_code
            ));
        }
        if t.exit_code == 0 {
            return Ok(());
        }
        let how = match &t.reason {
            Some(r) => format!(
                "the test container {:?} exited with code {} ({r})",
                t.container, t.exit_code
            ),
            None => format!(
                "the test container {:?} exited with code {}",
                t.container, t.exit_code
            ),
        };
        return Err(with_msg(how, t.message.as_ref()));
    }
    if let Some(d) = disrupted
        && !job.is_some_and(|j| j.complete)
    {
        return Err(with_msg(d.reason.clone(), d.message.as_ref()));
    }
    match job {
        Some(j) if j.complete => Ok(()),
        Some(j) => Err(with_msg(
            format!(
                "the Job failed ({})",
                j.reason.as_deref().unwrap_or("no reason given")
            ),
            j.message.as_ref(),
        )),
        None => Err("the Job ended before its test container terminated".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CORPUS: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/k8s/objects"
    );

    fn corpus<T: serde::de::DeserializeOwned>(rel: &str) -> Option<T> {
        let text = std::fs::read_to_string(format!("{CORPUS}/{rel}"))
            .unwrap_or_else(|e| panic!("{CORPUS}/{rel}: {e}"));
        Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}")))
    }

    #[test]
    fn real_objects_classify() {
        // The corpus (shared/) sits beside the repository.
        let job: Job = corpus("pulumi-kubernetes/states/job/deadlineExceeded.json").unwrap();
        let end = job_end(&job).unwrap();
        assert_eq!(end.reason.as_deref(), Some("DeadlineExceeded"));
        assert!(
            verdict(None, Some(&end), None)
                .unwrap_err()
                .starts_with("DeadlineExceeded")
        );

        let job: Job = corpus("pulumi-kubernetes/states/job/succeeded.json").unwrap();
        assert!(job_end(&job).unwrap().complete);

        let pod: Pod = corpus("pulumi-kubernetes/states/pod/succeeded.json").unwrap();
        let name = pod.spec.as_ref().unwrap().containers[0].name.clone();
        let t = terminated(&pod, &name).unwrap();
        assert_eq!((t.exit_code, t.reason.as_deref()), (0, Some("Completed")));
        assert!(scheduled_node(&pod).is_some());

        let pods: Vec<Pod> = corpus("pulumi-kubernetes/workflows/pod/imagePullError.json").unwrap();
        let reasons: Vec<String> = pods
            .iter()
            .filter_map(|p| {
                let c = &p.spec.as_ref()?.containers[0].name;
                fatal_waiting(p, c).map(|(r, _)| r)
            })
            .collect();
        assert!(reasons.contains(&"ErrImagePull".to_string()), "{reasons:?}");
        assert!(
            reasons.contains(&"ImagePullBackOff".to_string()),
            "{reasons:?}"
        );

        let pod: Pod = corpus("pulumi-kubernetes/states/pod/unscheduled.json").unwrap();
        assert_eq!(scheduled_node(&pod), None);
        assert_eq!(
            unschedulable(&pod),
            Some((
                "Unschedulable".into(),
                "0/1 nodes are available: 1 Insufficient memory.".into()
            ))
        );
        let pod: Pod = corpus("pulumi-kubernetes/states/pod/succeeded.json").unwrap();
        assert_eq!(unschedulable(&pod), None);
        let name = pod.spec.as_ref().unwrap().containers[0].name.clone();
        assert_eq!(
            not_running(&pod, &name),
            "exit code 0, reason Completed, no termination message"
        );
    }

    #[test]
    fn verdicts_name_the_cause() {
        let t = |code, reason: &str| Terminated {
            container: "test".into(),
            exit_code: code,
            reason: Some(reason.into()),
            message: None,
            signal: None,
        };
        assert_eq!(verdict(Some(&t(0, "Completed")), None, None), Ok(()));
        assert_eq!(
            verdict(Some(&t(3, "Error")), None, None).unwrap_err(),
            "the test container \"test\" exited with code 3 (Error)"
        );
        assert!(
            verdict(Some(&t(137, "OOMKilled")), None, None)
                .unwrap_err()
                .starts_with("OOMKilled")
        );
        let evicted = Disruption {
            reason: "Evicted".into(),
            message: Some("The node was low on resource: memory.".into()),
        };
        assert_eq!(
            verdict(None, None, Some(&evicted)).unwrap_err(),
            "Evicted: The node was low on resource: memory."
        );
        let deadline = JobEnd {
            complete: false,
            finished: true,
            reason: Some("DeadlineExceeded".into()),
            message: Some("Job was active longer than specified deadline".into()),
        };
        assert_eq!(
            verdict(Some(&t(137, "Error")), Some(&deadline), None).unwrap_err(),
            "DeadlineExceeded: Job was active longer than specified deadline"
        );
    }
}
