//! Plain-text tables and CSV.

use std::borrow::Cow;
use std::io::{self, Write};

/// `\xNN` (or `\u{NNNN}`) for a control character.
pub fn visible_control(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        c if (c as u32) < 0x100 => format!("\\x{:02x}", c as u32),
        c => format!("\\u{{{:04x}}}", c as u32),
    }
}

/// Text safe to print to a terminal: control characters (ANSI escapes,
/// `\r`, newlines, C1 controls) from user agents, URIs, file names and
/// malformed lines are shown as escapes instead of acting on the terminal.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.push_str(&visible_control(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Writes rows as left-aligned columns (numbers right-aligned).
/// Cells are [`clean`]ed first.
pub fn write_table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let cleaned: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| clean(c).into_owned()).collect())
        .collect();
    let rows = &cleaned[..];
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let numeric: Vec<bool> = (0..headers.len())
        .map(|i| {
            !rows.is_empty()
                && rows.iter().all(|r| {
                    r.get(i).is_some_and(|c| {
                        !c.is_empty()
                            && c.trim_end_matches('%')
                                .trim_start_matches(['+', '-'])
                                .chars()
                                .all(|ch| ch.is_ascii_digit() || ch == '.' || ch == '/')
                    })
                })
        })
        .collect();
    let line = |out: &mut dyn Write, cells: &[String]| -> io::Result<()> {
        let mut s = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let pad = w.saturating_sub(cell.chars().count());
            if i > 0 {
                s.push_str("  ");
            }
            if numeric.get(i).copied().unwrap_or(false) {
                s.push_str(&" ".repeat(pad));
                s.push_str(cell);
            } else {
                s.push_str(cell);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    let head: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    line(out, &head)?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(out, &rule)?;
    for row in rows {
        line(out, row)?;
    }
    Ok(())
}

/// One CSV field, quoted when needed (RFC 4180); control characters are
/// [`clean`]ed (so a field never spans lines or moves the cursor).
pub fn csv_field(s: &str) -> String {
    let s = clean(s);
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes a CSV header and rows.
pub fn write_csv(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    writeln!(out, "{}", headers.join(","))?;
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

/// `a/b (p%)`.
pub fn ratio(a: u64, b: u64) -> String {
    format!("{a}/{b}")
}

/// Percentage with one decimal.
pub fn pct(a: u64, b: u64) -> String {
    if b == 0 {
        "0.0%".into()
    } else {
        format!("{:.1}%", a as f64 * 100.0 / b as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn control_characters_are_shown_not_sent() {
        let ua = "evil\x1b[2J\x1b[31mred\r\nnext\u{9b}31m\u{7f}";
        let want = "evil\\x1b[2J\\x1b[31mred\\r\\nnext\\x9b31m\\x7f";
        assert_eq!(clean(ua), want);
        assert!(matches!(clean("plain é"), Cow::Borrowed(_)));
        let mut out = Vec::new();
        write_table(&mut out, &["ua"], &[vec![ua.into()]]).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains(want), "{s}");
        assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s:?}");
        assert_eq!(s.lines().count(), 3);
        assert_eq!(csv_field(ua), want);
        assert_eq!(csv_field("a\nb,c"), "\"a\\nb,c\"");
    }

    #[test]
    fn table_aligns() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["name", "n"],
            &[
                vec!["a".into(), "1".into()],
                vec!["bbb".into(), "22".into()],
            ],
        )
        .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert_eq!(s, "name   n\n----  --\na      1\nbbb   22\n");
    }
}
