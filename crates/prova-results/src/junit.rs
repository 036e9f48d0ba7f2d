//! JUnit files: told by content (the root element), read with
//! `junit-parser`, turned into [`TestCaseResult`]s.
//!
//! What is read, per `<testcase>`:
//! - status: `<failure>` → failed, `<error>` → error, `<skipped>` →
//!   skipped, none → passed;
//! - suite: the innermost `<testsuite name>` that is not empty (nested
//!   suites, as PHPUnit writes them), else the file's name;
//! - `<flakyFailure>`/`<flakyError>` (earlier runs that failed before the
//!   case passed) → [`TestCaseResult::flaky_failures`]; `<rerunFailure>`/
//!   `<rerunError>` (reruns that failed too) are noted in the output;
//! - output: the failure/error/skip body (its head), then `system-out` and
//!   `system-err` (their tails), at most [`MAX_CASE_OUTPUT`] bytes in all.
//!
//! Bounded: names (case, suite, classname) at [`MAX_NAME_BYTES`], the
//! message at [`MAX_MESSAGE_BYTES`], each cut marked (`…[N more bytes]`);
//! a `time` that is negative, not a number or over [`MAX_CASE_SECS`] is
//! unknown.
//!
//! Never read: document type declarations that declare entities (refused,
//! so no external entity can be fetched), files over [`MAX_JUNIT_BYTES`],
//! elements nested deeper than [`MAX_JUNIT_DEPTH`] (refused with the
//! position of the first one too deep).

use std::borrow::Cow;
use std::io::Cursor;

use junit_parser::{RerunOrFlakyKind, TestStatus, TestSuite};
use prova_core::results::{CaseStatus, TestCaseResult};

use crate::error::ResultsError;
pub use crate::xml_scan::MAX_JUNIT_DEPTH;
use crate::xml_scan::{self, Scan};

/// Largest JUnit file read (a Kubernetes e2e `junit_01.xml` is ~2.5 MB).
pub const MAX_JUNIT_BYTES: u64 = 128 << 20;
/// Output kept per test case (failure text, system-out, system-err).
pub const MAX_CASE_OUTPUT: usize = 64 * 1024;
/// Output kept over all the cases of one results directory; past it,
/// cases keep their status and message but no output.
pub const MAX_TOTAL_OUTPUT: usize = 32 << 20;
/// Bytes kept of a case's name, its suite's name and its classname.
pub const MAX_NAME_BYTES: usize = 4096;
/// Bytes kept of a case's message (the `message` or `type` attribute).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Longest case `time` taken as known: 10^9 s (about 31 years). Past it
/// (`1e20`), the time is unknown rather than a wrong or unrepresentable one.
pub const MAX_CASE_SECS: f64 = 1e9;

/// Root elements read as JUnit (`<testrun>` is Eclipse's export, which
/// `junit-parser` also reads).
const JUNIT_ROOTS: [&str; 3] = ["testsuites", "testsuite", "testrun"];

/// Decodes a file's bytes: a UTF-16 byte order mark is honoured, a UTF-8
/// one dropped; anything else is read as UTF-8 (invalid bytes replaced).
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, ResultsError> {
    let utf16 = |be: bool| -> Result<Cow<'_, str>, ResultsError> {
        let body = &bytes[2..];
        if !body.len().is_multiple_of(2) {
            return Err(ResultsError::NotXml(
                "UTF-16 text with an odd number of bytes".into(),
            ));
        }
        let units = body.chunks_exact(2).map(|c| {
            if be {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_le_bytes([c[0], c[1]])
            }
        });
        char::decode_utf16(units)
            .collect::<Result<String, _>>()
            .map(Cow::Owned)
            .map_err(|e| ResultsError::NotXml(format!("invalid UTF-16: {e}")))
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(false),
        [0xFE, 0xFF, ..] => utf16(true),
        [0xEF, 0xBB, 0xBF, rest @ ..] => Ok(String::from_utf8_lossy(rest)),
        _ => Ok(String::from_utf8_lossy(bytes)),
    }
}

/// The name of the document's root element, skipping the XML declaration,
/// comments, processing instructions and a document type declaration
/// (which must not declare entities).
pub fn root_element(text: &str) -> Result<&str, ResultsError> {
    let mut s = text.trim_start();
    loop {
        if s.is_empty() {
            return Err(ResultsError::NotXml("no root element".into()));
        }
        if let Some(rest) = s.strip_prefix("<?") {
            let end = rest.find("?>").ok_or_else(|| {
                ResultsError::NotXml(
                    "unterminated XML declaration or processing instruction".into(),
                )
            })?;
            s = rest[end + 2..].trim_start();
        } else if let Some(rest) = s.strip_prefix("<!--") {
            let end = rest
                .find("-->")
                .ok_or_else(|| ResultsError::NotXml("unterminated comment".into()))?;
            s = rest[end + 3..].trim_start();
        } else if let Some(rest) = s.strip_prefix("<!DOCTYPE") {
            let end = doctype_end(rest)
                .ok_or_else(|| ResultsError::NotXml("unterminated DOCTYPE".into()))?;
            if rest[..end].contains("<!ENTITY") {
                return Err(ResultsError::EntityDeclaration);
            }
            s = rest[end + 1..].trim_start();
        } else if let Some(rest) = s.strip_prefix('<') {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(rest.len());
            let name = &rest[..end];
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':');
            if !valid {
                return Err(ResultsError::NotXml(format!(
                    "expected an element, found {:?}",
                    snippet(s)
                )));
            }
            return Ok(name);
        } else {
            return Err(ResultsError::NotXml(format!(
                "text before the root element: {:?}",
                snippet(s)
            )));
        }
    }
}

/// Where a DOCTYPE's closing `>` is, past any internal subset `[...]`.
fn doctype_end(rest: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    for (i, c) in rest.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, '>') if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

fn snippet(s: &str) -> String {
    s.chars().take(24).collect()
}

/// Whether text is a JUnit document (by its root element).
pub fn is_junit(text: &str) -> Result<bool, ResultsError> {
    root_element(text).map(|r| JUNIT_ROOTS.contains(&r))
}

/// Reads one JUnit file's bytes into test cases. `file` names it in the
/// cases (the path relative to the results directory).
pub fn parse_junit(bytes: &[u8], file: &str) -> Result<Vec<TestCaseResult>, ResultsError> {
    let mut budget = MAX_TOTAL_OUTPUT;
    parse_with_budget(bytes, file, &mut budget)
}

pub(crate) fn parse_with_budget(
    bytes: &[u8],
    file: &str,
    budget: &mut usize,
) -> Result<Vec<TestCaseResult>, ResultsError> {
    if bytes.len() as u64 > MAX_JUNIT_BYTES {
        return Err(ResultsError::TooLarge {
            size: bytes.len() as u64,
            limit: MAX_JUNIT_BYTES,
        });
    }
    let text = decode(bytes)?;
    let root = root_element(&text)?;
    if !JUNIT_ROOTS.contains(&root) {
        return Err(ResultsError::NotJUnit(root.to_string()));
    }
    let syntax_error = match xml_scan::scan(&text, MAX_JUNIT_DEPTH) {
        Scan::TooDeep(at) => {
            return Err(ResultsError::TooDeep {
                file: file.to_string(),
                line: at.line,
                column: at.column,
                limit: MAX_JUNIT_DEPTH,
            });
        }
        Scan::Fine { syntax_error } => syntax_error,
    };
    // The reader assumes UTF-8; a declaration naming another encoding is
    // moot once the text is decoded.
    let suites = junit_parser::from_reader(Cursor::new(text.as_bytes())).map_err(|e| {
        // junit-parser's errors carry no position; the scan's does (the
        // end of the text when the document just stops).
        let at = syntax_error.unwrap_or_else(|| xml_scan::position(&text, u64::MAX));
        ResultsError::Parse(format!("{file}: {at}: {}", error_chain(&e)))
    })?;
    let fallback = file.rsplit('/').next().unwrap_or(file);
    let fallback = if suites.name.is_empty() {
        fallback
    } else {
        suites.name.as_str()
    };
    let fallback = head(fallback, MAX_NAME_BYTES);
    let mut out = Vec::new();
    for s in &suites.suites {
        walk(s, &fallback, file, budget, &mut out);
    }
    Ok(out)
}

/// The error and its causes on one line (`junit-parser`'s own messages are
/// generic; quick-xml's cause says what and where).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn walk(
    suite: &TestSuite,
    parent: &str,
    file: &str,
    budget: &mut usize,
    out: &mut Vec<TestCaseResult>,
) {
    // Depth is bounded by the scan (MAX_JUNIT_DEPTH).
    let own = head(suite.name.as_str(), MAX_NAME_BYTES);
    let name = if own.trim().is_empty() {
        parent
    } else {
        own.as_str()
    };
    for c in &suite.cases {
        out.push(case(c, name, file, budget));
    }
    for s in &suite.suites {
        walk(s, name, file, budget, out);
    }
}

fn case(c: &junit_parser::TestCase, suite: &str, file: &str, budget: &mut usize) -> TestCaseResult {
    let (status, message, kind, body) = match &c.status {
        TestStatus::Success => (CaseStatus::Passed, "", "", ""),
        TestStatus::Failure(f) => (
            CaseStatus::Failed,
            f.message.as_str(),
            f.failure_type.as_str(),
            f.text.as_str(),
        ),
        TestStatus::Error(e) => (
            CaseStatus::Error,
            e.message.as_str(),
            e.error_type.as_str(),
            e.text.as_str(),
        ),
        TestStatus::Skipped(s) => (
            CaseStatus::Skipped,
            s.message.as_str(),
            s.skipped_type.as_str(),
            s.text.as_str(),
        ),
    };
    let message = [message, kind]
        .into_iter()
        .map(str::trim)
        .find(|m| !m.is_empty())
        .map(|m| head(m, MAX_MESSAGE_BYTES));
    let flaky = c
        .reruns
        .iter()
        .filter(|r| {
            matches!(
                r.kind,
                RerunOrFlakyKind::FlakyFailure | RerunOrFlakyKind::FlakyError
            )
        })
        .count();
    let reruns = c.reruns.len() - flaky;

    let mut output = String::new();
    let body = body.trim();
    if !body.is_empty() {
        output.push_str(&head(body, MAX_CASE_OUTPUT / 2));
    }
    if reruns > 0 {
        if !output.is_empty() {
            output.push('\n');
        }
        output.push_str(&format!("[{reruns} rerun(s) failed too]"));
    }
    let room = MAX_CASE_OUTPUT.saturating_sub(output.len());
    let sys_out = c.system_out.as_deref().unwrap_or("").trim();
    let sys_err = c.system_err.as_deref().unwrap_or("").trim();
    let (out_room, err_room) = match (sys_out.is_empty(), sys_err.is_empty()) {
        (false, false) => (room / 2, room / 2),
        (false, true) => (room, 0),
        _ => (0, room),
    };
    section(&mut output, "--- system-out ---", sys_out, out_room);
    section(&mut output, "--- system-err ---", sys_err, err_room);
    let output = if output.is_empty() {
        None
    } else if output.len() > *budget {
        Some("[output dropped: the results directory's output budget is spent]".to_string())
    } else {
        *budget -= output.len();
        Some(output)
    };

    let name = if c.original_name.is_empty() {
        &c.name
    } else {
        &c.original_name
    };
    TestCaseResult {
        // Bounded by `walk`.
        suite: suite.to_string(),
        name: head(name, MAX_NAME_BYTES),
        classname: c
            .classname
            .as_deref()
            .or(c.group.as_deref())
            .filter(|n| !n.trim().is_empty())
            .map(|n| head(n, MAX_NAME_BYTES)),
        status,
        time_secs: known_time(c.time),
        message,
        output,
        flaky_failures: u32::try_from(flaky).unwrap_or(u32::MAX),
        file: file.to_string(),
    }
}

/// A case's `time` if it is one: finite, not negative, at most
/// [`MAX_CASE_SECS`] (`-0` reads as 0).
pub fn known_time(secs: f64) -> Option<f64> {
    (secs.is_finite() && (0.0..=MAX_CASE_SECS).contains(&secs)).then_some(secs + 0.0)
}

/// Appends a titled section (the tail of `text`, at most `room` bytes).
fn section(out: &mut String, title: &str, text: &str, room: usize) {
    if text.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(title);
    out.push('\n');
    out.push_str(&tail(text, room.saturating_sub(title.len() + 2)));
}

/// The first `max` bytes of `s` (at a character boundary), marked when cut.
pub fn head(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[{} more bytes]", &s[..end], s.len() - end)
}

/// The last `max` bytes of `s` (at a character boundary), marked when cut.
pub fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("[{} bytes before]…{}", start, &s[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_skips_prolog_comments_and_doctype() {
        let t = "\u{feff}<?xml version='1.0'?>\n<!-- c -->\n<!DOCTYPE x [<!ELEMENT x ANY>]>\n<testsuite/>";
        assert_eq!(
            root_element(t.trim_start_matches('\u{feff}')).unwrap(),
            "testsuite"
        );
        assert_eq!(
            root_element("  <testsuites name='a'>").unwrap(),
            "testsuites"
        );
        assert!(matches!(root_element(""), Err(ResultsError::NotXml(_))));
        assert!(matches!(
            root_element("bacon"),
            Err(ResultsError::NotXml(_))
        ));
        assert!(matches!(
            root_element("<!DOCTYPE r [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><r/>"),
            Err(ResultsError::EntityDeclaration)
        ));
    }

    #[test]
    fn decodes_utf16_with_bom() {
        let mut b = vec![0xFF, 0xFE];
        for u in "<testsuite/>".encode_utf16() {
            b.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode(&b).unwrap(), "<testsuite/>");
    }

    #[test]
    fn bounds_output() {
        assert_eq!(head("abcdef", 3), "abc…[3 more bytes]");
        assert_eq!(tail("abcdef", 3), "[3 bytes before]…def");
        assert_eq!(tail("é", 1), "[2 bytes before]…");
    }

    #[test]
    fn maps_statuses_flaky_and_nested_suites() {
        let xml = r#"<testsuites name="run">
          <testsuite name="">
            <testsuite name="inner">
              <testcase classname="c" name="ok" time="0.5"><system-out>hello</system-out></testcase>
              <testcase name="bad"><failure message="boom" type="Assert">trace</failure></testcase>
              <testcase name="err"><error type="Crash"/></testcase>
              <testcase name="skip"><skipped message="later"/></testcase>
              <testcase name="flaky"><flakyFailure message="once"/></testcase>
              <testcase name="always"><failure/><rerunFailure/><rerunFailure/></testcase>
            </testsuite>
            <testcase name="outer" time="-3"/>
          </testsuite>
        </testsuites>"#;
        let cases = parse_junit(xml.as_bytes(), "r/junit.xml").unwrap();
        let by = |n: &str| cases.iter().find(|c| c.name == n).unwrap();
        assert_eq!(cases.len(), 7);
        assert_eq!(by("ok").status, CaseStatus::Passed);
        assert_eq!(by("ok").suite, "inner");
        assert_eq!(by("ok").classname.as_deref(), Some("c"));
        assert_eq!(by("ok").time_secs, Some(0.5));
        assert!(by("ok").output.as_deref().unwrap().contains("hello"));
        assert_eq!(by("bad").status, CaseStatus::Failed);
        assert_eq!(by("bad").message.as_deref(), Some("boom"));
        assert!(by("bad").output.as_deref().unwrap().starts_with("trace"));
        assert_eq!(by("err").status, CaseStatus::Error);
        assert_eq!(by("err").message.as_deref(), Some("Crash"));
        assert_eq!(by("skip").status, CaseStatus::Skipped);
        assert_eq!(by("flaky").status, CaseStatus::Passed);
        assert_eq!(by("flaky").flaky_failures, 1);
        assert!(
            by("always")
                .output
                .as_deref()
                .unwrap()
                .contains("2 rerun(s)")
        );
        assert_eq!(by("outer").suite, "run");
        assert_eq!(by("outer").time_secs, None);
        assert_eq!(by("outer").file, "r/junit.xml");
    }

    fn nested_suites(depth: usize) -> String {
        format!(
            "<testsuites>\n{}<testcase name='deep'/>{}</testsuites>",
            "<testsuite name='s'>".repeat(depth),
            "</testsuite>".repeat(depth)
        )
    }

    /// A quarter of the 2 MiB stack of the threads results are read on
    /// (tokio's workers and blocking pool, test threads): the depth bound
    /// leaves that margin in a debug build.
    const STACK_KIB: usize = 512;

    /// Runs `f` on a thread with a small stack: a recursion past the bound
    /// aborts the process (this test binary) instead of failing a test.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(STACK_KIB * 1024)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn nesting_2000_deep_is_refused_with_the_file_and_position() {
        let e = on_small_stack(|| parse_junit(nested_suites(2000).as_bytes(), "r/junit.xml"))
            .unwrap_err();
        let ResultsError::TooDeep {
            file, line, column, ..
        } = &e
        else {
            panic!("expected TooDeep, got {e}")
        };
        assert_eq!((file.as_str(), *line), ("r/junit.xml", 2));
        // The 64th <testsuite> (level 65, under <testsuites>) starts there.
        assert_eq!(*column, 63 * "<testsuite name='s'>".len() + 1);
        let msg = e.to_string();
        assert!(msg.starts_with("r/junit.xml: line 2, column "), "{msg}");
        assert!(msg.contains("nested more than 64 deep"), "{msg}");
    }

    #[test]
    fn nesting_at_the_limit_is_read_on_a_small_stack() {
        // <testsuites> and 63 suites: 64 levels, the deepest allowed.
        let cases =
            on_small_stack(|| parse_junit(nested_suites(MAX_JUNIT_DEPTH - 1).as_bytes(), "j.xml"))
                .unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].suite, "s");
    }

    #[test]
    fn parse_errors_name_the_file_and_position() {
        let e = parse_junit(b"<testsuite>\n  <testcase name='a'></oops>", "j.xml").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("invalid JUnit XML: j.xml: line 2, column "),
            "{msg}"
        );
        // A document that just stops: the position is its end.
        let e = parse_junit(b"<testsuite>\n<testcase name='a'>", "t.xml").unwrap_err();
        assert!(e.to_string().contains("t.xml: line 2, column 20"), "{e}");
    }

    #[test]
    fn out_of_range_times_are_unknown() {
        for (time, want) in [
            ("1e20", None),
            ("NaN", None),
            ("-1", None),
            ("inf", None),
            ("-inf", None),
            ("1e9", Some(1e9)),
            ("-0", Some(0.0)),
            ("2.5", Some(2.5)),
        ] {
            let xml = format!("<testsuite><testcase name='a' time='{time}'/></testsuite>");
            let cases = parse_junit(xml.as_bytes(), "j.xml").unwrap();
            assert_eq!(cases[0].time_secs, want, "time={time}");
            if let Some(t) = cases[0].time_secs {
                assert!(t.is_sign_positive(), "time={time}");
            }
        }
    }

    #[test]
    fn names_and_messages_are_bounded_and_marked() {
        let big = "n".repeat(1 << 20);
        let xml = format!(
            "<testsuites name='{big}'><testsuite name='{big}'><testcase name='{big}' classname='{big}'><failure message='{big}'/></testcase></testsuite>\
             <testsuite><testcase name='b'/></testsuite></testsuites>"
        );
        let cases = parse_junit(xml.as_bytes(), "j.xml").unwrap();
        let c = &cases[0];
        let marker = format!("…[{} more bytes]", (1 << 20) - MAX_NAME_BYTES);
        for (what, v) in [
            ("name", c.name.as_str()),
            ("suite", c.suite.as_str()),
            ("classname", c.classname.as_deref().unwrap()),
            ("message", c.message.as_deref().unwrap()),
            // The nameless suite takes the <testsuites> name, bounded too.
            ("fallback suite", cases[1].suite.as_str()),
        ] {
            assert!(v.len() <= MAX_NAME_BYTES + 32, "{what}: {} bytes", v.len());
            assert!(v.ends_with(&marker), "{what} is not marked as cut");
        }
    }

    #[test]
    fn system_out_is_bounded() {
        let big = "x".repeat(10 * MAX_CASE_OUTPUT);
        let xml = format!(
            "<testsuite name='s'><testcase name='a'><failure>{big}</failure><system-out>{big}</system-out><system-err>{big}</system-err></testcase></testsuite>"
        );
        let cases = parse_junit(xml.as_bytes(), "j.xml").unwrap();
        let out = cases[0].output.as_deref().unwrap();
        assert!(out.len() <= MAX_CASE_OUTPUT + 200, "{}", out.len());
        assert!(out.contains("--- system-out ---") && out.contains("--- system-err ---"));
    }
}
