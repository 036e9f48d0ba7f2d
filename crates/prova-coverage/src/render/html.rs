//! One self-contained HTML file: inline CSS, bar charts as plain `div`s, no
//! scripts, no external resources.

use std::io::{self, Write};

use super::{GroupStats, group_stats};
use crate::diff::{Diff, GroupChange};
use crate::report::Report;

const STYLE: &str = r#"
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#1d2330;max-width:1200px}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{padding:.25em .6em;border-bottom:1px solid #e3e6ec;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{position:relative;width:260px;height:14px;background:#eceff4;border-radius:3px;overflow:hidden}
.bar span{position:absolute;left:0;top:0;bottom:0}
.bar .t{background:#8fb3e8}.bar .c{background:#2f6fce}
.legend span{display:inline-block;width:12px;height:12px;margin:0 .3em 0 1em;vertical-align:middle}
.muted{color:#6b7280} .up{color:#137333} .down{color:#b3261e}
code{font-size:.95em}
"#;

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            // Control characters are not allowed in HTML text: show them.
            c if c.is_control() && c != '\n' && c != '\t' => {
                o.push_str(&super::table::visible_control(c))
            }
            c => o.push(c),
        }
    }
    o
}

fn head(out: &mut dyn Write, title: &str) -> io::Result<()> {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>",
        esc(title),
        esc(title)
    )
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 * 100.0 / b as f64
    }
}

fn bar(tested: u64, conf: u64, total: u64) -> String {
    format!(
        "<div class=\"bar\" title=\"tested {tested}/{total}, conformance {conf}/{total}\"><span class=\"t\" style=\"width:{:.2}%\"></span><span class=\"c\" style=\"width:{:.2}%\"></span></div>",
        pct(tested, total),
        pct(conf, total)
    )
}

fn stats_table(out: &mut dyn Write, title: &str, rows: &[GroupStats]) -> io::Result<()> {
    writeln!(
        out,
        "<h2>{}</h2>\n<table><tr><th>{}</th><th>endpoints</th><th>tested</th><th>conformance</th><th>eligible conf. tested</th><th>coverage</th></tr>",
        esc(title),
        esc(title)
    )?;
    for g in rows {
        writeln!(
            out,
            "<tr><td>{}</td><td class=n>{}</td><td class=n>{} ({:.1}%)</td><td class=n>{} ({:.1}%)</td><td class=n>{}/{}</td><td>{}</td></tr>",
            esc(&g.group),
            g.total,
            g.tested,
            pct(g.tested, g.total),
            g.conf_tested,
            pct(g.conf_tested, g.total),
            g.eligible_conf_tested,
            g.eligible,
            bar(g.tested, g.conf_tested, g.total)
        )?;
    }
    writeln!(out, "</table>")
}

/// The report as a page: totals, charts per level and category, untested
/// eligible endpoints, unmapped events.
pub fn report(out: &mut dyn Write, r: &Report) -> io::Result<()> {
    head(out, &format!("Kubernetes API coverage {}", r.release))?;
    writeln!(
        out,
        "<p class=muted>spec {} · audit {} · {} events, {} mapped, {} unmapped</p>",
        esc(&r.spec),
        esc(&r.sources.join(", ")),
        r.events.total,
        r.events.mapped,
        r.events.unmapped
    )?;
    writeln!(
        out,
        "<table><tr><td>total endpoints</td><td class=n>{}</td></tr><tr><td>tested endpoints</td><td class=n>{} ({:.1}%)</td></tr><tr><td>conformance tested endpoints</td><td class=n>{}</td></tr><tr><td>conformance eligible endpoints</td><td class=n>{}</td></tr><tr><td>tested conformance eligible endpoints</td><td class=n>{} ({:.1}%)</td></tr></table>",
        r.total_endpoints,
        r.tested_endpoints,
        pct(r.tested_endpoints, r.total_endpoints),
        r.conformance_tested_endpoints,
        r.total_eligible,
        r.tested_eligible,
        pct(r.tested_eligible, r.total_eligible)
    )?;
    writeln!(
        out,
        "<p class=legend><span style=\"background:#8fb3e8\"></span>tested<span style=\"background:#2f6fce\"></span>conformance tested</p>"
    )?;
    let (levels, cats) = group_stats(r);
    stats_table(out, "level", &levels)?;
    stats_table(out, "category", &cats)?;
    let untested: Vec<_> = r
        .endpoints
        .iter()
        .filter(|e| e.eligible && !e.tested)
        .collect();
    writeln!(
        out,
        "<h2>Untested conformance eligible endpoints ({})</h2>\n<table><tr><th>endpoint</th><th>kind</th><th>category</th><th>path</th></tr>",
        untested.len()
    )?;
    for e in untested {
        writeln!(
            out,
            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&e.endpoint),
            if e.pending {
                " <span class=muted>(pending)</span>"
            } else {
                ""
            },
            esc(e.kind.as_deref().unwrap_or("")),
            esc(&e.category),
            esc(&e.path)
        )?;
    }
    writeln!(out, "</table>")?;
    writeln!(
        out,
        "<h2>Unmapped events ({})</h2><table><tr><th>reason</th><th>count</th><th>first examples</th></tr>",
        r.unmapped.total
    )?;
    for reason in &r.unmapped.reasons {
        let ex: Vec<String> = reason
            .examples
            .iter()
            .map(|e| {
                format!(
                    "{}:{} <code>{} {}</code>{}",
                    esc(&e.file),
                    e.line,
                    esc(&e.verb),
                    esc(&e.request_uri),
                    e.error
                        .as_deref()
                        .map(|x| format!(" {}", esc(x)))
                        .unwrap_or_default()
                )
            })
            .collect();
        writeln!(
            out,
            "<tr><td title=\"{}\">{}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(&reason.message),
            esc(&reason.reason),
            reason.count,
            ex.join("<br>")
        )?;
    }
    writeln!(out, "</table>\n</body></html>")
}

/// A plain table as a page.
pub fn table_page(
    out: &mut dyn Write,
    title: &str,
    heads: &[&str],
    rows: &[Vec<String>],
) -> io::Result<()> {
    head(out, title)?;
    write!(out, "<table><tr>")?;
    for h in heads {
        write!(out, "<th>{}</th>", esc(h))?;
    }
    writeln!(out, "</tr>")?;
    for row in rows {
        write!(out, "<tr>")?;
        for c in row {
            write!(out, "<td>{}</td>", esc(c))?;
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(
        out,
        "</table>\n<p class=muted>{} rows</p></body></html>",
        rows.len()
    )
}

fn change_row(out: &mut dyn Write, g: &GroupChange) -> io::Result<()> {
    let c = g.change();
    writeln!(
        out,
        "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=\"n {}\">{}{}</td><td>{}</td><td>{}</td></tr>",
        esc(&g.group),
        if g.old_total == g.total {
            g.total.to_string()
        } else {
            format!("{} → {}", g.old_total, g.total)
        },
        g.old_tested,
        g.new_tested,
        if c > 0 {
            "up"
        } else if c < 0 {
            "down"
        } else {
            "muted"
        },
        if c > 0 { "+" } else { "" },
        c,
        bar(g.old_tested, g.old_conf_tested, g.old_total),
        bar(g.new_tested, g.new_conf_tested, g.total)
    )
}

/// The diff as a page.
pub fn diff(out: &mut dyn Write, d: &Diff) -> io::Result<()> {
    head(out, "Kubernetes API coverage change")?;
    writeln!(
        out,
        "<p><b>{}</b></p>",
        esc(&d.change_line()).replace('\n', "<br>")
    )?;
    writeln!(
        out,
        "<table><tr><th>group</th><th>endpoints</th><th>old</th><th>new</th><th>change</th><th>before</th><th>after</th></tr>"
    )?;
    for g in d
        .categories
        .iter()
        .chain(&d.levels)
        .chain(std::iter::once(&d.total))
    {
        change_row(out, g)?;
    }
    writeln!(out, "</table></body></html>")
}
