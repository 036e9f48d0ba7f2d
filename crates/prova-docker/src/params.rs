//! The `docker` step's parameters: read once while the job is prepared
//! (values checked there, templates parsed), and turned into a [`Spec`]
//! per target.

use std::time::Duration;

use prova_engine::plugin::{FromParam, Param, ParamList, Params, Render, StepError, Target};

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

/// The parameters as prepared: each value checked, or a template to render.
pub struct SpecParams {
    image: Param<String>,
    command: Option<ParamList<String>>,
    args: Option<ParamList<String>>,
    env: ParamList<String>,
    workdir: Option<Param<String>>,
    user: Option<Param<String>>,
    mounts: ParamList<String>,
    network: Option<Param<String>>,
    timeout: Option<Param<(Duration, String)>>,
    cpus: Option<Param<f64>>,
    memory: Option<Param<(i64, String)>>,
    results_dir: Option<Param<String>>,
    pull: Param<Pull>,
    emit_output: Param<bool>,
    fail_on_test_failures: Param<bool>,
    labels: ParamList<(String, String)>,
}

/// A checker for one key: the value as given, if it passes.
fn checked(key: &'static str) -> impl Fn(&str) -> Result<String, String> + Send + Sync {
    move |v| check_single(key, v).map(|()| v.trim().to_string())
}

/// A checker for the items of a list key.
fn checked_item(key: &'static str) -> impl Fn(&str) -> Result<String, String> + Send + Sync {
    // Only a command's program (item 0) may not be empty; an empty item
    // elsewhere is checked per index by `check_item` too.
    move |v| check_item(key, usize::from(key == "command"), v).map(|()| v.to_string())
}

impl SpecParams {
    /// Reads every parameter, recording what is wrong in `p`.
    pub fn read(p: &mut Params<'_>) -> Option<SpecParams> {
        let image = p.required_with("image", checked("image"));
        let command = p.optional_list::<String>("command");
        if let Some(first) = command.as_ref().and_then(|c| c.iter().next())
            && let Some(v) = first.as_fixed()
            && let Err(e) = check_item("command", 0, v)
        {
            p.error_at("command", 0, e);
        }
        let read = SpecParams {
            command,
            args: p.optional_list("args"),
            env: p.list_with("env", checked_item("env")),
            workdir: p.optional_with("workdir", checked("workdir")),
            user: p.optional_with("user", checked("user")),
            mounts: p.list_with("mounts", checked_item("mounts")),
            network: p.optional_with("network", checked("network")),
            timeout: p.optional_with("timeout", |v| {
                check_single("timeout", v)?;
                Ok((Duration::from_param(v)?, v.trim().to_string()))
            }),
            cpus: p.optional_with("cpus", |v| {
                check_single("cpus", v)?;
                f64::from_param(v)
            }),
            memory: p.optional_with("memory", |v| {
                check_single("memory", v)?;
                Ok((parse_memory(v)?, v.trim().to_string()))
            }),
            results_dir: p.optional_with("results_dir", |v| {
                check_single("results_dir", v)?;
                Ok(normalize_dir(v.trim()))
            }),
            pull: p
                .optional_with("pull", parse_pull)
                .unwrap_or_else(|| Param::fixed(Pull::Never)),
            emit_output: p.or("emit_output", true),
            fail_on_test_failures: p.or("fail_on_test_failures", true),
            labels: p.list_with("labels", |v| {
                check_item("labels", 0, v)?;
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                Ok((k.to_string(), val.to_string()))
            }),
            // Last: every other parameter is read (and checked) first.
            image: image?,
        };
        p.ok().then_some(read)
    }

    /// The spec for `target`: templates rendered and checked.
    pub fn spec(&self, ctx: &(impl Render + ?Sized), target: &Target) -> Result<Spec, StepError> {
        let opt = |p: &Option<Param<String>>| p.as_ref().map(|p| p.get(ctx, target)).transpose();
        let list =
            |p: &Option<ParamList<String>>| p.as_ref().map(|p| p.get(ctx, target)).transpose();
        Ok(Spec {
            image: self.image.get(ctx, target)?,
            command: list(&self.command)?,
            args: list(&self.args)?,
            env: self.env.get(ctx, target)?,
            workdir: opt(&self.workdir)?,
            user: opt(&self.user)?,
            mounts: self.mounts.get(ctx, target)?,
            network: opt(&self.network)?,
            timeout: self
                .timeout
                .as_ref()
                .map(|p| p.get(ctx, target))
                .transpose()?,
            cpus: self.cpus.as_ref().map(|p| p.get(ctx, target)).transpose()?,
            memory: self
                .memory
                .as_ref()
                .map(|p| p.get(ctx, target))
                .transpose()?,
            results_dir: opt(&self.results_dir)?,
            pull: self.pull.get(ctx, target)?,
            emit_output: self.emit_output.get(ctx, target)?,
            fail_on_test_failures: self.fail_on_test_failures.get(ctx, target)?,
            labels: self.labels.get(ctx, target)?,
        })
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
            let d = Duration::from_param(t)?;
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
