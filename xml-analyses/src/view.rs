//! `timeGraphView` and `xyView` definitions, compiled into descriptions a server
//! can serve. Views are compiled with an empty context: no definedValue
//! substitution, locations or mapping groups (as in Trace Compass).

use std::path::Path;

use crate::dom::Element;
use crate::XmlError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewKind {
    TimeGraph,
    Xy,
}

/// One element of a `display`/`name`/`id`/`parent` path, relative to the entry.
#[derive(Clone, Debug, PartialEq)]
pub enum ViewAttr {
    Constant(String),
    /// Absolute path whose current value names the next level.
    Query(Vec<ViewAttr>),
    SelfAttr,
    /// `location` and other kinds do not work in views: the element resolves to nothing.
    Unresolvable,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EntryDef {
    /// Regex per level, `*` replaced by `(.*)`.
    pub path: Vec<String>,
    pub analysis_id: Option<String>,
    pub display: Option<Vec<ViewAttr>>,
    pub id: Option<Vec<ViewAttr>>,
    pub parent: Option<Vec<ViewAttr>>,
    pub name: Option<Vec<ViewAttr>>,
    pub display_text: bool,
    /// XY: `delta` (case-insensitive) vs anything else = absolute.
    pub delta: bool,
    pub children: Vec<EntryDef>,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ViewDef {
    pub id: String,
    pub kind: ViewKind,
    pub label: String,
    /// Analyses feeding the view; empty = every analysis of the trace.
    pub analyses: Vec<String>,
    /// (display name, value, colour) from `definedValue`.
    pub styles: Vec<(String, String, Option<String>)>,
    pub entries: Vec<EntryDef>,
    pub line: u32,
}

fn view_path(el: &Element) -> Vec<ViewAttr> {
    el.children_named("stateAttribute")
        .map(|a| match a.attr("type").unwrap_or("") {
            "constant" => ViewAttr::Constant(a.attr("value").unwrap_or("").to_string()),
            "query" => ViewAttr::Query(view_path(a)),
            "self" => ViewAttr::SelfAttr,
            _ => ViewAttr::Unresolvable,
        })
        .collect()
}

/// `display`, `name`... hold one viewStateAttribute: a `type` on the element itself.
fn view_element(el: &Element) -> Vec<ViewAttr> {
    match el.attr("type").unwrap_or("") {
        "constant" => vec![ViewAttr::Constant(
            el.attr("value").unwrap_or("").to_string(),
        )],
        "query" => vec![ViewAttr::Query(view_path(el))],
        "self" => vec![ViewAttr::SelfAttr],
        _ => vec![ViewAttr::Unresolvable],
    }
}

fn entry(el: &Element) -> EntryDef {
    let path = el.attr("path").unwrap_or("");
    let path = if path.is_empty() { "*" } else { path };
    EntryDef {
        path: path.split('/').map(|p| p.replace('*', "(.*)")).collect(),
        analysis_id: el.attr("analysisId").map(str::to_string),
        display: el.child("display").map(view_element),
        id: el.child("id").map(view_element),
        parent: el.child("parent").map(view_element),
        name: el.child("name").map(view_element),
        display_text: el
            .attr("displayText")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        delta: el
            .attr("displayType")
            .is_some_and(|v| v.eq_ignore_ascii_case("delta")),
        children: el.children_named("entry").map(entry).collect(),
        line: el.line,
    }
}

/// Every view of the document, in document order.
pub fn compile_views(root: &Element, _file: &Path) -> Result<Vec<ViewDef>, XmlError> {
    let mut out = Vec::new();
    for el in &root.children {
        let kind = match el.name.as_str() {
            "timeGraphView" => ViewKind::TimeGraph,
            "xyView" => ViewKind::Xy,
            _ => continue,
        };
        let id = el.attr("id").unwrap_or("").to_string();
        let head = el.child("head");
        let label = head
            .and_then(|h| h.child("label"))
            .and_then(|l| l.attr("value"))
            .map_or_else(|| id.clone(), str::to_string);
        let analyses = head
            .map(|h| {
                h.children_named("analysis")
                    .filter_map(|a| a.attr("id").map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let styles = el
            .children_named("definedValue")
            .map(|d| {
                (
                    d.attr("name").unwrap_or("").to_string(),
                    d.attr("value").unwrap_or("").to_string(),
                    d.attr("color").map(str::to_string),
                )
            })
            .collect();
        out.push(ViewDef {
            id,
            kind,
            label,
            analyses,
            styles,
            entries: el.children_named("entry").map(entry).collect(),
            line: el.line,
        });
    }
    Ok(out)
}
