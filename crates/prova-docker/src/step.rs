//! The `docker` step: one container per target, through the Engine API.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::time::{Duration, Instant, SystemTime};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptions, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, InspectContainerOptions, KillContainerOptions,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StartContainerOptions,
    WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use prova_engine::plugin::hard_exit::{HardExitGuard, on_hard_exit};
use prova_engine::plugin::*;
use prova_results::archive::{Limits, Unpacked, unpack};
use prova_results::{Ingested, emit_results, ingest_dir};
use serde_json::json;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::params::{Pull, Spec, SpecParams};
use crate::{
    ARTIFACTS_SKIPPED, DOCKER_END, DOCKER_RESULTS, DOCKER_START, DOCKER_STDERR, DOCKER_STDOUT,
    LABEL_MANAGED, MAX_OUTPUT,
};

/// Output shown in a failure message (the tail).
const OUTPUT_TAIL: usize = 2048;
/// Bound on each Engine API call that should be quick (create, start,
/// inspect, kill, remove). Waiting for the container has no such bound:
/// `timeout`, the step's timeout and cancellation bound it.
const API_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for a killed container to stop.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long reading a stopped container's log may take.
const LOG_TIMEOUT: Duration = Duration::from_secs(120);

/// The `docker` step (see the crate documentation).
pub struct DockerStep;

/// Every event the step emits: its own and the results'.
const EVENTS: &[EventDecl] = &[
    EventDecl::new(DOCKER_START, "{Image, ContainerID}: the container started"),
    EventDecl::new(
        DOCKER_STDOUT,
        "{Msg, DroppedBytes}: the container's stdout (its last MiB)",
    ),
    EventDecl::new(
        DOCKER_STDERR,
        "{Msg, DroppedBytes}: the container's stderr (its last MiB)",
    ),
    EventDecl::new(
        DOCKER_END,
        "{ExitCode, OOMKilled, DurationMs, TimedOut}: the container stopped",
    ),
    EventDecl::new(
        DOCKER_RESULTS,
        "{Files, Bytes, FetchMs, WaitToResultsMs, ExitToResultsMs}: the results directory is on local disk",
    ),
    EventDecl::new(
        ARTIFACTS_SKIPPED,
        "{Count, Entries: [{Path, Reason}]}: results entries not extracted (links, devices, unsafe paths)",
    ),
];

impl Step for DockerStep {
    fn events(&self) -> Vec<EventDecl> {
        [EVENTS, prova_results::EVENTS].concat()
    }

    fn prepare(&self, p: &mut Params<'_>) -> Option<Prepared> {
        Prepared::per_target(DockerRun {
            params: SpecParams::read(p)?,
        })
    }
}

/// The `docker` step, prepared.
struct DockerRun {
    params: SpecParams,
}

#[async_trait]
impl PreparedStep for DockerRun {
    async fn run(&self, ctx: &StepContext, target: &Target) -> Result<(), StepError> {
        let spec = self.params.spec(ctx, target)?;
        let docker = connect().await?;
        tokio::select! {
            r = ensure_image(&docker, &spec) => r?,
            _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
        }
        let id = create(&docker, &spec, ctx, target).await?;
        // From here on the container is removed whatever happens: explicitly
        // below, or by the guard if this future is dropped (step timeout).
        let removal = Removal::new(docker.clone(), id.clone());
        let result = run_container(&docker, &id, &spec, ctx, target).await;
        match (removal.remove().await, result) {
            (Ok(()), result) => result,
            (Err(e), Ok(())) => Err(StepError::infra(format!(
                "container {} could not be removed: {e}",
                short(&id)
            ))),
            (Err(e), Err(StepError::Failed(m))) => Err(StepError::failed(format!(
                "{} (and the container could not be removed: {e})",
                error_chain(m.as_ref())
            ))),
            (Err(e), Err(other)) => {
                tracing::warn!(container = %id, "container could not be removed: {e}");
                Err(other)
            }
        }
    }
}

async fn connect() -> Result<Docker, StepError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        let host =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        StepError::infra(format!("cannot reach the Docker engine at {host}: {e}"))
    };
    // Waits are long; every other call is bounded by `api`.
    let docker = Docker::connect_with_defaults()
        .map_err(|e| unreachable(&e))?
        .with_timeout(Duration::from_secs(100 * 24 * 3600));
    match tokio::time::timeout(API_TIMEOUT, docker.negotiate_version()).await {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(unreachable(&e)),
        Err(_) => Err(unreachable(&"no answer in 60s")),
    }
}

/// An Engine API call bounded by [`API_TIMEOUT`].
async fn api<T>(f: impl Future<Output = Result<T, DockerError>>) -> Result<T, DockerError> {
    tokio::time::timeout(API_TIMEOUT, f)
        .await
        .unwrap_or(Err(DockerError::RequestTimeoutError))
}

fn is_404(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

async fn ensure_image(docker: &Docker, spec: &Spec) -> Result<(), StepError> {
    let image = &spec.image;
    match api(docker.inspect_image(image)).await {
        Ok(_) if spec.pull != Pull::Always => return Ok(()),
        Ok(_) => {}
        Err(e) if is_404(&e) => {
            if spec.pull == Pull::Never {
                return Err(StepError::infra(format!(
                    "image {image:?} is not on the Docker engine and pull is \"never\": build or load it first, or set pull: missing"
                )));
            }
        }
        Err(e) => {
            return Err(StepError::infra(format!(
                "cannot inspect image {image:?}: {e}"
            )));
        }
    }
    // A reference without a tag or digest would pull every tag.
    let last = image.rsplit('/').next().unwrap_or(image);
    let mut opts = CreateImageOptionsBuilder::new().from_image(image);
    if !last.contains(':') && !last.contains('@') {
        opts = opts.tag("latest");
    }
    let mut progress = pin!(docker.create_image(Some(opts.build()), None, None));
    while let Some(r) = progress.next().await {
        r.map_err(|e| StepError::infra(format!("cannot pull image {image:?}: {e}")))?;
    }
    Ok(())
}

async fn create(
    docker: &Docker,
    spec: &Spec,
    ctx: &StepContext,
    target: &Target,
) -> Result<String, StepError> {
    let mut labels: HashMap<String, String> = spec.labels.iter().cloned().collect();
    let scope = &ctx.scope;
    for (k, v) in [
        (LABEL_MANAGED, "true".to_string()),
        ("prova.job", scope.job_id.to_string()),
        ("prova.run", scope.run_id.to_string()),
        ("prova.test", scope.test_name.to_string()),
        ("prova.attempt", scope.attempt.to_string()),
        ("prova.step", ctx.step_label.clone()),
        ("prova.target", target.id.clone()),
    ] {
        labels.insert(k.to_string(), v);
    }
    let memory = spec.memory.as_ref().map(|(b, _)| *b);
    let host_config = HostConfig {
        binds: (!spec.mounts.is_empty()).then(|| spec.mounts.clone()),
        network_mode: spec.network.clone(),
        nano_cpus: spec.cpus.map(|c| (c * 1e9) as i64),
        memory,
        // No swap beyond the limit, so the limit is the limit.
        memory_swap: memory,
        auto_remove: Some(false),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.command.clone(),
        cmd: spec.args.clone(),
        env: (!spec.env.is_empty()).then(|| spec.env.clone()),
        working_dir: spec.workdir.clone(),
        user: spec.user.clone(),
        labels: Some(labels),
        tty: Some(false),
        open_stdin: Some(false),
        attach_stdin: Some(false),
        host_config: Some(host_config),
        ..Default::default()
    };
    let created = api(docker.create_container(None::<CreateContainerOptions>, body))
        .await
        .map_err(|e| {
            StepError::infra(format!(
                "cannot create a container from {:?}: {e}",
                spec.image
            ))
        })?;
    for w in created.warnings {
        tracing::warn!(container = %created.id, "docker: {w}");
    }
    Ok(created.id)
}

/// How waiting for the container ended.
enum End {
    Exited(i64),
    TimedOut,
    Cancelled,
    WaitFailed(String),
}

async fn run_container(
    docker: &Docker,
    id: &str,
    spec: &Spec,
    ctx: &StepContext,
    target: &Target,
) -> Result<(), StepError> {
    api(docker.start_container(id, None::<StartContainerOptions>))
        .await
        .map_err(|e| StepError::failed(format!("cannot start the container: {e}")))?;
    let started = Instant::now();
    ctx.emit(
        target,
        DOCKER_START,
        Some(json!({ "Image": spec.image, "ContainerID": id })),
    );
    let deadline = async {
        match &spec.timeout {
            Some((d, _)) => tokio::time::sleep(*d).await,
            None => std::future::pending().await,
        }
    };
    let end = tokio::select! {
        r = wait_exit(docker, id) => match r {
            Ok(code) => End::Exited(code),
            Err(e) => End::WaitFailed(e),
        },
        _ = deadline => End::TimedOut,
        _ = ctx.cancel.cancelled() => End::Cancelled,
    };
    if !matches!(end, End::Exited(_)) {
        let _ = api(docker.kill_container(id, None::<KillContainerOptions>)).await;
    }
    if let End::Cancelled = end {
        return Err(StepError::Cancelled);
    }
    if !matches!(end, End::Exited(_)) {
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, wait_exit(docker, id)).await;
    }
    // When prova learnt the container stopped: the wait API's return (or
    // the end of the drain after a kill).
    let stopped = Instant::now();
    let duration_ms = started.elapsed().as_millis() as u64;
    let state = api(docker.inspect_container(id, None::<InspectContainerOptions>))
        .await
        .ok()
        .and_then(|i| i.state);
    let finished_at = state
        .as_ref()
        .and_then(|s| s.finished_at.as_deref())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let mut oom = state.as_ref().and_then(|s| s.oom_killed).unwrap_or(false);
    let exit_code = state.as_ref().and_then(|s| s.exit_code).or(match end {
        End::Exited(c) => Some(c),
        _ => None,
    });
    if !oom && exit_code == Some(137) && spec.memory.is_some() && matches!(end, End::Exited(_)) {
        oom = late_oom(docker, id).await;
    }
    // The log is read once the container stopped: following it while it
    // runs can end early on some engines, cutting the output short.
    let mut output = Output::new();
    let _ = tokio::time::timeout(LOG_TIMEOUT, read_logs(docker, id, &mut output)).await;
    output.finish();
    if spec.emit_output {
        for (name, tail) in [
            (DOCKER_STDOUT, &output.stdout),
            (DOCKER_STDERR, &output.stderr),
        ] {
            if !tail.bytes().is_empty() {
                ctx.emit(
                    target,
                    name,
                    Some(json!({
                        "Msg": String::from_utf8_lossy(tail.bytes()),
                        "DroppedBytes": tail.dropped(),
                    })),
                );
            }
        }
    }
    let timed_out = matches!(end, End::TimedOut);
    ctx.emit(
        target,
        DOCKER_END,
        Some(json!({
            "ExitCode": exit_code,
            "OOMKilled": oom,
            "DurationMs": duration_ms,
            "TimedOut": timed_out,
        })),
    );

    let mut failure = match (&end, exit_code) {
        (End::TimedOut, _) => Some(format!(
            "timed out after {}",
            spec.timeout.as_ref().map_or("?", |(_, s)| s.as_str())
        )),
        (End::WaitFailed(e), _) => Some(format!("waiting for the container failed: {e}")),
        _ if oom => Some(match &spec.memory {
            Some((_, m)) => format!("killed: out of memory (limit {m})"),
            None => "killed: out of memory (no memory limit set)".to_string(),
        }),
        (_, Some(0)) => None,
        // SIGKILL under a memory limit that prova did not send, and the
        // engine never said OOM: the engine can miss the kernel's OOM
        // event (cgroup v2, a busy host), so say what is most likely.
        (End::Exited(_), Some(137)) if spec.memory.is_some() => Some(format!(
            "killed by SIGKILL (exit status 137) under a memory limit of {}: most likely out of memory (the engine did not report an OOM kill)",
            spec.memory.as_ref().map_or("?", |(_, m)| m.as_str())
        )),
        (_, Some(c)) if c > 128 && c < 160 => {
            Some(format!("exit status {c} (killed by signal {})", c - 128))
        }
        (_, Some(c)) => Some(format!("exit status {c}")),
        (_, None) => Some("the container's exit status is unknown".to_string()),
    };

    if let Some(dir) = &spec.results_dir {
        let problem = tokio::select! {
            r = results(docker, id, dir, ctx, target, Stopped { at: stopped, finished_at }) => match r {
                Ok(ingested) if failure.is_none() && spec.fail_on_test_failures => ingested.failure_message(),
                Ok(_) => None,
                Err(e) => Some(e),
            },
            _ = ctx.cancel.cancelled() => return Err(StepError::Cancelled),
        };
        failure = match (failure, problem) {
            (None, p) => p,
            (Some(f), Some(p)) => Some(format!("{f}; results: {p}")),
            (f, None) => f,
        };
    }
    match failure {
        None => Ok(()),
        Some(f) => {
            let tail = tail_text(output.combined.bytes(), OUTPUT_TAIL);
            Err(StepError::failed(
                if tail.is_empty() || !failure_shows_output(&end, exit_code, oom) {
                    f
                } else {
                    format!("{f}; output: {tail}")
                },
            ))
        }
    }
}

/// Whether the engine marks the container OOM-killed shortly after it
/// stopped. The engine can record a container's exit before it handles the
/// kernel's OOM event for it (seen with cgroup v1, up to seconds on a busy
/// machine; once more than five under a parallel build and test run): a
/// SIGKILL exit under a memory limit is checked again for up to ten
/// seconds. Only that case pays for it.
async fn late_oom(docker: &Docker, id: &str) -> bool {
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let state = api(docker.inspect_container(id, None::<InspectContainerOptions>))
            .await
            .ok()
            .and_then(|i| i.state);
        if state.and_then(|s| s.oom_killed).unwrap_or(false) {
            return true;
        }
    }
    false
}

/// The output tail helps when the container itself failed, not when only
/// its test cases did (their messages say why).
fn failure_shows_output(end: &End, exit_code: Option<i64>, oom: bool) -> bool {
    !matches!(end, End::Exited(_)) || oom || exit_code != Some(0)
}

/// When the container stopped: as prova saw it (the wait API's return),
/// and as the engine recorded it (`State.FinishedAt`, the engine's clock,
/// which is this host's when the engine is local).
struct Stopped {
    at: Instant,
    finished_at: Option<jiff::Timestamp>,
}

/// Copies `dir` out of the stopped container into the target's artifacts
/// directory, reads it and emits what it held.
async fn results(
    docker: &Docker,
    id: &str,
    dir: &str,
    ctx: &StepContext,
    target: &Target,
    stopped: Stopped,
) -> Result<Ingested, String> {
    let dest = ctx.artifacts_dir(target);
    let fetch_start = Instant::now();
    let unpacked = fetch_results(docker, id, dir, &dest).await?;
    // The last byte is written (unpack returned): the results are on disk.
    let done = Instant::now();
    let done_wall = SystemTime::now();
    // Milliseconds, to a tenth.
    let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
    let exit_to_results = stopped.finished_at.and_then(|f| {
        let done = jiff::Timestamp::try_from(done_wall).ok()?;
        let d = done.duration_since(f);
        // A remote engine's clock may be off: no figure rather than a wrong one.
        (!d.is_negative() && d.as_secs() < 3600).then(|| (d.as_secs_f64() * 1e4).round() / 10.0)
    });
    ctx.emit(
        target,
        DOCKER_RESULTS,
        Some(json!({
            "Files": unpacked.files,
            "Bytes": unpacked.bytes,
            "FetchMs": ms(done - fetch_start),
            "WaitToResultsMs": ms(done - stopped.at),
            "ExitToResultsMs": exit_to_results,
        })),
    );
    if !unpacked.skipped.is_empty() {
        let entries: Vec<_> = unpacked
            .skipped
            .iter()
            .take(100)
            .map(|s| json!({ "Path": s.path, "Reason": s.reason }))
            .collect();
        ctx.emit(
            target,
            ARTIFACTS_SKIPPED,
            Some(json!({ "Count": unpacked.skipped.len(), "Entries": entries })),
        );
    }
    let walk = dest.clone();
    let ingested = tokio::task::spawn_blocking(move || ingest_dir(&walk))
        .await
        .map_err(|e| format!("reading the results failed: {e}"))?
        .map_err(|e| {
            format!(
                "cannot read the results: {}",
                prova_results::junit::error_chain(&e)
            )
        })?;
    emit_results(ctx, target, &ingested, &dest, Some(&unpacked.sha256));
    Ok(ingested)
}

async fn fetch_results(
    docker: &Docker,
    id: &str,
    dir: &str,
    dest: &Path,
) -> Result<Unpacked, String> {
    let stat = api(docker.get_container_archive_info(
        id,
        Some(ContainerArchiveInfoOptionsBuilder::new().path(dir).build()),
    ))
    .await
    .map_err(|e| {
        if is_404(&e) {
            format!("results directory {dir} not found in the container")
        } else {
            format!("cannot read results directory {dir}: {e}")
        }
    })?;
    // Go's os.ModeDir. A directory's archive holds the directory itself
    // (`results/...`); a file's, the file.
    let strip = if stat.file_mode & (1 << 31) != 0 {
        1
    } else {
        0
    };
    let stream = docker
        .download_from_container(
            id,
            Some(DownloadFromContainerOptionsBuilder::new().path(dir).build()),
        )
        .map(|r| r.map_err(std::io::Error::other));
    let reader = SyncIoBridge::new(StreamReader::new(Box::pin(stream)));
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || unpack(reader, &dest, strip, &Limits::default()))
        .await
        .map_err(|e| format!("copying the results failed: {e}"))?
        .map_err(|e| {
            format!(
                "cannot copy {dir} out of the container: {}",
                prova_results::junit::error_chain(&e)
            )
        })
}

/// Blocks until the container is not running; its exit code.
async fn wait_exit(docker: &Docker, id: &str) -> Result<i64, String> {
    let opts = WaitContainerOptionsBuilder::new()
        .condition("not-running")
        .build();
    let mut wait = pin!(docker.wait_container(id, Some(opts)));
    match wait.next().await {
        Some(Ok(r)) => Ok(r.status_code),
        // bollard reports a non-zero exit as an error.
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the engine ended the wait without a status".into()),
    }
}

/// The container's output: the tail of each stream, and of both.
struct Output {
    stdout: TailBuffer,
    stderr: TailBuffer,
    combined: TailBuffer,
}

impl Output {
    fn new() -> Self {
        Output {
            stdout: TailBuffer::new(MAX_OUTPUT),
            stderr: TailBuffer::new(MAX_OUTPUT),
            combined: TailBuffer::new(4 * OUTPUT_TAIL),
        }
    }

    fn finish(&mut self) {
        self.stdout.trim();
        self.stderr.trim();
        self.combined.trim();
    }
}

/// Reads a stopped container's whole log into bounded tails.
async fn read_logs(docker: &Docker, id: &str, out: &mut Output) {
    let opts = LogsOptionsBuilder::new()
        .follow(false)
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = pin!(docker.logs(id, Some(opts)));
    while let Some(item) = logs.next().await {
        match item {
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                out.stdout.push(&message);
                out.combined.push(&message);
            }
            Ok(LogOutput::StdErr { message }) => {
                out.stderr.push(&message);
                out.combined.push(&message);
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(e) => {
                tracing::warn!(container = %id, "reading the container's log: {e}");
                break;
            }
        }
    }
}

/// Removes the container: [`Removal::remove`] on every path the step
/// controls; if the step's future is dropped (the engine's step timeout, a
/// second Ctrl-C), the hard-exit guard removes it, and `prova run` waits for
/// that before it exits.
struct Removal {
    docker: Docker,
    id: String,
    guard: HardExitGuard,
}

impl Removal {
    fn new(docker: Docker, id: String) -> Self {
        let (d, i) = (docker.clone(), id.clone());
        let guard = on_hard_exit(
            format!("remove container {}", short(&id)),
            move || async move {
                if let Err(e) = remove(&d, &i).await {
                    tracing::warn!(container = %i, "container could not be removed: {e}");
                }
            },
        );
        Removal { docker, id, guard }
    }

    async fn remove(self) -> Result<(), String> {
        let r = remove(&self.docker, &self.id).await;
        self.guard.disarm();
        r
    }
}

async fn remove(docker: &Docker, id: &str) -> Result<(), String> {
    let opts = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match api(docker.remove_container(id, Some(opts))).await {
        Ok(()) => Ok(()),
        Err(e) if is_404(&e) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}
