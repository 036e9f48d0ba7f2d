use std::ops::ControlFlow;
use std::time::Duration;

use prova_ssh::{Ended, ExecOptions, ExitStatus, Pool, PoolOptions, RemoteCommand};

use crate::sshd_or_skip;

async fn echo(pool: &Pool, config: &prova_ssh::ConnectConfig, text: &str) -> u64 {
    let outcome = pool
        .exec(
            config,
            &RemoteCommand::new("echo", [text]),
            &ExecOptions::default(),
            |_, _| ControlFlow::Continue(()),
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(outcome.ended, Ended::Exited(ExitStatus::Code(0)));
    assert_eq!(outcome.stdout.text(), format!("{text}\n"));
    pool.connection(config).await.unwrap().id()
}

#[tokio::test]
async fn one_login_serves_many_commands() {
    let sshd = sshd_or_skip!();
    let pool = Pool::new(PoolOptions::default());
    let config = sshd.key_config();
    let mut ids = Vec::new();
    let mut client_ends = Vec::new();
    for i in 0..10 {
        ids.push(echo(&pool, &config, &format!("run{i}")).await);
        // The server's view: SSH_CONNECTION names the client's address and
        // port, i.e. the TCP connection.
        let outcome = pool
            .exec(
                &config,
                &RemoteCommand::new("sh", ["-c", "echo $SSH_CONNECTION"]),
                &ExecOptions::default(),
                |_, _| ControlFlow::Continue(()),
            )
            .await
            .unwrap();
        client_ends.push(outcome.stdout.text());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one connection for all commands");
    client_ends.dedup();
    assert_eq!(
        client_ends.len(),
        1,
        "the server saw one TCP connection: {client_ends:?}"
    );
    let stats = pool.stats();
    assert_eq!((stats.connects, stats.open), (1, 1), "{stats:?}");
    assert!(stats.reuses >= 19, "{stats:?}");
}

#[tokio::test]
async fn concurrent_first_use_connects_once() {
    let sshd = sshd_or_skip!();
    let pool = Pool::new(PoolOptions::default());
    let config = sshd.key_config();
    let uses = (0..8).map(|_| pool.connection(&config));
    let conns = futures::future::join_all(uses).await;
    let ids: std::collections::BTreeSet<u64> = conns.into_iter().map(|c| c.unwrap().id()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(pool.stats().connects, 1);
}

#[tokio::test]
async fn other_credentials_get_their_own_connection() {
    let sshd = sshd_or_skip!();
    let pool = Pool::new(PoolOptions::default());
    let key = sshd.key_config();
    let password = sshd.password_config().expect("password user");
    let a = pool.connection(&key).await.unwrap().id();
    let b = pool.connection(&password).await.unwrap().id();
    assert_ne!(a, b);
    assert_eq!(pool.stats().connects, 2);
}

#[tokio::test]
async fn a_killed_connection_is_replaced_on_next_use() {
    let sshd = sshd_or_skip!();
    let pool = Pool::new(PoolOptions::default());
    let config = sshd.key_config();
    let first = echo(&pool, &config, "before").await;
    let old = pool.connection(&config).await.unwrap();
    let marker = crate::support::unique_seconds();
    // Kill this connection's sshd process on the server side: the session
    // process is the parent of a command run over it.
    let result = pool
        .exec(
            &config,
            &RemoteCommand::new("sh", ["-c", &format!("kill -KILL $PPID; sleep {marker}")]),
            &ExecOptions::default(),
            |_, _| ControlFlow::Continue(()),
        )
        .await;
    let err = result.unwrap_err();
    assert!(
        matches!(err, prova_ssh::ExecError::ConnectionLost { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&config.target()), "{err}");
    // The orphaned command was ended over a new connection.
    let gone = crate::support::eventually(Duration::from_secs(5), || {
        crate::support::processes_with(&marker).is_empty()
    })
    .await;
    assert!(
        gone,
        "left on the target: {:?}",
        crate::support::processes_with(&marker)
    );
    let closed = crate::support::eventually(Duration::from_secs(5), || old.is_closed()).await;
    assert!(closed, "the client did not notice the connection died");
    drop(old);
    let second = echo(&pool, &config, "after").await;
    assert_ne!(first, second, "a new connection");
    assert_eq!(
        pool.stats().connects,
        2,
        "the cleanup's connection was reused"
    );
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let sshd = sshd_or_skip!();
    let pool = Pool::new(PoolOptions {
        idle_timeout: Duration::from_millis(200),
        ..PoolOptions::default()
    });
    let config = sshd.key_config();
    echo(&pool, &config, "hello").await;
    let closed =
        crate::support::eventually(Duration::from_secs(5), || pool.stats().open == 0).await;
    assert!(closed, "{:?}", pool.stats());
    echo(&pool, &config, "again").await;
    assert_eq!(pool.stats().connects, 2);
}

#[tokio::test]
async fn commands_beyond_a_connections_sessions_open_more_connections_then_wait() {
    let sshd = sshd_or_skip!();
    // A command holds two sessions (its own and its cleanup's): two
    // commands fit on one connection, and at most three connections open.
    let pool = Pool::new(PoolOptions {
        max_sessions: 4,
        max_connections: 3,
        ..PoolOptions::default()
    });
    let config = sshd.key_config();
    let runs = (0..10).map(|i| {
        let (pool, config) = (pool.clone(), config.clone());
        async move {
            let outcome = pool
                .exec(
                    &config,
                    &RemoteCommand::new("sh", ["-c", &format!("sleep 0.3; echo {i}")]),
                    &ExecOptions::default(),
                    |_, _| ControlFlow::Continue(()),
                )
                .await
                .unwrap_or_else(|err| panic!("{err}"));
            assert_eq!(outcome.stdout.text(), format!("{i}\n"));
            outcome.connection_id
        }
    });
    let started = std::time::Instant::now();
    let ids: std::collections::BTreeSet<u64> =
        futures::future::join_all(runs).await.into_iter().collect();
    assert_eq!(ids.len(), 3, "three connections: {ids:?}");
    assert_eq!(pool.stats().connects, 3);
    // Six at once: ten commands of 0.3 s need two rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "{:?}",
        started.elapsed()
    );
}
