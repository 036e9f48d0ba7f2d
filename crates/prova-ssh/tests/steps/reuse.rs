//! One connection serves every step and target of a job.

use std::collections::BTreeSet;

use prova_engine::runner::RunOptions;
use prova_ssh::{Pool, PoolOptions};
use serde_json::json;

use crate::job::{job, login, run, step, with};
use crate::sshd_or_skip;

#[tokio::test]
async fn three_steps_on_two_targets_log_in_once() {
    let sshd = sshd_or_skip!();
    let pool = Pool::new(PoolOptions::default());
    let steps = ["one", "two", "three"]
        .iter()
        .map(|label| {
            let params = with(
                &login(sshd),
                json!({ "executable": ["sh"], "args": ["-c", "echo $SSH_CONNECTION"] }),
            );
            step("sshcmd", label, params)
        })
        .collect();
    let ran = run(
        &job(sshd, &["a", "b"], steps),
        Some(pool.clone()),
        RunOptions::default(),
    )
    .await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    let ends = ran.named("SshCmdEnd");
    assert_eq!(ends.len(), 6);
    let ids: BTreeSet<u64> = ends
        .iter()
        .map(|e| e["ConnectionId"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "one connection: {ids:?}");
    // The server saw one TCP connection (its client address and port).
    let seen: BTreeSet<&str> = ran
        .named("SshCmdStdout")
        .iter()
        .map(|o| o["Msg"].as_str().unwrap())
        .collect();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let stats = pool.stats();
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert!(stats.reuses >= 5, "{stats:?}");
}
