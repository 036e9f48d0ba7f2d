//! From a descriptor to a runnable job: decode, fetch the steps, find every
//! plugin, let each validate its parameters, check every template. Every
//! problem is collected, so one `prova validate` shows them all.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prova_core::descriptor::{self, JobDescriptor, PluginRef, RetryParameters, StepDescriptor};
use prova_core::diag::{Diagnostic, Diagnostics, InvalidDescriptor};
use prova_core::node::{Format, parse_document};
use prova_core::template::Template;

use crate::plugin::Params;
use crate::plugin::{PrepareCtx, PreparedReporter, Registry, ReporterRole, TargetSource};
use crate::runner::pipeline::PipelineStep;

/// A job ready to run.
pub struct PreparedJob {
    pub descriptor: JobDescriptor,
    /// The descriptor file, if it came from one.
    pub source: Option<PathBuf>,
    /// The descriptor as submitted, as JSON.
    pub descriptor_json: serde_json::Value,
    pub tests: Vec<PreparedTest>,
    pub run_reporters: Vec<(String, Arc<dyn PreparedReporter>)>,
    pub final_reporters: Vec<(String, Arc<dyn PreparedReporter>)>,
    pub warnings: Vec<Diagnostic>,
}

/// A test ready to run.
pub struct PreparedTest {
    pub name: String,
    pub disabled: bool,
    pub retry: RetryParameters,
    pub acquire_timeout: Duration,
    pub release_timeout: Duration,
    pub targets: Arc<dyn TargetSource>,
    pub steps: Vec<PipelineStep>,
    pub cleanup: Vec<PipelineStep>,
}

impl PreparedJob {
    /// Whether any reporter reads events.
    pub fn needs_events(&self) -> bool {
        self.run_reporters
            .iter()
            .chain(&self.final_reporters)
            .any(|(_, r)| r.needs_events())
    }

    /// The descriptor with every test's fetched steps, as ConTest's
    /// "extended descriptor": a retry or resume needs no files.
    pub fn extended_descriptor(&self) -> serde_json::Value {
        let steps = |s: &[PipelineStep]| s.iter().map(|p| p.desc.to_json()).collect::<Vec<_>>();
        serde_json::json!({
            "JobDescriptor": self.descriptor_json,
            "TestStepsDescriptors": self.tests.iter().map(|t| serde_json::json!({
                "TestName": t.name,
                "TestSteps": steps(&t.steps),
                "CleanupSteps": steps(&t.cleanup),
            })).collect::<Vec<_>>(),
        })
    }

    /// Adds a final reporter (e.g. `prova run --junit PATH`).
    pub fn add_final_reporter(&mut self, name: &str, reporter: Arc<dyn PreparedReporter>) {
        self.final_reporters.push((name.to_string(), reporter));
    }
}

/// Why a descriptor file could not be prepared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] InvalidDescriptor),
}

/// Reads and prepares a descriptor file.
pub fn prepare_file(path: &Path, registry: &Registry) -> Result<PreparedJob, PrepareError> {
    let text = read_bounded(path)?;
    Ok(prepare_str(
        &text,
        Format::from_path(path),
        Some(path),
        registry,
    )?)
}

/// Reads at most one byte more than a document may have, so a huge file
/// is refused (with the limit) without being read whole.
fn read_bounded(path: &Path) -> Result<String, PrepareError> {
    use std::io::Read;
    let max = prova_core::node::MAX_DOCUMENT_BYTES;
    let read_error = |source| PrepareError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(max as u64 + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() > max {
        let mut diags = Diagnostics::new(Some(path));
        diags.error(
            &Default::default(),
            Some(prova_core::node::Pos { line: 1, col: 1 }),
            format!("file is larger than {max} bytes: expected a descriptor of at most {max}"),
        );
        return Err(diags.into_result().expect_err("has an error").into());
    }
    String::from_utf8(bytes).map_err(|_| {
        read_error(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        ))
    })
}

/// Prepares a descriptor given as text. `source` names the file in
/// diagnostics and anchors relative paths.
pub fn prepare_str(
    text: &str,
    format: Format,
    source: Option<&Path>,
    registry: &Registry,
) -> Result<PreparedJob, InvalidDescriptor> {
    prepare_str_in(text, format, source, None, registry)
}

/// [`prepare_str`], with every file the descriptor names confined to
/// `files_root` (the server's `--files-root`).
pub fn prepare_str_in(
    text: &str,
    format: Format,
    source: Option<&Path>,
    files_root: Option<&Path>,
    registry: &Registry,
) -> Result<PreparedJob, InvalidDescriptor> {
    let mut diags = Diagnostics::new(source);
    let root = match parse_document(text, format) {
        Ok(root) => root,
        Err(e) => {
            diags.error(&Default::default(), e.pos, e.message);
            return Err(diags.into_result().expect_err("has an error"));
        }
    };
    let dir = source.and_then(Path::parent);
    let ctx = PrepareCtx {
        descriptor_dir: dir,
        files_root,
    };
    let desc = descriptor::decode_job(&root, &mut diags);
    let Some(desc) = desc else {
        return Err(diags.into_result().expect_err("has an error"));
    };

    let mut tests = Vec::new();
    for t in &desc.tests {
        let targets = prepare_target_manager(t, registry, &ctx, &mut diags);
        let fetched = fetch(&t.test_fetcher, "test fetcher", registry, &ctx, &mut diags);
        let cleanup_fetched = t
            .cleanup_fetcher
            .as_ref()
            .and_then(|c| fetch(c, "cleanup fetcher", registry, &ctx, &mut diags));
        let name = fetched
            .as_ref()
            .and_then(|f| f.test_name.clone())
            .unwrap_or_default();
        if fetched.is_some() && name.trim().is_empty() {
            diags.error(
                &t.test_fetcher.params_path.key("TestName"),
                t.test_fetcher.params.pos,
                "missing: expected a test name",
            );
        }
        let steps = fetched.map(|f| f.steps).unwrap_or_default();
        let cleanup = cleanup_fetched.map(|f| f.steps).unwrap_or_default();
        if steps.is_empty() && !diags.has_errors() {
            diags.error(
                &t.test_fetcher.params_path,
                t.test_fetcher.params.pos,
                "expected at least one test step",
            );
        }
        descriptor::check_unique_labels(steps.iter().chain(&cleanup), &mut diags);
        let prepared_steps = prepare_steps(&steps, &[], registry, &ctx, &mut diags);
        let prepared_cleanup = prepare_steps(&cleanup, &steps, registry, &ctx, &mut diags);
        if let Some(targets) = targets {
            tests.push(PreparedTest {
                name,
                disabled: t.disabled,
                retry: t.retry,
                acquire_timeout: t.acquire_timeout,
                release_timeout: t.release_timeout,
                targets,
                steps: prepared_steps,
                cleanup: prepared_cleanup,
            });
        }
    }
    let run_reporters = prepare_reporters(
        &desc.reporting.run_reporters,
        ReporterRole::Run,
        registry,
        &ctx,
        &mut diags,
    );
    let final_reporters = prepare_reporters(
        &desc.reporting.final_reporters,
        ReporterRole::Final,
        registry,
        &ctx,
        &mut diags,
    );

    let warnings = diags.into_result()?;
    Ok(PreparedJob {
        descriptor_json: root.to_json(),
        descriptor: desc,
        source: source.map(Path::to_path_buf),
        tests,
        run_reporters,
        final_reporters,
        warnings,
    })
}

/// Validates a test-steps document (what the URI fetcher reads) on its own.
pub fn validate_steps_str(
    text: &str,
    format: Format,
    source: Option<&Path>,
    registry: &Registry,
) -> Diagnostics {
    let mut diags = Diagnostics::new(source);
    match parse_document(text, format) {
        Ok(root) => {
            let steps = descriptor::decode_steps_document(&root, &mut diags);
            let dir = source.and_then(Path::parent);
            let ctx = PrepareCtx {
                descriptor_dir: dir,
                files_root: None,
            };
            prepare_steps(&steps, &[], registry, &ctx, &mut diags);
        }
        Err(e) => diags.error(&Default::default(), e.pos, e.message),
    }
    diags
}

/// Whether a document is a test-steps document rather than a job.
pub fn is_steps_document(text: &str, format: Format) -> bool {
    parse_document(text, format).is_ok_and(|root| descriptor::is_steps_document(&root))
}

fn unknown_plugin(kind: &str, r: &PluginRef, known: Vec<&str>, diags: &mut Diagnostics) {
    diags.error(
        &r.name_path,
        r.name_pos,
        format!(
            "unknown {kind} {:?}: expected one of {}",
            r.name,
            known.join(", ")
        ),
    );
}

fn prepare_target_manager(
    t: &descriptor::TestDescriptor,
    registry: &Registry,
    ctx: &PrepareCtx<'_>,
    diags: &mut Diagnostics,
) -> Option<Arc<dyn TargetSource>> {
    let r = &t.target_manager;
    if r.name.is_empty() {
        return None;
    }
    match registry.find_target_manager(&r.name) {
        Some(tm) => tm.prepare(
            &r.params,
            &r.params_path,
            &t.target_manager_release,
            ctx,
            diags,
        ),
        None => {
            unknown_plugin("target manager", r, registry.target_manager_names(), diags);
            None
        }
    }
}

fn fetch(
    r: &PluginRef,
    kind: &str,
    registry: &Registry,
    ctx: &PrepareCtx<'_>,
    diags: &mut Diagnostics,
) -> Option<crate::plugin::FetchedSteps> {
    if r.name.is_empty() {
        return None;
    }
    match registry.find_fetcher(&r.name) {
        Some(f) => f.fetch(&r.params, &r.params_path, ctx, diags),
        None => {
            unknown_plugin(kind, r, registry.fetcher_names(), diags);
            None
        }
    }
}

/// A template for an error message: quoted whole when short; a long one
/// (say 15,000 pipes) is cut, so the message stays readable and small.
fn quote_template(v: &str) -> String {
    const WHOLE: usize = 80;
    const SHOWN: usize = 40;
    if v.chars().count() <= WHOLE {
        return format!("{v:?}");
    }
    let head: String = v.chars().take(SHOWN).chain(['…']).collect();
    format!("{head:?} ({} bytes)", v.len())
}

/// Finds each step's plugin, lets it validate its parameters, and checks
/// templates: they must parse, and `StringVar "label.x"` must name a step
/// that runs earlier (in `earlier` or before it in `steps`).
fn prepare_steps(
    steps: &[StepDescriptor],
    earlier: &[StepDescriptor],
    registry: &Registry,
    ctx: &PrepareCtx<'_>,
    diags: &mut Diagnostics,
) -> Vec<PipelineStep> {
    let mut out = Vec::new();
    // Labels of the steps that run before the current one; a set so that
    // checking every reference stays linear in the number of steps.
    let mut before: HashSet<&str> = earlier.iter().map(|e| e.label.as_str()).collect();
    for s in steps {
        for p in s.parameters.iter() {
            for (j, v) in p.values.iter().enumerate() {
                if !v.contains("{{") {
                    continue;
                }
                let path = p.path.index(j);
                match Template::parse(v) {
                    Ok(t) => {
                        for (label, var) in t.var_refs() {
                            if !before.contains(label.as_str()) {
                                diags.error(
                                    &path,
                                    p.pos,
                                    format!("variable \"{label}.{var}\" refers to step {label:?}, which does not run before step {:?}", s.label),
                                );
                            }
                        }
                    }
                    Err(e) => diags.error(
                        &path,
                        p.pos,
                        format!(
                            "invalid template {}: at byte {}: {e}",
                            quote_template(v),
                            e.offset
                        ),
                    ),
                }
            }
        }
        before.insert(s.label.as_str());
        if s.name.is_empty() {
            continue;
        }
        match registry.find_step(&s.name) {
            Some(plugin) => {
                let mut params = Params::new(s, ctx, diags);
                let prepared = plugin.prepare(&mut params);
                let said_why = !params.ok();
                params.finish();
                match prepared {
                    Some(prepared) => out.push(PipelineStep {
                        desc: Arc::new(s.clone()),
                        prepared,
                        events: plugin.events().into(),
                    }),
                    // A plugin that refuses must say why; never drop a step.
                    None if !said_why => diags.error(
                        &s.path,
                        s.pos,
                        format!("step {:?} ({}) could not be prepared", s.label, s.name),
                    ),
                    None => {}
                }
            }
            None => diags.error(
                &s.path.key("name"),
                s.pos,
                format!(
                    "unknown step {:?}: expected one of {}",
                    s.name,
                    registry.step_names().join(", ")
                ),
            ),
        }
    }
    out
}

fn prepare_reporters(
    refs: &[PluginRef],
    role: ReporterRole,
    registry: &Registry,
    ctx: &PrepareCtx<'_>,
    diags: &mut Diagnostics,
) -> Vec<(String, Arc<dyn PreparedReporter>)> {
    let mut out = Vec::new();
    for r in refs {
        if r.name.is_empty() {
            continue;
        }
        match registry.find_reporter(&r.name) {
            Some(rep) => {
                if let Some(p) = rep.prepare(role, &r.params, &r.params_path, ctx, diags) {
                    out.push((r.name.clone(), p));
                }
            }
            None => unknown_plugin("reporter", r, registry.reporter_names(), diags),
        }
    }
    out
}

/// The descriptor of a stored job with its fetched steps written in
/// (literal fetchers), from its extended descriptor: a retry or a resume
/// runs exactly the steps the job was created with, whatever happened to
/// the files since.
pub fn descriptor_from_extended(extended: &str) -> Result<serde_json::Value, String> {
    let ext: serde_json::Value = serde_json::from_str(extended)
        .map_err(|e| format!("unreadable extended descriptor: {e}"))?;
    let mut desc = ext
        .get("JobDescriptor")
        .cloned()
        .ok_or("extended descriptor without JobDescriptor")?;
    let steps = ext
        .get("TestStepsDescriptors")
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    let Some(tests) = find_ci_mut(&mut desc, "TestDescriptors").and_then(|t| t.as_array_mut())
    else {
        return Err("extended descriptor without TestDescriptors".into());
    };
    // Tests that failed to prepare are not in TestStepsDescriptors; the
    // stored job was valid, so every test is there, in order.
    for (test, fetched) in tests.iter_mut().zip(steps) {
        let Some(obj) = test.as_object_mut() else {
            continue;
        };
        obj.retain(|k, _| {
            ![
                "testfetchername",
                "testfetcherfetchparameters",
                "cleanupfetchername",
                "cleanupfetcherfetchparameters",
            ]
            .contains(&k.to_ascii_lowercase().as_str())
        });
        obj.insert("TestFetcherName".into(), "literal".into());
        obj.insert(
            "TestFetcherFetchParameters".into(),
            serde_json::json!({ "TestName": fetched["TestName"], "Steps": fetched["TestSteps"] }),
        );
        if fetched["CleanupSteps"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
        {
            obj.insert("CleanupFetcherName".into(), "literal".into());
            obj.insert(
                "CleanupFetcherFetchParameters".into(),
                serde_json::json!({ "Steps": fetched["CleanupSteps"] }),
            );
        }
    }
    Ok(desc)
}

fn find_ci_mut<'a>(v: &'a mut serde_json::Value, key: &str) -> Option<&'a mut serde_json::Value> {
    let obj = v.as_object_mut()?;
    let k = obj.keys().find(|k| k.eq_ignore_ascii_case(key))?.clone();
    obj.get_mut(&k)
}
