//! What tests check about pods, and how a wait reports them.

use k8s_openapi::api::core::v1::Pod;

/// `name=Phase` of each pod, for a wait's "last seen".
pub fn phases(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| {
            format!(
                "{}={}",
                p.metadata.name.as_deref().unwrap_or("?"),
                p.status
                    .as_ref()
                    .and_then(|s| s.phase.as_deref())
                    .unwrap_or("?")
            )
        })
        .collect()
}

pub fn is_running(p: &Pod) -> bool {
    p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Running with its Ready condition true.
pub fn is_running_and_ready(p: &Pod) -> bool {
    is_running(p)
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}
