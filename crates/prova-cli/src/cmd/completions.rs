//! `prova completions SHELL` and `prova man`: generated from the same clap
//! definitions as `--help`, so they never drift from the program.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};

pub fn completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "prova", &mut out);
    Ok(ExitCode::SUCCESS)
}

/// The man page, in roff, of `prova` and of each command (one page, every
/// command a section), written to stdout: `prova man > prova.1`.
pub fn man() -> anyhow::Result<ExitCode> {
    let cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    render_commands(&mut out, &cmd, "prova")?;
    man.render_extra_section(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// A section per command (and nested command, `coverage report`), with its
/// synopsis, its options and its help's examples.
fn render_commands(
    out: &mut dyn std::io::Write,
    cmd: &clap::Command,
    prefix: &str,
) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{prefix} {}", sub.get_name());
        let sub = sub.clone().bin_name(name.clone());
        let man = clap_mangen::Man::new(sub.clone());
        writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
        if let Some(about) = sub.get_about() {
            writeln!(out, "{}", roff_escape(&about.to_string()))?;
        }
        let mut body = Vec::new();
        man.render_synopsis_section(&mut body)?;
        man.render_options_section(&mut body)?;
        // Nested pages use .SH; one page keeps them as subsections.
        let body = String::from_utf8_lossy(&body).replace(".SH ", ".SS ");
        out.write_all(body.as_bytes())?;
        if let Some(after) = sub.get_after_help() {
            writeln!(out, ".PP\n.nf\n{}\n.fi", roff_escape(&after.to_string()))?;
        }
        if sub.has_subcommands() {
            render_commands(out, &sub, &name)?;
        }
    }
    Ok(())
}

/// Text safe inside roff: a leading `.` or `'` would be a request, `\`
/// an escape.
fn roff_escape(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.replace('\\', "\\e");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
