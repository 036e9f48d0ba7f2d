//! A duration trend as inline SVG, drawn by hand: one point per job
//! (oldest left), a polyline through the jobs that have a duration, and a
//! marker per point whose shape says the outcome (a circle passed, a
//! square failed or error, a diamond anything else), so the chart reads
//! without colour.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};
use prova_core::JobId;
use prova_results::history::Outcome;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 140.0;
/// Room for the axis labels.
const PAD_LEFT: f64 = 56.0;
const PAD: f64 = 10.0;

/// The chart of `(job, outcome, seconds)`, oldest first; a note instead
/// when no job has a duration.
pub fn svg(points: &[(JobId, Outcome, Option<f64>)]) -> Markup {
    let timed: Vec<(usize, JobId, Outcome, f64)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, (j, o, d))| {
            d.filter(|d| d.is_finite() && *d >= 0.0)
                .map(|d| (i, *j, *o, d))
        })
        .collect();
    if timed.is_empty() {
        return html! { p.none { "No durations recorded." } };
    }
    let max = timed.iter().map(|t| t.3).fold(0.0_f64, f64::max).max(0.001);
    let n = points.len().max(2) as f64 - 1.0;
    let x = |i: usize| PAD_LEFT + (WIDTH - PAD_LEFT - PAD) * (i as f64 / n);
    let y = |d: f64| PAD + (HEIGHT - 2.0 * PAD) * (1.0 - d / max);
    let mut line = String::new();
    for (i, _, _, d) in &timed {
        let _ = write!(line, "{:.1},{:.1} ", x(*i), y(*d));
    }
    // Markers are strings: maud cannot name SVG elements by variable.
    let mut marks = String::new();
    for (i, job, outcome, d) in &timed {
        let (cx, cy) = (x(*i), y(*d));
        let title = format!(
            "<title>job {job}: {} in {}</title>",
            outcome.as_str(),
            super::history::secs(*d)
        );
        let class = outcome.as_str();
        let _ = match outcome {
            Outcome::Passed => write!(
                marks,
                r#"<a href="/jobs/{job}"><circle class="{class}" cx="{cx:.1}" cy="{cy:.1}" r="4">{title}</circle></a>"#
            ),
            Outcome::Failed | Outcome::Error => write!(
                marks,
                r#"<a href="/jobs/{job}"><rect class="{class}" x="{:.1}" y="{:.1}" width="8" height="8">{title}</rect></a>"#,
                cx - 4.0,
                cy - 4.0
            ),
            _ => write!(
                marks,
                r#"<a href="/jobs/{job}"><path class="{class}" d="M{cx:.1} {:.1}l4 4l-4 4l-4 -4z">{title}</path></a>"#,
                cy - 4.0
            ),
        };
    }
    let top = super::history::secs(max);
    html! {
        svg.trend xmlns="http://www.w3.org/2000/svg" role="img" width=(WIDTH) height=(HEIGHT)
            viewBox={"0 0 " (WIDTH) " " (HEIGHT)}
            aria-label={"Duration per job, oldest first; longest " (top)} {
            line.axis x1=(PAD_LEFT) y1=(PAD) x2=(PAD_LEFT) y2=(HEIGHT - PAD) {}
            line.axis x1=(PAD_LEFT) y1=(HEIGHT - PAD) x2=(WIDTH - PAD) y2=(HEIGHT - PAD) {}
            text x="4" y=(PAD + 4.0) { (top) }
            text x="4" y=(HEIGHT - PAD) { "0" }
            polyline.trend-line points=(line.trim_end()) {}
            (PreEscaped(marks))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_goes_through_timed_jobs_only_and_the_longest_is_on_top() {
        let svg = svg(&[
            (1, Outcome::Passed, Some(2.0)),
            (2, Outcome::Failed, None),
            (3, Outcome::Failed, Some(4.0)),
        ])
        .into_string();
        let points = svg
            .split("points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        // Two points: job 2 has no duration. The longest (job 3) at the top pad.
        assert_eq!(points.split(' ').count(), 2, "{points}");
        assert!(points.ends_with(",10.0"), "{points}");
        assert!(svg.contains("<rect class=\"failed\"") && svg.contains("<circle class=\"passed\""));
        assert!(svg.contains("job 3: failed in 4.0s"));
    }

    #[test]
    fn no_durations_is_a_note_not_an_empty_chart() {
        assert!(
            svg(&[(1, Outcome::Absent, None)])
                .into_string()
                .contains("No durations")
        );
    }
}
