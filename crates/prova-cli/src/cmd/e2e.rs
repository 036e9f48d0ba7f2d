//! `prova e2e`: list and run the Kubernetes e2e tests of crate prova-e2e.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use prova_e2e::runner::{self, DEFAULT_IMAGE, RunConfig};
use prova_e2e::{junit, suite};

use crate::exit;

/// `prova e2e list|run`.
#[derive(Subcommand, Debug)]
pub enum E2eCommand {
    /// Print the tests' full names, one a line (after --focus/--skip).
    #[command(after_help = "\
Examples:
  prova e2e list
  prova e2e list --focus 'StatefulSet'")]
    List(SelectArgs),

    /// Run the tests against a cluster, each in a fresh namespace.
    #[command(after_help = "\
Examples:
  prova e2e run                                         every test, current kubeconfig context
  prova e2e run --focus 'Job should apply changes to a job status' --junit junit_01.xml
  prova e2e run --kubeconfig kind.yaml --context kind-kind --skip StatefulSet
  prova e2e run --image registry.example.com/mirror/pause:3.10

Which cluster: --kubeconfig (with --context, or its current context); else
--context in $KUBECONFIG or ~/.kube/config; inside a pod with neither, the
pod's service account (in-cluster config); else the current kubeconfig.

Every request carries the user agent
  e2e.test/<version> (<os>/<arch>) prova -- <full test name>
so APISnoop and `prova coverage` credit the test. The STEP log prints to
stderr and goes into each JUnit case's system-out.

The RBAC the tests need: create/delete namespaces; get serviceaccounts;
create jobs and statefulsets; get/update/patch jobs/status and
statefulsets/status; list/watch statefulsets and pods.

Exit codes: 0 every selected test passed, 1 a test failed, 2 bad usage or
nothing matched --focus/--skip, 4 the cluster could not be configured.")]
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct SelectArgs {
    /// Run only the tests whose full name matches this regular expression.
    #[arg(long, value_name = "RE")]
    pub focus: Option<String>,
    /// Leave out the tests whose full name matches this regular expression.
    #[arg(long, value_name = "RE")]
    pub skip: Option<String>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub select: SelectArgs,
    /// The kubeconfig file to use (default: $KUBECONFIG, ~/.kube/config, or
    /// in-cluster config inside a pod).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Write a JUnit report here (one testsuite, one testcase per test).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Longest one test may take, e.g. 10m (each wait inside a test also
    /// stops after --wait-timeout).
    #[arg(long, value_name = "DUR", default_value = "15m", value_parser = parse_positive)]
    pub timeout: Duration,
    /// Longest one wait (pods running, a watch event, a namespace going) may take.
    #[arg(long, value_name = "DUR", default_value = "5m", value_parser = parse_positive)]
    pub wait_timeout: Duration,
    /// The image of the pods the tests create; it must run until stopped
    /// with no command given (pause does; busybox would exit at once).
    #[arg(long, value_name = "IMAGE", default_value = DEFAULT_IMAGE)]
    pub image: String,
}

fn parse_positive(s: &str) -> Result<Duration, String> {
    let d = prova_core::duration::parse_go_duration(s)?;
    if d.is_zero() {
        return Err("expected a duration above zero, e.g. 10m".into());
    }
    Ok(d)
}

/// Runs `prova e2e …`.
pub fn run(cmd: E2eCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        E2eCommand::List(args) => list(&args),
        E2eCommand::Run(args) => super::runtime()?.block_on(run_tests(args)),
    }
}

/// The selected tests, or the exit code and message when there are none.
fn select(args: &SelectArgs) -> Result<Vec<&'static suite::Test>, ExitCode> {
    match runner::select(suite::all(), args.focus.as_deref(), args.skip.as_deref()) {
        Err(e) => {
            eprintln!(
                "prova e2e: {e}: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            Err(ExitCode::from(exit::INVALID))
        }
        Ok(tests) if tests.is_empty() => {
            eprintln!(
                "prova e2e: no test matches --focus {:?} --skip {:?}; `prova e2e list` prints the {} tests",
                args.focus.as_deref().unwrap_or(""),
                args.skip.as_deref().unwrap_or(""),
                suite::all().len()
            );
            Err(ExitCode::from(exit::INVALID))
        }
        Ok(tests) => Ok(tests),
    }
}

fn list(args: &SelectArgs) -> anyhow::Result<ExitCode> {
    let tests = match select(args) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    for t in tests {
        println!("{}", t.name);
    }
    Ok(ExitCode::from(exit::SUCCESS))
}

/// The cluster to talk to, as `--help` describes.
async fn kube_config(args: &RunArgs) -> anyhow::Result<kube::Config> {
    let options = kube::config::KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    if let Some(path) = &args.kubeconfig {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .with_context(|| format!("reading kubeconfig {}", path.display()))?;
        return kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .with_context(|| format!("kubeconfig {}", path.display()));
    }
    if args.context.is_some() {
        return kube::Config::from_kubeconfig(&options)
            .await
            .context("kubeconfig ($KUBECONFIG or ~/.kube/config)");
    }
    let in_pod = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        && std::env::var_os("KUBECONFIG").is_none();
    if in_pod {
        return kube::Config::incluster().context("in-cluster config (the pod's service account)");
    }
    kube::Config::infer()
        .await
        .context("no cluster: give --kubeconfig, set KUBECONFIG, or run inside a pod")
}

async fn run_tests(args: RunArgs) -> anyhow::Result<ExitCode> {
    let tests = match select(&args.select) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let kube = match kube_config(&args).await {
        Ok(k) => k,
        Err(e) => {
            eprintln!("prova e2e: {}", crate::output::anyhow_chain(&e));
            return Ok(ExitCode::from(exit::ERROR));
        }
    };
    let mut config = RunConfig::new(kube);
    config.image = args.image.clone();
    config.test_timeout = args.timeout;
    config.wait_timeout = args.wait_timeout;
    config.echo = true;
    let outcomes = runner::run(&tests, &config).await;
    let failed = outcomes.iter().filter(|o| !o.passed()).count();
    for o in &outcomes {
        match &o.failure {
            None => println!("PASS  {} ({:.1?})", o.name, o.duration),
            Some(f) => println!("FAIL  {} ({:.1?})\n      {f}", o.name, o.duration),
        }
    }
    println!(
        "Ran {} of {} tests: {} passed, {failed} failed",
        outcomes.len(),
        suite::all().len(),
        outcomes.len() - failed
    );
    if let Some(path) = &args.junit {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file =
            std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
        junit::report(&outcomes)
            .serialize(file)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::from(if failed == 0 {
        exit::SUCCESS
    } else {
        exit::TESTS_FAILED
    }))
}
