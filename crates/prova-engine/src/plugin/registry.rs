//! Plugins by kind and name.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::kinds::{Reporter, TargetManager, TestFetcher};
use super::step::Step;

/// Plugins by kind and case-insensitive name.
#[derive(Clone, Default)]
pub struct Registry {
    steps: BTreeMap<String, (String, Arc<dyn Step>)>,
    target_managers: BTreeMap<String, (String, Arc<dyn TargetManager>)>,
    fetchers: BTreeMap<String, (String, Arc<dyn TestFetcher>)>,
    reporters: BTreeMap<String, (String, Arc<dyn Reporter>)>,
}

impl Registry {
    pub fn step(&mut self, name: &str, step: impl Step) -> &mut Self {
        self.steps.insert(
            name.to_ascii_lowercase(),
            (name.to_string(), Arc::new(step)),
        );
        self
    }
    pub fn target_manager(&mut self, name: &str, tm: impl TargetManager + 'static) -> &mut Self {
        self.target_managers
            .insert(name.to_ascii_lowercase(), (name.to_string(), Arc::new(tm)));
        self
    }
    pub fn fetcher(&mut self, name: &str, f: impl TestFetcher + 'static) -> &mut Self {
        self.fetchers
            .insert(name.to_ascii_lowercase(), (name.to_string(), Arc::new(f)));
        self
    }
    pub fn reporter(&mut self, name: &str, r: impl Reporter + 'static) -> &mut Self {
        self.reporters
            .insert(name.to_ascii_lowercase(), (name.to_string(), Arc::new(r)));
        self
    }

    pub fn find_step(&self, name: &str) -> Option<&Arc<dyn Step>> {
        self.steps.get(&name.to_ascii_lowercase()).map(|(_, s)| s)
    }
    pub fn find_target_manager(&self, name: &str) -> Option<&Arc<dyn TargetManager>> {
        self.target_managers
            .get(&name.to_ascii_lowercase())
            .map(|(_, s)| s)
    }
    pub fn find_fetcher(&self, name: &str) -> Option<&Arc<dyn TestFetcher>> {
        self.fetchers
            .get(&name.to_ascii_lowercase())
            .map(|(_, s)| s)
    }
    pub fn find_reporter(&self, name: &str) -> Option<&Arc<dyn Reporter>> {
        self.reporters
            .get(&name.to_ascii_lowercase())
            .map(|(_, s)| s)
    }

    /// Every step plugin, by its name as registered.
    pub fn steps(&self) -> impl Iterator<Item = (&str, &Arc<dyn Step>)> {
        self.steps.values().map(|(n, s)| (n.as_str(), s))
    }

    pub fn step_names(&self) -> Vec<&str> {
        self.steps.values().map(|(n, _)| n.as_str()).collect()
    }
    pub fn target_manager_names(&self) -> Vec<&str> {
        self.target_managers
            .values()
            .map(|(n, _)| n.as_str())
            .collect()
    }
    pub fn fetcher_names(&self) -> Vec<&str> {
        self.fetchers.values().map(|(n, _)| n.as_str()).collect()
    }
    pub fn reporter_names(&self) -> Vec<&str> {
        self.reporters.values().map(|(n, _)| n.as_str()).collect()
    }
}
