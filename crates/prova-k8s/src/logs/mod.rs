//! The test container's log, read so that no line is lost, split or
//! doubled.
//!
//! - While the container runs the log is followed (`follow=true`,
//!   `timestamps=true`). A stream that ends while the container still runs
//!   (a dropped connection, a proxy's timeout) is re-opened at
//!   `sinceTime` = the last line's second, and the lines at or before the
//!   last one seen are skipped ([`lines::LogCursor`]).
//! - Once the container has terminated, the log is read once more without
//!   `follow`, from the same point. This is the only read that returns a
//!   last line without a newline: the kubelet holds back an unfinished line
//!   while following and drops it when the container stops.
//! - If that read fails, a notice says that lines may be missing.

pub mod lines;

use std::pin::pin;
use std::time::Duration;

use futures::AsyncReadExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};
use tokio::sync::{mpsc, watch};

use lines::{Line, LogCursor, Session};

/// How long a followed log may stay open after its container terminated
/// before prova stops waiting for it and reads the rest without `follow`.
const SETTLE: Duration = Duration::from_secs(2);
/// Re-opens in a row that bring no new line before prova stops following
/// and waits for the container to end (then reads the rest).
const MAX_FRUITLESS: u32 = 4;
/// Attempts at the final read once the container ended.
const FINAL_ATTEMPTS: u32 = 3;

/// What a log reader sends, tagged with its pod's name.
#[derive(Debug)]
pub enum LogMsg {
    /// One or more lines, as they should appear in `K8sLog`.
    Lines(String),
    /// Lines may be missing; the text says why.
    Gap(String),
    /// The log ended (its container terminated).
    End,
    /// The log could not be opened; it may be tried again.
    OpenFailed,
}

/// Reads one container's log; see the module documentation.
pub struct LogReader {
    pub pods: Api<Pod>,
    pub pod: String,
    pub container: String,
    /// Set to `true` by the step once the pod status says the container
    /// terminated.
    pub terminated: watch::Receiver<bool>,
    pub tx: mpsc::Sender<(String, LogMsg)>,
}

/// Why a single read ended.
enum ReadEnd {
    /// The stream ended (cleanly or not).
    Ended,
    /// The container terminated and the stream stayed open: given up.
    Abandoned,
    /// The receiver is gone: the step no longer listens.
    Gone,
}

impl LogReader {
    /// Starts the reader on its own task.
    pub fn spawn(self) {
        tokio::spawn(async move {
            let end = self.read_all().await;
            if let Some(end) = end {
                let _ = self.tx.send((self.pod.clone(), end)).await;
            }
        });
    }

    /// Follows, resumes, then reads the rest. `None`: nobody listens.
    async fn read_all(&self) -> Option<LogMsg> {
        let mut cursor = LogCursor::default();
        let mut fruitless = 0u32;
        let mut opened_once = false;
        while !self.is_terminated() {
            let before = cursor.lines();
            match self.open(true, &cursor).await {
                Err(e) if !opened_once => {
                    tracing::warn!("log of {}: {e}", self.pod);
                    if self.is_terminated() {
                        break;
                    }
                    return Some(LogMsg::OpenFailed);
                }
                Err(e) => tracing::warn!("re-opening the log of {}: {e}", self.pod),
                Ok(stream) => {
                    opened_once = true;
                    if let ReadEnd::Gone = self.read(stream, &mut cursor, true).await {
                        return None;
                    }
                }
            }
            if self.is_terminated() {
                break;
            }
            if cursor.lines() > before {
                // It moved on: re-open at once.
                fruitless = 0;
                continue;
            }
            fruitless += 1;
            if fruitless > MAX_FRUITLESS {
                // The log will not stay open: wait for the end, then read it.
                self.wait_terminated().await;
                break;
            }
            let pause = Duration::from_millis(125) * 2u32.pow(fruitless.min(4));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.wait_terminated() => {}
            }
        }
        self.read_rest(&mut cursor).await
    }

    /// The final read, without `follow`, once the container terminated.
    async fn read_rest(&self, cursor: &mut LogCursor) -> Option<LogMsg> {
        let mut last_error = String::new();
        for attempt in 0..FINAL_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            match self.open(false, cursor).await {
                Ok(stream) => {
                    return match self.read(stream, cursor, false).await {
                        ReadEnd::Gone => None,
                        _ => Some(LogMsg::End),
                    };
                }
                Err(e) => last_error = e,
            }
        }
        let gap = format!(
            "[prova: could not read the end of the log of pod {} ({last_error}); lines may be missing]\n",
            self.pod
        );
        self.tx
            .send((self.pod.clone(), LogMsg::Gap(gap)))
            .await
            .ok()?;
        Some(LogMsg::End)
    }

    fn is_terminated(&self) -> bool {
        *self.terminated.borrow()
    }

    /// Returns once the container terminated (or the step stopped caring).
    async fn wait_terminated(&self) {
        let mut rx = self.terminated.clone();
        let _ = rx.wait_for(|t| *t).await;
    }

    async fn open(
        &self,
        follow: bool,
        cursor: &LogCursor,
    ) -> Result<impl futures::AsyncBufRead + use<>, String> {
        let lp = LogParams {
            container: Some(self.container.clone()),
            follow,
            timestamps: true,
            since_time: cursor.since_time(),
            ..Default::default()
        };
        self.pods
            .log_stream(&self.pod, &lp)
            .await
            .map_err(|e| e.to_string())
    }

    /// Reads one opened log: lines past the cursor are sent on. While
    /// following, an unfinished last line is left for the next read; in the
    /// final read it is the log's real last line and is sent as it is.
    async fn read(
        &self,
        stream: impl futures::AsyncBufRead,
        cursor: &mut LogCursor,
        follow: bool,
    ) -> ReadEnd {
        let mut stream = pin!(stream);
        let mut session = Session::new(cursor);
        let mut buf = vec![0u8; 16 * 1024];
        let settle = async {
            if follow {
                self.wait_terminated().await;
                tokio::time::sleep(SETTLE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let mut settle = pin!(settle);
        let how = loop {
            let n = tokio::select! {
                r = stream.read(&mut buf) => match r {
                    Ok(0) | Err(_) => break ReadEnd::Ended,
                    Ok(n) => n,
                },
                _ = &mut settle => break ReadEnd::Abandoned,
            };
            let lines = session.push(&buf[..n], cursor);
            if !self.send_lines(lines).await {
                return ReadEnd::Gone;
            }
        };
        let last = session.end(cursor, !follow);
        if !self.send_lines(last.into_iter().collect()).await {
            return ReadEnd::Gone;
        }
        how
    }

    /// Sends lines as one message, but a cut line alone (so its event is
    /// that line only); `false` when the receiver is gone.
    async fn send_lines(&self, lines: Vec<Line>) -> bool {
        let mut batch = String::new();
        for line in lines {
            if line.cut && !self.send(std::mem::take(&mut batch)).await {
                return false;
            }
            batch.push_str(&line.text);
            if line.cut && !self.send(std::mem::take(&mut batch)).await {
                return false;
            }
        }
        self.send(batch).await
    }

    async fn send(&self, batch: String) -> bool {
        batch.is_empty()
            || self
                .tx
                .send((self.pod.clone(), LogMsg::Lines(batch)))
                .await
                .is_ok()
    }
}
