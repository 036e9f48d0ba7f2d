//! `prova prune --older-than AGE`: deletes the jobs that ended more than
//! AGE ago, with their events and every other row of theirs, from the
//! local store (`PruneStore` in prova-store), and with `--vacuum` gives the
//! space back.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use prova_store::{PrunableJob, PruneRule, PruneStore, SqlStore, StoreSize};

use crate::cli::StoreArgs;
use crate::output::outln;
use crate::{exit, output, store};

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Delete the jobs that ended (Completed, Failed, Cancelled,
    /// CancellationFailed) longer ago than this: 30d, 2w, 1d12h, 36h, 90m.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Duration,
    /// Keep the newest N jobs of each job name however old (counted over
    /// all its jobs, running ones too): `prova history` and `prova diff`
    /// read a name's newest jobs.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Only list the jobs that would go; delete nothing.
    #[arg(long, conflicts_with = "vacuum")]
    pub dry_run: bool,
    /// Then give the freed space back: SQLite rewrites the file (VACUUM;
    /// needs free disk as large as the store, and writers wait for it),
    /// PostgreSQL runs a plain VACUUM of prova's tables.
    #[arg(long)]
    pub vacuum: bool,
    /// Print what was done as JSON (see docs/cli.md).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// An age: days and weeks (`30d`, `2w`, `1w3d`) and then, or instead, a Go
/// duration (`12h`, `1d12h`, `90m`). Go durations have no days; ages of
/// stored jobs are counted in them.
fn parse_age(s: &str) -> Result<Duration, String> {
    const DAY: u64 = 86_400;
    let text = s.trim();
    if text.is_empty() {
        return Err("expected an age such as 30d, 2w, 12h".into());
    }
    let mut rest = text;
    let mut secs: u64 = 0;
    for (unit, unit_secs) in [('w', 7 * DAY), ('d', DAY)] {
        let Some(at) = rest.find(unit) else { continue };
        let n: u64 = rest[..at].parse().map_err(|_| {
            format!("invalid age {text:?}: whole weeks and days come first (30d, 2w, 1w3d, 1d12h)")
        })?;
        secs = n
            .checked_mul(unit_secs)
            .and_then(|v| v.checked_add(secs))
            .ok_or_else(|| format!("age {text:?} is too large"))?;
        rest = &rest[at + 1..];
    }
    let mut age = Duration::from_secs(secs);
    if !rest.is_empty() {
        let more = prova_core::duration::parse_go_duration(rest)
            .map_err(|e| format!("invalid age {text:?}: {e}; days are written 30d"))?;
        age = age
            .checked_add(more)
            .ok_or_else(|| format!("age {text:?} is too large"))?;
    }
    Ok(age)
}

pub async fn run(args: PruneArgs) -> anyhow::Result<ExitCode> {
    let cutoff = i64::try_from(args.older_than.as_secs())
        .ok()
        .and_then(|s| {
            jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(s))
                .ok()
        })
        .ok_or_else(|| {
            exit::Usage(format!(
                "--older-than {}: reaches before the earliest time prova can store",
                output::duration(args.older_than)
            ))
        })?;
    let rule = PruneRule {
        ended_before: cutoff,
        keep_last: args.keep_last,
    };
    let url = store::url(&args.store);
    if store::sqlite_file(&url).is_some_and(|f| !f.exists()) {
        // Nothing recorded is nothing to prune; the file is not created.
        eprintln!("prova: {}", store::missing(&args.store));
        if args.json {
            print_json(&args, cutoff, &[], 0, 0, None)?;
        }
        return Ok(ExitCode::from(exit::SUCCESS));
    }
    let db = SqlStore::open(&url)
        .await
        .with_context(|| format!("opening the store {url}"))?;

    if args.dry_run {
        let jobs = db.prunable_jobs(&rule).await?;
        let events = jobs.iter().map(|j| j.events).sum();
        let size = db.store_size().await?;
        if args.json {
            print_json(&args, cutoff, &jobs, jobs.len() as u64, events, Some(size))?;
        } else {
            print_jobs(&jobs)?;
            outln!(
                "would prune {} ({}) that ended before {}; store: {}",
                count(jobs.len() as u64, "job"),
                count(events, "event"),
                output::time(cutoff),
                bytes(size.bytes)
            )?;
        }
        return Ok(ExitCode::from(exit::SUCCESS));
    }

    let pruned = db.prune_jobs(&rule).await?;
    let before = db.store_size().await?;
    let after = if args.vacuum {
        db.vacuum().await?;
        db.store_size().await?
    } else {
        before
    };
    if args.json {
        print_json(&args, cutoff, &[], pruned.jobs, pruned.events, Some(after))?;
        return Ok(ExitCode::from(exit::SUCCESS));
    }
    outln!(
        "pruned {} ({}) that ended before {}",
        count(pruned.jobs, "job"),
        count(pruned.events, "event"),
        output::time(cutoff)
    )?;
    outln!("{}", space_note(db.backend(), args.vacuum, before, after))?;
    Ok(ExitCode::from(exit::SUCCESS))
}

/// What the store's size is now, and how to get space back if it can be.
fn space_note(
    backend: prova_store::Backend,
    vacuumed: bool,
    before: StoreSize,
    after: StoreSize,
) -> String {
    use prova_store::Backend;
    match (backend, vacuumed) {
        (_, true) => format!(
            "vacuumed: the store went from {} to {}",
            bytes(before.bytes),
            bytes(after.bytes)
        ),
        (Backend::Sqlite, false) => match before.free {
            Some(free) if free > 0 => format!(
                "store is {}, {} of it free: run with --vacuum to give that back to the file system",
                bytes(before.bytes),
                bytes(free)
            ),
            _ => format!("store is {}", bytes(before.bytes)),
        },
        (_, false) => format!(
            "store is {} (PostgreSQL reuses the space of deleted rows once vacuumed: autovacuum does it in time, --vacuum now)",
            bytes(before.bytes)
        ),
    }
}

fn print_jobs(jobs: &[PrunableJob]) -> anyhow::Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    outln!(
        "{:>6}  {:<18} {:<19}  {:>9}  NAME",
        "ID",
        "STATE",
        "ENDED",
        "EVENTS"
    )?;
    for j in jobs {
        outln!(
            "{:>6}  {:<18} {:<19}  {:>9}  {}",
            j.id,
            j.state.as_str(),
            output::time(j.ended_at),
            thousands(j.events),
            j.name
        )?;
    }
    Ok(())
}

/// The `--json` object (docs/cli.md): `Jobs` only with `--dry-run`.
fn print_json(
    args: &PruneArgs,
    cutoff: jiff::Timestamp,
    jobs: &[PrunableJob],
    job_count: u64,
    events: u64,
    size: Option<StoreSize>,
) -> anyhow::Result<()> {
    let mut v = serde_json::json!({
        "DryRun": args.dry_run,
        "EndedBefore": cutoff,
        "JobCount": job_count,
        "EventCount": events,
        "Vacuumed": args.vacuum && !args.dry_run,
        "StoreBytes": size.map(|s| s.bytes),
        "FreeBytes": size.and_then(|s| s.free),
    });
    if args.dry_run {
        v["Jobs"] = jobs
            .iter()
            .map(|j| {
                serde_json::json!({
                    "JobID": j.id,
                    "JobName": j.name,
                    "State": j.state,
                    "StateTime": j.ended_at,
                    "Events": j.events,
                })
            })
            .collect();
    }
    outln!("{}", serde_json::to_string_pretty(&v)?)?;
    Ok(())
}

/// `1 job`, `12 jobs`, `34,567 events`.
fn count(n: u64, what: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {what}{s}", thousands(n))
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `512 B`, `3.4 KB`, `120 MB`, `1.5 GB` (powers of 1000, as `du --si`).
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1} {}", UNITS[unit])
    } else {
        format!("{v:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_days_and_weeks_then_go_durations() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(parse_age("30d").unwrap(), h(30 * 24));
        assert_eq!(parse_age("2w").unwrap(), h(14 * 24));
        assert_eq!(parse_age("1w3d").unwrap(), h(10 * 24));
        assert_eq!(parse_age("1d12h").unwrap(), h(36));
        assert_eq!(parse_age("36h").unwrap(), h(36));
        assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_age("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn bad_ages_say_what_is_expected() {
        for bad in [
            "",
            "30",
            "d",
            "12h3d",
            "1.5d",
            "-1d",
            "3x",
            "99999999999999999999w",
        ] {
            let e = parse_age(bad).expect_err(bad);
            assert!(e.contains("age") || e.contains("duration"), "{bad:?}: {e}");
        }
        assert!(parse_age("12h3d").unwrap_err().contains("come first"));
    }

    #[test]
    fn numbers_and_sizes_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(34_567), "34,567");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(count(1, "job"), "1 job");
        assert_eq!(count(12, "job"), "12 jobs");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3_400), "3.4 KB");
        assert_eq!(bytes(120_000_000), "120 MB");
        assert_eq!(bytes(1_500_000_000), "1.5 GB");
    }
}
