//! `prova plugins`: every plugin the binary registers, and the events each
//! step declares (the list the engine checks emitted events against).

mod support;

use std::collections::HashSet;

use support::Env;

#[test]
fn every_step_declares_its_events_once_each_with_a_description() {
    let env = Env::new();
    let (code, out, err) = env.run(&["plugins", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let steps = v["steps"].as_array().unwrap();
    let names: HashSet<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for want in [
        "cmd", "docker", "k8sjob", "sshcmd", "echo", "sleep", "waitport",
    ] {
        assert!(
            names.contains(want),
            "step {want} is not registered: {names:?}"
        );
    }
    for s in steps {
        let step = s["name"].as_str().unwrap();
        let mut seen = HashSet::new();
        for e in s["events"].as_array().unwrap() {
            let name = e["name"].as_str().unwrap();
            assert!(seen.insert(name), "{step} declares {name} twice");
            assert!(
                name.chars().next().is_some_and(|c| c.is_ascii_uppercase()),
                "{step}: event {name:?} is not CamelCase as ConTest's are"
            );
            assert!(
                !e["doc"].as_str().unwrap().trim().is_empty(),
                "{step}: event {name} has no description"
            );
        }
    }
    let cmd = steps.iter().find(|s| s["name"] == "cmd").unwrap();
    let cmd_events: Vec<&str> = cmd["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(cmd_events, ["CmdStart", "CmdStdout", "CmdStderr", "CmdEnd"]);
    for kind in ["target_managers", "test_fetchers", "reporters"] {
        assert!(!v[kind].as_array().unwrap().is_empty(), "no {kind}");
    }
}

#[test]
fn the_text_listing_names_each_step_with_its_events() {
    let env = Env::new();
    let (code, out, err) = env.run(&["plugins"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\n  cmd\n    CmdStart "), "{out}");
    assert!(out.contains("reporters:"), "{out}");
    assert!(
        !env.db().exists(),
        "listing plugins must not create a store"
    );
}
