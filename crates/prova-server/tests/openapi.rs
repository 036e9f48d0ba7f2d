//! The OpenAPI document of `prova serve` is complete and true:
//!
//! - every operation has a summary, a description and a tag; every request
//!   body and every answer a schema (a 2xx JSON answer a real one, not an
//!   empty or any-object schema; an error its `{Error}` or `{Msg}` body);
//!   every `$ref` resolves; every path parameter is declared;
//! - the routes the router serves behind the token (`/api/v1` and
//!   ConTest's) and the document's operations are the same set: the paths
//!   come from the router's own list ([`prova_server::api::served_paths`]),
//!   and the methods each one answers are found by asking it;
//! - real answers of a running server validate against their schemas,
//!   with no field the schema does not name.

mod audit_corpus;
mod web_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};
use web_support::{Server, TOKEN, client, sleep_job};

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "patch"];

fn document() -> Value {
    serde_json::to_value(prova_server::openapi::document()).unwrap()
}

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_string(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// What a `#/components/...` reference points at, if anything.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` anywhere in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// Why `schema` does not describe a body (empty, or an object of anything),
/// or `None` when it does.
fn vacuous(doc: &Value, schema: &Value) -> Option<String> {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => match resolve(doc, r) {
            Some(s) => s,
            None => return Some(format!("$ref {r} points at nothing")),
        },
        None => schema,
    };
    let Some(m) = schema.as_object() else {
        return Some(format!("not a schema: {schema}"));
    };
    let composed = ["allOf", "oneOf", "anyOf"].iter().any(|k| {
        m.get(*k)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    });
    if composed || m.contains_key("enum") {
        return None;
    }
    match m.get("type") {
        None => Some(format!("no type: {schema}")),
        Some(t) if t == "object" => {
            let props = m.get("properties").and_then(Value::as_object);
            if props.is_none_or(Map::is_empty) {
                Some(format!("an object with no properties: {schema}"))
            } else {
                None
            }
        }
        Some(t) if t == "array" => match m.get("items") {
            Some(items) => vacuous(doc, items).map(|why| format!("items: {why}")),
            None => Some(format!("an array of anything: {schema}")),
        },
        Some(_) => None,
    }
}

#[test]
fn every_operation_has_a_summary_and_every_body_a_schema() {
    let doc = document();
    let ops = operations(&doc);
    assert!(ops.len() >= 20, "only {} operations", ops.len());
    let mut faults = Vec::new();
    for (method, path, op) in &ops {
        let at = format!("{} {path}", method.to_uppercase());
        for field in ["summary", "description", "operationId"] {
            if op[field].as_str().is_none_or(|s| s.trim().is_empty()) {
                faults.push(format!("{at}: no {field}"));
            }
        }
        if op["tags"].as_array().is_none_or(Vec::is_empty) {
            faults.push(format!("{at}: no tag"));
        }
        // Every `{name}` of the path is a declared path parameter.
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in path.split('{').skip(1).filter_map(|s| s.split('}').next()) {
            if !declared.contains(name) {
                faults.push(format!("{at}: path parameter {name} is not declared"));
            }
        }
        if let Some(body) = op.get("requestBody") {
            let content = body["content"].as_object();
            if content.is_none_or(Map::is_empty) {
                faults.push(format!("{at}: a request body with no content"));
            }
            for (ct, media) in content.into_iter().flatten() {
                match media.get("schema") {
                    None => faults.push(format!("{at}: request body {ct} has no schema")),
                    Some(s) => {
                        if let Some(why) = vacuous(&doc, s) {
                            faults.push(format!("{at}: request body {ct}: {why}"));
                        }
                    }
                }
            }
        }
        let responses = op["responses"].as_object().unwrap();
        if !responses.keys().any(|s| s.starts_with('2')) {
            faults.push(format!("{at}: no 2xx answer"));
        }
        for (status, response) in responses {
            let content = response.get("content").and_then(Value::as_object);
            // 408 is the timeout layer's, without a body.
            if status == "408" {
                continue;
            }
            let Some(content) = content.filter(|c| !c.is_empty()) else {
                faults.push(format!("{at} {status}: no content (no body schema)"));
                continue;
            };
            for (ct, media) in content {
                let Some(schema) = media.get("schema") else {
                    faults.push(format!("{at} {status} {ct}: no schema"));
                    continue;
                };
                if ct == "application/json"
                    && let Some(why) = vacuous(&doc, schema)
                {
                    faults.push(format!("{at} {status}: {why}"));
                }
                if status.starts_with('4') || status.starts_with('5') {
                    let error = ["ErrorBody", "ContestError"]
                        .map(|n| json!(format!("#/components/schemas/{n}")));
                    if ct == "application/json" && !error.contains(&schema["$ref"]) {
                        faults.push(format!(
                            "{at} {status}: an error answer that is not ErrorBody or ContestError: {schema}"
                        ));
                    }
                }
            }
        }
        for (status, want) in [("401", "ErrorBody"), ("500", "")] {
            if responses.get(status).is_none() {
                faults.push(format!("{at}: no {status} answer {want}"));
            }
        }
    }
    let mut ids = BTreeSet::new();
    for (method, path, op) in &ops {
        if let Some(id) = op["operationId"].as_str()
            && !ids.insert(id)
        {
            faults.push(format!(
                "{} {path}: operationId {id} is not unique",
                method.to_uppercase()
            ));
        }
    }
    // A type alias (JobId = i64) becomes a component named after the
    // primitive unless its fields say `value_type`.
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            faults.push(format!(
                "component {name}: named after a primitive or an alias"
            ));
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        if resolve(&doc, &r).is_none() {
            faults.push(format!("$ref {r} points at nothing"));
        }
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}

#[test]
fn the_checks_above_see_a_vacuous_schema_and_a_dangling_ref() {
    let doc = json!({"components": {"schemas": {
        "Empty": {"type": "object"},
        "Good": {"type": "object", "properties": {"JobID": {"type": "integer"}}}
    }}});
    assert!(vacuous(&doc, &json!({})).is_some());
    assert!(vacuous(&doc, &json!({"type": "object"})).is_some());
    assert!(vacuous(&doc, &json!({"$ref": "#/components/schemas/Empty"})).is_some());
    assert!(vacuous(&doc, &json!({"$ref": "#/components/schemas/Missing"})).is_some());
    assert!(resolve(&doc, "#/components/schemas/Missing").is_none());
    assert_eq!(
        vacuous(&doc, &json!({"$ref": "#/components/schemas/Good"})),
        None
    );
    assert_eq!(vacuous(&doc, &json!({"type": "string"})), None);
    assert!(vacuous(&doc, &json!({"type": "array", "items": {}})).is_some());
    assert_eq!(
        vacuous(
            &doc,
            &json!({"type": "array", "items": {"$ref": "#/components/schemas/Good"}})
        ),
        None
    );
}

/// A concrete path for a template: ids that parse, a file name.
fn concrete(path: &str) -> String {
    path.replace("{*path}", "x")
        .replace("{path}", "x")
        .replace("{id}", "1")
        .replace("{a}", "1")
        .replace("{b}", "2")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_and_the_router_serve_the_same_routes() {
    let server = Server::start(Some(TOKEN)).await;
    let paths = prova_server::api::served_paths(&server.state);
    for must in [
        "/api/v1/jobs",
        "/api/v1/jobs/{id}/events",
        "/start",
        "/version",
    ] {
        assert!(paths.iter().any(|p| p == must), "{must} not in {paths:?}");
    }
    // The methods each path answers: anything but 405 (the router's
    // answer to a method a route does not have).
    let mut served = BTreeSet::new();
    for path in &paths {
        for m in METHODS {
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            let r = client()
                .request(method, format!("{}{}", server.url, concrete(path)))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            if r.status() != StatusCode::METHOD_NOT_ALLOWED {
                served.insert((m.to_string(), path.replace("{*path}", "{path}")));
            }
        }
    }
    let documented: BTreeSet<(String, String)> = operations(&document())
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in the document: {undocumented:?}\nin the document but not served: {unserved:?}"
    );
    server.stop().await;
}

// --- real answers against their schemas --------------------------------

/// Validates answers against the document's schemas, strictly: a field
/// that the schema does not name is an error too.
struct Schemas {
    doc: Value,
    /// The document's components, each object schema closed
    /// (`unevaluatedProperties: false`) unless it is a part of an `allOf`,
    /// whose whole closes instead.
    components: Value,
}

impl Schemas {
    fn new() -> Schemas {
        let doc = document();
        let mut parts = BTreeSet::new();
        allof_parts(&doc, &mut parts);
        let mut components = doc["components"].clone();
        for (name, schema) in components["schemas"].as_object_mut().unwrap() {
            let whole = format!("#/components/schemas/{name}");
            close(schema, parts.contains(&whole));
        }
        Schemas { doc, components }
    }

    /// The schema of an answer, as the document gives it.
    fn answer(&self, method: &str, path: &str, status: u16, ct: &str) -> Value {
        let s = &self.doc["paths"][path][method]["responses"][status.to_string()]["content"][ct]["schema"];
        assert!(
            s.is_object(),
            "the document has no {ct} schema for {method} {path} {status}"
        );
        s.clone()
    }

    /// The errors of `body` against the schema of that answer.
    fn errors(&self, method: &str, path: &str, status: u16, body: &Value) -> Vec<String> {
        let schema = self.answer(method, path, status, "application/json");
        self.errors_against(schema, body)
    }

    /// The errors of `body` against `schema` (whose `$ref`s point into the
    /// document's components).
    fn errors_against(&self, mut schema: Value, body: &Value) -> Vec<String> {
        close(&mut schema, false);
        let mut root = match schema {
            Value::Object(m) => m,
            other => panic!("not a schema: {other}"),
        };
        root.insert("components".into(), self.components.clone());
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap_or_else(|e| panic!("not a schema: {e}"));
        validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// The errors of a request body against its schema (as documented:
    /// fields the server does not read are allowed).
    fn request_errors(&self, method: &str, path: &str, ct: &str, body: &Value) -> Vec<String> {
        let s = &self.doc["paths"][path][method]["requestBody"]["content"][ct]["schema"];
        let mut root = s.as_object().cloned().unwrap_or_else(|| {
            panic!("the document has no {ct} request schema for {method} {path}")
        });
        root.insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::draft202012::new(&Value::Object(root)).unwrap();
        validator.iter_errors(body).map(|e| e.to_string()).collect()
    }

    fn check(&self, method: &str, path: &str, status: u16, body: &Value) {
        let errors = self.errors(method, path, status, body);
        assert!(
            errors.is_empty(),
            "{} {path} {status}: the answer does not fit its schema:\n{}\n{body:#}",
            method.to_uppercase(),
            errors.join("\n")
        );
    }
}

/// The `$ref`s that are direct parts of an `allOf`.
fn allof_parts(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(parts) = m.get("allOf").and_then(Value::as_array) {
                out.extend(
                    parts
                        .iter()
                        .filter_map(|p| p["$ref"].as_str().map(str::to_string)),
                );
            }
            m.values().for_each(|x| allof_parts(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| allof_parts(x, out)),
        _ => {}
    }
}

/// Closes object schemas (no field the schema does not name), recursively,
/// except `allOf` parts (the `allOf` itself is closed) and schemas that
/// say what other fields may hold (`additionalProperties`).
fn close(schema: &mut Value, is_part: bool) {
    let Some(m) = schema.as_object_mut() else {
        return;
    };
    let object = m.contains_key("properties") || m.contains_key("allOf");
    if object && !is_part && !m.contains_key("additionalProperties") {
        m.insert("unevaluatedProperties".into(), json!(false));
    }
    if let Some(Value::Array(parts)) = m.get_mut("allOf") {
        parts.iter_mut().for_each(|p| close(p, true));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(parts)) = m.get_mut(key) {
            parts.iter_mut().for_each(|p| close(p, false));
        }
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(|p| close(p, false));
    }
    if let Some(items) = m.get_mut("items") {
        close(items, false);
    }
}

/// An authed request; its status and JSON body (null when not JSON).
async fn call(server: &Server, method: Method, uri: &str) -> (u16, Value) {
    let r = client()
        .request(method, format!("{}{uri}", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A ConTest form POST; its status and JSON body.
async fn form(server: &Server, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(format!("{}{path}", server.url))
        .bearer_auth(TOKEN)
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Two tests on target `a`: `good` runs `true`, `bad` runs `false`.
const FAILING_JOB: &str = "JobName: mixed\nTags: [openapi]\nTestDescriptors:\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: good\n      Steps: [{name: cmd, label: run, parameters: {executable: [\"true\"]}}]\n  - TargetManagerName: TargetList\n    TargetManagerAcquireParameters: {Targets: [{ID: a}]}\n    TestFetcherName: literal\n    TestFetcherFetchParameters:\n      TestName: bad\n      Steps: [{name: cmd, label: run, parameters: {executable: [\"false\"]}}]\nReporting:\n  RunReporters: [{name: TargetSuccess, parameters: {SuccessExpression: \"=100%\"}}]\n  FinalReporters: [{name: noop}]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_fit_their_schemas() {
    let server = Server::start(Some(TOKEN)).await;
    let schemas = Schemas::new();
    let within = Duration::from_secs(30);

    // A job that ends, with a failing test: submit, list, status, report,
    // events, junit, retry (all, and only what failed), history, compare.
    let r = client()
        .post(format!("{}/api/v1/jobs?requestor=ci", server.url))
        .bearer_auth(TOKEN)
        .body(FAILING_JOB)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    schemas.check("post", "/api/v1/jobs", 201, &created);
    let done = created["JobID"].as_i64().unwrap();
    server.wait_state(done, "Completed", within).await;

    let (code, v) = call(&server, Method::GET, "/api/v1/jobs").await;
    assert_eq!(code, 200);
    schemas.check("get", "/api/v1/jobs", 200, &v);

    let (code, v) = call(&server, Method::GET, &format!("/api/v1/jobs/{done}")).await;
    assert_eq!(code, 200);
    assert_eq!(v["Verdict"], "failed", "{v:#}");
    schemas.check("get", "/api/v1/jobs/{id}", 200, &v);
    // The strict check is real: a field the schema does not name, or a
    // missing one, is an error.
    let mut extra = v.clone();
    extra["Bogus"] = json!(1);
    assert!(
        !schemas
            .errors("get", "/api/v1/jobs/{id}", 200, &extra)
            .is_empty()
    );
    let mut nested = v.clone();
    nested["RunStatuses"][0]["TestStatuses"][0]["Bogus"] = json!(1);
    assert!(
        !schemas
            .errors("get", "/api/v1/jobs/{id}", 200, &nested)
            .is_empty()
    );
    let mut missing = v.clone();
    missing.as_object_mut().unwrap().remove("JobID");
    assert!(
        !schemas
            .errors("get", "/api/v1/jobs/{id}", 200, &missing)
            .is_empty()
    );

    let (code, v) = call(&server, Method::GET, &format!("/api/v1/jobs/{done}/report")).await;
    assert_eq!(code, 200);
    assert!(v["JobReport"]["FinalReports"][0].is_object(), "{v:#}");
    schemas.check("get", "/api/v1/jobs/{id}/report", 200, &v);

    let (code, v) = call(&server, Method::GET, &format!("/api/v1/jobs/{done}/events")).await;
    assert_eq!(code, 200);
    assert!(v.as_array().unwrap().len() > 10, "{v:#}");
    schemas.check("get", "/api/v1/jobs/{id}/events", 200, &v);

    // The same events as Server-Sent Events: each `data` an Event.
    let r = client()
        .get(format!(
            "{}/api/v1/jobs/{done}/events?follow=true",
            server.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = r.text().await.unwrap();
    let item =
        schemas.answer("get", "/api/v1/jobs/{id}/events", 200, "application/json")["items"].clone();
    let mut sent = 0;
    for block in text.split("\n\n").filter(|b| b.contains("event: event")) {
        let data = block
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap();
        let errors = schemas.errors_against(item.clone(), &serde_json::from_str(data).unwrap());
        assert!(errors.is_empty(), "an SSE event: {errors:?}\n{data}");
        sent += 1;
    }
    assert_eq!(sent, v.as_array().unwrap().len(), "{text}");
    assert!(text.contains("event: end"), "{text}");

    let r = client()
        .get(format!("{}/api/v1/jobs/{done}/junit", server.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xml")
    );
    assert_eq!(
        schemas.answer("get", "/api/v1/jobs/{id}/junit", 200, "application/xml")["type"],
        "string"
    );

    let (code, v) = call(
        &server,
        Method::GET,
        &format!("/api/v1/jobs/{done}/artifacts"),
    )
    .await;
    assert_eq!(code, 200);
    schemas.check("get", "/api/v1/jobs/{id}/artifacts", 200, &v);

    let (code, v) = call(&server, Method::POST, &format!("/api/v1/jobs/{done}/retry")).await;
    assert_eq!(code, 201, "{v}");
    schemas.check("post", "/api/v1/jobs/{id}/retry", 201, &v);
    server
        .wait_state(v["JobID"].as_i64().unwrap(), "Completed", within)
        .await;
    let (code, v) = call(
        &server,
        Method::POST,
        &format!("/api/v1/jobs/{done}/retry?failed=true"),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["Tests"], json!(["bad"]));
    schemas.check("post", "/api/v1/jobs/{id}/retry", 201, &v);
    let again = v["JobID"].as_i64().unwrap();
    server.wait_state(again, "Completed", within).await;

    let (code, v) = call(
        &server,
        Method::GET,
        "/api/v1/history?test=bad&job_name=mixed",
    )
    .await;
    assert_eq!(code, 200);
    // The job and its two retries.
    assert_eq!(
        v["Histories"][0]["Entries"].as_array().unwrap().len(),
        3,
        "{v:#}"
    );
    schemas.check("get", "/api/v1/history", 200, &v);
    let (code, v) = call(
        &server,
        Method::GET,
        &format!("/api/v1/compare/{done}/{again}"),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    schemas.check("get", "/api/v1/compare/{a}/{b}", 200, &v);

    // A running job: status mid-run, pause, resume, cancel.
    let running = server.submit(&sleep_job("naps", "30s")).await;
    server.wait_state(running, "Started", within).await;
    let (_, v) = call(&server, Method::GET, &format!("/api/v1/jobs/{running}")).await;
    schemas.check("get", "/api/v1/jobs/{id}", 200, &v);
    for (verb, then) in [
        ("pause", "Paused"),
        ("resume", "Started"),
        ("cancel", "Cancelled"),
    ] {
        let path = format!("/api/v1/jobs/{{id}}/{verb}");
        let (code, v) = call(
            &server,
            Method::POST,
            &path.replace("{id}", &running.to_string()),
        )
        .await;
        assert_eq!(code, 202, "{verb}: {v}");
        assert_eq!(v["Requested"], verb);
        schemas.check("post", &path, 202, &v);
        server.wait_state(running, then, within).await;
    }

    // Errors: the API's {Error}, with its Errors for a bad descriptor.
    let (code, v) = call(&server, Method::GET, "/api/v1/jobs/424242").await;
    assert_eq!(code, 404);
    schemas.check("get", "/api/v1/jobs/{id}", 404, &v);
    let (code, v) = call(&server, Method::GET, "/api/v1/jobs/abc").await;
    assert_eq!(code, 400);
    schemas.check("get", "/api/v1/jobs/{id}", 400, &v);
    let (code, v) = call(&server, Method::POST, &format!("/api/v1/jobs/{done}/pause")).await;
    assert_eq!(code, 409);
    schemas.check("post", "/api/v1/jobs/{id}/pause", 409, &v);
    let r = client()
        .post(format!("{}/api/v1/jobs", server.url))
        .bearer_auth(TOKEN)
        .body("JobName: x\nRuns: nope\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert!(v["Errors"].is_array(), "{v}");
    schemas.check("post", "/api/v1/jobs", 422, &v);
    let r = client()
        .get(format!("{}/api/v1/jobs", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    schemas.check("get", "/api/v1/jobs", 401, &r.json().await.unwrap());

    // The rest of /api/v1.
    let (_, v) = call(&server, Method::GET, "/api/v1/version").await;
    schemas.check("get", "/api/v1/version", 200, &v);
    let (_, v) = call(&server, Method::GET, "/api/v1/audit/hits").await;
    assert_eq!(v["sink"], "off");
    schemas.check("get", "/api/v1/audit/hits", 200, &v);
    let (code, v) = call(&server, Method::GET, "/api/v1/audit/report").await;
    assert_eq!(code, 503);
    schemas.check("get", "/api/v1/audit/report", 503, &v);
    let (code, v) = call(&server, Method::POST, "/api/v1/audit/events").await;
    assert_eq!(code, 503);
    schemas.check("post", "/api/v1/audit/events", 503, &v);
    let (_, v) = call(&server, Method::GET, "/api/v1/openapi.json").await;
    schemas.check("get", "/api/v1/openapi.json", 200, &v);
    // Swagger UI reads the same document, without the token.
    let r = client()
        .get(format!("{}/api/docs/openapi.json", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), v);

    // ConTest's API: its envelope, and {Msg} on failure.
    let id = done.to_string();
    let (code, v) = form(&server, "/status", &[("jobID", &id)]).await;
    assert_eq!(code, 200);
    assert_eq!(v["Data"]["Status"]["State"], "JobStateCompleted");
    assert_eq!(v["Type"], "ResponseTypeStatus");
    schemas.check("post", "/status", 200, &v);
    let (code, v) = form(
        &server,
        "/list",
        &[("states", "completed"), ("tags", "openapi")],
    )
    .await;
    assert_eq!(code, 200);
    schemas.check("post", "/list", 200, &v);
    let (_, v) = form(&server, "/version", &[]).await;
    assert_eq!(v["Type"], "ResponseTypeVersion");
    assert_eq!(v["Data"]["Version"], 5);
    schemas.check("post", "/version", 200, &v);
    let (code, v) = form(&server, "/retry", &[("jobID", &id), ("requestor", "ci")]).await;
    assert_eq!(code, 200, "{v}");
    schemas.check("post", "/retry", 200, &v);
    let job = sleep_job("contest", "30s");
    let (code, v) = form(&server, "/start", &[("jobDesc", &job), ("requestor", "ci")]).await;
    assert_eq!(code, 200, "{v}");
    schemas.check("post", "/start", 200, &v);
    let started = v["Data"]["JobID"].as_i64().unwrap();
    server.wait_state(started, "Started", within).await;
    let (_, v) = form(&server, "/status", &[("jobID", &started.to_string())]).await;
    schemas.check("post", "/status", 200, &v);
    let (code, v) = form(&server, "/stop", &[("jobID", &started.to_string())]).await;
    assert_eq!(code, 200, "{v}");
    schemas.check("post", "/stop", 200, &v);
    let (code, v) = form(&server, "/status", &[("jobID", "x")]).await;
    assert_eq!(code, 400);
    schemas.check("post", "/status", 400, &v);
    let (code, v) = form(&server, "/start", &[]).await;
    assert_eq!(code, 400);
    schemas.check("post", "/start", 400, &v);
    // axum's own rejections of a form, in plain text, as documented.
    let r = client()
        .post(format!("{}/status", server.url))
        .bearer_auth(TOKEN)
        .body("jobID=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let (code, _) = form(&server, "/status", &[("jobID", "1"), ("jobID", "2")]).await;
    assert_eq!(code, 422);
    for status in ["413", "415", "422"] {
        let doc = &schemas.doc["paths"]["/status"]["post"]["responses"][status]["content"];
        assert_eq!(doc["text/plain"]["schema"]["type"], "string", "{status}");
    }
    server.wait_state(started, "Cancelled", within).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_sinks_answers_fit_their_schemas() {
    let spec = prova_coverage::spec::Spec::from_file(&audit_corpus::spec_path()).unwrap();
    let server = Server::start_with(Some(TOKEN), |c| c.audit.spec = Some(Arc::new(spec))).await;
    let schemas = Schemas::new();
    let events = audit_corpus::with_e2e_agents(audit_corpus::events());
    let batch = audit_corpus::event_list(&events);
    let errors = schemas.request_errors(
        "post",
        "/api/v1/audit/events",
        "application/json",
        &serde_json::from_slice(&batch).unwrap(),
    );
    assert!(errors.is_empty(), "the corpus batch: {errors:?}");
    let r = client()
        .post(format!("{}/api/v1/audit/events", server.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(v["Stored"].as_u64().unwrap() > 0, "{v}");
    schemas.check("post", "/api/v1/audit/events", 200, &v);

    let (code, v) = call(&server, Method::GET, "/api/v1/audit/hits?limit=5").await;
    assert_eq!(code, 200);
    assert_eq!(v["hits"].as_array().unwrap().len(), 5);
    assert!(v["next"].is_string(), "{v}");
    schemas.check("get", "/api/v1/audit/hits", 200, &v);
    let (code, v) = call(&server, Method::GET, "/api/v1/audit/hits?since=yesterday").await;
    assert_eq!(code, 400);
    schemas.check("get", "/api/v1/audit/hits", 400, &v);

    let (code, v) = call(&server, Method::GET, "/api/v1/audit/report").await;
    assert_eq!(code, 200);
    assert!(
        v["tests"].as_array().is_some_and(|t| !t.is_empty()),
        "no tests in the report"
    );
    schemas.check("get", "/api/v1/audit/report", 200, &v);
    server.stop().await;
}
