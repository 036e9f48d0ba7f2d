//! Selecting tests (`--focus`, `--skip`) and running them one after
//! another, each in its own namespace with its own client, cleaning up
//! whatever happens.

use std::time::{Duration, Instant};

use crate::framework::{Ctx, Failure, StepLog, namespace};
use crate::suite::Test;
use crate::user_agent;

/// The default image of the tests' pods: `registry.k8s.io/pause`. Its
/// entrypoint sleeps until the pod is stopped, so no command is needed;
/// it is ~300 KB, multi-arch, served by the Kubernetes registry (no
/// Docker Hub rate limits), and usually already on every node, as the
/// kubelet's sandbox image.
pub const DEFAULT_IMAGE: &str = "registry.k8s.io/pause:3.10";

/// How a run talks to the cluster and how long it waits.
#[derive(Clone)]
pub struct RunConfig {
    pub kube: kube::Config,
    pub image: String,
    /// Longest a whole test may take (`--timeout`).
    pub test_timeout: Duration,
    /// Longest one wait (pods running, a watch event, the namespace's
    /// ServiceAccount, the namespace's deletion) may take.
    pub wait_timeout: Duration,
    /// Print the STEP log to stderr as it happens.
    pub echo: bool,
}

impl RunConfig {
    pub fn new(kube: kube::Config) -> RunConfig {
        RunConfig {
            kube,
            image: DEFAULT_IMAGE.to_string(),
            test_timeout: Duration::from_secs(15 * 60),
            wait_timeout: Duration::from_secs(5 * 60),
            echo: false,
        }
    }
}

/// A bad `--focus` or `--skip`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    #[error("--{flag} {pattern:?} is not a valid regular expression")]
    Regex {
        flag: &'static str,
        pattern: String,
        #[source]
        source: regex::Error,
    },
}

/// The tests whose full name matches `focus` (all when `None`) and not
/// `skip`, in suite order.
pub fn select(
    tests: &'static [Test],
    focus: Option<&str>,
    skip: Option<&str>,
) -> Result<Vec<&'static Test>, SelectError> {
    let compile = |flag, p: Option<&str>| {
        p.map(|p| {
            regex::Regex::new(p).map_err(|source| SelectError::Regex {
                flag,
                pattern: p.to_string(),
                source,
            })
        })
        .transpose()
    };
    let focus = compile("focus", focus)?;
    let skip = compile("skip", skip)?;
    Ok(tests
        .iter()
        .filter(|t| focus.as_ref().is_none_or(|r| r.is_match(t.name)))
        .filter(|t| skip.as_ref().is_none_or(|r| !r.is_match(t.name)))
        .collect())
}

/// What became of one test.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: &'static str,
    pub duration: Duration,
    /// The failure message (with its causes); `None` when it passed.
    pub failure: Option<String>,
    /// The STEP log.
    pub log: String,
    /// The namespace the test ran in, if one was made.
    pub namespace: Option<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs `tests` one after another.
pub async fn run(tests: &[&'static Test], config: &RunConfig) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(tests.len());
    for t in tests {
        out.push(run_one(t, config).await);
    }
    out
}

/// A client whose every request carries the test's user agent (kube-rs
/// sends none by itself).
pub fn client_for(config: &kube::Config, test_name: &str) -> Result<kube::Client, Failure> {
    let mut config = config.clone();
    let ua = http::HeaderValue::from_str(&user_agent::for_test(test_name)).map_err(|e| {
        Failure::Setup {
            message: format!("user agent: {e}"),
        }
    })?;
    config
        .headers
        .retain(|(n, _)| n != http::header::USER_AGENT);
    config.headers.push((http::header::USER_AGENT, ua));
    kube::Client::try_from(config).map_err(|e| Failure::Setup {
        message: format!("building the Kubernetes client: {e}"),
    })
}

/// Runs one test: namespace, body (bounded by `test_timeout`, panics
/// caught), then the namespace's deletion whatever happened.
pub async fn run_one(test: &'static Test, config: &RunConfig) -> Outcome {
    let started = Instant::now();
    let log = StepLog::new(config.echo);
    log.info(&format!("Running {}", test.name));
    let mut outcome = Outcome {
        name: test.name,
        duration: Duration::ZERO,
        failure: None,
        log: String::new(),
        namespace: None,
    };
    let client = match client_for(&config.kube, test.name) {
        Ok(c) => c,
        Err(f) => {
            outcome.failure = Some(f.chain());
            outcome.log = log.text();
            return outcome;
        }
    };
    log.step(&format!(
        "Building a namespace api object, basename {}",
        test.basename
    ));
    let result = match namespace::create(&client, test.basename, &log).await {
        Err(f) => Err(f),
        Ok(ns) => {
            outcome.namespace = Some(ns.clone());
            let body = async {
                namespace::await_default_service_account(&client, &ns, config.wait_timeout, &log)
                    .await?;
                let ctx = Ctx {
                    client: client.clone(),
                    namespace: ns.clone(),
                    image: config.image.clone(),
                    wait_timeout: config.wait_timeout,
                    log: log.clone(),
                };
                run_body(test, ctx, config.test_timeout).await
            };
            let result = body.await;
            log.step(&format!("Destroying namespace {ns:?} for this suite."));
            match namespace::destroy(&client, &ns, config.wait_timeout).await {
                Ok(()) => result,
                Err(e) if result.is_ok() => Err(Failure::Setup { message: e }),
                Err(e) => {
                    log.info(&format!("cleanup: {e}"));
                    result
                }
            }
        }
    };
    if let Err(f) = result {
        let message = f.chain();
        log.info(&format!("FAIL: {message}"));
        outcome.failure = Some(message);
    }
    outcome.duration = started.elapsed();
    outcome.log = log.text();
    outcome
}

/// The test's body in its own task, so a panic fails only this test.
async fn run_body(test: &'static Test, ctx: Ctx, limit: Duration) -> Result<(), Failure> {
    let log = ctx.log.clone();
    let step = || log.current_step().unwrap_or_else(|| "setup".into());
    let task = tokio::spawn((test.run)(ctx));
    let abort = task.abort_handle();
    match tokio::time::timeout(limit, task).await {
        Err(_) => {
            abort.abort();
            Err(Failure::TestTimeout {
                step: step(),
                timeout: limit,
            })
        }
        Ok(Ok(r)) => r,
        Ok(Err(join)) => {
            let message = match join.try_into_panic() {
                Ok(p) => p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".into()),
                Err(e) => e.to_string(),
            };
            Err(Failure::Panicked {
                step: step(),
                message,
            })
        }
    }
}
