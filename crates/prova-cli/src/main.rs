//! `prova`: runs end-to-end test jobs and tells you what they proved.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod cmd;
mod exit;
mod output;
mod progress;
mod store;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    output::init_tracing(args.verbose);
    match cmd::dispatch(args) {
        Ok(code) => code,
        Err(err) => {
            if output::is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            eprintln!("prova: error: {err:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}
