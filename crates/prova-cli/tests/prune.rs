//! `prova prune`: the real binary on a SQLite store whose jobs ended at
//! different times.

use serde_json::Value;
use sqlx::Connection;

mod support;
use support::{Env, root};

/// Makes jobs look as if they ended `days` ago (the store keeps the end
/// in `jobs.state_time`, microseconds).
fn age_jobs(env: &Env, ids: &[i64], days: i64) {
    let url = format!("sqlite://{}", env.db().display());
    let when = jiff::Timestamp::now().as_microsecond() - days * 86_400 * 1_000_000;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        for id in ids {
            sqlx::query("UPDATE jobs SET state_time = $1 WHERE id = $2")
                .bind(when)
                .bind(id)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    });
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn job_ids(env: &Env) -> Vec<i64> {
    let (code, out, err) = env.run(&["jobs", "--json"]);
    assert_eq!(code, 0, "{err}");
    json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["JobID"].as_i64().unwrap())
        .collect()
}

#[test]
fn prune_deletes_the_old_ended_jobs_and_says_how_to_get_the_space_back() {
    let env = Env::new();
    // No store yet: nothing to prune, and none is created.
    let (code, out, err) = env.run(&["prune", "--older-than", "30d"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("no store at"), "{err}");
    assert!(!env.db().exists());

    let example = |f: &str| root().join("examples").join(f).display().to_string();
    for (file, want) in [("hello.yaml", 0), ("hello.yaml", 0), ("cleanup.yaml", 1)] {
        let (code, _, err) = env.run(&["run", &example(file)]);
        assert_eq!(code, want, "{err}");
    }
    age_jobs(&env, &[1, 3], 40);
    age_jobs(&env, &[2], 10);

    // Dry run: the list and the sum, nothing deleted.
    let (code, out, err) = env.run(&["prune", "--older-than", "30d", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("    ID  STATE"), "{out}");
    assert!(lines[1].trim_start().starts_with("1  Completed"), "{out}");
    assert!(lines[1].ends_with("  hello world"), "{out}");
    assert!(lines[2].trim_start().starts_with("3  Completed"), "{out}");
    assert!(lines[3].starts_with("would prune 2 jobs ("), "{out}");
    assert_eq!(job_ids(&env), [3, 2, 1]);

    let (code, out, err) = env.run(&["prune", "--older-than", "30d", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{err}");
    let dry = json(&out);
    assert_eq!(dry["DryRun"], true);
    assert_eq!(dry["JobCount"], 2);
    let ids: Vec<i64> = dry["Jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["JobID"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 3]);
    let events = dry["EventCount"].as_u64().unwrap();
    assert!(events > 10, "{dry}");

    // The prune: what went, and what to do about the space.
    let (code, out, err) = env.run(&["prune", "--older-than", "30d"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "pruned 2 jobs ({events} events) that ended before "
        )),
        "{out}"
    );
    assert!(out.contains("run with --vacuum"), "{out}");
    assert_eq!(job_ids(&env), [2]);
    // A pruned job is not found, cleanly; the others are as they were.
    for cmd in ["status", "events"] {
        let (code, _, err) = env.run(&[cmd, "1"]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(err.contains("job 1 not found"), "{cmd}: {err}");
        assert!(!err.contains("error:"), "{cmd}: {err}");
    }
    assert_eq!(env.status(2)["Verdict"], "passed");

    // Keeping the newest job of each name: job 2 is the newest "hello
    // world", so nothing goes even at any age.
    let (code, out, err) = env.run(&[
        "prune",
        "--older-than",
        "0",
        "--keep-last",
        "1",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json(&out)["JobCount"], 0, "{out}");

    // Again: nothing left that old.
    let (code, out, _) = env.run(&["prune", "--older-than", "30d"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("pruned 0 jobs (0 events)"), "{out}");

    // Every ended job, then the file shrinks.
    let (code, out, err) = env.run(&["prune", "--older-than", "0", "--vacuum", "--json"]);
    assert_eq!(code, 0, "{err}");
    let done = json(&out);
    assert_eq!(done["JobCount"], 1);
    assert_eq!(done["Vacuumed"], true);
    assert_eq!(done["FreeBytes"], 0);
    assert!(done.get("Jobs").is_none(), "{done}");
    let on_disk = std::fs::metadata(env.db()).unwrap().len();
    assert_eq!(done["StoreBytes"].as_u64().unwrap(), on_disk);
    assert!(job_ids(&env).is_empty());
}

#[test]
fn bad_ages_and_flags_are_usage_errors() {
    let env = Env::new();
    for (args, says) in [
        (vec!["prune", "--older-than", "30"], "days are written 30d"),
        (vec!["prune", "--older-than", "12h3d"], "come first"),
        (vec!["prune"], "--older-than"),
        (
            vec!["prune", "--older-than", "1d", "--dry-run", "--vacuum"],
            "cannot be used with",
        ),
    ] {
        let (code, _, err) = env.run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!env.db().exists());
}

#[test]
fn the_help_teaches_with_examples() {
    let env = Env::new();
    let (code, out, _) = env.run(&["prune", "--help"]);
    assert_eq!(code, 0);
    for says in [
        "Examples",
        "--dry-run",
        "--vacuum",
        "30d",
        "Exit codes",
        "--server",
    ] {
        assert!(out.contains(says), "no {says:?} in\n{out}");
    }
    let (_, out, _) = env.run(&["--help"]);
    assert!(out.contains("prova prune --older-than 30d"), "{out}");
}
