//! The terminal under the live view: whether to colour, and its echo of
//! control characters while bars are drawn.

/// While bars are drawn, the terminal does not echo control characters
/// (`^C`): indicatif leaves the cursor at the right edge of its last row,
/// so an echo there would wrap and shift every row it redraws, leaving a
/// stale one behind. The terminal's settings come back when this drops.
pub struct NoEchoCtl {
    saved: nix::sys::termios::Termios,
}

impl NoEchoCtl {
    pub fn new() -> Option<NoEchoCtl> {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
        let fd = std::io::stderr();
        let saved = tcgetattr(&fd).ok()?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHOCTL);
        tcsetattr(&fd, SetArg::TCSANOW, &quiet).ok()?;
        Some(NoEchoCtl { saved })
    }
}

impl Drop for NoEchoCtl {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        let _ = tcsetattr(std::io::stderr(), SetArg::TCSANOW, &self.saved);
    }
}

/// Whether to colour what goes to stderr: `--color`, then NO_COLOR (any
/// value turns colour off, <https://no-color.org>), then whether stderr is
/// a terminal that can show it.
pub fn colour(choice: crate::cli::ColorChoice) -> bool {
    use std::io::IsTerminal;
    match choice {
        crate::cli::ColorChoice::Always => true,
        crate::cli::ColorChoice::Never => false,
        crate::cli::ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
                && std::env::var("TERM").as_deref() != Ok("dumb")
        }
    }
}
