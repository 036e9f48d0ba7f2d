//! The Job controller and the kubelet for a Job with one pod, driven by
//! the test container's env: `SCENARIO=pass|fail|oom|deadline|pullerror|
//! collectorpull|collectorcrash|unschedulable|hang`, `EXIT_CODE=n` (fail),
//! `LOG_LINES=n`, `LOG_INTERVAL_MS=n` (a pause after each line),
//! `LOG_LONG_LINE=n` (one more line of n bytes), `LOG_NO_EOL=1` (the last
//! line has no newline), `LOG_DROP_AFTER=n` (the first followed log
//! connection is cut after n lines), `LOG_REFUSE_RESUME=1` (every log
//! request after the first fails).
//!
//! Conditions as the Job controller writes them: `FailureTarget` before
//! `Failed`, `SuccessCriteriaMet` before `Complete`. `FailedCreate` Events
//! on the Job, repeated with a growing `count`, while the pod template
//! names a ServiceAccount that does not exist; `FailedScheduling` on an
//! unschedulable pod. With a collector container the pod's results
//! directory is a temp dir holding [`crate::RESULT_FILES`] and the
//! collector runs the [`crate::Collector`] the double was given.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::RESULT_FILES;
use crate::events::record_event;
use crate::store::{Kind, PodRt, Shared, now, rand_u48};

pub(crate) fn env_of(container: &Value, key: &str) -> Option<String> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == json!(key))
        .and_then(|e| e["value"].as_str().map(str::to_string))
}

pub(crate) fn set_container_state(pod: &mut Value, name: &str, state: Value, ready: bool) {
    let statuses = pod["status"]["containerStatuses"].as_array_mut().unwrap();
    for cs in statuses.iter_mut() {
        if cs["name"] == json!(name) {
            cs["state"] = state.clone();
            cs["ready"] = json!(ready);
            cs["started"] = json!(state.get("running").is_some());
        }
    }
}

pub(crate) fn terminated(code: i32, reason: &str, message: Option<&str>) -> Value {
    let mut t = json!({
        "exitCode": code, "reason": reason,
        "startedAt": now(), "finishedAt": now(),
        "containerID": "containerd://0f3c9a"
    });
    if let Some(m) = message {
        t["message"] = json!(m);
    }
    json!({ "terminated": t })
}

pub(crate) fn job_condition(type_: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": type_, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": now(), "lastTransitionTime": now()
    })
}

/// Plays the Job controller and the kubelet for one Job with one pod.
pub(crate) async fn simulate(s: Arc<Shared>, ns: String, job: Value) {
    let job_name = job["metadata"]["name"].as_str().unwrap().to_string();
    let uid = job["metadata"]["uid"].as_str().unwrap().to_string();
    let tpl = job["spec"]["template"].clone();
    let containers = tpl["spec"]["containers"].as_array().unwrap().clone();
    let test = containers
        .iter()
        .find(|c| c["name"] != json!("prova-collector"))
        .unwrap()
        .clone();
    let test_name = test["name"].as_str().unwrap().to_string();
    let collector = containers
        .iter()
        .find(|c| c["name"] == json!("prova-collector"))
        .cloned();
    let scenario = env_of(&test, "SCENARIO").unwrap_or_else(|| "pass".into());
    let exit_code: i32 = env_of(&test, "EXIT_CODE")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let log_lines: usize = env_of(&test, "LOG_LINES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let pod_name = format!("{job_name}-x7k2p");
    let tick = || tokio::time::sleep(Duration::from_millis(20));

    // The Job controller cannot make the pod while its ServiceAccount is
    // missing: it says so in Events on the Job and tries again.
    let job_ref = json!({
        "kind": "Job", "namespace": ns, "name": job_name, "uid": uid,
        "apiVersion": "batch/v1", "resourceVersion": job["metadata"]["resourceVersion"]
    });
    if let Some(sa) = tpl["spec"]["serviceAccountName"].as_str() {
        while !crate::namespaces::service_account_exists(&s, &ns, sa) {
            let message = format!(
                "Error creating: pods \"{pod_name}\" is forbidden: error looking up service account {ns}/{sa}: serviceaccount \"{sa}\" not found"
            );
            record_event(&s, &job_ref, "FailedCreate", &message, "job-controller");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    // The Job controller makes the pod.
    let mut labels = tpl["metadata"]["labels"].clone();
    labels["batch.kubernetes.io/controller-uid"] = json!(uid);
    labels["batch.kubernetes.io/job-name"] = json!(job_name);
    labels["controller-uid"] = json!(uid);
    labels["job-name"] = json!(job_name);
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"], "imageID": "",
                "lastState": {}, "ready": false, "restartCount": 0, "started": false,
                "state": {"waiting": {"reason": "ContainerCreating"}}
            })
        })
        .collect();
    let pod = json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "name": pod_name, "generateName": format!("{job_name}-"), "namespace": ns,
            "uid": format!("11111111-0000-4000-8000-{:012x}", rand_u48()),
            "creationTimestamp": now(), "labels": labels,
            "annotations": tpl["metadata"]["annotations"],
            "finalizers": ["batch.kubernetes.io/job-tracking"],
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": uid,
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "spec": tpl["spec"],
        "status": {"phase": "Pending", "qosClass": "BestEffort"}
    });
    {
        let mut inner = s.inner.lock().unwrap();
        let results_mount = collector.as_ref().and_then(|c| {
            c["volumeMounts"]
                .as_array()?
                .iter()
                .find(|m| m["name"] == json!("prova-results"))
                .and_then(|m| m["mountPath"].as_str().map(str::to_string))
        });
        inner.pod_rt.insert(
            pod_name.clone(),
            PodRt {
                results: tempfile::tempdir().unwrap(),
                control: tempfile::tempdir().unwrap(),
                results_mount,
                stop_wait: None,
                log: Vec::new(),
                log_done: false,
                test_started: false,
                collector_log: Vec::new(),
                log_requests: 0,
                drop_after: env_of(&test, "LOG_DROP_AFTER").and_then(|v| v.parse().ok()),
                refuse_resume: env_of(&test, "LOG_REFUSE_RESUME").is_some(),
            },
        );
    }
    s.put(Kind::Pod, "ADDED", pod);
    s.modify(Kind::Job, &ns, &job_name, |j| {
        j["status"] = json!({
            "active": 1, "ready": 0, "terminating": 0, "startTime": now(),
            "uncountedTerminatedPods": {}
        });
    });
    tick().await;

    if scenario == "unschedulable" {
        let message = "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.";
        s.modify(Kind::Pod, &ns, &pod_name, |p| {
            p["status"]["conditions"] = json!([{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": message, "lastProbeTime": null, "lastTransitionTime": now()
            }]);
        });
        let pod_ref = {
            let p = s.get(Kind::Pod, &ns, &pod_name).unwrap();
            json!({
                "kind": "Pod", "namespace": ns, "name": pod_name,
                "uid": p["metadata"]["uid"], "apiVersion": "v1",
                "resourceVersion": p["metadata"]["resourceVersion"]
            })
        };
        loop {
            record_event(
                &s,
                &pod_ref,
                "FailedScheduling",
                message,
                "default-scheduler",
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    // Scheduled.
    s.modify(Kind::Pod, &ns, &pod_name, |p| {
        p["spec"]["nodeName"] = json!("node-1");
        p["status"]["conditions"] = json!([{
            "type": "PodScheduled", "status": "True",
            "lastProbeTime": null, "lastTransitionTime": now()
        }]);
        p["status"]["containerStatuses"] = json!(statuses);
        p["status"]["hostIP"] = json!("10.0.0.7");
    });
    tick().await;

    if scenario == "pullerror" || scenario == "collectorpull" {
        let (which, image) = if scenario == "collectorpull" {
            let c = collector.as_ref().expect("a collector");
            (
                "prova-collector".to_string(),
                c["image"].as_str().unwrap_or("").to_string(),
            )
        } else {
            (
                test_name.clone(),
                test["image"].as_str().unwrap_or("").to_string(),
            )
        };
        for (reason, msg) in [
            (
                "ErrImagePull",
                format!(
                    "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": not found"
                ),
            ),
            (
                "ImagePullBackOff",
                format!("Back-off pulling image \"{image}\""),
            ),
        ] {
            s.modify(Kind::Pod, &ns, &pod_name, |p| {
                set_container_state(
                    p,
                    &which,
                    json!({"waiting": {"reason": reason, "message": msg}}),
                    false,
                );
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        return std::future::pending().await;
    }

    // Running: the collector waits (the real `wait`), the test writes results.
    let wait = if let Some(c) = &collector {
        let cmd: Vec<String> = c["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let program = s.opts.collector.clone().expect(
            "the pod has a prova-collector container: start the double with Options::collector",
        );
        let (stop_tx, stop_rx) = std::sync::mpsc::channel();
        let (control, results) = {
            let mut inner = s.inner.lock().unwrap();
            let rt = inner.pod_rt.get_mut(&pod_name).unwrap();
            rt.stop_wait = Some(stop_tx);
            (
                rt.control.path().to_path_buf(),
                rt.results.path().to_path_buf(),
            )
        };
        for (rel, text) in RESULT_FILES {
            let p = results.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let sock = control.join(program.socket_name());
        let h = tokio::task::spawn_blocking(move || {
            let termination_log = control.join("termination-log");
            program.wait(&cmd, &control, &termination_log, stop_rx)
        });
        while !sock.exists() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Some(h)
    } else {
        None
    };
    // The kubelet serves the log from the moment the container runs.
    s.inner
        .lock()
        .unwrap()
        .pod_rt
        .get_mut(&pod_name)
        .unwrap()
        .test_started = true;
    s.modify(Kind::Pod, &ns, &pod_name, |p| {
        p["status"]["phase"] = json!("Running");
        p["status"]["startTime"] = json!(now());
        p["status"]["podIP"] = json!("10.244.1.17");
        for c in &containers {
            set_container_state(
                p,
                c["name"].as_str().unwrap(),
                json!({"running": {"startedAt": now()}}),
                true,
            );
        }
    });
    s.modify(Kind::Job, &ns, &job_name, |j| {
        j["status"]["ready"] = json!(1);
    });

    // The test writes its log: lines written together share a timestamp.
    let interval = env_of(&test, "LOG_INTERVAL_MS")
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis);
    let no_eol = env_of(&test, "LOG_NO_EOL").is_some();
    let long_line: Option<usize> = env_of(&test, "LOG_LONG_LINE").and_then(|v| v.parse().ok());
    let mut ts = log_time();
    for i in 0..log_lines {
        if i % 16 == 0 || interval.is_some() {
            ts = log_time();
        }
        let last = i + 1 == log_lines && long_line.is_none();
        let text = if last && no_eol {
            format!("line {i}")
        } else {
            format!("line {i}\n")
        };
        write_log(&s, &pod_name, &ts, text.into_bytes());
        match interval {
            Some(d) => tokio::time::sleep(d).await,
            None if i % 16 == 15 => tokio::time::sleep(Duration::from_millis(3)).await,
            None => {}
        }
    }
    if let Some(n) = long_line {
        let mut line = vec![b'x'; n];
        if !no_eol {
            line.push(b'\n');
        }
        write_log(&s, &pod_name, &log_time(), line);
    }

    if scenario == "collectorcrash" {
        // The collector fails on its own, before anyone fetched.
        let stop = s
            .inner
            .lock()
            .unwrap()
            .pod_rt
            .get_mut(&pod_name)
            .unwrap()
            .stop_wait
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        {
            let mut inner = s.inner.lock().unwrap();
            let rt = inner.pod_rt.get_mut(&pod_name).unwrap();
            for line in [
                "prova collector: waiting for the results in /results",
                "prova: error: control socket /run/prova/collector.sock: No space left on device (os error 28)",
            ] {
                rt.collector_log
                    .push((log_time(), format!("{line}\n").into_bytes()));
            }
        }
        s.modify(Kind::Pod, &ns, &pod_name, |p| {
            set_container_state(p, "prova-collector", terminated(1, "Error", None), false);
        });
        tick().await;
    }

    let deadline = job["spec"]["activeDeadlineSeconds"].as_u64();
    let (code, reason) = match scenario.as_str() {
        "pass" | "collectorcrash" => (0, "Completed"),
        "fail" => (exit_code, "Error"),
        "oom" => (137, "OOMKilled"),
        "deadline" => {
            tokio::time::sleep(Duration::from_secs(deadline.unwrap_or(1))).await;
            let msg = "Job was active longer than specified deadline";
            s.modify(Kind::Job, &ns, &job_name, |j| {
                j["status"]["conditions"] =
                    json!([job_condition("FailureTarget", "DeadlineExceeded", msg)]);
                j["status"]["terminating"] = json!(1);
                j["status"]["active"] = json!(0);
            });
            tick().await;
            end_log(&s, &pod_name);
            if let Some(stop) = s
                .inner
                .lock()
                .unwrap()
                .pod_rt
                .get_mut(&pod_name)
                .unwrap()
                .stop_wait
                .take()
            {
                let _ = stop.send(());
            }
            s.modify(Kind::Pod, &ns, &pod_name, |p| {
                p["status"]["phase"] = json!("Failed");
                for c in &containers {
                    set_container_state(
                        p,
                        c["name"].as_str().unwrap(),
                        terminated(137, "Error", None),
                        false,
                    );
                }
            });
            tick().await;
            s.modify(Kind::Job, &ns, &job_name, |j| {
                let c = j["status"]["conditions"][0].clone();
                j["status"]["conditions"] =
                    json!([c, job_condition("Failed", "DeadlineExceeded", msg)]);
                j["status"]["terminating"] = json!(0);
                j["status"]["failed"] = json!(1);
                j["status"]["ready"] = json!(0);
            });
            return;
        }
        _ => return std::future::pending().await, // "hang"
    };

    // The test container terminates.
    tick().await;
    end_log(&s, &pod_name);
    s.modify(Kind::Pod, &ns, &pod_name, |p| {
        set_container_state(p, &test_name, terminated(code, reason, None), false);
    });
    if collector.is_none() {
        s.modify(Kind::Pod, &ns, &pod_name, |p| {
            p["status"]["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
        });
    }

    // The collector exits (done, or its linger time), then the pod ends.
    if let Some(h) = wait {
        h.await.unwrap().unwrap();
        let message = std::fs::read_to_string(
            s.inner.lock().unwrap().pod_rt[&pod_name]
                .control
                .path()
                .join("termination-log"),
        )
        .unwrap();
        let crashed = scenario == "collectorcrash";
        s.modify(Kind::Pod, &ns, &pod_name, |p| {
            if !crashed {
                set_container_state(
                    p,
                    "prova-collector",
                    terminated(0, "Completed", Some(&message)),
                    false,
                );
            }
            p["status"]["phase"] = json!(if code == 0 && !crashed {
                "Succeeded"
            } else {
                "Failed"
            });
        });
    }
    tick().await;
    s.modify(Kind::Job, &ns, &job_name, |j| {
        let st = &mut j["status"];
        st["active"] = json!(0);
        st["ready"] = json!(0);
        if scenario == "collectorcrash" {
            let msg = "Job has reached the specified backoff limit";
            st["failed"] = json!(1);
            st["conditions"] = json!([
                job_condition("FailureTarget", "BackoffLimitExceeded", msg),
                job_condition("Failed", "BackoffLimitExceeded", msg),
            ]);
        } else if code == 0 {
            st["succeeded"] = json!(1);
            st["completionTime"] = json!(now());
            st["conditions"] = json!([
                job_condition("SuccessCriteriaMet", "CompletionsReached", "Reached expected number of succeeded pods"),
                job_condition("Complete", "CompletionsReached", "Reached expected number of succeeded pods"),
            ]);
        } else {
            let msg = format!(
                "Container {test_name} for pod {ns}/{pod_name} failed with exit code {code} matching FailJob rule at index 1"
            );
            st["failed"] = json!(1);
            st["conditions"] = json!([
                job_condition("FailureTarget", "PodFailurePolicy", &msg),
                job_condition("Failed", "PodFailurePolicy", &msg),
            ]);
        }
    });
}

/// The kubelet's timestamp form (`RFC3339NanoFixed`).
pub(crate) fn log_time() -> String {
    let t = jiff::Timestamp::now();
    format!(
        "{}.{:09}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_nanosecond()
    )
}

pub(crate) fn write_log(s: &Shared, pod: &str, ts: &str, bytes: Vec<u8>) {
    {
        let mut inner = s.inner.lock().unwrap();
        let rt = inner.pod_rt.get_mut(pod).unwrap();
        rt.log.push((ts.to_string(), bytes));
    }
    s.bump();
}

pub(crate) fn end_log(s: &Shared, pod: &str) {
    s.inner
        .lock()
        .unwrap()
        .pod_rt
        .get_mut(pod)
        .unwrap()
        .log_done = true;
    s.bump();
}
