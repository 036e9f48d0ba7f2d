//! The sunburst of APISnoop's 1.37.0 release file: one arc per endpoint,
//! level and category, each endpoint coloured by its class, and zooms that
//! draw only the focused subtree, linked both ways.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use prova_coverage::Report;
use prova_coverage::sunburst::{SunburstError, SunburstOptions, sunburst_svg, tree};

fn release() -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpus/k8s/apisnoop-coverage/1.37.0.json");
    let bytes = std::fs::read(&path).unwrap();
    Report::from_json(&bytes, &path.display().to_string()).unwrap()
}

fn svg(report: &Report, focus: Option<&str>) -> String {
    sunburst_svg(
        report,
        &SunburstOptions {
            focus: focus.map(str::to_string),
            link_base: "/coverage".into(),
            ..Default::default()
        },
    )
    .unwrap()
}

/// (data-kind, data-path, data-status, fill) of every arc, and the links
/// around them.
struct Arcs {
    arcs: Vec<(String, String, Option<String>, String)>,
    hrefs: BTreeMap<String, String>,
}

fn arcs(svg: &str) -> Arcs {
    let doc = roxmltree::Document::parse(svg).expect("well-formed XML");
    let mut arcs = Vec::new();
    let mut hrefs = BTreeMap::new();
    for n in doc.descendants().filter(|n| n.has_tag_name("path")) {
        let Some(kind) = n.attribute("data-kind") else {
            continue;
        };
        let path = n.attribute("data-path").unwrap().to_string();
        let href = n.parent().unwrap().attribute("href").unwrap().to_string();
        hrefs.insert(path.clone(), href);
        arcs.push((
            kind.to_string(),
            path,
            n.attribute("data-status").map(str::to_string),
            n.attribute("fill").unwrap().to_string(),
        ));
    }
    Arcs { arcs, hrefs }
}

fn count(a: &Arcs, kind: &str) -> usize {
    a.arcs.iter().filter(|x| x.0 == kind).count()
}

#[test]
fn one_arc_per_endpoint_category_and_level_coloured_by_class() {
    let report = release();
    let a = arcs(&svg(&report, None));
    let e = &report.endpoints;
    assert_eq!(count(&a, "endpoint"), e.len());
    assert_eq!(count(&a, "level"), 3);
    let categories: BTreeSet<(&str, &str)> = e
        .iter()
        .map(|x| (x.level.as_str(), x.category.as_str()))
        .collect();
    assert_eq!(count(&a, "category"), categories.len());

    let by_status = |s: &str| a.arcs.iter().filter(|x| x.2.as_deref() == Some(s)).count();
    assert_eq!(
        by_status("conformance-tested"),
        e.iter().filter(|x| x.conf_tested).count()
    );
    assert_eq!(
        by_status("tested"),
        e.iter().filter(|x| x.tested && !x.conf_tested).count()
    );
    assert_eq!(
        by_status("untested"),
        e.iter().filter(|x| !x.tested).count()
    );
    assert!(by_status("tested") > 0 && by_status("untested") > 0);

    // Untested: APISnoop's pale grey. Tested and conformance tested: their
    // category's colour, the same for every endpoint of the category.
    let mut cat_fill: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for (kind, path, status, fill) in &a.arcs {
        match (kind.as_str(), status.as_deref()) {
            ("endpoint", Some("untested")) => assert_eq!(fill, "rgb(244,244,244)", "{path}"),
            ("endpoint", _) => {
                let cat = path.rsplit_once('/').unwrap().0.to_string();
                cat_fill.entry(cat).or_default().insert(fill);
            }
            ("level", _) => {
                let want = match path.as_str() {
                    "alpha" => "rgb(230,25,75)",
                    "beta" => "rgb(0,130,200)",
                    _ => "rgb(60,180,75)",
                };
                assert_eq!(fill, want);
            }
            _ => {}
        }
    }
    for (cat, fills) in &cat_fill {
        assert_eq!(fills.len(), 1, "{cat}: {fills:?}");
        let cat_arc = a.arcs.iter().find(|x| &x.1 == cat).unwrap();
        assert!(fills.contains(cat_arc.3.as_str()), "{cat}");
    }

    // Each arc links to its own zoom.
    assert_eq!(a.hrefs["stable"], "/coverage?focus=stable");
    assert_eq!(
        a.hrefs["stable/apps/createAppsV1NamespacedDeployment"],
        "/coverage?focus=stable%2Fapps%2FcreateAppsV1NamespacedDeployment"
    );
}

#[test]
fn a_focus_draws_its_subtree_and_links_one_level_up() {
    let report = release();
    let t = tree(&report);
    let apps = t.find("stable/apps").unwrap();
    let text = svg(&report, Some("stable/apps"));
    let a = arcs(&text);
    assert_eq!(count(&a, "endpoint"), apps.endpoints as usize);
    assert_eq!(
        apps.endpoints as usize,
        report
            .endpoints
            .iter()
            .filter(|e| e.category == "apps" && e.level.as_str() == "stable")
            .count()
    );
    assert_eq!(count(&a, "level") + count(&a, "category"), 0);
    assert!(a.arcs.iter().all(|x| x.1.starts_with("stable/apps/")));
    let doc = roxmltree::Document::parse(&text).unwrap();
    let centre = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("sb-centre"))
        .unwrap();
    assert_eq!(centre.attribute("data-path"), Some("stable/apps"));
    assert_eq!(
        centre.parent().unwrap().attribute("href"),
        Some("/coverage?focus=stable")
    );

    let a = arcs(&svg(&report, Some("beta")));
    assert_eq!(count(&a, "level"), 0);
    assert_eq!(
        count(&a, "category"),
        t.find("beta").unwrap().children.len()
    );
    assert_eq!(
        count(&a, "endpoint"),
        t.find("beta").unwrap().endpoints as usize
    );

    // An endpoint: its centre alone, linking to its category.
    let text = svg(
        &report,
        Some("stable/apps/createAppsV1NamespacedDeployment/"),
    );
    assert_eq!(count(&arcs(&text), "endpoint"), 0);
    assert!(text.contains("href=\"/coverage?focus=stable%2Fapps\""));

    // The whole root links nowhere up.
    assert!(!svg(&report, None).contains("zoom-out"));
}

#[test]
fn a_focus_that_names_nothing_is_an_error_naming_it() {
    let report = release();
    for bad in ["gamma", "stable/nope", "stable/apps/noSuchOp", "stab"] {
        let err = sunburst_svg(
            &report,
            &SunburstOptions {
                focus: Some(bad.into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(
            matches!(&err, SunburstError::FocusNotFound(f) if f == bad),
            "{bad}"
        );
        assert!(err.to_string().contains(bad));
    }
}

#[test]
fn names_with_markup_are_escaped() {
    let mut report = release();
    report.endpoints.truncate(3);
    report.endpoints[0].category = "a<b>&\"c".into();
    report.endpoints[0].endpoint = "op<script>".into();
    let text = svg(&report, None);
    roxmltree::Document::parse(&text).expect("still well-formed");
    assert!(!text.contains("<script>"));
    assert_eq!(count(&arcs(&text), "endpoint"), 3);
}
