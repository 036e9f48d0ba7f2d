//! Pod logs as the kubelet serves them: `timestamps=true` prefixes each
//! line with its RFC 3339 time (9 fraction digits; lines written together
//! share one), `sinceTime` keeps lines at or after it, `tailLines`, and a
//! followed log (chunked) holds back an unfinished last line and ends
//! without it when the container stops; only a read without `follow`
//! returns it. `LOG_DROP_AFTER` / `LOG_REFUSE_RESUME` (see [`crate::kubelet`])
//! break connections.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::response::Response;

use crate::store::{Kind, Shared};
use crate::wire::{parse_query, q1, status_body};

pub(crate) async fn pod_log(
    State(s): State<Arc<Shared>>,
    UrlPath((ns, name)): UrlPath<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = parse_query(q.as_deref());
    let opts = LogOpts {
        follow: q1(&q, "follow") == Some("true"),
        timestamps: q1(&q, "timestamps") == Some("true"),
        since: q1(&q, "sinceTime").map(|v| v.parse().expect("sinceTime is RFC 3339")),
    };
    let tail: Option<usize> = q1(&q, "tailLines").and_then(|v| v.parse().ok());
    let container = q1(&q, "container").unwrap_or("").to_string();
    let drop_after = {
        let mut inner = s.inner.lock().unwrap();
        if inner
            .map(Kind::Pod)
            .is_none_or(|m| !m.contains_key(&(ns.clone(), name.clone())))
        {
            return status_body(404, "NotFound", &format!("pods \"{name}\" not found"));
        }
        let rt = match inner.pod_rt.get_mut(&name) {
            Some(rt) if rt.test_started => rt,
            _ => {
                return status_body(
                    400,
                    "BadRequest",
                    &format!(
                        "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
                    ),
                );
            }
        };
        if container == "prova-collector" {
            // The collector's log, read whole (it has ended when prova asks).
            let skip = tail.map_or(0, |t| rt.collector_log.len().saturating_sub(t));
            let body: Vec<u8> = rt.collector_log[skip..]
                .iter()
                .flat_map(|(ts, b)| opts.render(ts, b))
                .collect();
            return Response::builder()
                .header("content-type", "text/plain")
                .body(Body::from(body))
                .unwrap();
        }
        rt.log_requests += 1;
        if rt.refuse_resume && rt.log_requests > 1 {
            return status_body(
                500,
                "InternalError",
                "Internal error occurred: error dialing backend: connection refused",
            );
        }
        if opts.follow && rt.log_requests == 1 {
            rt.drop_after
        } else {
            None
        }
    };
    let rx = s.changed.subscribe();
    let stream = futures::stream::unfold(
        (s, rx, 0usize, 0usize, name, false),
        move |(s, mut rx, mut idx, mut sent, name, ended)| async move {
            if ended {
                return None;
            }
            loop {
                let (out, done, cut) = {
                    let inner = s.inner.lock().unwrap();
                    let rt = inner.pod_rt.get(&name)?;
                    let mut out = Vec::new();
                    let mut cut = false;
                    while let Some((ts, bytes)) = rt.log.get(idx) {
                        // Following, the kubelet holds back an unfinished line.
                        if opts.follow && !bytes.ends_with(b"\n") {
                            break;
                        }
                        if drop_after == Some(sent) {
                            cut = true;
                            break;
                        }
                        idx += 1;
                        if opts.keeps(ts) {
                            out.extend(opts.render(ts, bytes));
                            sent += 1;
                        }
                    }
                    (out, rt.log_done, cut)
                };
                if !out.is_empty() {
                    return Some((
                        Ok::<_, std::io::Error>(Bytes::from(out)),
                        (s, rx, idx, sent, name, false),
                    ));
                }
                if cut {
                    // The connection breaks mid-stream.
                    return Some((
                        Err(std::io::Error::other("connection reset")),
                        (s, rx, idx, sent, name, true),
                    ));
                }
                if done || !opts.follow {
                    return None;
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    Response::builder()
        .header("content-type", "text/plain")
        .body(Body::from_stream(stream))
        .unwrap()
}

/// How a log request wants its lines.
#[derive(Clone, Copy)]
struct LogOpts {
    follow: bool,
    timestamps: bool,
    since: Option<jiff::Timestamp>,
}

impl LogOpts {
    /// `sinceTime`: lines at or after it.
    fn keeps(&self, ts: &str) -> bool {
        let t: jiff::Timestamp = ts.parse().unwrap();
        self.since.is_none_or(|since| t >= since)
    }

    fn render(&self, ts: &str, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + 32);
        if self.timestamps {
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(bytes);
        out
    }
}
