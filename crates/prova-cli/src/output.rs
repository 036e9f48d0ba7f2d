//! Logging setup and output helpers shared by the commands.

use std::io::IsTerminal;

/// Logs go to stderr; `-v` raises the level, `RUST_LOG` overrides it. A
/// server (`daemon`) also says, by default, what it does with jobs (which
/// ended, which a restart resumed or failed): its log is its output.
pub fn init_tracing(verbose: u8, daemon: bool) {
    let default = match (verbose, daemon) {
        (0, false) => "warn",
        (0, true) => "warn,prova_server=info",
        (1, _) => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Writes to stdout and returns the error instead of panicking as
/// `print!` does: `prova jobs | head -1` closes the pipe early, and the
/// broken pipe then travels up as an error that `main` turns into a quiet
/// exit 0 (what ripgrep and friends do).
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.flush()
}

/// `print!` that returns an error on a closed stdout (see [`write_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` that returns an error on a closed stdout (see [`write_stdout`]).
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use {out, outln};

/// `prova jobs | head` must not print an error when head exits.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A timestamp for people: local time, to the second.
pub fn time(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A duration for people: `1.2s`, `350ms`, `2m03s`.
pub fn duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

/// An error and its causes on one line, `outer: cause: root`, each cause
/// once: errors that print their source in their own message (thiserror's
/// `{source}` with a field named `source`) would otherwise repeat it
/// (`… (os error 2): … (os error 2)`).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let msg = c.to_string();
        if !msg.is_empty() && !text.contains(&msg) {
            text.push_str(": ");
            text.push_str(&msg);
        }
        cause = c.source();
    }
    text
}

/// [`error_chain`] of an anyhow error.
pub fn anyhow_chain(err: &anyhow::Error) -> String {
    error_chain(err.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read spec {path}: {source}")]
    struct Repeats {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file (os error 2)");
        let e = Repeats {
            path: "s.json".into(),
            source: io,
        };
        assert_eq!(
            error_chain(&e),
            "cannot read spec s.json: No such file (os error 2)"
        );
    }

    #[test]
    fn a_cause_missing_from_the_message_is_added() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file (os error 2)");
        let e = anyhow::Error::new(io).context("cannot read job.yaml");
        assert_eq!(
            anyhow_chain(&e),
            "cannot read job.yaml: No such file (os error 2)"
        );
    }
}
