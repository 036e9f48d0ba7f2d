//! `prova plugins`: what a descriptor can name, and the events each step
//! declares (the same list the engine checks every emitted event against).

use std::process::ExitCode;

use serde_json::json;

use crate::cli::PluginsArgs;
use crate::output::{out, outln};

pub fn run(args: PluginsArgs) -> anyhow::Result<ExitCode> {
    let registry = super::registry();
    let steps: Vec<serde_json::Value> = registry
        .steps()
        .map(|(name, step)| {
            let events: Vec<_> = step
                .events()
                .iter()
                .map(|e| json!({ "name": e.name, "doc": e.doc }))
                .collect();
            json!({ "name": name, "events": events })
        })
        .collect();
    if args.json {
        let v = json!({
            "steps": steps,
            "target_managers": registry.target_manager_names(),
            "test_fetchers": registry.fetcher_names(),
            "reporters": registry.reporter_names(),
        });
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("steps (and the events they emit):")?;
    for (name, step) in registry.steps() {
        outln!("  {name}")?;
        for e in step.events() {
            outln!("    {:<24} {}", e.name, e.doc)?;
        }
    }
    let list = |names: Vec<&str>| names.join(", ");
    outln!("target managers: {}", list(registry.target_manager_names()))?;
    outln!("test fetchers:   {}", list(registry.fetcher_names()))?;
    out!("reporters:       {}\n", list(registry.reporter_names()))?;
    Ok(ExitCode::SUCCESS)
}
