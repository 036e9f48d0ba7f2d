//! A test's inputs, as a fingerprint: what makes two executions of a test
//! "the same inputs", so that mixed outcomes between them mean flakiness
//! rather than a change.
//!
//! The inputs of a ConTest test are its entry in the job's extended
//! descriptor (`TestStepsDescriptors[]` with its `TestName`): every step,
//! its parameters and the cleanup steps, as they were fetched for that job.
//! Targets are not part of them: target managers pick from pools, and a
//! test that fails on one machine of a pool and passes on another is what
//! a reader wants called flaky. A JUnit case's inputs are those of the
//! ConTest test whose step brought it back.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hex digits kept of the SHA-256: 64 bits tell a job name's few dozen
/// input versions apart.
const FINGERPRINT_HEX: usize = 16;

/// Fingerprints of every test of one extended descriptor, by test name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestInputs {
    by_test: std::collections::HashMap<String, String>,
}

impl TestInputs {
    /// Reads `{TestStepsDescriptors: [{TestName, ...}]}`. An extended
    /// descriptor that is not that (an older store, a job that never
    /// prepared) gives no fingerprints: its executions are then compared
    /// with no other.
    pub fn from_extended_descriptor(text: &str) -> TestInputs {
        let mut by_test = std::collections::HashMap::new();
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return TestInputs { by_test };
        };
        let Some(tests) = v.get("TestStepsDescriptors").and_then(Value::as_array) else {
            return TestInputs { by_test };
        };
        for t in tests {
            let Some(name) = t.get("TestName").and_then(Value::as_str) else {
                continue;
            };
            by_test
                .entry(name.to_string())
                .or_insert_with(|| fingerprint(t));
        }
        TestInputs { by_test }
    }

    /// The fingerprint of the test named `test`, if the descriptor has it.
    pub fn of(&self, test: &str) -> Option<&str> {
        self.by_test.get(test).map(String::as_str)
    }
}

/// The first hex digits of the SHA-256 of `v` written canonically (object
/// keys sorted at every depth), so key order never changes a fingerprint.
pub fn fingerprint(v: &Value) -> String {
    let mut text = String::new();
    canonical(v, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(FINGERPRINT_HEX);
    for b in digest.iter().take(FINGERPRINT_HEX / 2) {
        use std::fmt::Write;
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_a_fingerprint_but_a_parameter_does() {
        let a = json!({"TestName": "T", "TestSteps": [{"name": "cmd", "parameters": {"executable": ["true"], "args": ["1"]}}]});
        let b: Value = serde_json::from_str(
            r#"{"TestSteps": [{"parameters": {"args": ["1"], "executable": ["true"]}, "name": "cmd"}], "TestName": "T"}"#,
        )
        .unwrap();
        let c = json!({"TestName": "T", "TestSteps": [{"name": "cmd", "parameters": {"executable": ["true"], "args": ["2"]}}]});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a), fingerprint(&c));
        assert_eq!(fingerprint(&a).len(), FINGERPRINT_HEX);
    }

    #[test]
    fn reads_each_test_of_an_extended_descriptor() {
        let ext = json!({"JobDescriptor": {}, "TestStepsDescriptors": [
            {"TestName": "A", "TestSteps": [{"name": "echo"}], "CleanupSteps": []},
            {"TestName": "B", "TestSteps": [{"name": "sleep"}], "CleanupSteps": []},
        ]})
        .to_string();
        let inputs = TestInputs::from_extended_descriptor(&ext);
        assert!(inputs.of("A").is_some());
        assert_ne!(inputs.of("A"), inputs.of("B"));
        assert_eq!(inputs.of("C"), None);
        assert_eq!(
            TestInputs::from_extended_descriptor("not json").of("A"),
            None
        );
    }
}
