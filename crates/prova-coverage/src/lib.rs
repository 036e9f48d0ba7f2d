//! Kubernetes API endpoint coverage from API-server audit logs — APISnoop's
//! numbers, from the command line, at disk speed.
//!
//! The pipeline: [`spec`] turns an OpenAPI v2 `swagger.json` into endpoints
//! and a [`mapping::Router`]; [`audit`] streams audit logs (JSON lines, plain,
//! gzip or zstd, in parallel); [`mapping`] maps each event to an operation and
//! decides which test gets the credit, exactly as APISnoop does; [`report`]
//! aggregates into APISnoop's release-file JSON shape; [`diff`] compares two
//! reports; [`sunburst`] draws APISnoop's sunburst as SVG (zoomed by a
//! focus path, no scripts); [`reporter`] is the `coverage` final reporter of prova jobs; [`live`] maps one event or one webhook `EventList` body the
//! same way, for input that is not a file; [`render`] prints tables, CSV, JSON or HTML. [`cli`] holds the
//! `prova coverage` subcommands and [`run`].
//!
//! # Example
//!
//! ```no_run
//! use prova_coverage::analyze::{analyze, AnalyzeOptions};
//!
//! let (report, _summary) = analyze(&AnalyzeOptions {
//!     spec: "swagger.json".into(),
//!     audit: vec!["audit.log.gz".into()],
//!     ineligible: Some("ineligible_endpoints.yaml".into()),
//!     ..Default::default()
//! })?;
//! println!(
//!     "{} of {} eligible endpoints are conformance tested",
//!     report.tested_eligible, report.total_eligible
//! );
//! let job = report.endpoint("readBatchV1NamespacedJobStatus").unwrap();
//! println!("tested by {:?}", job.tests);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! From the CLI (`clap` parses [`CoverageCommand`]):
//!
//! ```no_run
//! use clap::Parser;
//! #[derive(clap::Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     cmd: prova_coverage::CoverageCommand,
//! }
//! let cli = Cli::parse_from(["prova", "untested", "--spec", "swagger.json", "--audit", "audit.log", "--endpoint", "%JobStatus"]);
//! let outcome = prova_coverage::run(cli.cmd, &mut std::io::stdout())?;
//! std::process::exit(outcome.exit_code.into());
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod analyze;
pub mod audit;
pub mod bench;
pub mod cli;
pub mod conformance;
pub mod diff;
pub mod like;
pub mod live;
pub mod mapping;
pub mod render;
pub mod report;
pub mod reporter;
pub mod spec;
pub mod sunburst;

pub use cli::{Attach, CoverageCommand, CoverageOutcome, run};
pub use report::Report;
