use std::process::Stdio;
use std::time::Duration;

use prova_ssh::{
    Agent, Auth, ConnectConfig, ConnectError, Connection, ExecOptions, PrivateKeyFile,
    RemoteCommand,
};

use crate::sshd_or_skip;

async fn whoami(config: &ConnectConfig) -> String {
    let conn = Connection::open(config)
        .await
        .unwrap_or_else(|err| panic!("{err:#?}"));
    let outcome = prova_ssh::exec::run(
        &conn,
        &RemoteCommand::new("id", ["-un"]),
        &ExecOptions::default(),
        |_, _| std::ops::ControlFlow::Continue(()),
    )
    .await
    .unwrap();
    outcome.stdout.text().trim().to_string()
}

#[tokio::test]
async fn key_login() {
    let sshd = sshd_or_skip!();
    assert_eq!(whoami(&sshd.key_config()).await, sshd.user);
}

#[tokio::test]
async fn password_login() {
    let sshd = sshd_or_skip!();
    let Some(config) = sshd.password_config() else {
        panic!(
            "the test sshd has no password user (not run as root); password login is part of the suite"
        );
    };
    assert_eq!(whoami(&config).await, sshd.password_user);
}

#[tokio::test]
async fn wrong_key_fails_naming_target_and_what_was_tried() {
    let sshd = sshd_or_skip!();
    let mut config = sshd.key_config();
    config.auth.private_key = Some(PrivateKeyFile::new(&sshd.wrong_key));
    let err = Connection::open(&config).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ConnectError::AuthFailed { .. }), "{err:?}");
    assert!(
        text.starts_with(&format!("{}@[{}]:{}", sshd.user, sshd.host, sshd.port)),
        "{text}"
    );
    assert!(
        text.contains(&sshd.wrong_key.display().to_string()),
        "{text}"
    );
    assert!(text.contains("publickey"), "{text}");
}

#[tokio::test]
async fn wrong_password_fails() {
    let sshd = sshd_or_skip!();
    let mut config = sshd.password_config().expect("password user");
    config.auth.password = Some("not-the-password".to_string());
    let err = Connection::open(&config).await.unwrap_err();
    assert!(
        matches!(&err, ConnectError::AuthFailed { tried, .. } if tried.contains("password")),
        "{err}"
    );
}

#[tokio::test]
async fn missing_key_file_is_named() {
    let sshd = sshd_or_skip!();
    let mut config = sshd.key_config();
    config.auth.private_key = Some(PrivateKeyFile::new("/nonexistent/id_ed25519"));
    let err = Connection::open(&config).await.unwrap_err();
    assert!(matches!(err, ConnectError::KeyFile { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/id_ed25519"), "{err}");
}

#[tokio::test]
async fn key_then_password_as_openssh() {
    // The wrong key is refused, then the password logs in.
    let sshd = sshd_or_skip!();
    let mut config = sshd.password_config().expect("password user");
    config.auth.private_key = Some(PrivateKeyFile::new(&sshd.wrong_key));
    assert_eq!(whoami(&config).await, sshd.password_user);
}

#[tokio::test]
async fn closed_port_fails_to_connect() {
    let sshd = sshd_or_skip!();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut config = sshd.key_config();
    config.port = port;
    let err = Connection::open(&config).await.unwrap_err();
    assert!(matches!(err, ConnectError::Tcp { .. }), "{err:?}");
}

#[tokio::test]
async fn connect_timeout_bounds_a_silent_server() {
    let sshd = sshd_or_skip!();
    // Accepts TCP but never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let _conn = listener.accept().await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut config = sshd.key_config();
    config.port = port;
    config.connect_timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let err = Connection::open(&config).await.unwrap_err();
    assert!(matches!(err, ConnectError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    holder.abort();
}

/// A real ssh-agent (openssh-client) holding the user key; the config
/// offers only the agent.
#[tokio::test]
async fn agent_login() {
    let sshd = sshd_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ssh-agent (openssh-client) is installed");
    let ready = crate::support::eventually(Duration::from_secs(5), || socket.exists()).await;
    assert!(ready, "ssh-agent did not create its socket");
    let added = std::process::Command::new("ssh-add")
        .arg(&sshd.key)
        .env("SSH_AUTH_SOCK", &socket)
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "ssh-add: {}",
        String::from_utf8_lossy(&added.stderr)
    );
    let mut config = sshd.key_config();
    config.auth = Auth {
        agent: Agent::Socket(socket.clone()),
        private_key: None,
        password: None,
    };
    assert_eq!(whoami(&config).await, sshd.user);
    agent.kill().unwrap();
    agent.wait().unwrap();
}
