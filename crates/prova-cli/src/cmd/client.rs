//! The commands that talk to a `prova serve` (`--server URL`), and their
//! local fallbacks.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use futures::StreamExt;
use prova_core::status::JobStatus;
use prova_core::{Event, JobState};
use serde_json::Value;

use crate::cli::{EventsArgs, JobActionArgs, ListArgs, RetryArgs, RunArgs, ServerArgs, StartArgs};
use crate::output::{out, outln};
use crate::{exit, store};

/// A client of one server.
pub struct Client {
    pub(crate) base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// The client of `--server`, if one was named. A bare `HOST:PORT` is
    /// taken as `http://HOST:PORT`; anything else that is not an http(s)
    /// URL is refused with the form expected.
    pub fn new(args: &ServerArgs) -> anyhow::Result<Option<Client>> {
        let Some(server) = args.server.as_deref() else {
            return Ok(None);
        };
        Ok(Some(Client {
            base: server_url(server)?,
            token: args.token.clone().filter(|t| !t.is_empty()),
            http: reqwest::Client::new(),
        }))
    }

    pub(crate) fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends, and turns a non-2xx answer into an error carrying the
    /// server's message.
    pub(crate) async fn send(&self, r: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = r.send().await.with_context(|| {
            format!(
                "cannot reach {} (is `prova serve` running there?)",
                self.base
            )
        })?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body
                .get("Error")
                .and_then(|e| e.as_str())
                .unwrap_or("no message");
            let errs = body.get("Errors").and_then(|e| e.as_array());
            // With a list of errors, `Error` repeats them after its first
            // line: print that line, then each error once.
            let msg = match errs {
                Some(list) if !list.is_empty() => msg.lines().next().unwrap_or(msg),
                _ => msg,
            };
            let mut text = format!("server answered {status}: {msg}");
            if let Some(errs) = errs {
                for e in errs {
                    text.push_str(&format!("\n  {}", e.as_str().unwrap_or_default()));
                }
            }
            anyhow::bail!(ServerError {
                status: status.as_u16(),
                text
            });
        }
        Ok(body)
    }

    pub async fn status(&self, id: i64) -> anyhow::Result<JobStatus> {
        let v = self
            .send(self.req(reqwest::Method::GET, &format!("/api/v1/jobs/{id}")))
            .await?;
        Ok(serde_json::from_value(v)?)
    }
}

/// The base URL of `--server` (no trailing `/`), or what to write instead.
pub fn server_url(server: &str) -> anyhow::Result<String> {
    let fix = "expected a URL like http://127.0.0.1:8080 (PROVA_SERVER takes the same)";
    let server = server.trim();
    let url = if server.contains("://") {
        server.to_string()
    } else {
        format!("http://{server}")
    };
    let parsed = reqwest::Url::parse(&url)
        .map_err(|e| exit::Usage(format!("--server {server:?}: {e}: {fix}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(exit::Usage(format!("--server {server:?}: {fix}")).into());
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// An error answer from the server (4xx: the request was refused).
#[derive(Debug)]
pub struct ServerError {
    pub status: u16,
    pub text: String,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ServerError {}

/// Exit code for a refused request: 2 for 4xx (bad request, unknown job,
/// wrong state), 4 otherwise.
fn refused(err: &anyhow::Error) -> Option<u8> {
    err.downcast_ref::<ServerError>().map(|e| {
        if (400..500).contains(&e.status) {
            exit::INVALID
        } else {
            exit::ERROR
        }
    })
}

pub(crate) fn report(err: anyhow::Error) -> anyhow::Result<ExitCode> {
    match refused(&err) {
        Some(code) => {
            eprintln!("prova: {err}");
            Ok(ExitCode::from(code))
        }
        None => Err(err),
    }
}

pub async fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let Some(client) = Client::new(&args.server)? else {
        if args.artifacts.is_some() {
            return Err(exit::Usage(
                "--artifacts needs --server: a job run here keeps its files under the local artifacts root".into(),
            )
            .into());
        }
        return super::run::run(RunArgs {
            file: args.file,
            store: args.store,
            junit: args.junit,
            json: false,
            requestor: args.requestor,
            no_progress: false,
            strict: args.strict,
        })
        .await;
    };
    // Checked here first, so the errors name the file and its lines; the
    // server checks again (its plugins, its files root).
    let job = match super::load::descriptor(&args.file, args.strict) {
        Ok(job) => job,
        Err(code) => return Ok(code),
    };
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    // Where the file is, so a server on this machine resolves the files it
    // names beside it, as `prova run` does.
    let source = std::path::absolute(&args.file)
        .unwrap_or_else(|_| args.file.clone())
        .display()
        .to_string();
    let r = client
        .req(reqwest::Method::POST, "/api/v1/jobs")
        .query(&[
            ("requestor", args.requestor.as_str()),
            ("source", source.as_str()),
        ])
        .body(text);
    let v = match client.send(r).await {
        Ok(v) => v,
        Err(e) => return report(name_the_file(e, &args.file)),
    };
    let id = v["JobID"]
        .as_i64()
        .context("the server returned no JobID")?;
    outln!("{id}")?;
    eprintln!("job {id} started on {}", client.base);
    if !args.wait {
        return Ok(ExitCode::SUCCESS);
    }
    // The same progress as `prova run`, from the server's event stream.
    let live = std::io::stderr().is_terminal();
    // The steps of each test size its bar and ETA, as in `prova run`: the
    // file is the one the server runs (a fetcher's steps are resolved here
    // as there).
    let progress = crate::progress::Progress::new(live, super::load::steps_per_test(&job));
    let observer = progress.observer();
    let followed = follow(&client, id, &mut |ev| {
        observer(&ev.event);
        Ok(())
    })
    .await;
    // The bars leave before the status tree prints.
    progress.finish();
    followed?;
    let st = client.status(id).await?;
    out!("{}", super::status::render_tree(&st))?;
    if let Some(path) = &args.junit {
        super::fetch::junit(&client, id, path).await?;
    }
    if let Some(dir) = &args.artifacts {
        super::fetch::artifacts(&client, id, dir).await?;
    }
    Ok(ExitCode::from(status_exit(&st)))
}

/// The server's diagnostics say `<descriptor>` (it got a body, not a
/// file): name the file the user gave.
fn name_the_file(err: anyhow::Error, file: &std::path::Path) -> anyhow::Error {
    match err.downcast::<ServerError>() {
        Ok(mut e) => {
            e.text = e.text.replace("<descriptor>", &file.display().to_string());
            e.into()
        }
        Err(other) => other,
    }
}

/// `prova run`'s exit code, from a status.
pub fn status_exit(st: &JobStatus) -> u8 {
    exit::for_verdict(st.verdict)
}

/// Reads the server's event stream of a job until it ends.
async fn follow(
    client: &Client,
    id: i64,
    on_event: &mut dyn FnMut(&Event) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let resp = client
        .req(reqwest::Method::GET, &format!("/api/v1/jobs/{id}/events"))
        .query(&[("follow", "true")])
        .send()
        .await
        .with_context(|| format!("cannot reach {}", client.base))?;
    anyhow::ensure!(
        resp.status().is_success(),
        "server answered {}",
        resp.status()
    );
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let mut kind = "message";
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(k) = line.strip_prefix("event:") {
                    kind = if k.trim() == "end" {
                        "end"
                    } else if k.trim() == "event" {
                        "event"
                    } else {
                        "other"
                    };
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            match kind {
                "end" => return Ok(()),
                "event" => {
                    if let Ok(ev) = serde_json::from_str::<Event>(&data) {
                        on_event(&ev)?;
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let Some(client) = Client::new(&args.server)? else {
        return super::jobs::run(args.jobs).await;
    };
    let mut q: Vec<(&str, String)> = vec![("limit", args.jobs.limit.to_string())];
    if !args.jobs.states.is_empty() {
        q.push(("state", args.jobs.states.join(",")));
    }
    if !args.jobs.tags.is_empty() {
        q.push(("tag", args.jobs.tags.join(",")));
    }
    if let Some(name) = &args.jobs.name {
        q.push(("name", name.clone()));
    }
    let v = match client
        .send(client.req(reqwest::Method::GET, "/api/v1/jobs").query(&q))
        .await
    {
        Ok(v) => v,
        Err(e) => return report(e),
    };
    if args.jobs.json {
        outln!("{}", serde_json::to_string_pretty(&v["Jobs"])?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:>6}  {:<12} {:<9} {:<30} TAGS",
        "ID",
        "STATE",
        "VERDICT",
        "NAME"
    )?;
    for j in v["Jobs"].as_array().into_iter().flatten() {
        let tags: Vec<&str> = j["Tags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str())
            .collect();
        outln!(
            "{:>6}  {:<12} {:<9} {:<30} {}",
            j["JobID"],
            j["State"].as_str().unwrap_or("-"),
            j["Verdict"].as_str().unwrap_or("-"),
            j["JobName"].as_str().unwrap_or(""),
            tags.join(",")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `stop`, `pause`, `resume`, `retry`.
pub async fn action(verb: &str, args: JobActionArgs) -> anyhow::Result<ExitCode> {
    let Some(client) = Client::new(&args.server)? else {
        return local_action(verb, args).await;
    };
    let path = match verb {
        "stop" => "cancel",
        other => other,
    };
    let r = client
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/jobs/{}/{path}", args.id),
        )
        .query(&[("requestor", args.requestor.as_str())]);
    match client.send(r).await {
        Ok(v) => {
            match verb {
                "retry" => outln!("{}", v["JobID"])?,
                _ => eprintln!("job {}: {verb} requested", args.id),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => report(e),
    }
}

/// `prova retry ID [--failed]`.
pub async fn retry(args: RetryArgs) -> anyhow::Result<ExitCode> {
    if !args.failed {
        return action("retry", args.job).await;
    }
    let Some(client) = Client::new(&args.job.server)? else {
        return local_retry_failed(args.job).await;
    };
    let r = client
        .req(
            reqwest::Method::POST,
            &format!("/api/v1/jobs/{}/retry", args.job.id),
        )
        .query(&[
            ("requestor", args.job.requestor.as_str()),
            ("failed", "true"),
        ]);
    match client.send(r).await {
        Ok(v) => {
            outln!("{}", v["JobID"])?;
            let tests: Vec<&str> = v["Tests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t.as_str())
                .collect();
            eprintln!(
                "job {} retries the failed tests of job {}: {}",
                v["JobID"],
                args.job.id,
                tests.join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => report(e),
    }
}

/// `prova retry --failed` on the local store: the tests whose last attempt
/// failed, in the foreground.
async fn local_retry_failed(args: JobActionArgs) -> anyhow::Result<ExitCode> {
    let store = store::open(&args.store).await?;
    let Some(st) = prova_engine::status::load_status(&*store, args.id).await? else {
        eprintln!(
            "prova: job {} not found in {}",
            args.id,
            store::url(&args.store)
        );
        return Ok(ExitCode::from(exit::INVALID));
    };
    if !st.state.is_some_and(JobState::is_final) {
        eprintln!(
            "prova: job {} is {}: only an ended job's failed tests can be retried",
            args.id,
            st.state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into())
        );
        return Ok(ExitCode::from(exit::INVALID));
    }
    let failed = prova_engine::retry_failed::failed_tests(&st);
    if failed.is_empty() {
        eprintln!(
            "prova: job {}: no test failed (its last attempt), so there is nothing to retry; retry the whole job instead",
            args.id
        );
        return Ok(ExitCode::from(exit::INVALID));
    }
    eprintln!(
        "retrying the failed tests of job {}: {}",
        args.id,
        failed.iter().cloned().collect::<Vec<_>>().join(", ")
    );
    run_stored(store, "retry", args, Some(&failed)).await
}

/// Without a server: `resume` and `retry` run in the foreground on the
/// local store; `stop` and `pause` need the process running the job.
async fn local_action(verb: &str, args: JobActionArgs) -> anyhow::Result<ExitCode> {
    if verb == "stop" || verb == "pause" {
        eprintln!(
            "prova: {verb} needs --server (or PROVA_SERVER): a job run by `prova run` is stopped with Ctrl-C in its terminal"
        );
        return Ok(ExitCode::from(exit::INVALID));
    }
    let store = store::open(&args.store).await?;
    let Some(job) = store.get_job(args.id).await? else {
        eprintln!(
            "prova: job {} not found in {}",
            args.id,
            store::url(&args.store)
        );
        return Ok(ExitCode::from(exit::INVALID));
    };
    if verb == "resume" && job.state != Some(JobState::Paused) {
        eprintln!(
            "prova: job {} is {}: only a paused job can be resumed",
            args.id,
            job.state
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".into())
        );
        return Ok(ExitCode::from(exit::INVALID));
    }
    run_stored(store, verb, args, None).await
}

/// Runs (`retry`) or resumes a stored job in the foreground; with `only`,
/// just those tests of it.
async fn run_stored(
    store: Arc<dyn prova_store::Store>,
    verb: &str,
    args: JobActionArgs,
    only: Option<&std::collections::BTreeSet<String>>,
) -> anyhow::Result<ExitCode> {
    let Some(job) = store.get_job(args.id).await? else {
        anyhow::bail!("job {} vanished from the store", args.id);
    };
    let mut desc = prova_engine::prepare::descriptor_from_extended(&job.extended_descriptor)
        .map_err(anyhow::Error::msg)?;
    if let Some(only) = only {
        prova_engine::retry_failed::only_tests(&mut desc, only)
            .with_context(|| format!("job {}", args.id))?;
    }
    let source = job.source_path.as_ref().map(std::path::PathBuf::from);
    let prepared = prova_engine::prepare::prepare_str(
        &desc.to_string(),
        prova_core::node::Format::Json,
        source.as_deref(),
        &super::registry(),
    )?;
    let opts = prova_engine::runner::RunOptions {
        requestor: args.requestor.clone(),
        observer: Some(crate::progress::observer(false)),
        on_created: Some(Arc::new(|id| eprintln!("job {id} started"))),
        artifacts_root: Some(store::artifacts_root(&args.store)),
        ..Default::default()
    };
    let outcome = if verb == "resume" {
        let pos = prova_engine::runner::paused_position(&*store, args.id).await?;
        prova_engine::runner::resume_job(args.id, prepared, store, pos, opts).await?
    } else {
        prova_engine::runner::run_job(prepared, store, opts).await?
    };
    outln!("job {} {}", outcome.job_id, outcome.state)?;
    Ok(ExitCode::from(super::run::exit_code(&outcome)))
}

/// `prova status ID --server URL`.
pub async fn status(client: &Client, id: i64, json: bool) -> anyhow::Result<ExitCode> {
    match client.status(id).await {
        Ok(st) => {
            if json {
                outln!("{}", serde_json::to_string_pretty(&st)?)?;
            } else {
                out!("{}", super::status::render_tree(&st))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => report(e),
    }
}

/// `prova events ID --server URL [--follow]`.
pub async fn events(client: &Client, args: &EventsArgs) -> anyhow::Result<ExitCode> {
    let print = |ev: &Event| {
        if args.json {
            outln!("{}", serde_json::to_string(ev).unwrap_or_default())
        } else {
            outln!("{}", super::events::line(ev))
        }
    };
    let matches = |ev: &Event| {
        args.run.is_none_or(|r| ev.run_id == r)
            && args
                .test
                .as_ref()
                .is_none_or(|t| ev.test_name.as_ref() == Some(t))
            && args.attempt.is_none_or(|a| ev.test_attempt == Some(a))
            && args
                .step
                .as_ref()
                .is_none_or(|s| ev.step_label.as_ref() == Some(s))
            && args
                .target
                .as_ref()
                .is_none_or(|t| ev.target.as_ref().is_some_and(|x| &x.id == t))
            && (args.names.is_empty()
                || args.names.iter().any(|n| n.eq_ignore_ascii_case(&ev.name)))
    };
    if args.follow {
        follow(client, args.id, &mut |ev| {
            if matches(ev) {
                print(ev)?;
            }
            Ok(())
        })
        .await?;
        return Ok(ExitCode::SUCCESS);
    }
    let v = match client
        .send(client.req(
            reqwest::Method::GET,
            &format!("/api/v1/jobs/{}/events", args.id),
        ))
        .await
    {
        Ok(v) => v,
        Err(e) => return report(e),
    };
    let events: Vec<Event> = serde_json::from_value(v)?;
    let mut printed = 0usize;
    for ev in events.iter().filter(|e| matches(e)) {
        print(ev)?;
        printed += 1;
    }
    if printed == 0
        && super::events::filtered(args)
        && let Ok(st) = client.status(args.id).await
    {
        eprintln!("prova: {}", super::events::no_match(&st));
    }
    Ok(ExitCode::SUCCESS)
}
