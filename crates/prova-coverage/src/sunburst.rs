//! APISnoop's coverage sunburst as one SVG, drawn on the server.
//!
//! Rings, from the centre out: level (stable, beta, alpha) → category (the
//! API group, APISnoop's `category`) → endpoint (operation id); every
//! endpoint weighs 1, so an arc's angle counts endpoints. Colours follow
//! APISnoop (`src/lib/colours.js`): alpha rgb(230,25,75), beta
//! rgb(0,130,200), stable rgb(60,180,75); each category has a fixed
//! colour (here from the Okabe–Ito palette, chosen by the category's name
//! so it is the same in every zoom and release). An endpoint is:
//!
//! - **conformance tested**: its category's colour, solid, white outline;
//! - **tested** (not by a conformance test): its category's colour, lighter,
//!   hatched, with a dashed outline;
//! - **untested**: pale grey rgb(244,244,244) with a grey outline.
//!
//! Fill, hatching and outline differ, not opacity alone (WCAG 1.4.1: the
//! classes read in greyscale too), and a legend says which is which.
//!
//! **Zoom without scripts**: every arc is a link to `?focus=PATH`
//! (`stable`, `stable/apps`, `stable/apps/createAppsV1NamespacedDeployment`);
//! [`sunburst_svg`] with that focus draws the focused node as the centre
//! (a link one level up) and its descendants as the rings, so each zoom
//! state has a URL, as APISnoop's. Every arc carries `id`, `data-path`,
//! `data-kind` (`level`, `category`, `endpoint`), `data-status` (endpoints)
//! and a `<title>` for the tooltip, so a page can add hover or a side
//! panel with a small script later.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::render::html::esc;
use crate::report::{EndpointCoverage, Report};
use crate::spec::Level;

/// Why a sunburst could not be drawn.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SunburstError {
    #[error(
        "focus {0:?} names nothing in the report: expected LEVEL, LEVEL/CATEGORY or LEVEL/CATEGORY/ENDPOINT, e.g. stable/apps"
    )]
    FocusNotFound(String),
}

/// How to draw.
#[derive(Debug, Clone)]
pub struct SunburstOptions {
    /// The node to zoom to (see the module docs); `None`: everything.
    pub focus: Option<String>,
    /// Width and height of the circle, in px (the legend adds below).
    pub size: u32,
    /// Where arcs link to: `{link_base}?focus=PATH` (e.g. `/coverage`).
    pub link_base: String,
}

impl Default for SunburstOptions {
    fn default() -> Self {
        SunburstOptions {
            focus: None,
            size: 640,
            link_base: String::new(),
        }
    }
}

/// How an endpoint is covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    ConformanceTested,
    Tested,
    Untested,
}

impl Status {
    pub fn of(e: &EndpointCoverage) -> Status {
        if e.conf_tested {
            Status::ConformanceTested
        } else if e.tested {
            Status::Tested
        } else {
            Status::Untested
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::ConformanceTested => "conformance-tested",
            Status::Tested => "tested",
            Status::Untested => "untested",
        }
    }
}

/// What a node of the sunburst is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Root,
    Level,
    Category,
    Endpoint,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Root => "root",
            NodeKind::Level => "level",
            NodeKind::Category => "category",
            NodeKind::Endpoint => "endpoint",
        }
    }
}

/// A node: the whole report, a level, a category or an endpoint, with the
/// counts a side panel shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// `""`, `stable`, `stable/apps`, `stable/apps/createAppsV1...`.
    pub path: String,
    pub label: String,
    /// Endpoints under it (1 for an endpoint).
    pub endpoints: u32,
    pub tested: u32,
    pub conformance_tested: u32,
    /// An endpoint's status.
    pub status: Option<Status>,
    pub children: Vec<Node>,
}

impl Node {
    /// The node at `path` (`""` is this one).
    pub fn find(&self, path: &str) -> Option<&Node> {
        if path.is_empty() || self.path == path {
            return Some(self);
        }
        self.children
            .iter()
            .find(|c| path == c.path || path.starts_with(&format!("{}/", c.path)))
            .and_then(|c| c.find(path))
    }

    /// One level up from `path` (`""` from a level).
    pub fn parent_path(path: &str) -> &str {
        path.rsplit_once('/').map_or("", |(p, _)| p)
    }
}

fn level_order(l: Level) -> u8 {
    match l {
        Level::Stable => 0,
        Level::Beta => 1,
        Level::Alpha => 2,
    }
}

/// The report as a tree: levels (stable, beta, alpha) → categories (by
/// name) → endpoints (conformance tested, tested, untested; then by name,
/// so each colour class sits together in its category, as APISnoop sorts).
pub fn tree(report: &Report) -> Node {
    let mut levels: BTreeMap<(u8, &str), BTreeMap<&str, Vec<&EndpointCoverage>>> = BTreeMap::new();
    for e in &report.endpoints {
        levels
            .entry((level_order(e.level), e.level.as_str()))
            .or_default()
            .entry(e.category.as_str())
            .or_default()
            .push(e);
    }
    let mut root = Node {
        kind: NodeKind::Root,
        path: String::new(),
        label: format!("Kubernetes {}", report.release),
        endpoints: 0,
        tested: 0,
        conformance_tested: 0,
        status: None,
        children: Vec::new(),
    };
    for ((_, level), cats) in levels {
        let mut ln = Node {
            kind: NodeKind::Level,
            path: level.to_string(),
            label: level.to_string(),
            endpoints: 0,
            tested: 0,
            conformance_tested: 0,
            status: None,
            children: Vec::new(),
        };
        for (cat, mut eps) in cats {
            eps.sort_by(|a, b| (Status::of(a), &a.endpoint).cmp(&(Status::of(b), &b.endpoint)));
            let cpath = format!("{level}/{cat}");
            let mut cn = Node {
                kind: NodeKind::Category,
                label: if cat.is_empty() {
                    "(none)".into()
                } else {
                    cat.to_string()
                },
                path: cpath.clone(),
                endpoints: 0,
                tested: 0,
                conformance_tested: 0,
                status: None,
                children: Vec::new(),
            };
            for e in eps {
                let st = Status::of(e);
                cn.children.push(Node {
                    kind: NodeKind::Endpoint,
                    path: format!("{cpath}/{}", e.endpoint),
                    label: e.endpoint.clone(),
                    endpoints: 1,
                    tested: u32::from(st != Status::Untested),
                    conformance_tested: u32::from(st == Status::ConformanceTested),
                    status: Some(st),
                    children: Vec::new(),
                });
            }
            sum_children(&mut cn);
            ln.children.push(cn);
        }
        sum_children(&mut ln);
        root.children.push(ln);
    }
    sum_children(&mut root);
    root
}

fn sum_children(n: &mut Node) {
    n.endpoints = n.children.iter().map(|c| c.endpoints).sum();
    n.tested = n.children.iter().map(|c| c.tested).sum();
    n.conformance_tested = n.children.iter().map(|c| c.conformance_tested).sum();
}

/// APISnoop's level colours.
fn level_colour(label: &str) -> &'static str {
    match label {
        "alpha" => "rgb(230,25,75)",
        "beta" => "rgb(0,130,200)",
        _ => "rgb(60,180,75)",
    }
}

/// Okabe–Ito, without its yellow (too pale beside the untested grey) and
/// grey (the untested colour).
const CATEGORY_COLOURS: [&str; 6] = [
    "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7",
];

/// A category's colour: by its name (FNV-1a), the same in every zoom.
fn category_colour(name: &str) -> &'static str {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    CATEGORY_COLOURS[h as usize % CATEGORY_COLOURS.len()]
}

const UNTESTED_FILL: &str = "rgb(244,244,244)";

fn percent(part: u32, whole: u32) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.0}%", f64::from(part) * 100.0 / f64::from(whole))
    }
}

/// The tooltip of a node.
fn describe(n: &Node) -> String {
    match n.status {
        Some(st) => format!("{}: {}", n.path, st.as_str().replace('-', " ")),
        None => format!(
            "{}: {} endpoints, {} tested ({}), {} conformance tested ({})",
            if n.path.is_empty() { &n.label } else { &n.path },
            n.endpoints,
            n.tested,
            percent(n.tested, n.endpoints),
            n.conformance_tested,
            percent(n.conformance_tested, n.endpoints)
        ),
    }
}

/// `?focus=` values: unreserved characters as they are, the rest
/// percent-encoded (`/` too, so a path is one query value).
fn query_value(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

/// An element id from a path: `sb-` and the path with anything but
/// letters, digits, `-` and `_` as `.`; unique as operation ids are.
fn element_id(path: &str) -> String {
    let mut id = String::from("sb-");
    for c in path.chars() {
        id.push(if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '.'
        });
    }
    id
}

/// The outline of the ring sector between `r0` and `r1`, from angle `a0`
/// to `a1` (radians, clockwise from 12 o'clock), centred on (c, c).
fn sector(c: f64, r0: f64, r1: f64, a0: f64, a1: f64) -> String {
    let pt = |r: f64, a: f64| (c + r * a.sin(), c - r * a.cos());
    let span = a1 - a0;
    if span >= std::f64::consts::TAU - 1e-9 {
        // A whole ring: two half arcs each way (one arc cannot close).
        let (o1, o2) = (pt(r1, 0.0), pt(r1, std::f64::consts::PI));
        let (i1, i2) = (pt(r0, 0.0), pt(r0, std::f64::consts::PI));
        return format!(
            "M{:.2},{:.2}A{r1:.2},{r1:.2} 0 1 1 {:.2},{:.2}A{r1:.2},{r1:.2} 0 1 1 {:.2},{:.2}Z\
             M{:.2},{:.2}A{r0:.2},{r0:.2} 0 1 0 {:.2},{:.2}A{r0:.2},{r0:.2} 0 1 0 {:.2},{:.2}Z",
            o1.0, o1.1, o2.0, o2.1, o1.0, o1.1, i1.0, i1.1, i2.0, i2.1, i1.0, i1.1
        );
    }
    let large = u8::from(span > std::f64::consts::PI);
    let (p0, p1, p2, p3) = (pt(r1, a0), pt(r1, a1), pt(r0, a1), pt(r0, a0));
    format!(
        "M{:.2},{:.2}A{r1:.2},{r1:.2} 0 {large} 1 {:.2},{:.2}L{:.2},{:.2}A{r0:.2},{r0:.2} 0 {large} 0 {:.2},{:.2}Z",
        p0.0, p0.1, p1.0, p1.1, p2.0, p2.1, p3.0, p3.1
    )
}

struct Drawing<'a> {
    out: String,
    centre: f64,
    ring: f64,
    opts: &'a SunburstOptions,
}

impl Drawing<'_> {
    fn href(&self, path: &str) -> String {
        if path.is_empty() {
            esc(&self.opts.link_base)
        } else {
            esc(&format!(
                "{}?focus={}",
                self.opts.link_base,
                query_value(path)
            ))
        }
    }

    /// Draws `n`'s children in ring `depth` (1 = innermost) between angles
    /// `a0` and `a1`, and theirs further out. `colour`: the category's,
    /// once known.
    fn ring(&mut self, n: &Node, depth: u32, a0: f64, a1: f64, colour: Option<&'static str>) {
        if n.endpoints == 0 {
            return;
        }
        let per = (a1 - a0) / f64::from(n.endpoints);
        let mut a = a0;
        let r0 = self.ring * f64::from(depth);
        let r1 = r0 + self.ring;
        for child in &n.children {
            let b = a + per * f64::from(child.endpoints);
            let d = sector(self.centre, r0, r1, a, b);
            let (fill, extra, child_colour) = match child.kind {
                NodeKind::Level => (level_colour(&child.label), String::new(), None),
                NodeKind::Category => {
                    let c = category_colour(&child.label);
                    (c, String::new(), Some(c))
                }
                _ => {
                    let c = colour.unwrap_or("#999999");
                    match child.status {
                        Some(Status::ConformanceTested) => (c, " stroke=\"#ffffff\" stroke-width=\"0.5\"".to_string(), None),
                        Some(Status::Tested) => (c, " fill-opacity=\"0.55\" stroke=\"#333333\" stroke-width=\"0.6\" stroke-dasharray=\"2 1.5\"".to_string(), None),
                        _ => (UNTESTED_FILL, " stroke=\"#8a8a8a\" stroke-width=\"0.5\"".to_string(), None),
                    }
                }
            };
            let stroke = if extra.is_empty() {
                " stroke=\"#ffffff\" stroke-width=\"1\""
            } else {
                ""
            };
            let status = child
                .status
                .map(|s| format!(" data-status=\"{}\"", s.as_str()))
                .unwrap_or_default();
            let _ = write!(
                self.out,
                "<a href=\"{href}\"><path id=\"{id}\" class=\"arc {kind}\" data-kind=\"{kind}\" data-path=\"{path}\"{status} d=\"{d}\" fill=\"{fill}\"{extra}{stroke}><title>{title}</title></path>",
                href = self.href(&child.path),
                id = esc(&element_id(&child.path)),
                kind = child.kind.as_str(),
                path = esc(&child.path),
                title = esc(&describe(child)),
            );
            if child.status == Some(Status::Tested) {
                let _ = write!(
                    self.out,
                    "<path d=\"{d}\" fill=\"url(#sb-hatch)\" pointer-events=\"none\"/>"
                );
            }
            self.out.push_str("</a>\n");
            self.ring(child, depth + 1, a, b, child_colour.or(colour));
            a = b;
        }
    }
}

/// Rings below a node of this kind.
fn depth_below(kind: NodeKind) -> u32 {
    match kind {
        NodeKind::Root => 3,
        NodeKind::Level => 2,
        NodeKind::Category => 1,
        NodeKind::Endpoint => 0,
    }
}

/// The sunburst of `report` as a standalone SVG document (see the module
/// docs). Fails only on a focus that names nothing.
pub fn sunburst_svg(report: &Report, opts: &SunburstOptions) -> Result<String, SunburstError> {
    let root = tree(report);
    let focus_path = opts.focus.as_deref().unwrap_or("").trim_matches('/');
    let focus = root
        .find(focus_path)
        .filter(|n| focus_path.is_empty() || n.path == focus_path)
        .ok_or_else(|| SunburstError::FocusNotFound(focus_path.to_string()))?;
    // The category colour of a focused category's (or endpoint's) arcs.
    let colour = {
        let mut parts = focus_path.splitn(3, '/');
        match (parts.next(), parts.next()) {
            (Some(level), Some(cat)) => root
                .find(&format!("{level}/{cat}"))
                .map(|n| category_colour(&n.label)),
            _ => None,
        }
    };
    let size = f64::from(opts.size.clamp(120, 4096));
    let centre = size / 2.0;
    let rings = depth_below(focus.kind);
    let ring = (centre - 4.0) / f64::from(rings + 1);
    let legend_h = 64.0;
    let mut d = Drawing {
        out: String::with_capacity(256 * (focus.endpoints as usize + 16)),
        centre,
        ring,
        opts,
    };
    let _ = write!(
        d.out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sunburst\" viewBox=\"0 0 {size} {h}\" width=\"{size}\" height=\"{h}\" role=\"img\" aria-labelledby=\"sb-title\" data-focus=\"{focus}\">\n\
         <title id=\"sb-title\">{title}</title>\n\
         <defs><pattern id=\"sb-hatch\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"4\" stroke=\"#ffffff\" stroke-width=\"1.5\"/></pattern></defs>\n",
        h = size + legend_h,
        focus = esc(&focus.path),
        title = esc(&format!("API coverage sunburst: {}", describe(focus))),
    );
    // The centre: the focus; a link one level up unless it is the root.
    let centre_fill = match focus.kind {
        NodeKind::Level => level_colour(&focus.label),
        NodeKind::Root => "#ffffff",
        _ => match focus.status {
            Some(Status::Untested) => UNTESTED_FILL,
            _ => colour.unwrap_or("#ffffff"),
        },
    };
    let r_centre = if rings == 0 { centre - 4.0 } else { ring };
    let up = (focus.kind != NodeKind::Root).then(|| d.href(Node::parent_path(&focus.path)));
    if let Some(href) = &up {
        let _ = write!(d.out, "<a href=\"{href}\" class=\"zoom-out\">");
    }
    let _ = write!(
        d.out,
        "<circle id=\"sb-centre\" data-kind=\"{kind}\" data-path=\"{path}\" cx=\"{centre}\" cy=\"{centre}\" r=\"{r_centre:.2}\" fill=\"{centre_fill}\" stroke=\"#8a8a8a\"><title>{title}</title></circle>\
         <text x=\"{centre}\" y=\"{ty:.2}\" text-anchor=\"middle\" font-size=\"13\" font-family=\"sans-serif\">{label}</text>\
         <text x=\"{centre}\" y=\"{ty2:.2}\" text-anchor=\"middle\" font-size=\"11\" font-family=\"sans-serif\">{line2}</text>\
         <text x=\"{centre}\" y=\"{ty3:.2}\" text-anchor=\"middle\" font-size=\"11\" font-family=\"sans-serif\">{line3}</text>",
        kind = focus.kind.as_str(),
        path = esc(&focus.path),
        title = esc(&if up.is_some() {
            format!("{} (click to zoom out)", describe(focus))
        } else {
            describe(focus)
        }),
        ty = centre - 8.0,
        ty2 = centre + 8.0,
        ty3 = centre + 22.0,
        label = esc(&focus.label),
        line2 = esc(&match focus.status {
            Some(st) => st.as_str().replace('-', " "),
            None => format!("{} endpoints", focus.endpoints),
        }),
        line3 = match focus.status {
            Some(_) => String::new(),
            None => format!(
                "{} conformance tested",
                percent(focus.conformance_tested, focus.endpoints)
            ),
        },
    );
    if up.is_some() {
        d.out.push_str("</a>");
    }
    d.out.push('\n');
    d.ring(focus, 1, 0.0, std::f64::consts::TAU, colour);
    legend(&mut d.out, size);
    d.out.push_str("</svg>\n");
    Ok(d.out)
}

/// The three endpoint classes, each as a swatch drawn as its arcs are, and
/// its name.
fn legend(out: &mut String, size: f64) {
    let y = size + 14.0;
    let c = "#0072B2";
    let items = [
        (
            "conformance tested",
            format!("fill=\"{c}\" stroke=\"#ffffff\""),
            false,
        ),
        (
            "tested, not by a conformance test",
            format!(
                "fill=\"{c}\" fill-opacity=\"0.55\" stroke=\"#333333\" stroke-dasharray=\"2 1.5\""
            ),
            true,
        ),
        (
            "untested",
            format!("fill=\"{UNTESTED_FILL}\" stroke=\"#8a8a8a\""),
            false,
        ),
    ];
    let _ = write!(
        out,
        "<g class=\"legend\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    for (i, (label, attrs, hatch)) in items.iter().enumerate() {
        let yy = y + 16.0 * i as f64;
        let _ = write!(
            out,
            "<rect x=\"8\" y=\"{yy}\" width=\"12\" height=\"12\" {attrs}/>"
        );
        if *hatch {
            let _ = write!(
                out,
                "<rect x=\"8\" y=\"{yy}\" width=\"12\" height=\"12\" fill=\"url(#sb-hatch)\"/>"
            );
        }
        let _ = write!(
            out,
            "<text x=\"26\" y=\"{:.1}\">{}</text>",
            yy + 10.0,
            esc(label)
        );
    }
    out.push_str("</g>\n");
}
