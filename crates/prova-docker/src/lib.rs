//! prova's `docker` step: runs an unmodified test image as one container
//! per target, through the Docker Engine API (bollard; never the `docker`
//! CLI), and brings the suite's results directory back without needing a
//! shell or `tar` in the image.
//!
//! For each target the step:
//! 1. renders the parameters that are templates, and checks them;
//! 2. makes sure the image is on the engine (`pull`: `never` by default);
//! 3. creates the container, labelled `prova.managed=true`, `prova.job`,
//!    `prova.run`, `prova.test`, `prova.attempt`, `prova.step`,
//!    `prova.target` (plus `labels`), and starts it: `DockerStart {Image,
//!    ContainerID}`;
//! 4. waits for it to stop with the engine's wait API (no polling), bounded
//!    by `timeout` and cancellation;
//! 5. reads its log and emits `DockerStdout`/`DockerStderr {Msg, DroppedBytes}`
//!    (the last [`MAX_OUTPUT`] bytes of each stream), and `DockerEnd
//!    {ExitCode, OOMKilled, DurationMs, TimedOut}`;
//! 6. copies `results_dir` out of the stopped container through the
//!    archive API into the target's artifacts directory
//!    ([`prova_results::archive::unpack`]: no absolute paths, no `..`, no
//!    links), reads its JUnit files and emits `Artifacts`, `TestCaseResult`
//!    per case and `TestCasesSummary` ([`prova_results::emit_results`]),
//!    and `DockerResults` with how long the results took to reach the disk;
//! 7. removes the container, always: on success, failure, timeout and
//!    cancellation, and from a drop guard if the engine drops the step.
//!
//! The target fails on a non-zero exit (with the code and the output's
//! tail), on an OOM kill ("killed: out of memory (limit 64m)"), on
//! `timeout` ("timed out after 5s"), when `results_dir` is missing, and —
//! unless `fail_on_test_failures: false` — when a JUnit case failed or a
//! JUnit file could not be read, even if the container exited 0.
//!
//! Parameters and examples: `docs/containers.md`.
//!
//! ```no_run
//! let mut registry = prova_engine::plugins::registry();
//! prova_docker::register(&mut registry);
//! ```

mod params;
mod step;

pub use params::{MIN_MEMORY, Pull, Spec, SpecParams, parse_memory, parse_mount};
pub use step::DockerStep;

/// The step's name in descriptors.
pub const STEP_NAME: &str = "docker";
/// Output kept per stream (the tail).
pub const MAX_OUTPUT: usize = 1 << 20;
/// The label on every container prova creates; list leftovers with
/// `docker ps -a --filter label=prova.managed=true`.
pub const LABEL_MANAGED: &str = "prova.managed";

/// `{Image, ContainerID}`: the container started.
pub const DOCKER_START: &str = "DockerStart";
/// `{Msg, DroppedBytes}`: the container's stdout (its last [`MAX_OUTPUT`] bytes).
pub const DOCKER_STDOUT: &str = "DockerStdout";
/// `{Msg, DroppedBytes}`: the container's stderr (its last [`MAX_OUTPUT`] bytes).
pub const DOCKER_STDERR: &str = "DockerStderr";
/// `{ExitCode, OOMKilled, DurationMs, TimedOut}`: the container stopped.
pub const DOCKER_END: &str = "DockerEnd";
/// `{Files, Bytes, FetchMs, WaitToResultsMs, ExitToResultsMs}`: the results
/// directory is on local disk (unpacked, before its JUnit files are read).
/// `FetchMs`: the archive API call and the unpacking; `WaitToResultsMs`:
/// from the wait API's return to the last byte written; `ExitToResultsMs`:
/// from the container's `State.FinishedAt` to the last byte written (`null`
/// when the engine's clock is not comparable). Milliseconds, fractional.
pub const DOCKER_RESULTS: &str = "DockerResults";
/// `{Count, Entries: [{Path, Reason}]}`: results entries not extracted
/// (links, devices, unsafe paths); at most 100 listed.
pub const ARTIFACTS_SKIPPED: &str = "ArtifactsSkipped";

/// Registers the `docker` step.
pub fn register(r: &mut prova_engine::Registry) {
    r.step(STEP_NAME, DockerStep);
}
