//! Ends a remote command and everything it started, through a second
//! session on the same connection.
//!
//! OpenSSH's sshd starts each session's command under `setsid()`, so the
//! command's shell (whose pid [`crate::exec`] learns from the first line of
//! its stdout) leads a process group that holds everything it started,
//! unless a child moved itself out (`setsid`, `setpgid`, a double-forking
//! daemon). Those still inherit the run's `PROVA_SSH_RUN` environment tag,
//! so on Linux targets they are found in `/proc/*/environ` as well. The
//! script sends SIGTERM to both, waits up to the grace period, sends SIGKILL
//! to what is left, and exits non-zero if anything survives, so the caller
//! knows rather than hopes.

use std::time::Duration;

use russh::ChannelMsg;

use crate::connect::Connection;

/// The remote command may still be running: the cleanup could not be done
/// or could not be confirmed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{target}: could not make sure the remote command ended ({}): {reason}", group_name(*pgid))]
pub struct KillError {
    pub target: String,
    pub pgid: Option<u32>,
    pub reason: String,
}

fn group_name(pgid: Option<u32>) -> String {
    match pgid {
        Some(pgid) => format!("process group {pgid}"),
        None => "process group unknown".to_string(),
    }
}

/// How long the cleanup session itself may take beyond the grace period.
const CLEANUP_SLACK: Duration = Duration::from_secs(15);

/// Terminates process group `pgid` (when known) and every process tagged
/// `PROVA_SSH_RUN=tag`, SIGKILLing what outlives `grace`.
pub async fn kill_remote(
    conn: &Connection,
    pgid: Option<u32>,
    tag: &str,
    grace: Duration,
) -> Result<(), KillError> {
    let fail = |reason: String| KillError {
        target: conn.target().to_string(),
        pgid,
        reason,
    };
    let script = cleanup_script(pgid, tag, grace);
    let run = async {
        let mut channel = conn
            .open_session()
            .await
            .map_err(|err| fail(error_text(&err)))?;
        // `exec sh`: the script needs a POSIX shell whatever the login shell.
        channel
            .exec(true, format!("exec /bin/sh -c '{script}'"))
            .await
            .map_err(|err| fail(format!("cannot start the cleanup command: {err}")))?;
        let mut stderr = Vec::new();
        let mut status = None;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::ExtendedData { data, .. } if stderr.len() < 4096 => {
                    stderr.extend_from_slice(&data)
                }
                ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                ChannelMsg::Failure => {
                    return Err(fail("the server refused the cleanup command".to_string()));
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        match status {
            Some(0) => Ok(()),
            Some(code) => Err(fail(format!(
                "cleanup exited with status {code}: {}",
                String::from_utf8_lossy(&stderr).trim()
            ))),
            None => Err(fail(
                "the cleanup session ended without an exit status".to_string(),
            )),
        }
    };
    match tokio::time::timeout(grace + CLEANUP_SLACK, run).await {
        Ok(result) => result,
        Err(_) => Err(fail(format!(
            "cleanup took longer than {:?}",
            grace + CLEANUP_SLACK
        ))),
    }
}

/// An error and its causes, `: ` apart.
pub(crate) fn error_text(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The cleanup as a POSIX sh script without single quotes (it is passed in
/// single quotes). `pgid` is a number and `tag` hex, so nothing needs
/// quoting. `grep -z` reads environ's NUL-separated entries; where there is
/// no /proc or no GNU-style grep the tag scan finds nothing and only the
/// group is killed. A group whose members are all zombies counts as gone
/// (in a container whose init does not reap, they stay zombies).
fn cleanup_script(pgid: Option<u32>, tag: &str, grace: Duration) -> String {
    let pg = pgid.map(|p| p.to_string()).unwrap_or_default();
    let tenths = grace.as_millis().div_ceil(100).max(1);
    format!(
        r#"pg={pg}; tag=PROVA_SSH_RUN={tag}
tagged() {{ grep -lzx -e "$tag" /proc/[0-9]*/environ 2>/dev/null | sed -e "s|^/proc/||" -e "s|/environ\$||"; }}
group_alive() {{ [ -n "$pg" ] || return 1
  [ -r /proc/self/stat ] || {{ kill -0 -"$pg" 2>/dev/null; return; }}
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v pg="$pg" "{{ s = \$0; sub(/.*\\) /, \"\", s); split(s, f, \" \"); if (f[3] == pg && f[1] != \"Z\") found = 1 }} END {{ exit !found }}"; }}
signal_all() {{ [ -n "$pg" ] && kill -"$1" -"$pg" 2>/dev/null; p=$(tagged); [ -n "$p" ] && kill -"$1" $p 2>/dev/null; return 0; }}
gone() {{ ! group_alive && [ -z "$(tagged)" ]; }}
signal_all TERM
i=0; while [ $i -lt {tenths} ]; do gone && exit 0; sleep 0.1; i=$((i+1)); done
signal_all KILL
i=0; while [ $i -lt 20 ]; do gone && exit 0; sleep 0.1; i=$((i+1)); done
echo "still running after SIGKILL: group ${{pg:-unknown}}, tagged pids: $(tagged | tr "\n" " ")" >&2
exit 1
"#
    )
}

#[cfg(test)]
mod tests {
    use super::cleanup_script;
    use std::time::Duration;

    #[test]
    fn script_fits_in_single_quotes_and_names_group_and_tag() {
        let script = cleanup_script(Some(4242), "abc123", Duration::from_millis(1500));
        assert!(!script.contains('\''));
        assert!(script.contains("pg=4242; tag=PROVA_SSH_RUN=abc123"));
        assert!(script.contains("-lt 15 ]"));
        let script = cleanup_script(None, "abc", Duration::ZERO);
        assert!(script.starts_with("pg=; "));
    }

    #[test]
    fn script_is_valid_sh() {
        let script = cleanup_script(Some(1), "ff", Duration::from_secs(1));
        let status = std::process::Command::new("sh")
            .args(["-n", "-c", &script])
            .status()
            .unwrap();
        assert!(status.success());
    }
}
