//! Pod exec over WebSocket (`v5.channel.k8s.io` or `v4.channel.k8s.io`:
//! channel-prefixed binary frames, 1 stdout, 2 stderr, 3 a `metav1.Status`)
//! into the `prova-collector` container, which runs the [`Collector`] the
//! double was started with.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::json;

use crate::store::{Kind, Shared};
use crate::wire::{parse_query, q1, status_body};

/// The collector container's program. prova-k8s's tests supply the real
/// one (`prova_k8s::collector`), so framing, checksums and the control
/// socket are tested end to end; this crate does not depend on prova-k8s,
/// whose tests depend on it.
pub trait Collector: Send + Sync + 'static {
    /// The control socket `wait` creates in its control directory: the
    /// double starts the test container once it exists.
    fn socket_name(&self) -> &str;
    /// The collector container's main process: `command` is its command
    /// line from the pod spec; returns when done, or when `stop` fires.
    fn wait(
        &self,
        command: &[String],
        control_dir: &Path,
        termination_log: &Path,
        stop: std::sync::mpsc::Receiver<()>,
    ) -> Result<(), String>;
    /// `collector send`: writes the results stream to `out` (stdout).
    fn send(&self, results: &Path, control_dir: &Path, out: &mut dyn Write) -> Result<(), String>;
    /// `collector done [--exit-code N]`.
    fn done(&self, control_dir: &Path, exit_code: Option<i32>) -> Result<(), String>;
}

pub(crate) async fn pod_exec(
    State(s): State<Arc<Shared>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let q = parse_query(q.as_deref());
    let command: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let container = q1(&q, "container").unwrap_or("").to_string();
    s.inner.lock().unwrap().execs.push(command.clone());
    if s.get(Kind::Pod, &ns, &name).is_none() {
        return status_body(404, "NotFound", &format!("pods \"{name}\" not found"));
    }
    if container != "prova-collector" {
        return status_body(
            400,
            "BadRequest",
            &format!("container {container} is not valid for pod {name}"),
        );
    }
    let offered = headers
        .get("sec-websocket-protocol")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !offered.contains("v5.channel.k8s.io") && !offered.contains("v4.channel.k8s.io") {
        return status_body(400, "BadRequest", "unsupported streaming protocol");
    }
    ws.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"])
        .on_upgrade(move |socket| run_exec(s, name, command, socket))
}

async fn run_exec(s: Arc<Shared>, pod: String, command: Vec<String>, mut socket: WebSocket) {
    // Ready: one empty message on the lowest writable channel.
    let _ = socket.send(Message::Binary(Bytes::from_static(&[1]))).await;
    let (results, control, mount) = {
        let inner = s.inner.lock().unwrap();
        let rt = &inner.pod_rt[&pod];
        (
            rt.results.path().to_path_buf(),
            rt.control.path().to_path_buf(),
            rt.results_mount.clone(),
        )
    };
    let arg = |flag: &str| {
        command
            .iter()
            .position(|a| a == flag)
            .and_then(|i| command.get(i + 1).cloned())
    };
    let Some(program) = s.opts.collector.clone() else {
        return;
    };
    let sub: Vec<&str> = command.iter().skip(1).take(2).map(String::as_str).collect();
    let result: Result<(), String> = match sub.as_slice() {
        ["collector", "send"] => {
            if arg("--dir") != mount {
                Err(format!("no results mount at {:?}", arg("--dir")))
            } else {
                let corrupt = s.opts.corrupt_results;
                let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
                let sender = tokio::task::spawn_blocking(move || {
                    let mut w = ChanWriter { tx, corrupt };
                    program.send(&results, &control, &mut w)
                });
                while let Some(chunk) = rx.recv().await {
                    let mut frame = Vec::with_capacity(chunk.len() + 1);
                    frame.push(1);
                    frame.extend_from_slice(&chunk);
                    if socket.send(Message::Binary(frame.into())).await.is_err() {
                        return;
                    }
                }
                sender.await.unwrap()
            }
        }
        ["collector", "done"] => {
            let code = arg("--exit-code").and_then(|c| c.parse().ok());
            tokio::task::spawn_blocking(move || program.done(&control, code))
                .await
                .unwrap()
        }
        _ => Err(format!("unknown command {command:?}")),
    };
    let status = match &result {
        Ok(()) => json!({"metadata": {}, "status": "Success"}),
        Err(e) => {
            let mut frame = vec![2];
            frame.extend_from_slice(format!("prova: error: {e}\n").as_bytes());
            let _ = socket.send(Message::Binary(frame.into())).await;
            json!({
                "metadata": {}, "status": "Failure",
                "message": "command terminated with non-zero exit code: error executing command [...], exit code 1",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": "1"}]}
            })
        }
    };
    let mut frame = vec![3];
    frame.extend_from_slice(status.to_string().as_bytes());
    let _ = socket.send(Message::Binary(frame.into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// Hands what `send` writes to the WebSocket side, one chunk per write.
struct ChanWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    corrupt: bool,
}

impl Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut chunk = buf.to_vec();
        if self.corrupt && chunk.len() > 600 {
            chunk[550] ^= 0x01;
            self.corrupt = false;
        }
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("connection gone"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
