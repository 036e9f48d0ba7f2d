//! prova on Kubernetes: the `k8sjob` step and the results collector.
//!
//! - [`step::K8sJob`]: the `k8sjob` step. One batch/v1 Job per target,
//!   watched (never polled); the test container's log becomes `K8sLog`
//!   events; the results directory comes back through the pod exec API from
//!   the collector; the verdict comes from container state.
//! - [`job::build_job`]: the pure [`spec::JobSpec`] → `Job` builder.
//! - [`collector`]: `prova collector wait|send|done`, the collector that
//!   shares the results directory with the test container.
//! - [`framing`]: the checksummed stream `send` writes; [`archive`]: tar in
//!   and safe tar out.
//! - [`status`]: outcomes from container state and Job conditions.
//! - [`logs`]: the test container's log, resumed after a dropped
//!   connection and read to its last line; [`pending`]: a pod the Job
//!   cannot create or the scheduler cannot place; [`user_agent`]: the
//!   `User-Agent` on every request.
//!
//! ```
//! use prova_k8s::spec::{JobSpec, Owner, ResultsSpec};
//! let spec = JobSpec {
//!     name: "prova-1-1-node1-abcde".into(),
//!     namespace: "e2e".into(),
//!     container: "test".into(),
//!     image: Some("busybox:1.36".into()),
//!     command: vec!["/bin/true".into()],
//!     owner: Owner { job_id: 1, run_id: 1, test: "smoke".into(), target: "node1".into(), ..Default::default() },
//!     results: Some(ResultsSpec {
//!         dir: "/results".into(),
//!         collector_image: "prova:latest".into(),
//!         linger: std::time::Duration::from_secs(600),
//!     }),
//!     ..Default::default()
//! };
//! let job = prova_k8s::build_job(&spec);
//! let pod = job.spec.unwrap().template.spec.unwrap();
//! assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
//! assert_eq!(pod.containers.len(), 2); // the test and the collector
//! ```

pub mod archive;
pub mod collector;
mod exec;
pub mod framing;
pub mod job;
pub mod logs;
pub mod pending;
mod results;
pub mod spec;
pub mod status;
pub mod step;
mod supervise;
pub mod user_agent;

pub use collector::{CollectorArgs, run_collector};
pub use job::build_job;
pub use spec::JobSpec;
pub use step::K8sJob;

/// The name the step is registered under.
pub const STEP_NAME: &str = "k8sjob";

/// Registers the `k8sjob` step.
pub fn register(r: &mut prova_engine::Registry) {
    r.step(STEP_NAME, K8sJob::new());
}
