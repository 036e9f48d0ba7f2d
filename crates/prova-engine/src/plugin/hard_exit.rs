//! Cleanup that must happen even when a step is abandoned.
//!
//! On a second Ctrl-C (or a step timing out, or a job task aborted) prova
//! does not wait for a step to end by itself: it drops the step's future.
//! What the step started that outlives the future (a container, a
//! Kubernetes Job, a remote command) is registered here while it runs: the
//! returned [`HardExitGuard`] is disarmed by the step once it cleaned up by
//! itself; dropped while still armed, it starts the cleanup at once, and
//! [`run_all`] (called by `prova run` before it exits) waits for every
//! cleanup started, and starts those still registered.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;

type CleanupFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type Cleanup = Box<dyn FnOnce() -> CleanupFuture + Send>;

struct Registered {
    what: String,
    cleanup: Cleanup,
}

#[derive(Default)]
struct State {
    next_id: u64,
    armed: BTreeMap<u64, Registered>,
    /// Cleanups started by a dropped guard, not yet awaited.
    started: Vec<(String, JoinHandle<()>)>,
}

static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    // A panic while holding the lock cannot leave the maps half-changed.
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(State::default))
}

/// Keeps a cleanup registered; see the module docs.
#[must_use = "dropping the guard runs the cleanup at once"]
#[derive(Debug)]
pub struct HardExitGuard(Option<u64>);

impl HardExitGuard {
    /// The step cleaned up by itself: forget the cleanup.
    pub fn disarm(mut self) {
        if let Some(id) = self.0.take() {
            with_state(|s| s.armed.remove(&id));
        }
    }
}

impl Drop for HardExitGuard {
    fn drop(&mut self) {
        let Some(id) = self.0.take() else { return };
        let Some(r) = with_state(|s| s.armed.remove(&id)) else {
            return;
        };
        // Abandoned while its thing may still run: clean up now.
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let task = rt.spawn((r.cleanup)());
                with_state(|s| {
                    s.started.retain(|(_, t)| !t.is_finished());
                    s.started.push((r.what, task));
                });
            }
            Err(_) => tracing::warn!("no runtime to clean up: {}", r.what),
        }
    }
}

/// Registers `cleanup` (described by `what`, for the log): it runs if the
/// guard is dropped armed, or when [`run_all`] is called.
pub fn on_hard_exit<F, Fut>(what: impl Into<String>, cleanup: F) -> HardExitGuard
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let id = with_state(|s| {
        s.next_id += 1;
        s.armed.insert(
            s.next_id,
            Registered {
                what: what.into(),
                cleanup: Box::new(move || Box::pin(cleanup())),
            },
        );
        s.next_id
    });
    HardExitGuard(Some(id))
}

/// How many cleanups are registered and not disarmed.
pub fn pending() -> usize {
    with_state(|s| s.armed.len())
}

/// Runs every registered cleanup now and waits, for at most `limit`, for
/// those and for every cleanup a dropped guard started; returns what did
/// not finish in time (logged too).
pub async fn run_all(limit: Duration) -> Vec<String> {
    let (armed, started) =
        with_state(|s| (std::mem::take(&mut s.armed), std::mem::take(&mut s.started)));
    let mut tasks: Vec<(String, JoinHandle<()>)> = started;
    for r in armed.into_values() {
        tasks.push((r.what, tokio::spawn((r.cleanup)())));
    }
    let deadline = tokio::time::Instant::now() + limit;
    let mut unfinished = Vec::new();
    for (what, task) in tasks {
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            tracing::warn!("cleanup did not finish within {limit:?}: {what}");
            unfinished.push(what);
        }
    }
    unfinished
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    // One test: the registry is process-wide.
    #[tokio::test]
    async fn cleanups_run_when_abandoned_or_at_exit_never_once_disarmed() {
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = |n: usize| {
            let ran = ran.clone();
            move || async move {
                ran.fetch_add(n, Ordering::SeqCst);
            }
        };
        let kept = on_hard_exit("kept", counter(1));
        on_hard_exit("disarmed", counter(100)).disarm();
        drop(on_hard_exit("abandoned", counter(10)));
        let slow = on_hard_exit("slow thing", || async {
            tokio::time::sleep(Duration::from_secs(60)).await
        });
        assert_eq!(pending(), 2);
        let unfinished = run_all(Duration::from_millis(200)).await;
        assert_eq!(ran.load(Ordering::SeqCst), 11);
        assert_eq!(unfinished, vec!["slow thing".to_string()]);
        assert_eq!(pending(), 0);
        assert!(run_all(Duration::from_millis(10)).await.is_empty());
        // Guards whose cleanup already ran do nothing when dropped.
        drop((kept, slow));
        assert_eq!(ran.load(Ordering::SeqCst), 11);
    }
}
