//! A test's namespace: `<basename>-NNNN` (four random digits, as the
//! upstream framework names them), ready once its `default`
//! ServiceAccount exists, deleted after the test whatever its outcome.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::Api;
use kube::api::{DeleteParams, PostParams};

use super::Failure;

/// Tries at most this many names when one is taken.
const NAME_ATTEMPTS: usize = 5;

/// Creates `<basename>-NNNN` (another four digits when the name is taken).
pub async fn create(
    client: &kube::Client,
    basename: &str,
    log: &super::StepLog,
) -> Result<String, Failure> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut name = String::new();
    for attempt in 1..=NAME_ATTEMPTS {
        name = format!("{basename}-{:04}", rand::random_range(0..10_000u32));
        let mut ns = Namespace::default();
        ns.metadata.name = Some(name.clone());
        ns.metadata.labels = Some(
            [("e2e-framework".to_string(), basename.to_string())]
                .into_iter()
                .collect(),
        );
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => break,
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < NAME_ATTEMPTS => continue,
            Err(e) => {
                return Err(Failure::Setup {
                    message: format!("creating namespace {name}: {}", chain(&e)),
                });
            }
        }
    }
    log.info(&format!("Created namespace {name}"));
    Ok(name)
}

/// Waits (up to `timeout`) for the namespace's `default` ServiceAccount,
/// which the ServiceAccount controller adds: pods cannot be made before.
pub async fn await_default_service_account(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
    log: &super::StepLog,
) -> Result<(), Failure> {
    log.step("Waiting for a default service account to be provisioned in namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match accounts.get_opt("default").await {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => {}
            Err(e) => {
                return Err(Failure::Setup {
                    message: format!("reading {name}/default ServiceAccount: {}", chain(&e)),
                });
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::Timeout {
                step: "Waiting for a default service account to be provisioned in namespace".into(),
                what: format!("ServiceAccount {name}/default"),
                timeout,
                last: "not found".into(),
            });
        }
        tokio::time::sleep(super::wait::POLL_INTERVAL).await;
    }
}

/// Deletes the namespace and waits (up to `timeout`) until it is gone.
pub async fn destroy(client: &kube::Client, name: &str, timeout: Duration) -> Result<(), String> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
        Err(e) => return Err(format!("deleting namespace {name}: {}", chain(&e))),
    }
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last;
    loop {
        match namespaces.get_opt(name).await {
            Ok(None) => return Ok(()),
            Ok(Some(ns)) => {
                last = ns
                    .status
                    .and_then(|s| s.phase)
                    .unwrap_or_else(|| "unknown".into())
            }
            Err(e) => last = chain(&e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "namespace {name} was not deleted within {timeout:?}; last seen: {last}"
            ));
        }
        tokio::time::sleep(super::wait::POLL_INTERVAL).await;
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut s = e.source();
    while let Some(c) = s {
        out.push_str(": ");
        out.push_str(&c.to_string());
        s = c.source();
    }
    out
}
