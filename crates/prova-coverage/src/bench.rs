//! `prova coverage bench`: generate a realistic audit log of a given size and
//! measure how fast the coverage pipeline reads it.
//!
//! Events are 0.5–8 KB: `audit.k8s.io/v1` `ResponseComplete` events for real
//! paths of the spec (parameters filled in), verbs matching the methods,
//! ~35 % from `e2e.test` user agents (a third of them `[Conformance]`), the
//! rest from kubelet, controller-manager, scheduler and friends; writes carry
//! a `requestObject`, ~40 % of events a `responseObject` (Pod-like bodies with
//! labels, annotations, containers, env, escaped strings); query strings use
//! Go's `\u0026`; ~3 % hit health, metrics and unknown paths. The generator
//! is deterministic for a seed.

use std::fmt::Write as _;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::analyze::{AnalyzeOptions, analyze_with};
use crate::audit::ReadOptions;
use crate::conformance::ConformanceData;
use crate::mapping::Method;
use crate::spec::Spec;

/// `bench` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// OpenAPI v2 spec whose paths the generated events hit.
    #[arg(long, value_name = "SWAGGER")]
    pub spec: PathBuf,
    /// Size of the generated log (e.g. 1GB, 500MB, 2GiB).
    #[arg(long, default_value = "1GB")]
    pub size: String,
    /// Directory for the generated files (default: a new temporary directory).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Benchmark this existing audit log instead of generating one.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Also gzip the log and measure reading the .gz.
    #[arg(long)]
    pub gz: bool,
    /// Also zstd-compress the log and measure reading the .zst.
    #[arg(long)]
    pub zst: bool,
    /// Also run benches/json_loads.py (a plain Python json.loads loop) on the same file as a yardstick.
    #[arg(long)]
    pub python: bool,
    /// Worker threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Also measure with --strict-json (every line fully validated by sonic-rs).
    #[arg(long)]
    pub strict: bool,
    /// Random seed of the generator.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Keep the generated files.
    #[arg(long)]
    pub keep: bool,
}

/// Parses `1GB`, `500MB`, `2GiB`, `1048576`.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1048576.0,
        "g" | "gb" => 1e9,
        "gib" => 1073741824.0,
        other => bail!("bad size unit {other:?} in {s:?}"),
    };
    Ok((n * mult) as u64)
}

/// Small deterministic PRNG (xorshift64*).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 32) as usize * n) >> 32
    }
    /// True with probability `p` percent.
    pub fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
}

const SYSTEM_AGENTS: [&str; 8] = [
    "kubelet/v1.36.0 (linux/amd64) kubernetes/5f8c2a1",
    "kube-controller-manager/v1.36.0 (linux/amd64) kubernetes/5f8c2a1/system:serviceaccount:kube-system:generic-garbage-collector",
    "kube-scheduler/v1.36.0 (linux/amd64) kubernetes/5f8c2a1/scheduler",
    "kube-apiserver/v1.36.0 (linux/amd64) kubernetes/5f8c2a1",
    "kube-proxy/v1.36.0 (linux/amd64) kubernetes/5f8c2a1",
    "coredns/v1.12.0 (linux/amd64) kubernetes/v0.0.0",
    "kindnetd/v0.0.0 (linux/amd64) kubernetes/$Format",
    "local-path-provisioner/v0.0.0 (linux/amd64) kubernetes/$Format",
];

const SIGS: [&str; 8] = [
    "sig-apps",
    "sig-node",
    "sig-network",
    "sig-storage",
    "sig-api-machinery",
    "sig-auth",
    "sig-cli",
    "sig-scheduling",
];

const UNMAPPED: [(&str, &str); 5] = [
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/apis/metrics.k8s.io/v1beta1/nodes"),
    ("get", "/api/v1/nerds/abc"),
    ("list", "/apis/wardle.example.com/v1alpha1/flunders"),
];

struct Target {
    verb: &'static str,
    path: String,
    kind: String,
    write: bool,
}

fn targets(spec: &Spec) -> Vec<Target> {
    let mut out = Vec::new();
    for op in &spec.operations {
        let collection = !op.path.trim_end_matches('/').ends_with('}');
        let verb = match op.method {
            Method::Get
                if op.action.as_deref() == Some("watch")
                    || op.action.as_deref() == Some("watchlist") =>
            {
                "watch"
            }
            Method::Get if collection => "list",
            Method::Get => "get",
            Method::Post => "create",
            Method::Put => "update",
            Method::Patch => "patch",
            Method::Delete if collection => "deletecollection",
            Method::Delete => "delete",
            _ => continue,
        };
        out.push(Target {
            verb,
            path: op.path.clone(),
            kind: op.kind.clone().unwrap_or_else(|| "Status".into()),
            write: matches!(op.method, Method::Post | Method::Put | Method::Patch),
        });
    }
    out
}

fn fill_path(template: &str, rng: &mut Rng, out: &mut String) {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        match &rest[start..end] {
            "{namespace}" => {
                let _ = write!(out, "e2e-tests-ns-{}", rng.below(500));
            }
            "{path}" => out.push_str("some/sub/path"),
            _ => {
                let _ = write!(out, "obj-{:x}", rng.next_u64() & 0xffff_ffff);
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
}

/// A Pod-ish JSON object of roughly `size` bytes.
fn body(kind: &str, name: &str, size: usize, rng: &mut Rng, out: &mut String) {
    let start = out.len();
    let _ = write!(
        out,
        r#"{{"kind":"{kind}","apiVersion":"v1","metadata":{{"name":"{name}","namespace":"e2e-tests-ns-{}","uid":"{:016x}-4d2c-9a1b-{:012x}","resourceVersion":"{}","labels":{{"app":"agnhost","e2e-run":"{:08x}","pod-template-hash":"{:x}"}},"annotations":{{"kubectl.kubernetes.io/last-applied-configuration":"{{\"apiVersion\":\"v1\",\"kind\":\"{kind}\",\"metadata\":{{\"name\":\"{name}\"}}}}\n"}},"managedFields":[{{"manager":"e2e.test","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{"f:labels":{{".":{{}},"f:app":{{}}}}}}}}}}]}},"spec":{{"containers":[{{"name":"agnhost-container","image":"registry.k8s.io/e2e-test-images/agnhost:2.53","args":["netexec","--http-port=8080"],"resources":{{"limits":{{"cpu":"100m","memory":"128Mi"}}}},"env":["#,
        rng.below(500),
        rng.next_u64(),
        rng.next_u64() & 0xffff_ffff_ffff,
        rng.below(10_000_000),
        rng.next_u64() as u32,
        rng.next_u64() as u32
    );
    let mut i = 0;
    while out.len() - start < size.saturating_sub(120) {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"name":"E2E_VAR_{i}","value":"value \"{i}\" with some text: {:016x}"}}"#,
            rng.next_u64()
        );
        i += 1;
    }
    out.push_str(r#"]}],"restartPolicy":"Never","terminationGracePeriodSeconds":0},"status":{"phase":"Pending","qosClass":"Burstable"}}"#);
}

/// Generates a synthetic audit log of at least `size` bytes into `w`.
/// Returns (bytes, events).
pub fn generate(
    spec: &Spec,
    size: u64,
    seed: u64,
    w: &mut dyn Write,
) -> std::io::Result<(u64, u64)> {
    let targets = targets(spec);
    let mut rng = Rng::new(seed);
    let tests: Vec<String> = (0..300)
        .map(|i| {
            let sig = SIGS[i % SIGS.len()];
            if i % 3 == 0 {
                format!("[{sig}] Feature {i} should work as specified number {i} [Conformance]")
            } else {
                format!("[{sig}] Feature {i} should behave when scenario {i} happens")
            }
        })
        .collect();
    let mut line = String::with_capacity(16 << 10);
    let mut path = String::with_capacity(256);
    let mut written = 0u64;
    let mut events = 0u64;
    while written < size {
        line.clear();
        path.clear();
        let (verb, kind, write) = if rng.percent(3) {
            let (v, p) = UNMAPPED[rng.below(UNMAPPED.len())];
            path.push_str(p);
            (v, "Status", false)
        } else {
            let t = &targets[rng.below(targets.len())];
            fill_path(&t.path, &mut rng, &mut path);
            if t.verb == "list" && rng.percent(30) {
                path.push_str("?limit=500\\u0026resourceVersion=0");
            } else if t.verb == "watch" || (t.verb == "list" && rng.percent(10)) {
                path.push_str("?allowWatchBookmarks=true\\u0026resourceVersion=1234\\u0026timeout=7m3s\\u0026watch=true");
            }
            (t.verb, t.kind.as_str(), t.write)
        };
        let ua: String = if rng.percent(35) {
            format!(
                "e2e.test/v1.36.0 (linux/amd64) kubernetes/5f8c2a1 -- {}",
                tests[rng.below(tests.len())]
            )
        } else {
            SYSTEM_AGENTS[rng.below(SYSTEM_AGENTS.len())].to_string()
        };
        let name = format!("obj-{:x}", rng.next_u64() & 0xffff);
        let code = if rng.percent(90) { 200 } else { 404 };
        let _ = write!(
            line,
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}","stage":"ResponseComplete","requestURI":"{path}","verb":"{verb}","user":{{"username":"system:serviceaccount:e2e:default","uid":"{:08x}","groups":["system:serviceaccounts","system:authenticated"],"extra":{{"authentication.kubernetes.io/credential-id":["JTI={:032x}"]}}}},"sourceIPs":["172.18.0.1"],"userAgent":"{}","objectRef":{{"resource":"pods","namespace":"e2e-tests-ns-{}","name":"{name}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":{code}}},"#,
            rng.next_u64() as u32,
            rng.below(65536),
            rng.below(4096),
            rng.below(4096),
            rng.next_u64() & 0xffff_ffff_ffff,
            rng.next_u64() as u32,
            (rng.next_u64() as u128) << 64 | rng.next_u64() as u128,
            ua.replace('"', "\\\""),
            rng.below(500),
        );
        // Body sizes: most events small, a long tail up to ~7 KB.
        let budget = match rng.below(10) {
            0..=3 => 0,
            4..=6 => 300 + rng.below(1500),
            7 | 8 => 1500 + rng.below(3000),
            _ => 4000 + rng.below(3200),
        };
        if write && budget > 0 {
            line.push_str(r#""requestObject":"#);
            body(kind, &name, budget, &mut rng, &mut line);
            line.push(',');
        }
        if rng.percent(40) && budget > 0 {
            line.push_str(r#""responseObject":"#);
            body(kind, &name, budget / 2 + 200, &mut rng, &mut line);
            line.push(',');
        }
        let _ = writeln!(
            line,
            r#""requestReceivedTimestamp":"2026-04-20T06:47:56.{:06}Z","stageTimestamp":"2026-04-20T06:47:56.{:06}Z","annotations":{{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"e2e\" of ClusterRole \"cluster-admin\" to ServiceAccount \"default/e2e\""}}}}"#,
            rng.below(1_000_000),
            rng.below(1_000_000)
        );
        w.write_all(line.as_bytes())?;
        written += line.len() as u64;
        events += 1;
    }
    w.flush()?;
    Ok((written, events))
}

/// Peak resident memory of this process (VmHWM), in bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn measure(
    spec: &Spec,
    file: &Path,
    threads: usize,
    strict: bool,
    label: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let opts = AnalyzeOptions {
        spec: PathBuf::new(),
        audit: vec![file.display().to_string()],
        read: ReadOptions {
            threads,
            progress: false,
            strict,
            ..Default::default()
        },
        ..Default::default()
    };
    let t = Instant::now();
    let (report, summary) = analyze_with(spec, &ConformanceData::default(), &opts)?;
    let secs = t.elapsed().as_secs_f64();
    writeln!(
        out,
        "{label:<6} {:>10.1} MB in {:>6.2} s = {:>7.1} MB/s decompressed ({:.1} MB/s of file), {} events ({:.2} M/s), {} tested endpoints, {} unmapped",
        summary.bytes as f64 / 1e6,
        secs,
        summary.bytes as f64 / 1e6 / secs,
        summary.raw_bytes as f64 / 1e6 / secs,
        report.events.total,
        report.events.total as f64 / 1e6 / secs,
        report.tested_endpoints,
        report.events.unmapped
    )?;
    Ok(())
}

fn compress(src: &Path, dst: &Path, zstd_level: Option<i32>) -> anyhow::Result<()> {
    let mut input = std::fs::File::open(src)?;
    let output = BufWriter::with_capacity(1 << 20, std::fs::File::create(dst)?);
    match zstd_level {
        Some(level) => {
            let mut enc = zstd::stream::write::Encoder::new(output, level)?;
            std::io::copy(&mut input, &mut enc)?;
            enc.finish()?.flush()?;
        }
        None => {
            let mut enc = flate2::write::GzEncoder::new(output, flate2::Compression::default());
            std::io::copy(&mut input, &mut enc)?;
            enc.finish()?.flush()?;
        }
    }
    Ok(())
}

/// Runs the benchmark, printing results to `out`.
pub fn run_bench(a: &BenchArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let spec = Spec::from_file(&a.spec)?;
    let (dir, temp) = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            (d.clone(), false)
        }
        None => {
            let d =
                std::env::temp_dir().join(format!("prova-coverage-bench-{}", std::process::id()));
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            (d, true)
        }
    };
    let mut generated = Vec::new();
    let file = match &a.input {
        Some(f) => f.clone(),
        None => {
            let size = parse_size(&a.size)?;
            let f = dir.join("audit.log");
            let t = Instant::now();
            let mut w = BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(&f).with_context(|| format!("creating {}", f.display()))?,
            );
            let (bytes, events) = generate(&spec, size, a.seed, &mut w)?;
            drop(w);
            writeln!(
                out,
                "generated {} ({:.1} MB, {} events, mean {} B/event) in {:.1} s",
                f.display(),
                bytes as f64 / 1e6,
                events,
                bytes / events.max(1),
                t.elapsed().as_secs_f64()
            )?;
            generated.push(f.clone());
            f
        }
    };
    // Warm the page cache so the first measurement is not a cold-disk one.
    {
        let mut fh = std::fs::File::open(&file)?;
        std::io::copy(&mut fh, &mut std::io::sink())?;
    }
    measure(&spec, &file, a.threads, false, "plain", out)?;
    if a.strict {
        measure(&spec, &file, a.threads, true, "strict", out)?;
    }
    if a.gz {
        let gz = dir.join("audit.log.gz");
        let t = Instant::now();
        compress(&file, &gz, None)?;
        writeln!(
            out,
            "gzip -6: {:.1} MB in {:.1} s",
            std::fs::metadata(&gz)?.len() as f64 / 1e6,
            t.elapsed().as_secs_f64()
        )?;
        generated.push(gz.clone());
        measure(&spec, &gz, a.threads, false, ".gz", out)?;
    }
    if a.zst {
        let zst = dir.join("audit.log.zst");
        compress(&file, &zst, Some(3))?;
        generated.push(zst.clone());
        measure(&spec, &zst, a.threads, false, ".zst", out)?;
    }
    if let Some(rss) = peak_rss() {
        writeln!(out, "peak RSS of this process: {:.1} MB", rss as f64 / 1e6)?;
    }
    if a.python {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/json_loads.py");
        match std::process::Command::new("python3")
            .arg(&script)
            .arg(&file)
            .output()
        {
            Ok(o) => {
                write!(
                    out,
                    "python json.loads: {}",
                    String::from_utf8_lossy(&o.stdout)
                )?;
                if !o.status.success() {
                    writeln!(out, "python failed: {}", String::from_utf8_lossy(&o.stderr))?;
                }
            }
            Err(e) => writeln!(out, "python3 not runnable ({}): {e}", script.display())?,
        }
    }
    if !a.keep {
        for f in &generated {
            let _ = std::fs::remove_file(f);
        }
        if temp {
            let _ = std::fs::remove_dir(&dir);
        }
    } else {
        writeln!(out, "kept files in {}", dir.display())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("1XB").is_err());
    }
}
