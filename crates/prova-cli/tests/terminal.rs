//! The live progress in a pseudo-terminal (util-linux `script`), read back
//! through a terminal emulator (vt100) and compared with the screen a
//! person sees when the job has ended; colour on by default, off with
//! NO_COLOR and `--color never`. `prova start --wait` on a server draws
//! the same view from the server's event stream, checked while the job
//! runs and once it has ended.

use std::process::Command;

mod support;
use support::{Env, root};

/// `prova ARGS` in a 160×40 pseudo-terminal: (exit code, raw output).
fn in_pty(env: &Env, args: &[&str], extra_env: &[(&str, &str)]) -> (i32, Vec<u8>) {
    let bin = assert_cmd::cargo::cargo_bin("prova");
    let cmdline = format!(
        "stty cols 160 rows 40; exec {} {}",
        bin.display(),
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut c = Command::new("script");
    c.args(["-qfec", &cmdline, "/dev/null"])
        .env("PROVA_DB", env.db())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .current_dir(env.dir.path());
    for (k, v) in extra_env {
        c.env(k, v);
    }
    let out = c.output().expect("util-linux script runs");
    (out.status.code().unwrap_or(-1), out.stdout)
}

/// The screen the output leaves, line by line: trailing blanks dropped,
/// durations redacted (`[17ms]` -> `[T]`), and adjacent lines that differ
/// only in what ran in parallel (targets) sorted.
fn screen(raw: &[u8]) -> Vec<String> {
    let size = |n| std::num::NonZeroU16::new(n).expect("not zero");
    let mut parser = vt100::Parser::new(size(40), size(160), 0);
    parser.process(raw);
    // Row by row: indicatif fills each row to the width and lets the
    // terminal wrap, so the screen's logical lines would join them.
    let mut lines: Vec<String> = parser
        .screen()
        .rows(0, 160)
        .map(|l| redact(l.trim_end()))
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut i = 0;
    while i < lines.len() {
        // Up to the target's name: `✘ run 1 · provision and fail: target `.
        let key = |l: &str| l.chars().take(38).collect::<String>();
        let mut j = i + 1;
        while j < lines.len() && key(&lines[j]) == key(&lines[i]) {
            j += 1;
        }
        lines[i..j].sort();
        i = j;
    }
    lines
}

fn redact(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find(']') {
            Some(end)
                if after[..end].ends_with('s')
                    && after[..end]
                        .chars()
                        .all(|c| c.is_ascii_digit() || "ms.".contains(c)) =>
            {
                out.push_str("[T]");
                rest = &after[end + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn sgr_colour(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    ["\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m"]
        .iter()
        .any(|c| text.contains(c))
}

#[test]
fn a_failing_job_leaves_its_failures_and_its_test_line_on_screen() {
    let env = Env::new();
    let job = root().join("examples/cleanup.yaml");
    let (code, raw) = in_pty(&env, &["run", job.to_str().unwrap()], &[]);
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&raw));
    let want = [
        "job 1 started",
        "✘ run 1 · provision and fail: target box1 failed at failOnPurpose: false failed: exit status 1",
        "✘ run 1 · provision and fail: target box2 failed at failOnPurpose: false failed: exit status 1",
        "✘ [T] run 1 · provision and fail · 2 targets │ provision: 2 in, 2 ok, 0 failed │ failOnPurpose: 2 in, 0 ok, 2 failed │ teardown: 2 in, 2 ok, 0 failed",
        "run 1 · TargetSuccess: FAILURE 0/2 targets succeeded (0.00%), expected =100%",
        "  run 1 · provision and fail · target box1 failed at failOnPurpose: false failed: exit status 1",
        "  run 1 · provision and fail · target box2 failed at failOnPurpose: false failed: exit status 1",
        "job 1 Completed: FAILURE (verdict failed)",
    ];
    assert_eq!(screen(&raw), want, "{}", String::from_utf8_lossy(&raw));
    assert!(sgr_colour(&raw), "colour on a terminal by default");
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("[00:00:00]"),
        "the elapsed time while it runs"
    );
    assert!(text.contains("job 1 · run 1"), "the job line names the run");
}

#[test]
fn no_color_and_color_never_turn_colour_off_but_keep_the_view() {
    let env = Env::new();
    let job = root().join("examples/hello.yaml");
    for (args, vars) in [
        (vec!["run", job.to_str().unwrap()], vec![("NO_COLOR", "1")]),
        (
            vec!["--color", "never", "run", job.to_str().unwrap()],
            vec![],
        ),
    ] {
        let (code, raw) = in_pty(&env, &args, &vars);
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&raw));
        assert!(!sgr_colour(&raw), "{args:?} {vars:?}: coloured");
        let screen = screen(&raw);
        assert!(
            screen.iter().any(|l| l
                .starts_with("✔ [T] run 1 · say hello · 3 targets │ hello: 3 in, 3 ok, 0 failed")),
            "{screen:#?}"
        );
    }
}

#[test]
fn waits_are_named_while_the_job_waits() {
    let env = Env::new();
    let job = env.write(
        "twice.yaml",
        "JobName: twice\nRuns: 2\nRunInterval: 2s\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: echo, label: e, parameters: {text: [hi]}}]\nReporting:\n  RunReporters: [{name: noop}]\n",
    );
    let (code, raw) = in_pty(&env, &["run", job.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&raw));
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.contains("job 1 · waiting 2.0s before run 2 (RunInterval)"),
        "{text}"
    );
    // Without a terminal, the same wait is a plain line.
    let (code, _, err) = env.run(&["run", job.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("waiting 2.0s before run 2 (RunInterval)"),
        "{err}"
    );
}

#[test]
fn ctrl_c_leaves_a_clean_screen() {
    use std::io::Write;
    let env = Env::new();
    let job = env.write(
        "long.yaml",
        "JobName: long\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: t\n      Steps: [{name: cmd, label: s, parameters: {executable: [sleep], args: [\"30\"]}}]\nReporting:\n  RunReporters: [{name: noop}]\n",
    );
    let bin = assert_cmd::cargo::cargo_bin("prova");
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!(
                "stty cols 160 rows 40; exec {} run '{}'",
                bin.display(),
                job.display()
            ),
            "/dev/null",
        ])
        .env("PROVA_DB", env.db())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .current_dir(env.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    env.wait_for_step(1, "s");
    // Ctrl-C typed at the terminal: the line discipline sends SIGINT.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(130));
    let lines = screen(&out.stdout);
    let raw = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("job 1 Cancelled: FAILURE (verdict cancelled)"),
        "{lines:#?}"
    );
    // No spinner or half-drawn bar is left; what was said stays whole.
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("[00:00:") || l.contains('░')),
        "{lines:#?}\n{raw}"
    );
    assert!(
        lines.iter().any(|l| l
            == "cancelling: steps stop, cleanup runs, targets are released (interrupt again to stop cleanup and exit)"),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("✘ [T] run 1 · t · 1 targets │ s: 1 in, 0 ok, 1 failed")),
        "{lines:#?}"
    );
}

/// A job of two targets through three steps whose second waits until the
/// file `gate` exists, so a test can look at the live screen while it
/// waits; target b then fails the third step.
fn gated_job(env: &Env, name: &str, gate: &std::path::Path) -> std::path::PathBuf {
    env.write(
        name,
        &format!(
            r#"JobName: gated
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters: {{Targets: [{{ID: a}}, {{ID: b}}]}}
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: gate
      Steps:
        - {{name: echo, label: first, parameters: {{text: [hi]}}}}
        - {{name: cmd, label: wait, parameters: {{executable: [sh], args: ["-c", "while [ ! -e '{}' ]; do sleep 0.05; done"]}}}}
        - {{name: cmd, label: last, parameters: {{executable: [test], args: ["{{{{ .ID }}}}", "!=", "b"]}}}}
Reporting:
  RunReporters: [{{name: TargetSuccess, parameters: {{SuccessExpression: "=100%"}}}}]
"#,
            gate.display()
        ),
    )
}

/// `cmdline` in a 160×40 pseudo-terminal, read as it draws: once the
/// screen has a line containing `live_mark`, that screen is kept and
/// `gate` is created (the job goes on). Returns (exit code, the raw output
/// up to the live screen, all the raw output).
fn in_pty_live(
    env: &Env,
    cmdline: &str,
    live_mark: &str,
    gate: &std::path::Path,
) -> (i32, Vec<u8>, Vec<u8>) {
    use std::io::Read;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    let mut child = Command::new("script")
        .args([
            "-qfec",
            &format!("stty cols 160 rows 40; exec {cmdline}"),
            "/dev/null",
        ])
        .env("PROVA_DB", env.db())
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .current_dir(env.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let raw = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = raw.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let live = loop {
        let now = raw.lock().unwrap().clone();
        if screen(&now).iter().any(|l| l.contains(live_mark)) {
            break now;
        }
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("no {live_mark:?} on the live screen:\n{:#?}", screen(&now));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let a redraw that was due land, so the kept screen is settled.
    std::thread::sleep(Duration::from_millis(300));
    let live = {
        let now = raw.lock().unwrap().clone();
        if now.len() > live.len() { now } else { live }
    };
    std::fs::write(gate, "").unwrap();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let all = raw.lock().unwrap().clone();
    (status.code().unwrap_or(-1), live, all)
}

/// A live screen with what moves by itself redacted: spinner frames
/// (`*`), elapsed times (`[00:00:01]` -> `[T]`) and an ETA (`eta 2s · `,
/// shown once a second or more is left: how fast the first step went on
/// a loaded machine, not what the view shows).
fn live_screen(raw: &[u8]) -> Vec<String> {
    screen(raw)
        .into_iter()
        .map(|l| {
            let mut l: String = l
                .chars()
                .map(|c| {
                    if "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏".contains(c) {
                        '*'
                    } else {
                        c
                    }
                })
                .collect();
            if let Some(at) = l.find(" eta ")
                && let Some(len) = l[at..].find(" · ")
            {
                l.replace_range(at + 1..at + len + " · ".len(), "");
            }
            redact_clock(&l)
        })
        .collect()
}

/// `[00:00:01]` -> `[T]`.
fn redact_clock(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let clock = chars.len() >= i + 10
            && chars[i] == '['
            && chars[i + 9] == ']'
            && chars[i + 1..i + 9].iter().enumerate().all(|(k, c)| {
                if k % 3 == 2 {
                    *c == ':'
                } else {
                    c.is_ascii_digit()
                }
            });
        if clock {
            out.push_str("[T]");
            i += 10;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn start_wait_draws_the_same_live_view_as_run_from_the_servers_events() {
    let bin = assert_cmd::cargo::cargo_bin("prova");
    let quote = |p: &std::path::Path| format!("'{}'", p.display());
    // What people see while the job waits in its second step: the job
    // line, and the test's bar with its size known from the descriptor
    // (2 targets × 3 steps) and the counts of each step so far.
    let want_live = [
        "* [T] job 1 · run 1",
        "* [T] ████░░░░░░░░ 2/6 run 1 · gate · 2 targets │ first: 2 in, 2 ok, 0 failed │ wait: 2 in, 0 ok, 0 failed",
    ];
    // Then each failure above the bars, and the test's line.
    let want_end = [
        "✘ run 1 · gate: target b failed at last: test failed: exit status 1",
        "✘ [T] run 1 · gate · 2 targets │ first: 2 in, 2 ok, 0 failed │ wait: 2 in, 2 ok, 0 failed │ last: 2 in, 1 ok, 1 failed",
    ];
    let mark = "wait: 2 in, 0 ok";

    // `prova run`, the reference.
    let env = Env::new();
    let gate = env.dir.path().join("gate");
    let job = gated_job(&env, "gated.yaml", &gate);
    let (code, live, all) = in_pty_live(
        &env,
        &format!("{} run {}", bin.display(), quote(&job)),
        mark,
        &gate,
    );
    assert_eq!(code, 1, "{}", String::from_utf8_lossy(&all));
    let run_live = live_screen(&live);
    assert_eq!(run_live[0], "job 1 started", "{run_live:#?}");
    assert_eq!(run_live[1..], want_live, "{run_live:#?}");
    let run_end = screen(&all);
    assert_eq!(run_end[1..3], want_end, "{run_end:#?}");

    // `prova start --wait` on a server: the same view, from the server's
    // event stream; the job id on stdout and where it runs first.
    let env = Env::new();
    let db = env.dir.path().join("server.db");
    let (server, url) = support::spawn_server(&["--db", db.to_str().unwrap()]);
    let _server = support::KillOnDrop(server);
    let gate = env.dir.path().join("gate");
    let job = gated_job(&env, "gated.yaml", &gate);
    let (code, live, all) = in_pty_live(
        &env,
        &format!(
            "{} start {} --server {url} --wait",
            bin.display(),
            quote(&job)
        ),
        mark,
        &gate,
    );
    assert_eq!(
        code,
        1,
        "the job's verdict: {}",
        String::from_utf8_lossy(&all)
    );
    let start_live = live_screen(&live);
    let header = ["1".to_string(), format!("job 1 started on {url}")];
    assert_eq!(start_live[..2], header, "{start_live:#?}");
    assert_eq!(start_live[2..], want_live, "{start_live:#?}");
    let start_end = screen(&all);
    assert_eq!(start_end[..2], header, "{start_end:#?}");
    assert_eq!(start_end[2..4], want_end, "{start_end:#?}");
    // And the status tree once the job has ended, instead of the reports.
    assert_eq!(
        start_end[4], "job 1 \"gated\": Completed, verdict failed",
        "{start_end:#?}"
    );
    assert!(
        start_end
            .iter()
            .any(|l| l == "│  │  └─ target b: failed at last: test failed: exit status 1"),
        "{start_end:#?}"
    );
}
