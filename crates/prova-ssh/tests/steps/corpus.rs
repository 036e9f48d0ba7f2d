//! ConTest's own sshcmd descriptors (`sshhostname.json`, `lspci.json`),
//! changed only where they must be to reach the test server.

use std::path::PathBuf;

use prova_engine::runner::RunOptions;
use serde_json::{Value, json};

use crate::job::{self, run};
use crate::sshd_or_skip;

fn corpus(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/contest/descriptors")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `sshhostname.json` as written but for the host's key, port and
/// known_hosts, the user, and the command: `ping` is not installed, so
/// `echo` runs with ping's arguments, templates included. Its label "some
/// label" is not a valid ConTest label (`^[a-zA-Z]\w*$`) and becomes
/// "some_label".
#[tokio::test]
async fn sshhostname_runs_with_only_host_key_and_command_changed() {
    let sshd = sshd_or_skip!();
    let doc = corpus("sshhostname.json");
    let mut step = doc["steps"][0].clone();
    assert_eq!(step["name"], "sshcmd");
    assert_eq!(step["parameters"]["host"], json!(["{{ .FQDN }}"]));
    assert_eq!(step["parameters"]["executable"], json!(["ping"]));
    step["label"] = json!("some_label");
    let p = &mut step["parameters"];
    p["user"] = json!([sshd.user]);
    p["private_key_file"] = json!([sshd.key.display().to_string()]);
    p["executable"] = json!(["echo"]);
    p["port"] = json!([sshd.port.to_string()]);
    p["known_hosts"] = json!([sshd.known_hosts.display().to_string()]);
    let ran = run(
        &job::job(sshd, &["dut1"], vec![step]),
        None,
        RunOptions::default(),
    )
    .await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    // ping's arguments, `www.{{ ToLower .FQDN }}` rendered per target.
    assert_eq!(
        ran.one("SshCmdStdout")["Msg"],
        format!("-c1 -W2 www.{}\n", sshd.host.to_lowercase())
    );
    let start = ran.one("SshCmdStart");
    assert_eq!(start["Command"], format!("echo -c1 -W2 www.{}", sshd.host));
    assert_eq!(start["User"], sshd.user.as_str());
    assert_eq!(ran.one("SshCmdEnd")["ExitCode"], 0);
}

/// A stand-in for `lspci` (not installed here, and a container shows no
/// Sky Lake uncore devices anyway): a script printing real `lspci` lines,
/// readable by the test server's login user.
fn fake_lspci() -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prova-ssh-fake-bin");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lspci");
    let script = "#!/bin/sh\n\
        echo '00:00.0 Host bridge: Intel Corporation Sky Lake-E DMI3 Registers (rev 04)'\n\
        echo '7f:0e.0 System peripheral: Intel Corporation Sky Lake-E DDRIO Global Broadcast (rev 04)'\n";
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// `lspci.json` as written (password login, `expect`, TargetSuccess >80%)
/// but for the target's address, the user and password, the port and
/// known_hosts, `lspci`'s path, and the label every prova step needs.
fn lspci_job(expect: &str) -> Option<Value> {
    let sshd = crate::support::sshd()?;
    let mut doc = corpus("lspci.json");
    let test = &mut doc["TestDescriptors"][0];
    test["TargetManagerAcquireParameters"]["Targets"][0]["FQDN"] = json!(sshd.host);
    let step = &mut test["TestFetcherFetchParameters"]["Steps"][0];
    assert_eq!(step["parameters"]["password"], json!([""]));
    step["label"] = json!("lspci");
    let p = &mut step["parameters"];
    p["executable"] = json!([fake_lspci()]);
    p["expect"] = json!([expect]);
    p["port"] = json!([sshd.port.to_string()]);
    p["known_hosts"] = json!([sshd.known_hosts.display().to_string()]);
    p["use_agent"] = json!(["false"]);
    if sshd.password.is_empty() {
        // Not root: sshd cannot check passwords; the key user logs in.
        p["user"] = json!([sshd.user]);
        p["private_key_file"] = json!([sshd.key.display().to_string()]);
    } else {
        p["user"] = json!([sshd.password_user]);
        p["password"] = json!([sshd.password]);
    }
    doc["Runs"] = json!(1);
    Some(doc)
}

#[tokio::test]
async fn lspci_passes_when_expect_matches_stdout() {
    let Some(doc) = lspci_job("DDRIO Global Broadcast") else {
        return;
    };
    let ran = run(&doc, None, RunOptions::default()).await;
    assert!(ran.outcome.success(), "{:?}", ran.named("TargetErr"));
    assert!(
        ran.one("SshCmdStdout")["Msg"]
            .as_str()
            .unwrap()
            .contains("DDRIO Global Broadcast")
    );
}

#[tokio::test]
async fn lspci_fails_when_expect_does_not_match() {
    let Some(doc) = lspci_job("Ice Lake.*Broadcast") else {
        return;
    };
    let ran = run(&doc, None, RunOptions::default()).await;
    assert!(!ran.outcome.success());
    let err = ran.target_err();
    assert!(
        err.contains("match for Ice Lake.*Broadcast not found"),
        "{err}"
    );
    let sshd = crate::support::sshd().unwrap();
    assert!(
        err.contains(&format!("@[127.0.0.1]:{}", sshd.port)),
        "{err}"
    );
}
