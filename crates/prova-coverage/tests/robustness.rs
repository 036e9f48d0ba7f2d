//! Regression tests for hostile and damaged audit input (issue 8): deep
//! nesting, truncated compressed logs, over-long lines, `EventList`s in
//! every layout, and control characters in the table output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;
use prova_coverage::analyze::{AnalyzeOptions, analyze};
use prova_coverage::audit::{
    AuditEvent, CHUNK_SIZE, DEFAULT_MAX_LINE, EventError, EventSink, Loc, ReadOptions, ReadSummary,
    read_events,
};
use prova_coverage::report::Report;
use prova_coverage::{CoverageCommand, run};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/k8s")
}

fn spec_path() -> PathBuf {
    corpus().join("openapi/v1.36/swagger.json")
}

fn read_opts(strict: bool, max_line: usize) -> ReadOptions {
    ReadOptions {
        threads: 2,
        progress: false,
        strict,
        max_line,
    }
}

fn analyze_files(files: &[&Path], strict: bool) -> Report {
    let (r, summary) = analyze(&AnalyzeOptions {
        spec: spec_path(),
        audit: files.iter().map(|p| p.display().to_string()).collect(),
        read: read_opts(strict, DEFAULT_MAX_LINE),
        ..Default::default()
    })
    .unwrap();
    assert!(
        summary.input_errors.is_empty(),
        "{:?}",
        summary.input_errors
    );
    r
}

/// Real audit events from the corpus, one compact JSON line each: the
/// audit2rbac log and every Falco trace event with a requestURI.
fn corpus_events() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_to_string(corpus().join("audit/audit2rbac/demo.log"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let mut falco: Vec<PathBuf> = std::fs::read_dir(corpus().join("audit/falco-k8s_audit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    falco.sort();
    for p in falco {
        let text = std::fs::read_to_string(&p).unwrap();
        for v in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
            let Ok(v) = v else { continue };
            let items = match v {
                serde_json::Value::Array(a) => a,
                v => vec![v],
            };
            for ev in items {
                if ev.get("requestURI").is_some() {
                    out.push(serde_json::to_string(&ev).unwrap());
                }
            }
        }
    }
    assert!(out.len() > 60, "{}", out.len());
    out
}

/// `(position, request URI or error)` pairs.
type Positioned = Vec<(String, String)>;

#[derive(Default)]
struct Collect {
    events: Vec<(Loc, String)>,
    bad: Vec<(Loc, String)>,
}

impl EventSink for Collect {
    fn event(&mut self, e: &AuditEvent<'_>, loc: Loc) {
        self.events
            .push((loc, e.request_uri.as_deref().unwrap_or("").to_string()));
    }
    fn malformed(&mut self, error: &EventError, _: &[u8], loc: Loc) {
        self.bad.push((loc, error.to_string()));
    }
}

/// Reads `path`, returning events and malformed lines as `file:line[ item]`
/// positions (file name only) in input order, plus the summary.
fn collect(path: &Path, opts: &ReadOptions) -> (Positioned, Positioned, ReadSummary) {
    let (sinks, summary) =
        read_events(&[path.display().to_string()], opts, Collect::default).unwrap();
    let mut ev = Vec::new();
    let mut bad = Vec::new();
    for s in sinks {
        ev.extend(s.events);
        bad.extend(s.bad);
    }
    ev.sort();
    bad.sort();
    let name = |l: Loc| {
        let mut p = summary.position(l);
        p.file = Path::new(&p.file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        p.to_string()
    };
    let ev = ev.into_iter().map(|(l, u)| (name(l), u)).collect();
    let bad = bad.into_iter().map(|(l, e)| (name(l), e)).collect();
    (ev, bad, summary)
}

#[derive(clap::Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: CoverageCommand,
}

fn cli(args: &[&str]) -> anyhow::Result<(u8, String)> {
    let mut all = vec!["prova"];
    all.extend_from_slice(args);
    let cli = Cli::try_parse_from(all).expect("arguments parse");
    let mut out = Vec::new();
    let outcome = run(cli.cmd, &mut out)?;
    Ok((outcome.exit_code, String::from_utf8(out).unwrap()))
}

// ---------------------------------------------------------------- depth

#[test]
fn nesting_30000_deep_is_a_malformed_line_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let n = 30_000;
    let deep = format!("{}{}", "[".repeat(n), "]".repeat(n));
    let good = r#"{"verb":"get","requestURI":"/api/v1/nodes/a","userAgent":"e2e.test -- t"}"#;
    let cases = [
        // The deep value before the three fields: the scanner must skip it.
        (
            "first.log",
            format!(
                "{{\"requestObject\":{deep},\"verb\":\"get\",\"requestURI\":\"/x\"}}\n{good}\n"
            ),
        ),
        ("second.log", format!("{good}\n{{\"a\":{deep}}}\n")),
        // An unclosed one.
        ("open.log", format!("{good}\n{{\"a\":{}\n", "[".repeat(n))),
        // A whole pretty document, and a one-line array.
        ("doc.json", format!("{{\n \"a\": {deep}\n}}\n")),
        ("array.json", format!("{deep}\n")),
        (
            "list.log",
            format!("{{\"kind\":\"EventList\",\"items\":[{deep}]}}\n"),
        ),
    ];
    for (name, text) in &cases {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        for strict in [false, true] {
            let (ev, bad, _) = collect(&p, &read_opts(strict, DEFAULT_MAX_LINE));
            assert_eq!(bad.len(), 1, "{name} strict={strict}: {bad:?}");
            assert!(bad[0].1.contains("nested deeper than"), "{name}: {bad:?}");
            assert!(bad[0].0.starts_with(&format!("{name}:")), "{bad:?}");
            let good_lines = text.lines().filter(|l| *l == good).count();
            assert_eq!(ev.len(), good_lines, "{name}");
        }
        // The whole command too: no abort, exit status 0, position shown.
        let (code, out) = cli(&[
            "report",
            "--spec",
            spec_path().to_str().unwrap(),
            "--audit",
            p.to_str().unwrap(),
            "--strict-json",
        ])
        .unwrap();
        assert_eq!(code, 0);
        assert!(out.contains(&format!("{name}:")), "{out}");
    }
}

#[test]
fn deep_spec_and_report_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let n = 30_000;
    let spec = dir.path().join("deep-swagger.json");
    std::fs::write(
        &spec,
        format!("{{\"paths\":{}1{}}}", "{\"a\":".repeat(n), "}".repeat(n)),
    )
    .unwrap();
    let report = dir.path().join("deep-report.json");
    std::fs::write(
        &report,
        format!(
            "{{\"endpoints\":[{{\"x\":{}{}}}]}}",
            "[".repeat(n),
            "]".repeat(n)
        ),
    )
    .unwrap();
    let e = cli(&["endpoints", "--spec", spec.to_str().unwrap()]).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("deep-swagger.json") && msg.contains("recursion limit"),
        "{msg}"
    );
    assert!(msg.contains("line 1 column"), "{msg}");
    let e = cli(&["report", "--from-report", report.to_str().unwrap()]).unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("deep-report.json") && msg.contains("line 1 column"),
        "{msg}"
    );
}

// ---------------------------------------------------------- truncation

/// Lines of distinct, mappable events, big enough to span many chunks.
fn numbered_log(n: usize) -> Vec<u8> {
    let mut data = Vec::new();
    for i in 0..n {
        writeln!(
            data,
            r#"{{"verb":"get","requestURI":"/api/v1/namespaces/ns/pods/p{i}","userAgent":"e2e.test/v1 -- [sig-x] t","pad":"{}"}}"#,
            "x".repeat(i % 700)
        )
        .unwrap();
    }
    data
}

/// Complete lines another decoder gets out of a cut stream.
fn complete_lines(decoded: &[u8]) -> usize {
    decoded.iter().filter(|&&b| b == b'\n').count()
}

#[test]
fn truncated_gzip_and_zstd_keep_every_complete_line_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let data = numbered_log(60_000);
    assert!(data.len() > 4 * CHUNK_SIZE);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&data).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&data[..], 3).unwrap();
    for (name, full) in [("cut.log.gz", gz), ("cut.log.zst", zst)] {
        for fraction in [2usize, 3] {
            let cut = &full[..full.len() / fraction];
            // What an independent, push-style decoder recovers.
            let want = if name.ends_with(".gz") {
                let mut d = flate2::write::GzDecoder::new(Vec::new());
                let _ = d.write_all(cut);
                let _ = d.flush();
                complete_lines(d.get_ref())
            } else {
                let mut d = zstd::stream::write::Decoder::new(Vec::new()).unwrap();
                let _ = d.write_all(cut);
                let _ = d.flush();
                complete_lines(d.get_ref())
            };
            assert!(want > 1000, "{name}: {want}");
            let p = dir.path().join(name);
            std::fs::write(&p, cut).unwrap();
            let (ev, bad, summary) = collect(&p, &read_opts(false, DEFAULT_MAX_LINE));
            assert_eq!(ev.len(), want, "{name} 1/{fraction}");
            assert!(
                bad.is_empty(),
                "the cut line is dropped, not malformed: {bad:?}"
            );
            // Every event keeps its real line number.
            for (pos, uri) in ev.iter().step_by(997) {
                let line: usize = pos.rsplit(':').next().unwrap().parse().unwrap();
                assert_eq!(uri, &format!("/api/v1/namespaces/ns/pods/p{}", line - 1));
            }
            assert_eq!(summary.input_errors.len(), 1);
            assert!(
                summary.input_errors[0].contains(&format!("after {want} complete lines")),
                "{:?}",
                summary.input_errors
            );
            // The command fails (exit 2 in the CLI) with the count …
            let spec = spec_path();
            let args = [
                "report",
                "--spec",
                spec.to_str().unwrap(),
                "--audit",
                p.to_str().unwrap(),
            ];
            let e = cli(&args).unwrap_err().to_string();
            assert!(e.contains(&format!("after {want} complete lines")), "{e}");
            assert!(e.contains(name), "{e}");
            // … unless asked to report anyway.
            let mut allow = args.to_vec();
            allow.push("--allow-truncated");
            let (code, out) = cli(&allow).unwrap();
            assert_eq!(code, 0);
            assert!(out.contains(&format!("events: {want} read")), "{out}");
        }
    }
}

// ------------------------------------------------------------ line cap

#[test]
fn over_long_lines_are_reported_and_skipped_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let good =
        |i: usize| format!(r#"{{"verb":"get","requestURI":"/api/v1/nodes/n{i}","userAgent":"u"}}"#);
    let long = |n: usize| format!(r#"{{"verb":"get","requestURI":"/{}"}}"#, "a".repeat(n));
    // Small cap via the option: lines inside a chunk, across chunks, and a
    // last line without newline.
    let cap = 1 << 20;
    let text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        good(1),
        long(cap + 10), // inside one chunk
        good(3),
        long(9 * CHUNK_SIZE), // spans several chunks: streamed past
        good(5),
        long(2 * cap), // last line, no newline
    );
    let p = dir.path().join("long.log");
    std::fs::write(&p, &text).unwrap();
    for strict in [false, true] {
        let (ev, bad, summary) = collect(&p, &read_opts(strict, cap));
        let ev: Vec<_> = ev.into_iter().map(|(p, _)| p).collect();
        assert_eq!(ev, ["long.log:1", "long.log:3", "long.log:5"]);
        let bad_pos: Vec<_> = bad.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(bad_pos, ["long.log:2", "long.log:4", "long.log:6"]);
        assert!(
            bad[1]
                .1
                .contains(&format!("line of {} bytes", long(9 * CHUNK_SIZE).len())),
            "{bad:?}"
        );
        assert!(bad[1].1.contains("--max-line"), "{bad:?}");
        // The 36 MiB line never sat in a buffer.
        assert!(
            summary.max_buffer <= CHUNK_SIZE + (64 << 10),
            "{}",
            summary.max_buffer
        );
    }
    // The default cap (16 MiB): a 40 MB line costs one 16 MiB buffer at most.
    let p = dir.path().join("default.log");
    std::fs::write(
        &p,
        format!("{}\n{}\n{}\n", good(1), long(40_000_000), good(3)),
    )
    .unwrap();
    let (ev, bad, summary) = collect(&p, &read_opts(false, DEFAULT_MAX_LINE));
    assert_eq!(ev.len(), 2);
    assert_eq!(bad.len(), 1);
    assert!(
        summary.max_buffer <= DEFAULT_MAX_LINE + (64 << 10),
        "{}",
        summary.max_buffer
    );
    // The flag parses sizes.
    let (code, out) = cli(&[
        "report",
        "--spec",
        spec_path().to_str().unwrap(),
        "--audit",
        dir.path().join("long.log").to_str().unwrap(),
        "--max-line",
        "1MiB",
    ])
    .unwrap();
    assert_eq!(code, 0);
    assert!(out.contains("3 malformed"), "{out}");
    assert!(Cli::try_parse_from(["prova", "report", "--max-line", "0"]).is_err());
}

// ----------------------------------------------------------- EventLists

fn event_list(events: &[String]) -> String {
    format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        events.join(",")
    )
}

fn hits(r: &Report) -> BTreeMap<String, (u64, u64, Vec<String>)> {
    r.endpoints
        .iter()
        .filter(|e| e.hits > 0)
        .map(|e| (e.endpoint.clone(), (e.hits, e.test_hits, e.tests.clone())))
        .collect()
}

#[test]
fn event_lists_in_every_layout_count_as_their_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut events = corpus_events();
    // Give some events test user agents, so credit is checked too.
    for (i, ev) in events.iter_mut().enumerate().filter(|(i, _)| i % 3 == 0) {
        let mut v: serde_json::Value = serde_json::from_str(ev).unwrap();
        v["userAgent"] = format!("e2e.test/v1.36 -- [sig-x] test {} [Conformance]", i % 4).into();
        *ev = serde_json::to_string(&v).unwrap();
    }
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let plain = write("plain.log", events.join("\n") + "\n");
    let batches: Vec<String> = events.chunks(7).map(event_list).collect();
    let one_line_lists = write("lists.log", batches.join("\n") + "\n");
    let mixed = write(
        "mixed.log",
        events
            .chunks(7)
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    event_list(c)
                } else {
                    c.join("\n")
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let list_value: serde_json::Value = serde_json::from_str(&event_list(&events)).unwrap();
    let pretty = write(
        "pretty.json",
        serde_json::to_string_pretty(&list_value).unwrap(),
    );
    let array = write("array.json", format!("[{}]", batches.join(",\n")));
    let concatenated = write(
        "concat.json",
        events
            .chunks(11)
            .map(|c| {
                let v: serde_json::Value = serde_json::from_str(&event_list(c)).unwrap();
                serde_json::to_string_pretty(&v).unwrap()
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let gz_lists = {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all((batches.join("\n") + "\n").as_bytes())
            .unwrap();
        let p = dir.path().join("lists.log.gz");
        std::fs::write(&p, gz.finish().unwrap()).unwrap();
        p
    };
    let want = analyze_files(&[&plain], false);
    assert_eq!(want.events.malformed, 0);
    assert_eq!(want.events.total, events.len() as u64);
    assert!(want.tested_endpoints > 0);
    for p in [
        &one_line_lists,
        &mixed,
        &pretty,
        &array,
        &concatenated,
        &gz_lists,
    ] {
        for strict in [false, true] {
            let got = analyze_files(&[p], strict);
            let name = p.file_name().unwrap().to_string_lossy();
            assert_eq!(
                got.events.total, want.events.total,
                "{name} strict={strict}"
            );
            assert_eq!(got.events.malformed, 0, "{name}: {:?}", got.unmapped);
            assert_eq!(got.events.mapped, want.events.mapped, "{name}");
            assert_eq!(hits(&got), hits(&want), "{name}");
            assert_eq!(got.tested_endpoints, want.tested_endpoints, "{name}");
        }
    }
    // Positions inside a list: line and item.
    let (ev, _, _) = collect(&one_line_lists, &read_opts(false, DEFAULT_MAX_LINE));
    assert_eq!(ev[0].0, "lists.log:1 item 1");
    assert_eq!(ev[8].0, "lists.log:2 item 2");
}

// ------------------------------------------------- control characters

#[test]
fn table_output_escapes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ansi.log");
    let evil = "\u{1b}[2J\u{1b}[31mred\r";
    let lines = [
        // Unmapped, with an escape in the URI and user agent.
        serde_json::json!({"verb":"get","requestURI":format!("/nowhere/{evil}"),"userAgent":format!("kubectl {evil}")}).to_string(),
        // A malformed line with raw control bytes.
        format!("not json {evil}"),
        // A test name with an escape, hitting an endpoint.
        serde_json::json!({"verb":"get","requestURI":"/api/v1/nodes/a","userAgent":format!("e2e.test -- [sig-x] {evil}")}).to_string(),
    ];
    std::fs::write(&p, lines.join("\n")).unwrap();
    let spec = spec_path();
    let base = [
        "--spec",
        spec.to_str().unwrap(),
        "--audit",
        p.to_str().unwrap(),
    ];
    let mut outputs = Vec::new();
    for (cmd, extra) in [
        ("report", &[][..]),
        ("report", &["--csv"][..]),
        ("report", &["--html"][..]),
        ("tests", &["--endpoint", "readCoreV1Node"][..]),
        ("tests", &["--endpoint", "readCoreV1Node", "--csv"][..]),
    ] {
        let mut args = vec![cmd];
        args.extend_from_slice(&base);
        args.extend_from_slice(extra);
        let (_, out) = cli(&args).unwrap();
        outputs.push((format!("{cmd} {extra:?}"), out));
    }
    for (what, out) in &outputs {
        assert!(
            !out.chars().any(|c| c.is_control() && c != '\n'),
            "{what}: {out:?}"
        );
    }
    assert!(outputs[0].1.contains("\\x1b[2J"), "{}", outputs[0].1);
    assert!(
        outputs[3].1.contains("[sig-x] \\x1b[2J"),
        "{}",
        outputs[3].1
    );
}
