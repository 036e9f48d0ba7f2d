//! The live progress in a pseudo-terminal (util-linux `script`), read back
//! through a terminal emulator (vt100) and compared with the screen a
//! person sees when the job has ended; colour on by default, off with
//! NO_COLOR and `--color never`.

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
