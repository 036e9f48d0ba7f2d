//! The built-in plugins, one module each, and the table that registers them.

pub mod fetchers;

pub mod reporters;
pub mod steps;
pub mod targets;

use crate::plugin::Registry;

/// Every built-in plugin, under its ConTest name (matched case-insensitively).
pub fn registry() -> Registry {
    let mut r = Registry::default();
    r.step("cmd", steps::cmd::Cmd)
        .step("sleep", steps::sleep::Sleep)
        .step("echo", steps::echo::Echo)
        .step("randecho", steps::randecho::RandEcho)
        .step("variables", steps::variables::Variables)
        .step("waitport", steps::waitport::WaitPort)
        .target_manager("TargetList", targets::target_list::TargetList)
        .target_manager(
            "CSVFileTargetManager",
            targets::csv_file::CsvFileTargetManager,
        )
        .fetcher("literal", fetchers::literal::Literal)
        .fetcher("URI", fetchers::uri::Uri)
        .reporter("TargetSuccess", reporters::target_success::TargetSuccess)
        .reporter("noop", reporters::noop::Noop)
        .reporter("junit", reporters::junit::JUnit);
    r
}
