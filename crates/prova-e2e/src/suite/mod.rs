//! The tests, by full name (the name APISnoop reads after ` -- ` in the
//! user agent).

mod job_status;
mod statefulset_status;

use futures::future::BoxFuture;

use crate::framework::{Ctx, Failure};

/// One e2e test.
pub struct Test {
    /// The full name, as upstream writes it: `[sig-…] <Kind> should …`.
    pub name: &'static str,
    /// The namespace's base name (`job` → `job-1234`).
    pub basename: &'static str,
    pub run: fn(Ctx) -> BoxFuture<'static, Result<(), Failure>>,
}

static TESTS: &[Test] = &[
    Test {
        name: job_status::NAME,
        basename: "job",
        run: |ctx| Box::pin(job_status::run(ctx)),
    },
    Test {
        name: statefulset_status::NAME,
        basename: "statefulset",
        run: |ctx| Box::pin(statefulset_status::run(ctx)),
    },
];

/// Every test, in the order they run.
pub fn all() -> &'static [Test] {
    TESTS
}

/// Retries `attempt` while it fails with 409 Conflict, at most 5 times,
/// 10 ms apart (client-go's `retry.DefaultRetry`, used by upstream's
/// `RetryOnConflict`); each attempt reads afresh.
pub(crate) async fn retry_on_conflict<T, F, Fut>(mut attempt: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    const STEPS: usize = 5;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(kube::Error::Api(s)) if s.code == 409 && tries < STEPS => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            other => return other,
        }
    }
}
