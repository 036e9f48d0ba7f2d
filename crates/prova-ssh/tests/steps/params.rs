//! Parameters are checked when the job is prepared (`prova validate`).

use prova_core::node::Format;
use prova_engine::prepare::prepare_str;
use serde_json::{Value, json};

use crate::job::{job, login, registry, step, with};
use crate::support::Sshd;

/// A stand-in server: preparing a job connects to nothing.
fn sshd() -> Sshd {
    Sshd {
        host: "127.0.0.1".into(),
        port: 2222,
        user: "tester".into(),
        key: "/keys/id".into(),
        wrong_key: "/keys/wrong".into(),
        password_user: String::new(),
        password: String::new(),
        known_hosts: "/keys/known_hosts".into(),
        bad_known_hosts: "/keys/bad".into(),
        fingerprint: String::new(),
    }
}

/// The diagnostics of preparing one sshcmd step: (errors, warnings).
fn diagnose(params: Value) -> (String, String) {
    let sshd = sshd();
    let doc = job(&sshd, &["t1"], vec![step("sshcmd", "run", params)]);
    match prepare_str(&doc.to_string(), Format::Json, None, &registry(None)) {
        Ok(prepared) => (
            String::new(),
            prepared
                .warnings
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        Err(e) => (e.to_string(), String::new()),
    }
}

fn command(extra: Value) -> Value {
    with(
        &with(&login(&sshd()), json!({ "executable": ["uname"] })),
        extra,
    )
}

#[test]
fn a_typo_is_warned_with_the_key_meant() {
    let (errors, warnings) = diagnose(command(json!({ "arg": ["-a"], "expct": ["Linux"] })));
    assert!(errors.is_empty(), "{errors}");
    assert!(warnings.contains("unknown parameter \"arg\""), "{warnings}");
    assert!(warnings.contains("did you mean \"args\"?"), "{warnings}");
    assert!(warnings.contains("did you mean \"expect\"?"), "{warnings}");
}

#[test]
fn bad_values_are_errors_with_their_field() {
    for (extra, want) in [
        (json!({ "timeout": ["soon"] }), "parameters.timeout"),
        (
            json!({ "timeout": ["0s"] }),
            "expected a duration above zero",
        ),
        (json!({ "port": ["0"] }), "expected a port from 1 to 65535"),
        (json!({ "port": ["70000"] }), "parameters.port"),
        (
            json!({ "expect": ["(unclosed"] }),
            "invalid regular expression",
        ),
        (json!({ "host": [""] }), "expected a host name or address"),
        (
            json!({ "executable": [" "] }),
            "expected a program name or path",
        ),
        (
            json!({ "host_key_fingerprint": ["MD5:nope"] }),
            "parameters.host_key_fingerprint",
        ),
        (
            json!({ "host_key_fingerprint": ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] }),
            "give one of known_hosts, host_key_fingerprint and insecure_ignore_host_key",
        ),
        (
            json!({ "insecure_ignore_host_key": ["{{ .ID }}"] }),
            "turning host-key checks off must be explicit",
        ),
    ] {
        let (errors, _) = diagnose(command(extra.clone()));
        assert!(errors.contains(want), "{extra}: want {want:?} in {errors}");
    }
    let (errors, _) = diagnose(json!({ "host": ["h"] }));
    assert!(errors.contains("needs parameter \"user\""), "{errors}");
    assert!(
        errors.contains("needs parameter \"executable\""),
        "{errors}"
    );
}

#[test]
fn sshfetch_needs_a_source() {
    let sshd = sshd();
    let doc = job(
        &sshd,
        &["t1"],
        vec![step("sshfetch", "fetch", login(&sshd))],
    );
    let err = prepare_str(&doc.to_string(), Format::Json, None, &registry(None))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("needs parameter \"source\""), "{err}");
}
