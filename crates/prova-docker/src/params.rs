//! The `docker` step's parameters: one checker per key, used by
//! `validate` (values that are not templates) and again at run time, after
//! the engine expanded the templates for the target.

use std::time::Duration;

use prova_core::descriptor::{StepDescriptor, StepParams};
use prova_core::diag::Diagnostics;
use prova_engine::plugins::params::{self, is_template};

/// Every parameter the step reads.
pub const KEYS: [&str; 16] = [
    "image",
    "command",
    "args",
    "env",
    "workdir",
    "user",
    "mounts",
    "network",
    "timeout",
    "cpus",
    "memory",
    "results_dir",
    "pull",
    "emit_output",
    "fail_on_test_failures",
    "labels",
];

/// Keys that take a list of values; the others take one.
const LISTS: [&str; 5] = ["command", "args", "env", "mounts", "labels"];

/// Smallest memory limit the engine accepts.
pub const MIN_MEMORY: i64 = 6 << 20;

/// When to pull the image from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    /// Never: the image must be on the engine (the default).
    Never,
    /// Only when the engine does not have it.
    Missing,
    /// Before every run.
    Always,
}

/// The step's parameters for one target, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub image: String,
    /// Replaces the image's ENTRYPOINT (and then its CMD is not used).
    pub command: Option<Vec<String>>,
    /// Replaces the image's CMD.
    pub args: Option<Vec<String>>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// Docker bind specs: `/host:/container[:ro|rw]`.
    pub mounts: Vec<String>,
    pub network: Option<String>,
    /// And the value as written, for messages ("timed out after 5s").
    pub timeout: Option<(Duration, String)>,
    pub cpus: Option<f64>,
    /// Bytes, and the value as written ("limit 64m").
    pub memory: Option<(i64, String)>,
    /// Absolute, without a trailing `/`.
    pub results_dir: Option<String>,
    pub pull: Pull,
    pub emit_output: bool,
    pub fail_on_test_failures: bool,
    pub labels: Vec<(String, String)>,
}

impl Spec {
    /// Reads and checks expanded parameters; the error names the parameter.
    pub fn from_params(p: &StepParams) -> Result<Spec, String> {
        for key in KEYS {
            let Some(v) = p.get(key) else { continue };
            if LISTS.contains(&key) {
                for (i, item) in v.values.iter().enumerate() {
                    check_item(key, i, item).map_err(|e| format!("{key}[{i}]: {e}"))?;
                }
            } else {
                if v.values.len() != 1 {
                    return Err(format!(
                        "{key}: expected one value, found {}",
                        v.values.len()
                    ));
                }
                check_single(key, &v.values[0]).map_err(|e| format!("{key}: {e}"))?;
            }
        }
        let one = |k: &str| p.one(k).map(str::to_string);
        let list = |k: &str| p.get(k).map(|v| v.values.clone());
        let image = one("image").ok_or("image: the parameter is required")?;
        let kv = |items: Vec<String>| -> Vec<(String, String)> {
            items
                .into_iter()
                .filter_map(|s| {
                    s.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect()
        };
        Ok(Spec {
            image,
            command: list("command"),
            args: list("args"),
            env: list("env").unwrap_or_default(),
            workdir: one("workdir"),
            user: one("user"),
            mounts: list("mounts").unwrap_or_default(),
            network: one("network"),
            timeout: p.one("timeout").map(|t| {
                (
                    params::parse_duration(t).unwrap_or_default(),
                    t.trim().to_string(),
                )
            }),
            cpus: p.one("cpus").and_then(|c| c.trim().parse().ok()),
            memory: p
                .one("memory")
                .and_then(|m| parse_memory(m).ok().map(|b| (b, m.trim().to_string()))),
            results_dir: p.one("results_dir").map(|d| normalize_dir(d.trim())),
            pull: p
                .one("pull")
                .map(|v| parse_pull(v).unwrap_or(Pull::Never))
                .unwrap_or(Pull::Never),
            emit_output: params::bool_or(p, "emit_output", true).map_err(|e| e.to_string())?,
            fail_on_test_failures: params::bool_or(p, "fail_on_test_failures", true)
                .map_err(|e| e.to_string())?,
            labels: kv(list("labels").unwrap_or_default()),
        })
    }
}

/// Checks a descriptor's parameters: every error with its path; values
/// that are templates are checked after expansion, when the step runs;
/// unknown keys are warnings.
pub fn validate(step: &StepDescriptor, diags: &mut Diagnostics) {
    let p = &step.parameters;
    params::require_one(step, "image", diags);
    for v in p.iter() {
        let lower = v.key.to_ascii_lowercase();
        let key = lower.as_str();
        if !KEYS.contains(&key) {
            diags.warn(
                &v.path,
                v.pos,
                format!(
                    "unknown parameter {key:?} of step {:?} (docker); known: {}",
                    step.label,
                    KEYS.join(", ")
                ),
            );
            continue;
        }
        if LISTS.contains(&key) {
            for (i, item) in v.values.iter().enumerate() {
                if !is_template(item)
                    && let Err(e) = check_item(key, i, item)
                {
                    diags.error(&v.path.index(i), v.pos, e);
                }
            }
        } else if key != "image" || v.values.len() == 1 {
            // `image` counts are reported by require_one.
            params::check_one(p, key, diags, |s| check_single(key, s));
        } else if let Some(first) = v.values.first()
            && !is_template(first)
            && let Err(e) = check_single(key, first)
        {
            diags.error(&v.path.index(0), v.pos, e);
        }
    }
}

fn check_single(key: &str, v: &str) -> Result<(), String> {
    let t = v.trim();
    match key {
        "image" => no_space(t, "an image reference such as \"alpine:3.20\""),
        "workdir" => absolute(t),
        "results_dir" => {
            absolute(t)?;
            if normalize_dir(t) == "/" {
                return Err("expected a directory below \"/\", found \"/\"".into());
            }
            Ok(())
        }
        "user" => no_space(t, "a user such as \"1000\", \"1000:1000\" or \"nobody\""),
        "network" => no_space(t, "a network: \"none\", \"bridge\", \"host\" or a name"),
        "timeout" => {
            let d = params::parse_duration(t)?;
            if d.is_zero() {
                return Err("expected a duration above zero, found \"0\"".into());
            }
            Ok(())
        }
        "cpus" => match t.parse::<f64>() {
            Ok(c) if c.is_finite() && c > 0.0 && c <= 1024.0 => Ok(()),
            _ => Err(format!(
                "expected a number of CPUs above 0 such as \"0.5\" or \"2\", found {v:?}"
            )),
        },
        "memory" => {
            let b = parse_memory(t)?;
            if b < MIN_MEMORY {
                return Err(format!("{v:?} is below the engine's minimum of 6m (6 MiB)"));
            }
            Ok(())
        }
        "pull" => parse_pull(t).map(|_| ()),
        "emit_output" | "fail_on_test_failures" => params::parse_bool(t).map(|_| ()),
        _ => Ok(()),
    }
}

fn check_item(key: &str, i: usize, v: &str) -> Result<(), String> {
    match key {
        "command" if i == 0 && v.trim().is_empty() => {
            Err("expected a program path, found an empty string".into())
        }
        "env" => key_value(v, "KEY=VALUE").map(|_| ()),
        "labels" => {
            let k = key_value(v, "KEY=VALUE")?;
            if k.starts_with("prova.") {
                return Err(format!(
                    "label {k:?}: keys starting with \"prova.\" are prova's own"
                ));
            }
            Ok(())
        }
        "mounts" => parse_mount(v).map(|_| ()),
        _ => Ok(()),
    }
}

fn no_space(v: &str, what: &str) -> Result<(), String> {
    if v.is_empty() || v.contains(char::is_whitespace) {
        return Err(format!("expected {what}, found {v:?}"));
    }
    Ok(())
}

fn absolute(v: &str) -> Result<(), String> {
    if !v.starts_with('/') {
        return Err(format!(
            "expected an absolute path inside the container, found {v:?}"
        ));
    }
    Ok(())
}

fn normalize_dir(d: &str) -> String {
    let t = d.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        t.to_string()
    }
}

fn key_value<'a>(v: &'a str, form: &str) -> Result<&'a str, String> {
    match v.split_once('=') {
        Some((k, _)) if !k.is_empty() && !k.contains(char::is_whitespace) => Ok(k),
        _ => Err(format!("expected {form}, found {v:?}")),
    }
}

/// `/host:/container[:ro|rw]`, both paths absolute.
pub fn parse_mount(v: &str) -> Result<(&str, &str, bool), String> {
    let parts: Vec<&str> = v.split(':').collect();
    let err = |why: &str| {
        Err(format!(
            "expected /host/path:/container/path[:ro|:rw], found {v:?}: {why}"
        ))
    };
    let (host, ctr, ro) = match parts.as_slice() {
        [h, c] => (*h, *c, false),
        [h, c, "ro"] => (*h, *c, true),
        [h, c, "rw"] => (*h, *c, false),
        [_, _, o] => return err(&format!("unknown option {o:?}")),
        _ => return err("expected two or three ':'-separated parts"),
    };
    if !host.starts_with('/') {
        return err("the host path must be absolute");
    }
    if !ctr.starts_with('/') {
        return err("the container path must be absolute");
    }
    Ok((host, ctr, ro))
}

fn parse_pull(v: &str) -> Result<Pull, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "never" => Ok(Pull::Never),
        "missing" => Ok(Pull::Missing),
        "always" => Ok(Pull::Always),
        _ => Err(format!(
            "expected \"never\", \"missing\" or \"always\", found {v:?}"
        )),
    }
}

/// A memory size as Docker writes them: a number and an optional unit `b`,
/// `k`, `m`, `g` (binary: `512m` is 512 MiB; `kb`/`kib`/`ki` forms too).
pub fn parse_memory(v: &str) -> Result<i64, String> {
    let t = v.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let err =
        || format!("expected a size such as \"512m\", \"1g\" or \"67108864\" (bytes), found {v:?}");
    let n: f64 = num.parse().map_err(|_| err())?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "ki" | "kib" => 1024.0,
        "m" | "mb" | "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "ti" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(err()),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 1.0 || bytes > i64::MAX as f64 {
        return Err(err());
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("1g"), Ok(1 << 30));
        assert_eq!(parse_memory("1.5G"), Ok(3 << 29));
        assert_eq!(parse_memory("64MiB"), Ok(64 << 20));
        assert_eq!(parse_memory("1048576"), Ok(1 << 20));
        for bad in ["", "m", "12x", "-5m", "0"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
        assert!(
            check_single("memory", "4m")
                .unwrap_err()
                .contains("minimum of 6m")
        );
    }

    #[test]
    fn mounts() {
        assert_eq!(parse_mount("/a:/b"), Ok(("/a", "/b", false)));
        assert_eq!(parse_mount("/a:/b:ro"), Ok(("/a", "/b", true)));
        for bad in ["a:/b", "/a:b", "/a", "/a:/b:rx", "/a:/b:ro:x"] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn singles_and_items() {
        assert!(check_single("timeout", "5s").is_ok());
        assert!(check_single("timeout", "0").is_err());
        assert!(check_single("timeout", "soon").is_err());
        assert!(check_single("cpus", "0.5").is_ok());
        assert!(check_single("cpus", "0").is_err());
        assert!(check_single("results_dir", "results").is_err());
        assert!(check_single("results_dir", "//").is_err());
        assert!(check_single("pull", "Missing").is_ok());
        assert!(check_single("pull", "sometimes").is_err());
        assert!(check_single("image", "a b").is_err());
        assert!(check_item("env", 0, "A=1").is_ok());
        assert!(check_item("env", 0, "A=").is_ok());
        assert!(check_item("env", 0, "=1").is_err());
        assert!(check_item("env", 0, "NOVALUE").is_err());
        assert!(check_item("labels", 0, "prova.job=1").is_err());
        assert!(check_item("command", 0, " ").is_err());
        assert!(check_item("args", 0, "").is_ok());
    }
}
