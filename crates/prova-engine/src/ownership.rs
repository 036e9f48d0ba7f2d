//! Who runs a job, and how a job whose runner died is ended.
//!
//! Every running job has a lease in the store naming its owner: a
//! `prova serve` instance (its server ID) or one `prova run` process
//! ([`process_owner`]). The owner renews it ([`Heartbeat`]); when the owner
//! dies the lease runs out, and whoever next opens the store (another
//! `prova run`, a `prova serve`) ends the job with the reason
//! ([`end_abandoned`]): it kills the process groups the job's commands left
//! behind, fails the job, and frees its target locks at once, so the next
//! job on those targets does not wait for the locks to expire.
//!
//! A `prova run` owner on this machine can be proven dead before its lease
//! runs out: the owner names its process ID and start time, and a process
//! with that ID and start time either exists or does not ([`liveness`]).

use std::sync::Arc;
use std::time::Duration;

use prova_core::{EventQuery, JobId, JobState, NewEvent};
use prova_store::{LeaseStore, Store, StoreError};
use serde_json::json;

/// How long a lease lasts without a heartbeat.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often an owner renews its leases.
pub const HEARTBEAT: Duration = Duration::from_secs(3);

/// The prefix of owners that are `prova run` processes.
const RUN_PREFIX: &str = "run/";

/// Identifies a process across PID reuse and reboots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessIdentity {
    pub pid: i32,
    /// Clock ticks after boot when the process started (`/proc/PID/stat`
    /// field 22).
    pub start_ticks: u64,
    /// This boot of this machine (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
}

impl ProcessIdentity {
    /// The identity of a running process, if it exists (Linux only).
    pub fn of(pid: i32) -> Option<ProcessIdentity> {
        Some(ProcessIdentity {
            pid,
            start_ticks: start_ticks(pid)?,
            boot_id: boot_id()?,
        })
    }

    /// This process.
    pub fn current() -> Option<ProcessIdentity> {
        ProcessIdentity::of(i32::try_from(std::process::id()).ok()?)
    }

    /// Whether the process this identity names is still running.
    pub fn is_alive(&self) -> bool {
        boot_id().as_deref() == Some(self.boot_id.as_str())
            && start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// The start time of a process in clock ticks after boot.
fn start_ticks(pid: i32) -> Option<u64> {
    parse_start_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_start_ticks(stat: &str) -> Option<u64> {
    // Field 2 is the command name in parentheses and may hold spaces and
    // parentheses itself: the fields after it start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // `rest` starts at field 3 (state); starttime is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn boot_id() -> Option<String> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .clone()
}

/// The lease owner name of this `prova run` process:
/// `run/<host>/<pid>/<start ticks>/<boot id>`.
pub fn process_owner() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    let host = host.replace('/', "_");
    match ProcessIdentity::current() {
        Some(id) => format!(
            "{RUN_PREFIX}{host}/{}/{}/{}",
            id.pid, id.start_ticks, id.boot_id
        ),
        None => format!("{RUN_PREFIX}{host}/{}", std::process::id()),
    }
}

/// What is known of an owner's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// A `prova run` process on this machine that still runs.
    Alive,
    /// A `prova run` process on this machine that is gone.
    Dead,
    /// Anything else (a server, another machine): only its lease tells.
    Unknown,
}

/// Whether the owner of a lease still runs, where that can be known.
pub fn liveness(owner: &str) -> Liveness {
    let Some(rest) = owner.strip_prefix(RUN_PREFIX) else {
        return Liveness::Unknown;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let [_host, pid, ticks, boot] = parts.as_slice() else {
        return Liveness::Unknown;
    };
    let (Ok(pid), Ok(start_ticks)) = (pid.parse(), ticks.parse()) else {
        return Liveness::Unknown;
    };
    if boot_id().as_deref() != Some(*boot) {
        return Liveness::Unknown; // another machine, or this one rebooted
    }
    let id = ProcessIdentity {
        pid,
        start_ticks,
        boot_id: boot.to_string(),
    };
    if id.is_alive() {
        Liveness::Alive
    } else {
        Liveness::Dead
    }
}

/// Renews an owner's leases while alive.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    pub fn start(store: Arc<dyn LeaseStore>, owner: String) -> Heartbeat {
        Heartbeat(tokio::spawn(async move {
            let mut beat = tokio::time::interval(HEARTBEAT);
            loop {
                beat.tick().await;
                if let Err(e) = store.renew_leases(&owner, LEASE_TTL).await {
                    tracing::warn!("cannot renew job leases: {e}");
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What ending an abandoned job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    /// Process groups of the job's commands that were still running.
    pub killed_groups: Vec<i32>,
    /// Target locks freed.
    pub unlocked: u64,
}

/// Ends a job whose runner died: kills the process groups its commands
/// left on this machine, records `JobStateFailed` with `reason`, frees its
/// target locks and drops its lease. The caller must hold the job (its
/// lease, see [`claim`]) so that no one else ends it too.
pub async fn end_abandoned(
    store: &dyn Store,
    job_id: JobId,
    reason: &str,
) -> Result<Ended, StoreError> {
    let killed_groups = kill_leftover_groups(store, job_id).await?;
    let mut payload = json!({ "Error": reason, "Abandoned": true });
    if !killed_groups.is_empty() {
        payload["KilledProcessGroups"] = json!(killed_groups);
    }
    let unlocked = record_end(store, job_id, JobState::Failed, payload).await?;
    Ok(Ended {
        killed_groups,
        unlocked,
    })
}

/// Ends a job from outside the engine's own course (its runner died,
/// panicked, or was told to stop at once): records the final `state` with
/// `payload`, frees the job's target locks and drops its lease. Returns how
/// many target locks it held.
pub async fn record_end(
    store: &dyn Store,
    job_id: JobId,
    state: JobState,
    payload: serde_json::Value,
) -> Result<u64, StoreError> {
    store
        .append_events(&[NewEvent::job(job_id, state.event_name(), Some(payload))])
        .await?;
    let unlocked = store.unlock_job_targets(job_id).await?;
    if let Some((owner, _)) = store.lease_owner(job_id).await? {
        store.release_lease(job_id, &owner).await?;
    }
    Ok(unlocked)
}

/// Takes an abandoned job's lease for `me` so that only one instance ends
/// it: succeeds when the lease expired or its owner is proven dead.
pub async fn claim(
    store: &dyn Store,
    job_id: JobId,
    from: &str,
    me: &str,
) -> Result<bool, StoreError> {
    store.take_lease_from(job_id, from, me, LEASE_TTL).await
}

/// Ends every job whose owner is gone (its lease expired, or it is a dead
/// `prova run` on this machine), except paused ones (a server resumes
/// those) and `me`'s own. Returns the jobs ended. `prova run` calls this
/// as it starts; `prova serve` through its takeover scan.
pub async fn reap_abandoned(store: &dyn Store, me: &str) -> Result<Vec<JobId>, StoreError> {
    reap(store, me, |_| true).await
}

/// [`reap_abandoned`] for jobs of `prova run` processes only: a server
/// takes over other servers' jobs itself (it resumes paused ones).
pub async fn reap_abandoned_runs(store: &dyn Store, me: &str) -> Result<Vec<JobId>, StoreError> {
    reap(store, me, |owner| owner.starts_with(RUN_PREFIX)).await
}

async fn reap(
    store: &dyn Store,
    me: &str,
    owners: impl Fn(&str) -> bool,
) -> Result<Vec<JobId>, StoreError> {
    let mut ended = Vec::new();
    for (job_id, owner, expired) in store.leases().await? {
        if owner == me || !owners(&owner) {
            continue;
        }
        let dead = match liveness(&owner) {
            Liveness::Alive => false,
            Liveness::Dead => true,
            Liveness::Unknown => expired,
        };
        if !dead {
            continue;
        }
        let Some(job) = store.get_job(job_id).await? else {
            continue;
        };
        match job.state {
            Some(s) if s.is_final() => {
                store.release_lease(job_id, &owner).await?;
                continue;
            }
            Some(JobState::Paused) => continue,
            _ => {}
        }
        if !claim(store, job_id, &owner, me).await? {
            continue; // someone else got there first
        }
        let reason = abandoned_reason(&owner, me);
        tracing::warn!(job = job_id, "{reason}");
        end_abandoned(store, job_id, &reason).await?;
        ended.push(job_id);
    }
    Ok(ended)
}

/// Why an abandoned job failed, in words.
pub fn abandoned_reason(owner: &str, by: &str) -> String {
    let who = match owner.strip_prefix(RUN_PREFIX) {
        Some(rest) => {
            let mut parts = rest.split('/');
            let host = parts.next().unwrap_or("?");
            let pid = parts.next().unwrap_or("?");
            format!("the `prova run` process {pid} on {host}")
        }
        None => format!("server {owner}"),
    };
    format!(
        "abandoned: {who} stopped while the job ran (killed?); ended by {by}. \
         A job that was not paused cannot be resumed"
    )
}

/// Kills the process groups that `cmd` steps of the job started on this
/// machine and that still run. Each `CmdStart` event records the group
/// leader's PID, start time and boot; a group is killed only when its
/// leader is that very process, or when the leader is gone but the group
/// remains (Linux does not reuse a PID while a group of that ID exists).
async fn kill_leftover_groups(store: &dyn Store, job_id: JobId) -> Result<Vec<i32>, StoreError> {
    let starts = store
        .query_events(&EventQuery {
            job_id: Some(job_id),
            names: vec![crate::plugins::steps::cmd::CMD_START.to_string()],
            ..Default::default()
        })
        .await?;
    let Some(boot) = boot_id() else {
        return Ok(Vec::new());
    };
    let mut killed = Vec::new();
    for ev in starts {
        let Some(p) = ev.event.payload.as_ref() else {
            continue;
        };
        let (Some(pid), Some(ticks), Some(ev_boot)) = (
            p.get("Pid").and_then(|v| v.as_i64()),
            p.get("StartTime").and_then(|v| v.as_u64()),
            p.get("BootID").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let Ok(pid) = i32::try_from(pid) else {
            continue;
        };
        if ev_boot != boot || pid <= 1 || killed.contains(&pid) {
            continue;
        }
        let ours = match start_ticks(pid) {
            Some(t) => t == ticks,
            None => true, // leader gone; a remaining group is still ours
        };
        if ours && kill_group(pid) {
            killed.push(pid);
        }
    }
    Ok(killed)
}

/// SIGKILLs a process group; whether it existed.
fn kill_group(pgid: i32) -> bool {
    use nix::sys::signal::{Signal, killpg};
    killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = process_owner();
        assert!(me.starts_with(RUN_PREFIX), "{me}");
        assert_eq!(liveness(&me), Liveness::Alive);
        let id = ProcessIdentity::current().expect("linux /proc");
        let other_start = format!(
            "{RUN_PREFIX}h/{}/{}/{}",
            id.pid,
            id.start_ticks + 1,
            id.boot_id
        );
        assert_eq!(liveness(&other_start), Liveness::Dead);
        let other_boot = format!("{RUN_PREFIX}h/{}/{}/not-this-boot", id.pid, id.start_ticks);
        assert_eq!(liveness(&other_boot), Liveness::Unknown);
        assert_eq!(liveness("prova-myhost"), Liveness::Unknown);
    }

    #[test]
    fn start_ticks_reads_past_a_command_name_with_spaces_and_parens() {
        let line = "123 (a b) c)) S 1 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 0";
        assert_eq!(parse_start_ticks(line), Some(98765));
        assert_eq!(parse_start_ticks("123 (x) S 1"), None);
        assert_eq!(parse_start_ticks("garbage"), None);
    }
}
