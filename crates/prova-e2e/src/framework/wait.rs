//! Waits with a timeout: polling a probe, or following a watch. A wait
//! that runs out of time fails the test naming the step and the last
//! state it saw (kube-runtime's `await_condition` adds no timeout).

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use kube::Api;
use kube::api::{WatchEvent, WatchParams};
use serde_json::Value;

use super::{Ctx, Failure};

/// How often a poll asks again (the upstream framework's `Poll` interval
/// is 2 s; the API is cheap to ask, and tests against the double are short).
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Calls `probe` every [`POLL_INTERVAL`] until it answers `Ok(None)`
/// (done), or `timeout` passes; `Ok(Some(state))` means not yet, with the
/// state seen. A probe error ends the wait at once.
pub async fn poll_until<F, Fut>(
    ctx: &Ctx,
    what: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<(), Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<String>, Failure>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = "nothing yet".to_string();
    loop {
        match tokio::time::timeout_at(deadline, probe()).await {
            Err(_) => return Err(ctx.timeout(what, timeout, last)),
            Ok(r) => match r? {
                None => return Ok(()),
                Some(state) => last = state,
            },
        }
        if tokio::time::Instant::now() + POLL_INTERVAL > deadline {
            return Err(ctx.timeout(what, timeout, last));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Follows a watch of `api` from `resource_version` until `found` accepts
/// an event's object, or `timeout` passes. The watch is started again from
/// the last resourceVersion seen when the server ends it (as client-go's
/// `watchtools.Until` does). Returns the accepted object.
pub async fn watch_until<K>(
    ctx: &Ctx,
    api: &Api<K>,
    params: &WatchParams,
    resource_version: &str,
    what: &str,
    timeout: Duration,
    mut found: impl FnMut(&K) -> bool,
) -> Result<K, Failure>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + serde::Serialize,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut rv = resource_version.to_string();
    let mut last = "no event yet".to_string();
    loop {
        let stream = match tokio::time::timeout_at(deadline, api.watch(params, &rv)).await {
            Err(_) => return Err(ctx.timeout(what, timeout, last)),
            Ok(s) => s.map_err(ctx.api_err(format!("watching for {what}")))?,
        };
        let mut stream = std::pin::pin!(stream);
        loop {
            let next = match tokio::time::timeout_at(deadline, stream.next()).await {
                Err(_) => return Err(ctx.timeout(what, timeout, last)),
                Ok(None) => break,
                Ok(Some(e)) => e.map_err(ctx.api_err(format!("watching for {what}")))?,
            };
            match next {
                WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                    rv = o.meta().resource_version.clone().unwrap_or(rv);
                    last = describe(&o);
                    if found(&o) {
                        return Ok(o);
                    }
                    ctx.info(&format!("observed, not yet it: {last}"));
                }
                WatchEvent::Bookmark(b) => rv = b.metadata.resource_version,
                WatchEvent::Error(e) => {
                    // 410 Gone: the resourceVersion is too old; nothing
                    // newer can be trusted to hold what we wait for.
                    return Err(ctx.timeout(what, timeout, format!("watch error: {e}")));
                }
            }
        }
    }
}

/// A short account of an object for "last seen": its name,
/// resourceVersion, labels and status.
pub fn describe<K: kube::Resource + serde::Serialize>(o: &K) -> String {
    let v = serde_json::to_value(o).unwrap_or(Value::Null);
    let mut status = v["status"].to_string();
    const MAX: usize = 2000;
    if status.len() > MAX {
        let mut cut = MAX;
        while !status.is_char_boundary(cut) {
            cut -= 1;
        }
        status.truncate(cut);
        status.push('…');
    }
    format!(
        "{} rv={} labels={} status={status}",
        o.meta().name.as_deref().unwrap_or("?"),
        o.meta().resource_version.as_deref().unwrap_or("?"),
        v["metadata"]["labels"]
    )
}
