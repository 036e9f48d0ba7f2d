//! A flat (non-recursive) pass over a JUnit document before `junit-parser`
//! reads it: `junit-parser` recurses once per nested `<testsuite>`, so a
//! document nested thousands deep would overflow the stack and abort the
//! process. The scan reads the same events with the same reader settings
//! (quick-xml's defaults, as `junit-parser` uses), so the parser never
//! sees an element deeper than the scan did.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Deepest element nesting read (`<testsuites>` is level 1). Real reports
/// nest a handful of levels (PHPUnit's suites of suites: 4 or 5).
pub const MAX_JUNIT_DEPTH: usize = 64;

/// A position in a document, 1-based; the column counts characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// What the scan found.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Nesting within `limit` up to the end, or up to the first syntax
    /// error (at `syntax_error`), past which the parser cannot read either.
    Fine { syntax_error: Option<Position> },
    /// The element starting at this position is nested `limit + 1` deep.
    TooDeep(Position),
}

/// Scans `text` for element nesting deeper than `limit`.
pub fn scan(text: &str, limit: usize) -> Scan {
    let mut reader = Reader::from_str(text);
    let mut depth = 0usize;
    loop {
        let start = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > limit {
                    return Scan::TooDeep(position(text, start));
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => return Scan::Fine { syntax_error: None },
            Ok(_) => {}
            Err(_) => {
                return Scan::Fine {
                    syntax_error: Some(position(text, reader.error_position())),
                };
            }
        }
    }
}

/// The line and column of byte `offset` in `text` (clamped to its length
/// and to a character boundary).
pub fn position(text: &str, offset: u64) -> Position {
    let mut end = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Position {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!(
            "<testsuites>\n{}{}</testsuites>",
            "<testsuite>".repeat(depth),
            "</testsuite>".repeat(depth)
        )
    }

    #[test]
    fn finds_the_first_element_past_the_limit() {
        assert_eq!(scan(&nested(3), 4), Scan::Fine { syntax_error: None });
        // Level 5 is the fourth <testsuite> on line 2 (11 characters each).
        assert_eq!(
            scan(&nested(10), 4),
            Scan::TooDeep(Position {
                line: 2,
                column: 34
            })
        );
    }

    #[test]
    fn empty_elements_and_text_do_not_nest() {
        let xml = format!(
            "<a>{}</a>",
            "<b/>text<![CDATA[<c>]]><!-- <d> -->".repeat(100)
        );
        assert_eq!(scan(&xml, 1), Scan::Fine { syntax_error: None });
    }

    #[test]
    fn reports_where_the_syntax_breaks() {
        let Scan::Fine {
            syntax_error: Some(p),
        } = scan("<a>\n  <b></c>", 10)
        else {
            panic!("a mismatched end tag is a syntax error")
        };
        assert_eq!(p.line, 2);
    }

    #[test]
    fn positions_count_characters_and_clamp() {
        assert_eq!(position("é\néé", 5), Position { line: 2, column: 2 });
        assert_eq!(position("ab", 99), Position { line: 1, column: 3 });
        // Inside a multi-byte character: its start.
        assert_eq!(position("é", 1), Position { line: 1, column: 1 });
    }
}
