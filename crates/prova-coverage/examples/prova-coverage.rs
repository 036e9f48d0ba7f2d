//! Stand-alone `prova coverage` for trying the crate without the prova CLI:
//! `cargo run --release -p prova-coverage --example prova-coverage -- report --spec … --audit …`

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "prova-coverage",
    about = "Kubernetes API coverage from audit logs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: prova_coverage::CoverageCommand,
}

fn main() {
    let cli = Cli::parse();
    let mut out = std::io::stdout().lock();
    match prova_coverage::run(cli.cmd, &mut out) {
        Ok(o) => {
            if let Some(a) = o.attach {
                eprintln!(
                    "(would attach {} bytes of report JSON to job {} run {:?})",
                    a.report_json.len(),
                    a.job_id,
                    a.run_id
                );
            }
            std::process::exit(o.exit_code.into())
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2)
        }
    }
}
