//! Host keys and logins: each refusal fails the target naming it and why.

use serde_json::{Value, json};

use crate::job::{Ran, login, run_step, with};
use crate::sshd_or_skip;
use crate::support::Sshd;

async fn hostname(sshd: &Sshd, params: Value) -> Ran {
    let params = with(&params, json!({ "executable": ["hostname"] }));
    run_step(sshd, "sshcmd", params).await
}

fn without(params: &Value, key: &str) -> Value {
    let mut p = params.clone();
    p.as_object_mut().unwrap().remove(key);
    p
}

fn target(sshd: &Sshd, user: &str) -> String {
    format!("{user}@[{}]:{}", sshd.host, sshd.port)
}

#[tokio::test]
async fn an_unknown_host_key_is_refused() {
    let sshd = sshd_or_skip!();
    let empty = tempfile::NamedTempFile::new().unwrap();
    let params = with(
        &login(sshd),
        json!({ "known_hosts": [empty.path().display().to_string()] }),
    );
    let ran = hostname(sshd, params).await;
    let err = ran.target_err();
    assert!(err.starts_with(&target(sshd, &sshd.user)), "{err}");
    assert!(err.contains("host key refused"), "{err}");
    assert!(ran.named("SshCmdEnd").is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_changed_host_key_is_refused() {
    let sshd = sshd_or_skip!();
    let params = with(
        &login(sshd),
        json!({ "known_hosts": [sshd.bad_known_hosts.display().to_string()] }),
    );
    let err = hostname(sshd, params).await.target_err();
    assert!(err.contains("host key refused"), "{err}");
}

#[tokio::test]
async fn a_pinned_fingerprint_is_checked() {
    let sshd = sshd_or_skip!();
    let base = without(&login(sshd), "known_hosts");
    let right = with(&base, json!({ "host_key_fingerprint": [sshd.fingerprint] }));
    let ran = hostname(sshd, right).await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    let wrong = with(
        &base,
        json!({ "host_key_fingerprint": ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] }),
    );
    let err = hostname(sshd, wrong).await.target_err();
    assert!(err.contains("host key refused"), "{err}");
}

#[tokio::test]
async fn the_insecure_opt_out_accepts_any_key() {
    let sshd = sshd_or_skip!();
    // The default is the user's ~/.ssh/known_hosts, which does not list the
    // test server (a fresh port, a fresh key): refused.
    let default = without(&login(sshd), "known_hosts");
    let err = hostname(sshd, default.clone()).await.target_err();
    assert!(err.contains("host key refused"), "{err}");
    // Only the opt-out lets it in.
    let params = with(&default, json!({ "insecure_ignore_host_key": ["true"] }));
    let ran = hostname(sshd, params).await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
}

#[tokio::test]
async fn a_wrong_key_or_password_fails_naming_target_and_what_was_tried() {
    let sshd = sshd_or_skip!();
    let params = with(
        &login(sshd),
        json!({ "private_key_file": [sshd.wrong_key.display().to_string()] }),
    );
    let err = hostname(sshd, params).await.target_err();
    assert!(err.starts_with(&target(sshd, &sshd.user)), "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    assert!(err.contains("wrong_ed25519"), "{err}");
    if sshd.password.is_empty() {
        return;
    }
    let params = with(
        &without(&login(sshd), "private_key_file"),
        json!({ "user": [sshd.password_user], "password": ["not the password"] }),
    );
    let err = hostname(sshd, params).await.target_err();
    assert!(err.starts_with(&target(sshd, &sshd.password_user)), "{err}");
    assert!(
        err.contains("authentication failed (tried password)"),
        "{err}"
    );
}
