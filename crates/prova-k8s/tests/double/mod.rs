//! The Kubernetes API double (crate `prova-kube-double`), started with the
//! REAL collector (`prova_k8s::collector`): the collector container runs
//! the real `wait`, and exec of `collector send` / `collector done` runs
//! the real functions, so framing, checksum and the control socket are
//! tested end to end. Also creates the `e2e` namespace the tests'
//! kubeconfig context names.

#![allow(dead_code, unused_imports)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

pub use prova_kube_double::{DeleteSeen, RESULT_FILES};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Flip one byte of the results stream's data.
    pub corrupt_results: bool,
}

/// A running double with the real collector; derefs to the double.
pub struct Double(prova_kube_double::Double);

impl std::ops::Deref for Double {
    type Target = prova_kube_double::Double;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Double {
    pub async fn start(opts: Options) -> Double {
        let d = prova_kube_double::Double::start(prova_kube_double::Options {
            corrupt_results: opts.corrupt_results,
            collector: Some(Arc::new(RealCollector)),
        })
        .await;
        d.add_namespace("e2e");
        Double(d)
    }

    /// Waits until `pred` holds for the double's state (bounded).
    pub async fn wait_until(&self, what: &str, pred: impl Fn(&Double) -> bool) {
        self.0.wait_for(what, || pred(self)).await;
    }
}

/// prova's collector, as the `prova collector` container runs it.
struct RealCollector;

impl prova_kube_double::Collector for RealCollector {
    fn socket_name(&self) -> &str {
        prova_k8s::collector::SOCKET_NAME
    }

    fn wait(
        &self,
        command: &[String],
        control_dir: &Path,
        termination_log: &Path,
        stop: std::sync::mpsc::Receiver<()>,
    ) -> Result<(), String> {
        let linger = command
            .iter()
            .position(|a| a == "--linger")
            .and_then(|i| command.get(i + 1))
            .ok_or("the collector's command has no --linger")?;
        let opts = prova_k8s::collector::WaitOptions {
            control_dir: control_dir.to_path_buf(),
            linger: prova_core::duration::parse_go_duration(linger).map_err(|e| e.to_string())?,
            termination_log: termination_log.to_path_buf(),
        };
        prova_k8s::collector::wait(&opts, Some(stop))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn send(&self, results: &Path, control_dir: &Path, out: &mut dyn Write) -> Result<(), String> {
        prova_k8s::collector::send_and_report(results, control_dir, out)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn done(&self, control_dir: &Path, exit_code: Option<i32>) -> Result<(), String> {
        prova_k8s::collector::done(control_dir, exit_code).map_err(|e| e.to_string())
    }
}
