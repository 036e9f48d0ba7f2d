//! Go duration strings (`"300ms"`, `"1m30s"`, `"1.5h"`), as ConTest writes
//! `RunInterval`, `RetryInterval` and step timeouts.
//!
//! Hand-written because the common crates (humantime, go-parse-duration)
//! either reject Go's unit-less `"0"` and fractional forms or are
//! unmaintained; the grammar is ten lines.

use std::time::Duration;

/// The longest duration Go can represent (`math.MaxInt64` nanoseconds,
/// about 292 years); longer ones are refused, as Go refuses them.
pub const MAX_DURATION: Duration = Duration::new(9_223_372_036, 854_775_807);

/// [`MAX_DURATION`] as Go writes it, for error messages.
const MAX_DURATION_TEXT: &str = "2562047h47m16.854775807s";

/// Parses a Go duration. A bare number is rejected, as Go rejects it, except
/// `"0"`.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if s.starts_with('-') {
        return Err(format!("negative duration {s:?}"));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration {s:?}: expected a number"));
        }
        let num: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: bad number"))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let secs = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "invalid duration {s:?}: missing unit (ns, us, ms, s, m, h)"
                ));
            }
            other => return Err(format!("invalid duration {s:?}: unknown unit {other:?}")),
        };
        total += num * secs;
        // Checked at every term so an overflow names the input rather than
        // reaching `Duration`'s panicking float conversion (a number of
        // hundreds of digits even parses as infinity).
        if !total.is_finite() || total > MAX_DURATION.as_secs_f64() {
            return Err(too_large(s));
        }
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(|| too_large(s))
}

fn too_large(s: &str) -> String {
    let shown: String = s.chars().take(40).collect();
    let more = if shown.len() < s.len() { "..." } else { "" };
    format!("duration too large {shown:?}{more}: at most {MAX_DURATION_TEXT}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_forms() {
        assert_eq!(parse_go_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(
            parse_go_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("1.5h").unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_go_duration("2us").unwrap(), Duration::from_micros(2));
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in ["", "3", "s", "3x", "-1s", "1..2s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn huge_durations_are_an_error_not_a_panic() {
        let digits = "9".repeat(400) + "ns";
        for huge in [
            "99999999999999999999h",
            "2562048h",
            "2562047h47m17s",
            "9223372037s",
            "1e400s",
            &digits,
        ] {
            match parse_go_duration(huge) {
                Err(e) => assert!(
                    e.contains("too large") && e.contains(MAX_DURATION_TEXT)
                        || e.contains("unknown unit"),
                    "{huge}: {e}"
                ),
                Ok(d) => panic!("{huge} accepted as {d:?}"),
            }
        }
        let e = parse_go_duration("99999999999999999999h").unwrap_err();
        assert!(e.starts_with("duration too large"), "{e}");
    }

    #[test]
    fn the_longest_go_duration_is_accepted() {
        let d = parse_go_duration("2562047h47m16s").unwrap();
        assert!(d <= MAX_DURATION && d > MAX_DURATION - Duration::from_secs(2));
    }
}
